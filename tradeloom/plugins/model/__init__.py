"""Built-in model components: ``sklearn`` (walk-forward), ``torch`` (a network over a window
of the features, walk-forward), ``precomputed`` (a data column) and ``saved`` (a fold
another run trained, from the model registry)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradeloom.plugins.component import LazyComponent
from tradeloom.plugins.hookspecs import catalog
from tradeloom.runtime.lazy import exports

if TYPE_CHECKING:
    from tradeloom.plugins.model.folds import Fold, plan_folds
    from tradeloom.plugins.model.labels import direction_labels
    from tradeloom.plugins.model.precomputed import (
        PrecomputedModel,
        PrecomputedParams,
        build_precomputed_model,
    )
    from tradeloom.plugins.model.saved_model import SavedModel, SavedParams, build_saved_model
    from tradeloom.plugins.model.sklearn_model import (
        SklearnModel,
        SklearnParams,
        build_sklearn_model,
    )
    from tradeloom.plugins.model.torch_model import TorchModel, TorchParams, build_torch_model

__all__ = [
    "Fold",
    "PrecomputedModel",
    "PrecomputedParams",
    "SavedModel",
    "SavedParams",
    "SklearnModel",
    "SklearnParams",
    "TorchModel",
    "TorchParams",
    "build_precomputed_model",
    "build_saved_model",
    "build_sklearn_model",
    "build_torch_model",
    "direction_labels",
    "plan_folds",
    "tradeloom_components",
]

__getattr__ = exports(
    __name__,
    {
        "Fold": "folds",
        "plan_folds": "folds",
        "direction_labels": "labels",
        "PrecomputedModel": "precomputed",
        "PrecomputedParams": "precomputed",
        "build_precomputed_model": "precomputed",
        "SavedModel": "saved_model",
        "SavedParams": "saved_model",
        "build_saved_model": "saved_model",
        "SklearnModel": "sklearn_model",
        "SklearnParams": "sklearn_model",
        "build_sklearn_model": "sklearn_model",
        "TorchModel": "torch_model",
        "TorchParams": "torch_model",
        "build_torch_model": "torch_model",
    },
)


tradeloom_components = catalog(
    LazyComponent(
        layer="model",
        kind="sklearn",
        module="tradeloom.plugins.model.sklearn_model",
        params="SklearnParams",
        factory="build_sklearn_model",
        summary="any scikit-learn classifier by import path, walk-forward with purging",
    ),
    LazyComponent(
        layer="model",
        kind="torch",
        module="tradeloom.plugins.model.torch_model",
        params="TorchParams",
        factory="build_torch_model",
        summary="a PyTorch network over a window of the features (MLP, LSTM/GRU, TCN, "
        "Transformer, or your module), walk-forward with purging; tradeloom[torch]",
    ),
    LazyComponent(
        layer="model",
        kind="precomputed",
        module="tradeloom.plugins.model.precomputed",
        params="PrecomputedParams",
        factory="build_precomputed_model",
        summary="probabilities read from a column of the data",
    ),
    LazyComponent(
        layer="model",
        kind="saved",
        module="tradeloom.plugins.model.saved_model",
        params="SavedParams",
        factory="build_saved_model",
        summary="a fold another run trained and saved (path + sha256, or from_run)",
    ),
)
"""The built-in model components."""
