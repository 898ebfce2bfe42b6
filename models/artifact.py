"""A trained anomaly model on disk: compiled forest arrays plus JSON metadata.

The directory holds `forest.npz` (no pickle: arrays only) and `model.json`.
The model id is a hash of both contents except the creation time, so the same
training data and seed give the same id.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from amlwatch.errors import AmlwatchError

from .features import FEATURE_NAMES, FEATURE_VERSION
from .forest import CompiledForest

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default"


class ModelError(AmlwatchError, ValueError):
    """A model artifact that cannot be used; `field` names the offending metadata key."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass
class AnomalyModel:
    forest: CompiledForest
    metadata: dict

    @property
    def model_id(self) -> str:
        return self.metadata["id"]

    @property
    def threshold(self) -> float:
        return self.metadata["threshold"]

    def anomaly_scores(self, X: np.ndarray) -> np.ndarray:
        """sklearn's anomaly score in (0, 1]: higher is stranger (the negated `score_samples`)."""
        return -self.forest.score_samples(X)

    def anomaly_score(self, x: np.ndarray | list[float]) -> float:
        return -self.forest.score_one(x)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "forest.npz").write_bytes(_npz_bytes(self.forest))
        (directory / "model.json").write_bytes(orjson.dumps(self.metadata, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
        return directory


def content_id(forest: CompiledForest, metadata: dict) -> str:
    """Hash of the arrays and the metadata, leaving out `id` and `created`."""
    digest = hashlib.sha256()
    arrays = forest.to_arrays()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(name.encode() + str(array.dtype).encode() + str(array.shape).encode())
        digest.update(array.tobytes())
    stable = {k: v for k, v in metadata.items() if k not in ("id", "created")}
    digest.update(orjson.dumps(stable, option=orjson.OPT_SORT_KEYS))
    return "iforest-" + digest.hexdigest()[:16]


def load_model(directory: str | Path) -> AnomalyModel:
    directory = Path(directory)
    meta_path = directory / "model.json"
    if not meta_path.exists():
        raise ModelError("model.json", f"no anomaly model in {directory}: model.json is missing")
    metadata = orjson.loads(meta_path.read_bytes())
    version = metadata.get("feature_version")
    if version != FEATURE_VERSION:
        raise ModelError(
            "feature_version",
            f"model in {directory} was trained on features {version!r} but this monitor computes "
            f"{FEATURE_VERSION!r}; retrain it with `amlwatch train`",
        )
    if tuple(metadata.get("feature_names", ())) != FEATURE_NAMES:
        raise ModelError("feature_names", f"model in {directory} lists different feature names; retrain it")
    with np.load(directory / "forest.npz", allow_pickle=False) as arrays:
        forest = CompiledForest.from_arrays({name: arrays[name] for name in arrays.files})
    model = AnomalyModel(forest, metadata)
    if content_id(forest, metadata) != metadata.get("id"):
        raise ModelError("id", f"model in {directory} does not match its id {metadata.get('id')!r}: files changed")
    return model


def _npz_bytes(forest: CompiledForest) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **forest.to_arrays())
    return buffer.getvalue()
