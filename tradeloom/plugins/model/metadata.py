"""What the registry writes beside each saved model, as pydantic models.

One schema serves both directions: `tradeloom.plugins.model.registry` writes these as
JSON, and reading them back validates every key, so that a hand-edited or truncated
metadata file is reported by name rather than failing somewhere later. A key this
version does not know is refused too: a writer that adds one raises `FORMAT`.

The JSON is the human-readable description of a model file, read before the file is
unpickled. The values a loaded model acts on (`BundledMetadata`) are also saved inside
the model file, where its SHA-256 covers them, and must match the JSON's.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tradeloom.plugins.model.reference_info import ReferenceInfo

__all__ = [
    "FORMAT",
    "MAX_HORIZON",
    "BundledMetadata",
    "EstimatorInfo",
    "FeatureSpec",
    "FileInfo",
    "FoldInfo",
    "IndexEntry",
    "ModelIndex",
    "ModelMetadata",
    "TimeWindow",
    "TrainingWindow",
    "canonical_json",
    "describe_invalid",
]

FORMAT: Literal[2] = 2
"""Version of the model file, metadata and index layout; a reader refuses other versions.

Format 1 kept the anomaly detector in a file of its own, whose hash only the metadata
recorded; format 2 bundles it, and the decisive metadata, into the model file.
"""

MAX_HORIZON = 1_000_000
"""Largest label horizon a metadata file may give, in bars."""

_SHA256 = r"^[0-9a-f]{64}$"
_DISTRIBUTION = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+!_-]{0,63}$")


def _check_format(value: int) -> int:
    if value == FORMAT:
        return value
    older = (
        " (saved by an older tradeloom, with the anomaly detector in a file of its own; "
        "train the model again to save it in this format)"
        if value == 1
        else ""
    )
    raise ValueError(f"this tradeloom reads format {FORMAT}, the file is format {value}{older}")


_Format = Annotated[int, AfterValidator(_check_format)]
_Time = Annotated[AwareDatetime, PlainSerializer(datetime.isoformat, return_type=str)]
"""A UTC time, written as ``isoformat()`` gives it (``2024-03-01T04:00:00+00:00``)."""
_Count = Annotated[int, Field(ge=0)]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileInfo(_Record):
    """A saved pickle: its name in the ``models`` folder, SHA-256 and size in bytes."""

    file: str = Field(min_length=1)
    sha256: str = Field(pattern=_SHA256)
    size: _Count


class FoldInfo(_Record):
    """The fold's `ModelTraining` fields (all but ``reference``), as journaled."""

    fold: _Count
    train_start: _Count
    train_end: _Count
    predict_start: _Count
    predict_end: _Count
    rows: _Count
    positives: _Count
    horizon: int = Field(ge=1, le=MAX_HORIZON)
    estimator: str
    skipped: str = ""
    embargo: _Count = 0
    reason: str = "scheduled"
    calibration: str = ""


class TimeWindow(_Record):
    """Bars ``start_bar..end_bar`` (inclusive) of the training run, and their UTC times."""

    start_bar: _Count
    end_bar: _Count
    start: _Time
    end: _Time

    @model_validator(mode="after")
    def _ordered(self) -> TimeWindow:
        if self.end_bar < self.start_bar or self.end < self.start:
            raise ValueError("the window ends before it starts")
        return self


class TrainingWindow(TimeWindow):
    """The training rows' window, and the time of the last bar their labels looked at.

    ``labels_end`` is the close of bar ``end_bar + horizon``: the model has seen prices up
    to it, so a loaded model predicts only bars after it.
    """

    labels_end: _Time

    @field_validator("labels_end")
    @classmethod
    def _after_end(cls, value: datetime, info: ValidationInfo) -> datetime:
        end = info.data.get("end")
        if end is not None and value < end:
            raise ValueError(f"must not be before end ({end.isoformat()})")
        return value


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

    import_path: str = Field(min_length=1)
    name: str
    params: dict[str, Any]
    scaler: str


def _check_libraries(value: dict[str, str]) -> dict[str, str]:
    for name, version in value.items():
        if not _DISTRIBUTION.match(name):
            raise ValueError(f"'{name}' is not a distribution name (such as scikit-learn)")
        if not _VERSION.match(version):
            raise ValueError(f"{name}: '{version}' is not a version number")
    return value


_Libraries = Annotated[dict[str, str], AfterValidator(_check_libraries)]


class BundledMetadata(_Record):
    """The metadata a loaded model acts on, saved inside the model file as well.

    Inside, the file's SHA-256 covers it: after unpickling, the JSON must say the same
    (`ModelMetadata.bundled`), and the loaded model uses these values.

    Attributes:
        estimator: The estimator's import path.
        columns: The feature columns, in order.
        feature_spec_sha256: The SHA-256 of the feature specification.
        label: The label section the model was trained with.
        horizon: The label horizon in bars.
        labels_end: The close of the last bar the training labels looked at.
        reference: The training rows' feature distribution (drift's baseline), or None.
        libraries: The library versions the model was saved with.
        training: The fold's journaled fields.
    """

    estimator: str
    columns: list[str]
    feature_spec_sha256: str = Field(pattern=_SHA256)
    label: dict[str, Any]
    horizon: int = Field(ge=1, le=MAX_HORIZON)
    labels_end: _Time
    reference: ReferenceInfo | None
    libraries: _Libraries
    training: FoldInfo

    def differences(self, other: BundledMetadata) -> list[str]:
        """Return the names of the fields whose values differ from ``other``'s."""
        mine, theirs = self.model_dump(), other.model_dump()
        return [name for name in mine if mine[name] != theirs[name]]


class ModelMetadata(_Record):
    """``fold-NNNN.json``: everything needed to trust, check and use ``fold-NNNN.pkl``."""

    format: _Format
    strategy: str
    model: FileInfo
    has_detector: bool
    training: FoldInfo
    training_window: TrainingWindow
    predict_window: TimeWindow
    feature_spec: FeatureSpec
    feature_spec_sha256: str = Field(pattern=_SHA256)
    training_data_sha256: str = Field(pattern=_SHA256)
    label: dict[str, Any]
    horizon: int = Field(ge=1, le=MAX_HORIZON)
    estimator: EstimatorInfo
    libraries: _Libraries
    reference: ReferenceInfo | None = None

    @field_validator("horizon")
    @classmethod
    def _one_horizon(cls, value: int, info: ValidationInfo) -> int:
        label, training = info.data.get("label"), info.data.get("training")
        if label is not None and "horizon" in label and label["horizon"] != value:
            raise ValueError(f"must equal label.horizon ({label['horizon']!r}), was {value}")
        if training is not None and training.horizon != value:
            raise ValueError(f"must equal training.horizon ({training.horizon}), was {value}")
        return value

    @field_validator("reference")
    @classmethod
    def _reference_columns(
        cls, value: ReferenceInfo | None, info: ValidationInfo
    ) -> ReferenceInfo | None:
        spec = info.data.get("feature_spec")
        if value is not None and spec is not None and value.columns != spec.columns:
            raise ValueError("columns must be feature_spec.columns")
        return value

    def bundled(self) -> BundledMetadata:
        """Return the values `BundledMetadata` holds, as this file gives them."""
        return BundledMetadata(
            estimator=self.estimator.import_path,
            columns=list(self.feature_spec.columns),
            feature_spec_sha256=self.feature_spec_sha256,
            label=self.label,
            horizon=self.horizon,
            labels_end=self.training_window.labels_end,
            reference=self.reference,
            libraries=self.libraries,
            training=self.training,
        )


class IndexEntry(_Record):
    """One saved fold in ``models/index.json``."""

    fold: _Count
    reason: str
    model: FileInfo
    metadata: str
    has_detector: bool
    train_start: _Count
    train_end: _Count
    train_start_time: _Time
    train_end_time: _Time


class ModelIndex(_Record):
    """``models/index.json``: every fold a run saved, in training order, and the latest."""

    format: _Format
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
    message = str(first["msg"]).removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {message}{more}"
