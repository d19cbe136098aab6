"""Ground truth: what really happened in the city, written apart from the records.

The pipeline never reads this file; tests, the naive-detector evaluation and the closed-loop
report do. Rows are JSON Lines, one ``kind`` per line, in a fixed order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson


class Truth:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.lookalikes: list[dict[str, Any]] = []
        self.drains: list[dict[str, Any]] = []
        self.rows: list[dict[str, Any]] = []  # fraud numbers, mules, look-alike lines

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def lookalike(self, kind: str, **fields: Any) -> None:
        row = {"kind": "lookalike", "type": kind}
        row.update(fields)
        if "person" in row:
            row["person_id"] = f"P{row.pop('person'):07d}"
        self.lookalikes.append(row)

    def write(self, path: str | Path, city: Any) -> None:
        """Everything known at the end of the run, in a deterministic order."""
        fmt = city.clock.fmt
        with open(path, "wb") as f:
            def put(row: dict[str, Any]) -> None:
                f.write(orjson.dumps(row) + b"\n")

            put({"kind": "run", "generator": "zt simulate", "setting": city.cfg.get("scenario"),
                 "persons": city.pop.n, "days": city.days, "seed": city.seed,
                 "start": fmt(city.clock.t0), "counts": dict(sorted(self.counts.items()))})
            for ep in city.fraud.episodes:
                put(ep.truth(city))
                for p in ep.payments:
                    put(p.truth(ep, fmt))
            for line in city.fraud.lines:
                put(line.truth(fmt))
            for mule in city.fraud.mules:
                put(mule.truth(city))
            for d in self.drains:
                put(d)
            sv = city.services
            for num in sv.couriers:
                put({"kind": "lookalike", "type": "courier_line", "msisdn": num})
            for num, origin in zip(sv.telemarketers, sv.telemarketer_origin, strict=True):
                put({"kind": "lookalike", "type": "telemarketer_line", "msisdn": num,
                     "origin": origin})
            for row in self.lookalikes:
                put(row)
