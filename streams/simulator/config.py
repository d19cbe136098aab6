"""The city's parameters: ``city.yaml`` beside this module, optionally overlaid by a user file.

A user file (or a dict of overrides) may only change keys the default file documents, so a typo
fails at the door instead of silently simulating a different city.
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

Config = dict[str, Any]

# Keys whose mappings are open (new fraud types, districts, banks may be added).
_OPEN = {"districts", "carriers", "banks", "types", "large_payment_kinds", "pay_during_call"}


class ConfigError(ValueError):
    """A parameter file that does not describe a city."""


def default_text() -> str:
    return (resources.files("streams.simulator") / "city.yaml").read_text("utf-8")


def scenarios() -> dict[str, tuple[str, dict[str, Any]]]:
    """The family of cities (``scenarios.yaml``): name -> (``train`` | ``heldout``, overlay)."""
    text = (resources.files("streams.simulator") / "scenarios.yaml").read_text("utf-8")
    return {name: (family, overlay or {}) for family, members in yaml.safe_load(text).items()
            for name, overlay in members.items()}


def load(path: str | Path | None = None, overrides: dict[str, Any] | None = None,
         scenario: str | None = None) -> Config:
    """The default city, overlaid by the ``scenario`` of the family, the YAML file at ``path``
    and then ``overrides``."""
    cfg = yaml.safe_load(default_text())
    if scenario is not None:
        family = scenarios()
        if scenario not in family:
            raise ConfigError(f"unknown scenario {scenario!r}; the family has "
                              f"{', '.join(sorted(family))}")
        _merge(cfg, copy.deepcopy(family[scenario][1]), "")
        cfg["scenario"] = scenario
    if path is not None:
        user = yaml.safe_load(Path(path).read_text("utf-8")) or {}
        if not isinstance(user, dict):
            raise ConfigError(f"{path}: a city file is a mapping of sections")
        _merge(cfg, user, "")
    if overrides:
        _merge(cfg, copy.deepcopy(overrides), "")
    _check(cfg)
    return cfg


def _merge(base: dict[str, Any], extra: dict[str, Any], where: str) -> None:
    for key, value in extra.items():
        here = f"{where}.{key}" if where else str(key)
        if key not in base and where.rsplit(".", 1)[-1] not in _OPEN:
            raise ConfigError(f"unknown parameter {here!r} (see city.yaml)")
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value, here)
        else:
            base[key] = value


def shares(mapping: dict[str, Any], key: str | None = None) -> tuple[list[str], Any]:
    """Names and normalised probabilities of a ``{name: share}`` (or ``{name: {key: share}}``)."""
    import numpy as np

    names = list(mapping)
    raw = np.array([float(mapping[n][key] if key else mapping[n]) for n in names])
    if (raw < 0).any() or raw.sum() <= 0:
        raise ConfigError(f"shares must be non-negative with a positive sum: {mapping}")
    return names, raw / raw.sum()


def _check(cfg: Config) -> None:
    shares(cfg["population"]["age_groups"], "share")
    shares(cfg["population"]["districts"])
    shares(cfg["population"]["carriers"])
    shares(cfg["population"]["banks"])
    shares(cfg["fraud"]["types"], "share")
    groups = set(cfg["population"]["age_groups"])
    for name, t in cfg["fraud"]["types"].items():
        if set(t["ages"]) - groups:
            raise ConfigError(f"fraud.types.{name}.ages names an unknown age group")
        shares(t["ages"])
        shares(t["origins"])
    for section in ("calls", "transfers", "lookalikes", "fraud", "respond"):
        for key, value in cfg[section].items():
            prob = key in {"answered", "sms_share", "callback", "fail_share", "case_report",
                           "relapse", "bank_fail", "visit_reach", "mule_local_share",
                           "mule_reuse_in_episode"}
            if prob and not 0 <= float(value) <= 1:
                raise ConfigError(f"{section}.{key} is a probability, got {value}")
    if len(cfg["calls"]["hours"]) != 24 or len(cfg["transfers"]["hours"]) != 24:
        raise ConfigError("hour profiles need 24 values")
