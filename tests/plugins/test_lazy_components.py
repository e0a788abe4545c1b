"""The built-in plugins register their components lazily: a kind's module is imported
where its params model or factory is first read, and each resolves to what the registry
would have accepted from an eager `Component`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from tradeloom.plugins.component import Component, LazyComponent
from tradeloom.plugins.manager import BUILTIN_PLUGINS, load_plugins
from tradeloom.plugins.registry import PluginInfo, RegistrationError, Registry

ROOT = Path(__file__).resolve().parents[2]


def _builtins() -> list[LazyComponent]:
    registry = load_plugins(entry_points=False).registry
    found = [
        entry.component
        for plugin in registry.plugins
        if plugin.name in BUILTIN_PLUGINS
        for entry in [*(registry.get(c.layer, c.kind) for c in plugin.components)]
        if entry is not None
    ]
    assert found and all(isinstance(c, LazyComponent) for c in found)
    return [c for c in found if isinstance(c, LazyComponent)]


@pytest.mark.parametrize("component", _builtins(), ids=lambda c: f"{c.layer}:{c.kind}")
def test_each_builtin_resolves_to_a_component_the_registry_accepts(
    component: LazyComponent,
) -> None:
    params, factory = component.params, component.factory
    assert isinstance(params, type) and issubclass(params, BaseModel)
    assert callable(factory)
    eager = Component(
        component.layer, component.kind, params, factory, component.summary, component.plot
    )
    Registry([PluginInfo("eager", "test", (eager,))])  # the checks a plugin's pass
    assert component.params is params and component.factory is factory  # one object


def test_a_lazy_component_with_a_missing_name_fails_where_it_is_read() -> None:
    component = LazyComponent("signal", "nothing", "tradeloom.plugins.signal.threshold", "No", "x")
    Registry([PluginInfo("p", "test", (component,))])  # registered: nothing imported yet
    with pytest.raises(AttributeError, match="has no attribute 'No'"):
        _ = component.params


def test_an_eager_component_is_still_checked_at_registration() -> None:
    bad = Component("signal", "bad", dict, lambda params, ctx: None)  # type: ignore[arg-type]
    with pytest.raises(RegistrationError, match="params must be a pydantic model class"):
        Registry([PluginInfo("p", "test", (bad,))])


def test_loading_the_builtins_imports_none_of_their_modules() -> None:
    """The registry holds every built-in kind, and not one of their modules is imported."""
    probe = (
        "import sys\n"
        "from tradeloom.plugins.manager import load_plugins\n"
        "registry = load_plugins(entry_points=False).registry\n"
        "from tradeloom.plugins.component import LAYERS\n"
        "kinds = sum(len(registry.kinds(layer)) for layer in LAYERS)\n"
        "modules = sorted(m for m in sys.modules if m.count('.') >= 3 and "
        "m.startswith('tradeloom.plugins.'))\n"
        "print(kinds, modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    kinds, modules = done.stdout.split(" ", 1)
    assert int(kinds) == len(_builtins())
    assert modules.strip() == "[]"


def test_the_packages_still_export_their_names() -> None:
    from tradeloom.plugins import model, signal
    from tradeloom.plugins.model.sklearn_model import SklearnParams
    from tradeloom.plugins.signal.threshold import ThresholdParams

    assert model.SklearnParams is SklearnParams
    assert signal.ThresholdParams is ThresholdParams
    with pytest.raises(AttributeError, match="has no attribute 'Nothing'"):
        _ = model.Nothing
