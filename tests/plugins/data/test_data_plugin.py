"""The data plugin module registers its components like any third-party plugin."""

from __future__ import annotations

from pathlib import Path

import pluggy

import tradeloom.plugins.data as data_plugin
from tradeloom.plugins import hookspecs
from tradeloom.plugins.component import BuildContext, Params
from tradeloom.plugins.protocols import DataSource
from tradeloom.plugins.registry import PluginInfo, Registry


def test_components_are_registered_through_the_hook() -> None:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(data_plugin, name="tradeloom.plugins.data")
    pm.check_pending()
    (components,) = pm.hook.tradeloom_components()
    registry = Registry([PluginInfo("tradeloom.plugins.data", "built-in", tuple(components))])
    assert registry.kinds("data") == ["catalog", "ccxt", "csv", "frame", "parquet", "synthetic"]
    for registered in registry.components("data"):
        component = registered.component
        assert issubclass(component.params, Params)
        assert component.summary
        assert "kind" not in component.params.model_fields


def test_synthetic_factory_builds_a_data_source(tmp_path: Path) -> None:
    registry = Registry([PluginInfo("d", "built-in", tuple(data_plugin.tradeloom_components()))])
    component = registry.get("data", "synthetic").component  # type: ignore[union-attr]
    source = component.factory(
        component.params.model_validate({"bars": 200}), BuildContext("s", tmp_path, seed=1)
    )
    assert isinstance(source, DataSource)
    assert len(source.load()) == 200
