"""The model registry: one folder per version, a model card beside each artifact, and a
``promoted`` pointer the workers follow.

Layout of the registry folder (default ``.zt/models``, or ``$ZT_MODELS``)::

    v0003-1a2b3c4d/model.joblib      # the calibrated classifiers, one per scoring point
    v0003-1a2b3c4d/ablation.joblib   # the same trained without call features (evaluation only)
    v0003-1a2b3c4d/card.json         # features, data fingerprint, metrics, thresholds, date, seed
    v0003-1a2b3c4d/card.md           # the same card for people
    promoted                         # the promoted version's name, replaced atomically

Artifacts are written with joblib, scikit-learn's documented way to persist estimators; a
pickle runs code when loaded, so load only artifacts this registry wrote (the card records the
scikit-learn version, and loading under another one warns).

>>> import tempfile
>>> reg = Registry(tempfile.mkdtemp())
>>> reg.promoted() is None
True
>>> v = reg.create("0123456789abcdef")
>>> v
'v0001-01234567'
>>> _ = reg.save_artifact(v, {"points": {}})
>>> reg.write_card(v, {"version": v, "metrics": {}})
>>> reg.promote(v)
>>> reg.promoted(), reg.versions()
('v0001-01234567', ['v0001-01234567'])
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import orjson

DEFAULT_DIR = Path(".zt/models")
MODEL_FILE = "model.joblib"
ABLATION_FILE = "ablation.joblib"
CARD_JSON = "card.json"
CARD_MD = "card.md"
POINTER = "promoted"
_VERSION = re.compile(r"^v(\d{4,})-[0-9a-f]{8}$")


class RegistryError(RuntimeError):
    """A version that does not exist or is incomplete, with a message a person can act on."""


def default_dir() -> Path:
    env = os.environ.get("ZT_MODELS")
    return Path(env) if env else DEFAULT_DIR


def atomic_write(path: Path, data: bytes) -> None:
    """Write then rename, so a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Registry:
    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_dir()

    # --- versions -----------------------------------------------------------------------
    def versions(self) -> list[str]:
        """Complete versions (those with a card), oldest first."""
        if not self.root.is_dir():
            return []
        found = [p.name for p in self.root.iterdir()
                 if _VERSION.match(p.name) and (p / CARD_JSON).is_file()]
        return sorted(found, key=lambda v: int(_VERSION.match(v).group(1)))  # type: ignore[union-attr]

    def create(self, fingerprint: str) -> str:
        """Reserve the next version name (``v<n>-<data fingerprint>``); mkdir makes it race-free."""
        self.root.mkdir(parents=True, exist_ok=True)
        taken = [int(m.group(1)) for p in self.root.iterdir() if (m := _VERSION.match(p.name))]
        n = max(taken, default=0) + 1
        while True:
            name = f"v{n:04d}-{fingerprint[:8]}"
            try:
                (self.root / name).mkdir()
                return name
            except FileExistsError:
                n += 1

    def path(self, version: str) -> Path:
        return self.root / version

    def resolve(self, version: str | None) -> str:
        """A version name; ``promoted``, ``latest`` or None mean what they say."""
        if version in (None, "promoted"):
            v = self.promoted()
            if v is None:
                raise RegistryError(f"no model is promoted in {self.root}: run `zt train` "
                                    "then `zt models promote VERSION`")
            return v
        if version == "latest":
            vs = self.versions()
            if not vs:
                raise RegistryError(f"no model in {self.root}: run `zt train` first")
            return vs[-1]
        if version not in self.versions():
            raise RegistryError(f"no model version {version!r} in {self.root} "
                                f"(have: {', '.join(self.versions()) or 'none'})")
        return version

    # --- cards and artifacts ----------------------------------------------------------------
    def write_card(self, version: str, card: dict[str, Any], markdown: str | None = None) -> None:
        folder = self.path(version)
        if markdown is not None:
            atomic_write(folder / CARD_MD, markdown.encode())
        # The JSON card last: its presence is what makes a version complete.
        atomic_write(folder / CARD_JSON, orjson.dumps(card, option=orjson.OPT_INDENT_2
                                                      | orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY))

    def card(self, version: str) -> dict[str, Any]:
        try:
            return orjson.loads((self.path(version) / CARD_JSON).read_bytes())
        except FileNotFoundError:
            raise RegistryError(f"model version {version!r} has no card in {self.root}") from None

    def card_markdown(self, version: str) -> str:
        p = self.path(version) / CARD_MD
        return p.read_text("utf-8") if p.is_file() else ""

    def save_artifact(self, version: str, obj: Any, name: str = MODEL_FILE) -> Path:
        import joblib

        path = self.path(version) / name
        tmp = path.with_name(f".{name}.tmp")
        joblib.dump(obj, tmp)
        os.replace(tmp, path)
        return path

    def load_artifact(self, version: str, name: str = MODEL_FILE) -> Any:
        import joblib

        path = self.path(version) / name
        if not path.is_file():
            raise RegistryError(f"model version {version!r} has no {name} in {self.root}")
        return joblib.load(path)

    # --- the promoted pointer -------------------------------------------------------------
    def pointer(self) -> Path:
        return self.root / POINTER

    def promoted(self) -> str | None:
        try:
            name = self.pointer().read_text("utf-8").strip()
        except FileNotFoundError:
            return None
        return name or None

    def promote(self, version: str) -> None:
        version = self.resolve(version)
        if not (self.path(version) / MODEL_FILE).is_file():
            raise RegistryError(f"model version {version!r} has no {MODEL_FILE}: not promoted")
        atomic_write(self.pointer(), (version + "\n").encode())
