"""Which rule set and which model decide: the one place both drivers resolve them.

The worker, ``zt replay``, ``zt evaluate``, the demo's check and the simulator's closed loop take
the same settings (a rule file, a model registry) and resolve them here, so the same records give
the same tasks in all of them: the registry's promoted model, else the packaged default model.
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


def model_watcher(models: str | None) -> Any:
    """What scores in the workers: the registry's promoted model (re-read when a new one is
    promoted), else the packaged default model; None for 'none'."""
    directory = models_dir(models)
    if directory is None:
        return None
    try:
        from models.default import packaged
        from models.scorer import ScorerWatcher
    except ImportError:  # installed without the models' dependencies
        return None
    return ScorerWatcher(directory, fallback=packaged())


def load_model(models: str | None) -> Any:
    """The model that decides now, as the workers resolve it (``model_watcher``); None when
    'none' or when neither a promoted nor a packaged model exists (rules alone decide)."""
    watcher = model_watcher(models)
    return watcher.current() if watcher is not None else None
