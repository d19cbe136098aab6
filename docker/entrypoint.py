"""``zt`` as the container runs it: ``python /app/entrypoint.py <command> ...`` is ``zt <command> ...``.

A container is its own host, so the image sets ``ZT_METRICS_HOST=0.0.0.0``: ``zt worker`` reads
it (its ``--metrics-host`` option) and serves /metrics beyond the container's loopback, where
Prometheus scrapes it from another container. On a host /metrics stays on loopback.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> None:
    from streams import cli

    sys.argv = ["zt", *argv]
    cli.main()


if __name__ == "__main__":
    main(sys.argv[1:])
