"""Garbage-collector settings for the long-running drivers (replay, workers).

The core keeps millions of small, long-lived objects (the registry, per-line, per-account and
per-person windows) and allocates a few short-lived ones per record. With CPython's default
thresholds (a collection every 700 net allocations) the cyclic collector walks the old objects
over and over: measured at about 20% of replay's time. So the drivers freeze what exists when
they start (modules, rule sets, models: never garbage) out of the collector's sight, and collect
the young generation every 100,000 allocations. The core makes no reference cycles that need
prompt collection (its state is trees of dicts, deques and slotted objects), so this costs
memory only briefly and never changes a decision.

>>> import gc
>>> before = gc.get_threshold()
>>> with long_lived_heap():
...     gc.get_threshold()[0]
100000
>>> gc.get_threshold() == before
True
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

THRESHOLDS = (100_000, 50, 1000)


@contextmanager
def long_lived_heap() -> Iterator[None]:
    """Collect rarely while the block runs; restore the previous thresholds after it."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


@contextmanager
def replay_heap() -> Iterator[None]:
    """No cyclic collection at all while one replay pass runs.

    A pass is bounded and its state is trees of dicts, deques and slotted objects, freed by
    reference counting: measured, the collections of a whole pass found nothing to collect, yet
    cost ~11% of it (the young ones, and a walk of the pass's millions of survivors when the
    thresholds came back). So the collector is off during the pass, and what the pass leaves
    alive (its state, until the caller drops it) is frozen with the rest: out of the
    collector's sight, still freed by reference counting as soon as it is dropped."""
    was_enabled = gc.isenabled()
    gc.disable()
    gc.freeze()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def tune_for_long_lived_heap() -> None:
    """The same, for a whole process (a worker runs until it is stopped), once its modules are
    imported."""
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
