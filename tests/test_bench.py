"""``zt bench`` end to end at a small size: every phase runs on the real broker and a real
worker and writes its figures (the figures themselves are measured, never asserted)."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from streams.bench import TRIGGER_EVERY, run_bench


def test_bench_writes_every_phase(tmp_path: Path):
    out = tmp_path / "pipeline.json"
    assert run_bench(records=3000, rate=500, seconds=2.0, out=out, persons=2000,
                     console=Console(file=(tmp_path / "bench.log").open("w"))) == 0
    r = json.loads(out.read_text())
    assert r["replay"]["records"] == 3000 + 2000 + 1000  # traffic, registry, watch list
    assert len(r["replay"]["runs_records_per_s"]) == 3
    assert r["replay"]["records_per_s"] == sorted(r["replay"]["runs_records_per_s"])[1]
    assert r["saturation"]["records"] == 3000 and r["saturation"]["events_per_s"] > 0
    assert r["transport_passthrough"]["records"] == 3000
    lat = r["latency"]
    # one call in TRIGGER_EVERY is a long call from a listed line: each gives one timed task
    assert lat["tasks"] == sum(1 for k in range(3000, 4000) if k % 5 != 4 and k % TRIGGER_EVERY == 0)
    assert 0 < lat["p50_ms"] <= lat["p99_ms"] <= lat["max_ms"]
    assert set(lat["cpu_cores"]) == {"worker", "broker", "generator"}
    assert lat["cpu_cores"]["worker"] > 0
