"""One place for settings: a command-line flag beats ``ZT_*`` environment variables, which beat
the config file (``--config``, ``ZT_CONFIG`` or ``./zt.toml``), which beats the defaults.

Example ``zt.toml``::

    [kafka]
    bootstrap = "kafka-1:9092,kafka-2:9092"
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
# How long a worker told to stop may take (streams/stopping.py): under the 30 s grace period of
# docker/compose.yaml and of Kubernetes by default, so the worker says why it exits before it is
# killed.
DEFAULT_STOP_TIMEOUT_S = 20.0
# Between two checkpoints while a worker works through a backlog (Kafka Streams' commit interval).
DEFAULT_COMMIT_BEHIND_S = 30.0


@dataclass(frozen=True)
class Settings:
    bootstrap: str = DEFAULT_BOOTSTRAP
    source: str = "default"  # where ``bootstrap`` came from, shown by commands that connect


def config_file(path: str | None) -> dict:
    """The config file's tables: ``path``, else ``ZT_CONFIG``, else ``./zt.toml`` if present.
    A file named explicitly that does not exist is an error."""
    candidate = path or os.environ.get("ZT_CONFIG")
    p = Path(candidate) if candidate else Path("zt.toml")
    if not p.is_file():
        if candidate:
            raise FileNotFoundError(f"config file {p} not found")
        return {}
    with p.open("rb") as f:
        return tomllib.load(f)


def load(bootstrap: str | None = None, config: str | None = None) -> Settings:
    conf = config_file(config).get("kafka", {})  # an explicit file that is missing is an error
    if bootstrap:
        return Settings(bootstrap, "--bootstrap flag")
    if os.environ.get("ZT_KAFKA"):
        return Settings(os.environ["ZT_KAFKA"], "ZT_KAFKA")
    if conf.get("bootstrap"):
        return Settings(str(conf["bootstrap"]), "config file")
    return Settings()
