"""The packaged default model: what decides beside the rules when no model is promoted.

It is trained by one command, ``zt models train-default``, on a family of cities drawn from two
independent generators: the ``t-*`` (training) settings of ``zt simulate --scenario`` and the
training settings of ``bench/worlds``. The ``h-*`` settings of the simulator and the other
settings of ``bench/worlds`` are never trained on: they are for ``zt evaluate``. The same
command gives the same cities and the same fit (seeded, one thread); the artifact and its card
are written to ``models/default/`` and shipped with the package (well under a few MB).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from models.registry import MODEL_FILE, Registry

# (generator, setting, persons, days, seed): cities of one length, so their days split alike.
TRAINING_CITIES: tuple[tuple[str, str, int, int, int], ...] = (
    *(("simulate", s, 8000, 10, seed) for s in ("t-baseline", "t-callers", "t-slowburn",
                                                 "t-lookalikes") for seed in (101, 202)),
    *(("worlds", s, 6000, 10, seed) for s in ("baseline", "pig-heavy", "many-lookalikes")
      for seed in (21, 22)),
)
HELD_OUT = {"simulate": ("h-duringcall", "h-chatonly", "h-escalation", "h-aging"),
            "worlds": ("during-call-payers", "low-watchlist", "elderly-city", "chat-only")}


def folder() -> Path:
    """Where the packaged default model lives (inside the installed package)."""
    return Path(str(resources.files("models") / "default"))


def packaged() -> Any | None:
    """The packaged default model as a scorer, or None when none is packaged."""
    from models.scorer import ModelScorer

    path = folder()
    if not (path / MODEL_FILE).is_file():
        return None
    import json

    import joblib

    artifact = dict(joblib.load(path / MODEL_FILE))
    card = json.loads((path / "card.json").read_text("utf-8"))
    artifact.setdefault("threshold", card["thresholds"]["alert"])
    artifact.setdefault("thresholds", card["thresholds"].get("points"))
    return ModelScorer(artifact)


@dataclass(frozen=True)
class City:
    generator: str
    setting: str
    persons: int
    days: int
    seed: int

    @property
    def name(self) -> str:
        return f"{self.generator}-{self.setting}-{self.seed}"

    def write(self, out: Path) -> None:
        if self.generator == "simulate":
            from streams.simulator.run import simulate

            simulate(self.persons, self.days, self.seed, out,
                     out.with_name(out.name.removesuffix(".jsonl") + ".truth.jsonl"),
                     scenario=self.setting)
        else:
            from bench.worlds import generate

            generate(self.setting, self.persons, self.days, self.seed, out)


def train_default(out: Path | None = None, step: Callable[[str], None] | None = None,
                  progress: Callable[[int, int], None] | None = None,
                  cities: tuple[tuple[str, str, int, int, int], ...] = TRAINING_CITIES
                  ) -> tuple[str, dict[str, Any]]:
    """Draw the training cities, train on them, write the model and its card to ``out``
    (default: the package's ``models/default``). Returns the version and the card."""
    from models.train import TrainConfig, train_file

    out = out or folder()
    with tempfile.TemporaryDirectory(prefix="zt-default-model-") as tmp:
        files = []
        for i, spec in enumerate(cities, 1):
            city = City(*spec)
            if step:
                step(f"city {i} of {len(cities)}: {city.name}")
            path = Path(tmp) / f"{city.name}.jsonl"
            city.write(path)
            files.append(path)
        registry = Registry(Path(tmp) / "registry")
        # Day 0 is trained on too: person_history_days tells a cold start from fraud.
        version, card = train_file(files, registry, TrainConfig(warmup_days=0), progress, step)
        out.mkdir(parents=True, exist_ok=True)
        for name in (MODEL_FILE, "card.json", "card.md"):
            shutil.copyfile(registry.path(version) / name, out / name)
    return version, card
