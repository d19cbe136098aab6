"""Which rule set and which model decide: the one place both drivers resolve them.

The worker and ``zt replay`` take the same settings (a rule file, a model registry), so the same
records give the same tasks in both.
"""

from __future__ import annotations

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
    """The registry folder a worker follows (``None``: no model at all)."""
    if models == "none":
        return None
    from models.registry import default_dir

    return Path(models) if models else default_dir()


def load_model(models: str | None) -> Any:
    """The model ``models.registry.resolve`` names (the registry's promoted model, else the
    packaged default), loaded; None when there is none (the rules alone decide)."""
    from models.registry import RegistryError, resolve
    from models.scorer import ModelScorer

    choice = resolve(models)
    if choice.registry is None:
        return None
    try:
        return ModelScorer.load(choice.registry, choice.version)
    except (RegistryError, OSError, KeyError, EOFError) as e:
        raise ValueError(f"model {choice.describe()} cannot be loaded: {e}") from None
