"""The content of a model file: one pickle holding the model, its detector and metadata.

A saved fold is one pickled dict: ``format``, ``model`` (the fitted estimator or
pipeline), ``detector`` (its anomaly detector, or None) and ``metadata`` (the
`BundledMetadata`, as JSON types only). Everything a loaded model acts on is then inside
the one file whose SHA-256 the strategy file pins or the run's index lists.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from tradeloom.plugins.model.metadata import FORMAT, BundledMetadata, describe_invalid

__all__ = ["PICKLE_PROTOCOL", "Bundle", "BundleError", "dump_bundle", "read_bundle"]

PICKLE_PROTOCOL = 5

_KEYS = ("format", "model", "detector", "metadata")


class BundleError(ValueError):
    """An unpickled model file is not what the registry writes."""


@dataclass(frozen=True)
class Bundle:
    """A model file's content.

    Attributes:
        model: The fitted classifier (a ``Pipeline`` of scaler and estimator, or the
            estimator).
        detector: The fold's anomaly detector, or None.
        metadata: The metadata saved with them.
    """

    model: Any
    detector: Any | None
    metadata: BundledMetadata


def dump_bundle(bundle: Bundle) -> bytes:
    """Return ``bundle`` pickled, as the registry writes it."""
    content = {
        "format": FORMAT,
        "model": bundle.model,
        "detector": bundle.detector,
        # JSON types only: a datetime would need a global the allow-list refuses
        "metadata": bundle.metadata.model_dump(mode="json"),
    }
    return pickle.dumps(content, protocol=PICKLE_PROTOCOL)


def read_bundle(content: Any) -> Bundle:
    """Return the `Bundle` an unpickled model file holds.

    Raises:
        BundleError: ``content`` is not a bundle of this format, its model is not a
            classifier with probabilities (a regressor, for label kind ``return``), its
            detector has no ``decision_function``, or its metadata is invalid.
    """
    if not isinstance(content, dict) or set(content) != set(_KEYS):
        raise BundleError(
            f"it holds a {type(content).__name__}, not a tradeloom model bundle "
            f"(a dict of {', '.join(_KEYS)})"
        )
    if content["format"] != FORMAT:
        raise BundleError(f"it is a bundle of format {content['format']!r}, not {FORMAT}")
    model, detector = content["model"], content["detector"]
    if detector is not None and not callable(getattr(detector, "decision_function", None)):
        raise BundleError(f"its detector is a {type(detector).__name__}, not a detector")
    try:
        metadata = BundledMetadata.model_validate(content["metadata"])
    except ValidationError as exc:
        raise BundleError(f"its bundled metadata is invalid: {describe_invalid(exc)}") from exc
    if metadata.label.get("kind") == "return":  # a regressor of the forward return
        if not callable(getattr(model, "predict", None)) or hasattr(model, "classes_"):
            raise BundleError(
                f"its model is a {type(model).__name__}, not a fitted regressor (its label "
                "kind is return)"
            )
    elif not callable(getattr(model, "predict_proba", None)) or not hasattr(model, "classes_"):
        raise BundleError(f"its model is a {type(model).__name__}, not a fitted classifier")
    return Bundle(model, detector, metadata)
