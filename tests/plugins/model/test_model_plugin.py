"""The model plugin registers its components like any plugin."""

from __future__ import annotations

from tradeloom.plugins import model
from tradeloom.plugins.model import (
    PrecomputedParams,
    SavedParams,
    SklearnParams,
    TorchParams,
    build_precomputed_model,
    build_saved_model,
    build_sklearn_model,
    build_torch_model,
)
from tradeloom.plugins.registry import PluginInfo, Registry


def test_components_register() -> None:
    components = tuple(model.tradeloom_components())
    registry = Registry([PluginInfo("tradeloom.plugins.model", "built-in", components)])
    assert registry.kinds("model") == ["precomputed", "saved", "sklearn", "torch"]
    sklearn = registry.get("model", "sklearn")
    assert sklearn is not None
    assert sklearn.component.params is SklearnParams
    assert sklearn.component.factory is build_sklearn_model
    precomputed = registry.get("model", "precomputed")
    assert precomputed is not None
    assert precomputed.component.params is PrecomputedParams
    assert precomputed.component.factory is build_precomputed_model
    saved = registry.get("model", "saved")
    assert saved is not None
    assert saved.component.params is SavedParams
    assert saved.component.factory is build_saved_model
    torch = registry.get("model", "torch")
    assert torch is not None
    assert torch.component.params is TorchParams
    assert torch.component.factory is build_torch_model
    assert all(component.summary for component in components)
