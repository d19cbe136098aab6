"""``zt`` as the container runs it.

Two differences from the ``zt`` console script, both because a container is its own host:

* ``ZT_METRICS_HOST`` (``0.0.0.0`` in the image) is where a worker serves /metrics: on the
  host it must stay loopback, but in a container Prometheus scrapes it from another container.
* ``desk`` runs the desk service even where ``zt`` has no ``desk`` command yet.

Both go away when ``zt worker`` has a ``--metrics-host`` option and ``zt desk`` exists.
"""

from __future__ import annotations

import functools
import os
import sys


def main(argv: list[str]) -> None:
    from streams import cli, metrics

    host = os.environ.get("ZT_METRICS_HOST")
    if host:
        # `zt worker` looks `metrics.serve` up at call time, so this reaches it.
        metrics.serve = functools.partial(metrics.serve, host=host)
    has_desk = any((c.name or getattr(c.callback, "__name__", "")) == "desk"
                   for c in cli.app.registered_commands)
    if argv[:1] == ["desk"] and not has_desk:
        import typer

        from services.desk.cli import desk

        sys.argv = ["zt desk", *argv[1:]]
        typer.run(desk)
        return
    sys.argv = ["zt", *argv]
    cli.main()


if __name__ == "__main__":
    main(sys.argv[1:])
