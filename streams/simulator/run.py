"""Running a city to a replay file: the writer, progress, and the summary of what came out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from . import config as config_mod
from .city import City
from .clock import HOUR


class ReplayWriter:
    """Appends ``{"topic": ..., "value": ...}`` lines; bytes depend only on the records."""

    def __init__(self, path: str | Path):
        self.f = open(path, "wb", buffering=1 << 20)  # noqa: SIM115 - closed by close()
        self._prefix = {t: b'{"topic":"' + t.encode() + b'","value":' for t in (
            "registry", "watchlist", "calls", "transactions", "case-reports", "task-outcomes")}
        self.counts: dict[str, int] = {}

    def __call__(self, t: int, topic: str, record: dict[str, Any]) -> None:
        self.f.write(self._prefix[topic] + orjson.dumps(record) + b"}\n")
        self.counts[topic] = self.counts.get(topic, 0) + 1

    def close(self) -> None:
        self.f.close()


@dataclass
class RunResult:
    records: int
    counts: dict[str, int]
    city: City
    extra: dict[str, Any] = field(default_factory=dict)


Progress = Callable[[int, int, int], None]  # (hours done, hours total, records so far)


def build_city(persons: int, days: int, seed: int, config: str | Path | None = None,
               overrides: dict[str, Any] | None = None, scenario: str | None = None) -> City:
    cfg = config_mod.load(config, overrides, scenario)
    return City(persons, days, seed, cfg)


def run_city(city: City, sinks: list[Callable[..., None]],
             progress: Progress | None = None) -> None:
    """Play the whole city through the engine, stepping an hour at a time for progress."""
    eng = city.engine
    eng.sinks.extend(sinks)
    city.start()
    total = city.days * 24
    for h in range(1, total + 1):
        eng.run(until=city.clock.t0 + h * HOUR)
        if progress is not None:
            progress(h, total, eng.emitted)


def simulate(persons: int, days: int, seed: int, out: str | Path,
             truth: str | Path | None = None, config: str | Path | None = None,
             overrides: dict[str, Any] | None = None,
             progress: Progress | None = None, scenario: str | None = None) -> RunResult:
    """Write a synthetic city's contract records to ``out`` (JSON Lines, event-time order) and
    its ground truth to ``truth``; the same arguments give the same bytes."""
    city = build_city(persons, days, seed, config, overrides, scenario)
    writer = ReplayWriter(out)
    try:
        run_city(city, [writer], progress)
    finally:
        writer.close()
    if truth is not None:
        city.truth.write(truth, city)
    return RunResult(city.engine.emitted, dict(writer.counts), city)


def responder_rng(seed: int) -> Any:
    """The desks', banks' and people's own draws: the same in every driver of the loop."""
    from .city import generator

    return generator(seed, 9)


def closed_loop(persons: int, days: int, seed: int, out: str | Path | None,
                core_factory: Callable[[], Any], truth: str | Path | None = None,
                config: str | Path | None = None, overrides: dict[str, Any] | None = None,
                progress: Progress | None = None, scenario: str | None = None) -> LoopResult:
    """Run the city twice from the same seed: without the pipeline (the counterfactual) and with
    the core and the simulated desks and banks answering its tasks; report what users report."""
    from .report import loop_report
    from .respond import CoreLink, Responder

    def phase(label: str) -> Progress | None:
        if progress is None:
            return None
        return lambda h, total, n: progress(h + (total if label == "on" else 0), 2 * total, n)

    base = build_city(persons, days, seed, config, overrides, scenario)
    run_city(base, [], phase("off"))
    city = build_city(persons, days, seed, config, overrides, scenario)
    responder = Responder(city, responder_rng(seed))
    link = CoreLink(city, core_factory(), responder)
    writer = ReplayWriter(out) if out is not None else None
    try:
        run_city(city, [writer] if writer else [], phase("on"))
        link.finish()
    finally:
        if writer:
            writer.close()
    if truth is not None:
        city.truth.write(truth, city)
    return LoopResult(loop_report(city, base, responder), city, base, responder)


@dataclass
class LoopResult:
    report: dict[str, Any]
    city: City
    base: City
    responder: Any
