"""python -m bench.worlds --setting NAME --persons N --days D --seed S --out city.jsonl"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import generate
from .settings import SETTINGS


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.worlds",
        description=__doc__.split("\n")[0] + "\n"
        "Writes an independent synthetic city (events) and OUT's .truth.jsonl.",
    )
    ap.add_argument("--setting", default="baseline", choices=sorted(SETTINGS))
    ap.add_argument("--persons", type=int, default=4000)
    ap.add_argument("--days", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("city.jsonl"))
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    summary = generate(args.setting, args.persons, args.days, args.seed, args.out)
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    json.dump(summary, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
