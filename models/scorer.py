"""Online scoring: a promoted model turns feature rows into calibrated P(fraud), in batches.

The decision core calls ``Scorer.score(point, rows)`` with the feature dicts the streaming state
computed (``models.features``); ``ScorerWatcher`` follows the registry's ``promoted`` pointer so
a worker switches to a newly promoted version without a restart.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable
from operator import itemgetter
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from models.registry import MODEL_FILE, Registry, RegistryError

log = logging.getLogger(__name__)


class Scorer(Protocol):
    version: str

    def score(self, point: str, rows: list[dict[str, float]]) -> list[float]:
        """Calibrated P(fraud), one per row, in order."""
        ...


def matrix(names: tuple[str, ...], rows: list[dict[str, float]]) -> np.ndarray:
    """Rows of feature dicts to a float matrix in ``names`` order; a missing feature is NaN
    (the gradient-boosted trees route missing values, so an older row still scores)."""
    if not rows:
        return np.empty((0, len(names)))
    get = itemgetter(*names)
    try:
        values = [get(r) for r in rows]
    except KeyError:
        values = [tuple(r.get(n, math.nan) for n in names) for r in rows]
    x = np.asarray(values, dtype=np.float64)
    return x.reshape(len(rows), len(names))


_openmp_limited = False


def limit_openmp(threads: int = 1) -> None:
    """Cap OpenMP threads for the whole process, once. Scoring batches are small and workers
    scale out as processes: on a busy host, spinning OpenMP threads made one call 6x slower
    (23 ms against 3.5 ms for one row, bench/bench_scoring.py)."""
    global _openmp_limited
    if not _openmp_limited:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads, user_api="openmp")
        _openmp_limited = True


class ModelScorer:
    """One calibrated classifier per scoring point, loaded from a registry artifact.

    ``artifact`` is what ``models.train`` saves: ``{"version", "points": {point: {"features",
    "model"}}}``. ``threads`` caps OpenMP for the process (``limit_openmp``); None leaves it.
    """

    def __init__(self, artifact: dict[str, Any], threads: int | None = 1):
        if threads:
            limit_openmp(threads)
        self.version: str = artifact["version"]
        # The alert threshold of the model card (set at desk capacity); None if unknown.
        self.threshold: float | None = artifact.get("threshold")
        self._points: dict[str, tuple[tuple[str, ...], Any]] = {
            p: (tuple(m["features"]), m["model"]) for p, m in artifact["points"].items()}

    @classmethod
    def load(cls, registry: Registry | str | Path, version: str | None = None) -> ModelScorer:
        reg = registry if isinstance(registry, Registry) else Registry(registry)
        resolved = reg.resolve(version)
        artifact = dict(reg.load_artifact(resolved, MODEL_FILE))
        # An artifact without a card (or a threshold in it): the policy's threshold applies.
        with contextlib.suppress(KeyError, OSError, ValueError, RegistryError):
            artifact.setdefault("threshold", reg.card(resolved)["thresholds"]["alert"])
        return cls(artifact)

    def has(self, point: str) -> bool:
        return point in self._points

    def features(self, point: str) -> tuple[str, ...]:
        return self._points[point][0]

    def score(self, point: str, rows: list[dict[str, float]]) -> list[float]:
        return self.score_matrix(point, matrix(self._points[point][0], rows)).tolist()

    def score_matrix(self, point: str, x: np.ndarray) -> np.ndarray:
        if len(x) == 0:
            return np.empty(0)
        return self._points[point][1].predict_proba(x)[:, 1]


class ScorerWatcher:
    """The promoted model, re-checked at most every ``interval_s`` seconds (monotonic clock).

    The check reads one small file; loading happens only when the pointer names another version.
    A version that fails to load is logged and the current one kept, so a bad promotion never
    takes scoring down.
    """

    def __init__(self, registry_dir: str | Path | None = None, interval_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic):
        self.registry = Registry(registry_dir)
        self.interval_s = interval_s
        self._clock = clock
        self._scorer: ModelScorer | None = None
        self._checked = -math.inf
        self._failed: str | None = None
        self._lock = threading.Lock()

    def current(self) -> ModelScorer | None:
        now = self._clock()
        if now - self._checked < self.interval_s:
            return self._scorer
        with self._lock:
            if now - self._checked >= self.interval_s:
                self._checked = now
                self._refresh()
        return self._scorer

    def _refresh(self) -> None:
        name = self.registry.promoted()
        have = self._scorer.version if self._scorer else None
        if name is None or name == have or name == self._failed:
            return
        try:
            scorer = ModelScorer.load(self.registry, name)
        except (RegistryError, OSError, ValueError, KeyError, EOFError) as e:
            log.warning("model %s could not be loaded (%s); keeping %s", name, e, have or "none")
            self._failed = name
            return
        log.info("model %s loaded (was %s)", name, have or "none")
        self._scorer = scorer
        self._failed = None
