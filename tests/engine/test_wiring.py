"""Wiring: a component short of its layer's protocol is named, with what it lacks."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tradeloom.engine.wiring import build_pipeline
from tradeloom.errors import ConfigError
from tradeloom.schemas import load_strategy

PLUGIN = '''\
from tradeloom.plugin import Component, Params, hookimpl


class NoParams(Params):
    pass


class HalfSignal:
    """Has no on_bar: not a SignalRule."""


@hookimpl
def tradeloom_components():
    return [Component("signal", "half", NoParams, lambda p, c: HalfSignal())]
'''

STRATEGY = """\
name: wired
plugins: [half_signal]
data: {kind: synthetic, bars: 300}
features:
  - {kind: log_return, period: 1}
model: {kind: precomputed, column: close}
signal:
  kind: half
risk:
  sizing: {kind: fixed_fraction, fraction: 0.5}
execution: {kind: simulated}
"""


@pytest.fixture
def strategy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "half_signal.py").write_text(PLUGIN, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "s.yaml"
    path.write_text(STRATEGY, encoding="utf-8")
    yield path
    sys.modules.pop("half_signal", None)


def test_a_component_short_of_its_protocol_is_named_with_what_it_lacks(strategy: Path) -> None:
    config, _ = load_strategy(strategy)

    with pytest.raises(ConfigError) as caught:
        build_pipeline(config)

    assert caught.value.lines() == [
        f"{strategy}:8:3 signal: signal kind 'half' of plugin 'half_signal' built a HalfSignal, "
        "which does not implement SignalRule (missing: on_bar)"
    ]
