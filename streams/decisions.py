"""Which rule set and which model decide: the one place both drivers resolve them.

The worker and ``zt replay`` take the same settings (a rule file, a model registry), so the same
records give the same tasks in both.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def rules_path(rules: str) -> Path | None:
    """'default' -> the packaged city rule set; 'none' -> no rule set (built-in path only)."""
    if rules == "none":
        return None
    if rules == "default":
        from rules.engine import default_ruleset_path

        return default_ruleset_path()
    path = Path(rules)
    if not path.is_file():
        raise ValueError(f"rule set {path} not found")
    return path


def load_rules(rules: str) -> Any:
    from rules.engine import RuleSet, RuleSetError

    path = rules_path(rules)
    if path is None:
        return None
    try:
        return RuleSet.load(path)
    except RuleSetError as e:
        raise ValueError(f"rule set {path} rejected: {e}") from None


def models_dir(models: str | None) -> Path | None:
    if models == "none":
        return None
    return Path(models or os.environ.get("ZT_MODELS", ".zt/models"))


def load_model(models: str | None) -> Any:
    """The promoted model of the registry, or None when there is none (rules alone decide)."""
    directory = models_dir(models)
    if directory is None or not directory.exists():
        return None
    try:
        from models.scorer import ScorerWatcher
    except ImportError:
        return None
    return ScorerWatcher(directory).current()
