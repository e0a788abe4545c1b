"""What the registry writes beside each saved model, as pydantic models.

One schema serves both directions: `tradeloom.plugins.model.registry` writes these as
JSON, and reading them back validates every key, so that a hand-edited or truncated
metadata file is reported by name rather than failing somewhere later.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tradeloom.domain import FeatureReference

__all__ = [
    "FORMAT",
    "FeatureSpec",
    "FileInfo",
    "FoldInfo",
    "IndexEntry",
    "ModelIndex",
    "ModelMetadata",
    "ReferenceInfo",
    "TimeWindow",
    "canonical_json",
    "describe_invalid",
]

FORMAT: Literal[1] = 1
"""Version of the metadata and index layout; a reader refuses other versions."""

_SHA256 = r"^[0-9a-f]{64}$"


class _Record(BaseModel):
    # Unknown keys are kept, so that a newer writer's additions survive a read and write.
    model_config = ConfigDict(extra="allow", frozen=True)


class FileInfo(_Record):
    """A saved pickle: its name in the ``models`` folder, SHA-256 and size in bytes."""

    file: str = Field(min_length=1)
    sha256: str = Field(pattern=_SHA256)
    size: int = Field(ge=0)


class FoldInfo(_Record):
    """The fold's `ModelTraining` fields (all but ``reference``), as journaled."""

    fold: int
    train_start: int
    train_end: int
    predict_start: int
    predict_end: int
    rows: int
    positives: int
    horizon: int
    estimator: str
    skipped: str = ""
    embargo: int = 0
    reason: str = "scheduled"


class TimeWindow(_Record):
    """Bars ``start_bar..end_bar`` (inclusive) of the training run, and their UTC times."""

    start_bar: int
    end_bar: int
    start: str
    end: str


class TrainingWindow(TimeWindow):
    """The training rows' window, and the time of the last bar their labels looked at.

    ``labels_end`` is the close of bar ``end_bar + horizon``: the model has seen prices up
    to it, so a loaded model predicts only bars after it.
    """

    labels_end: str


class FeatureSpec(_Record):
    """The features section a model was trained with, and the columns it produced.

    ``features`` holds one entry per feature component, in file order: its ``kind`` and
    its validated keys, defaults filled in (see `StrategyConfig.feature_spec`).
    """

    features: list[dict[str, Any]]
    columns: list[str]

    def sha256(self) -> str:
        """Return the SHA-256 of the spec's canonical JSON."""
        text = canonical_json({"features": self.features, "columns": self.columns})
        return hashlib.sha256(text.encode()).hexdigest()


class EstimatorInfo(_Record):
    """The estimator: its class's import path and name, its params, and the scaler."""

    import_path: str
    name: str
    params: dict[str, Any]
    scaler: str


class ReferenceInfo(_Record):
    """A `FeatureReference` as lists, so that drift monitoring works for a loaded model."""

    columns: list[str]
    edges: list[list[float]]
    proportions: list[list[float]]

    @classmethod
    def of(cls, reference: FeatureReference) -> ReferenceInfo:
        """Return ``reference`` as lists."""
        return cls(
            columns=list(reference.columns),
            edges=[[float(v) for v in e] for e in reference.edges],
            proportions=[[float(v) for v in p] for p in reference.proportions],
        )

    def to_reference(self) -> FeatureReference:
        """Return the `FeatureReference` these lists describe."""
        return FeatureReference(
            columns=tuple(self.columns),
            edges=tuple(np.asarray(e, dtype=np.float64) for e in self.edges),
            proportions=tuple(np.asarray(p, dtype=np.float64) for p in self.proportions),
        )


class ModelMetadata(_Record):
    """``fold-NNNN.json``: everything needed to trust, check and use ``fold-NNNN.pkl``."""

    format: Literal[1]
    strategy: str
    model: FileInfo
    detector: FileInfo | None = None
    training: FoldInfo
    training_window: TrainingWindow
    predict_window: TimeWindow
    feature_spec: FeatureSpec
    feature_spec_sha256: str = Field(pattern=_SHA256)
    training_data_sha256: str = Field(pattern=_SHA256)
    label: dict[str, Any]
    horizon: int = Field(ge=1)
    estimator: EstimatorInfo
    libraries: dict[str, str]
    reference: ReferenceInfo | None = None


class IndexEntry(_Record):
    """One saved fold in ``models/index.json``."""

    fold: int
    reason: str
    model: FileInfo
    metadata: str
    detector: FileInfo | None = None
    train_start: int
    train_end: int
    train_start_time: str
    train_end_time: str


class ModelIndex(_Record):
    """``models/index.json``: every fold a run saved, in training order, and the latest."""

    format: Literal[1]
    strategy: str
    folds: list[IndexEntry] = Field(min_length=1)
    latest: str


def canonical_json(value: Any) -> str:
    """Return ``value`` as JSON with sorted keys and no spaces: equal data, equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def describe_invalid(exc: ValidationError) -> str:
    """Return the first problem of ``exc`` as ``key.path: message`` (and how many more)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "top level"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"
