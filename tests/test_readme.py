"""The README is the reference of the strategy file: it must keep up with the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tradeloom.plugins.hookspecs import PROJECT
from tradeloom.plugins.manager import BUILTIN_PLUGINS, load_plugins
from tradeloom.plugins.registry import RegisteredComponent

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")

_BUILTINS = [
    rc
    for layer in (
        "data",
        "features",
        "model",
        "signal",
        "sizing",
        "risk",
        "execution",
        "monitoring",
    )
    for rc in load_plugins(entry_points=False).registry.components(layer)
    if rc.plugin.name in BUILTIN_PLUGINS
]


def test_quickstart_is_exactly_two_commands() -> None:
    block = README.split("## Quickstart", 1)[1].split("```", 2)[1]
    assert block.strip().splitlines() == [
        "pip install -e . && tradeloom run strategies/btc_rf.yaml",
        'pip install -e ".[test]" && pytest',
    ]


@pytest.mark.parametrize(
    "rc", _BUILTINS, ids=lambda rc: f"{rc.component.layer}.{rc.component.kind}"
)
def test_every_builtin_kind_and_key_is_documented(rc: RegisteredComponent) -> None:
    assert f"`{rc.component.kind}`" in README or f"kind: {rc.component.kind}" in README
    for key, field in rc.component.params.model_fields.items():
        names = [key]
        nested = field.annotation
        if isinstance(nested, type) and hasattr(nested, "model_fields"):
            names = [f"{key}.{sub}" for sub in nested.model_fields]
        for name in names:
            assert f"`{name}`" in README, f"{rc.component.kind}: key {name} is not in the README"


def test_every_hook_is_in_the_plugin_guide() -> None:
    from tradeloom.plugins import hookspecs

    hooks = [n for n in dir(hookspecs) if n.startswith(f"{PROJECT}_")]
    for hook in hooks:
        assert re.search(rf"`{hook}`", README), hook
