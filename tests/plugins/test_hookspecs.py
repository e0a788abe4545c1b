"""The hook specifications: named, documented, visible to pluggy, and each one called.

An observer plugin that records every call (tests/fixtures/plugins/recording_observer.py)
is registered through `load_plugins`, like a strategy's ``plugins:`` module.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tradeloom.domain import (
    Fill,
    Halt,
    HealthAction,
    HealthChange,
    ModelTraining,
    Order,
    Refusal,
    Rejection,
    RunInfo,
    Signal,
)
from tradeloom.journal import StaleData
from tradeloom.plugins import hookspecs
from tradeloom.plugins.manager import Plugins, load_plugins

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "plugins"

_SPEC_MARKER = f"{hookspecs.PROJECT}_spec"

SPECS: dict[str, Callable[..., Any]] = {
    name: value
    for name, value in vars(hookspecs).items()
    if callable(value) and hasattr(value, _SPEC_MARKER)
}

# Hooks are never renamed or removed (plugins in the wild implement them).
PUBLISHED = {
    "tradeloom_components",
    "tradeloom_run_started",
    "tradeloom_run_finished",
    "tradeloom_signal",
    "tradeloom_order",
    "tradeloom_fill",
    "tradeloom_risk_rejection",
    "tradeloom_halt",
    "tradeloom_model_trained",
    "tradeloom_health_changed",
    "tradeloom_health_action",
}

_TS = pd.Timestamp("2024-03-01T04:00:00Z")
_RUN = RunInfo(run_id="demo-20240301", strategy="demo", mode="backtest", run_dir="runs/demo")

# One call of every event hook, with realistic arguments.
EVENTS: dict[str, dict[str, Any]] = {
    "tradeloom_run_started": {"run": _RUN},
    "tradeloom_run_finished": {"run": _RUN, "metrics": {"total_return": 0.012, "orders": 4}},
    "tradeloom_signal": {
        "run": _RUN,
        "signal": Signal(bar=7, timestamp=_TS, direction=1, confidence=0.4, probability=0.7),
    },
    "tradeloom_order": {
        "run": _RUN,
        "order": Order(
            id="demo-1a2b3c4d-000001",
            bar=7,
            timestamp=_TS,
            side=1,
            quantity=0.25,
            reason="ENTRY",
            reference_price=64000.0,
        ),
    },
    "tradeloom_fill": {
        "run": _RUN,
        "fill": Fill(
            order_id="demo-1a2b3c4d-000001",
            bar=8,
            timestamp=_TS + pd.Timedelta(hours=1),
            side=1,
            quantity=0.25,
            price=64032.0,
            fee=16.0,
            slippage=32.0,
        ),
    },
    "tradeloom_risk_rejection": {
        "run": _RUN,
        "rejection": Rejection(
            bar=9,
            timestamp=_TS,
            code="KELLY_NO_EDGE",
            message="kelly=-0.0200 <= 0 (p_win=0.4900, payoff=1.0000)",
            values={"kelly": -0.02, "p_win": 0.49, "payoff": 1.0},
        ),
    },
    "tradeloom_refusal": {
        "run": _RUN,
        "refusal": Refusal(
            bar=9,
            timestamp=_TS,
            stage="cancelled",
            code="NO_ROUTE",
            purpose="EXIT_STOP_LOSS",
            symbol="BTC/USDT",
            order_id="demo-1a2b3c4d-000002",
            remaining=0.25,
            exit=True,
            protective=True,
        ),
    },
    "tradeloom_halt": {
        "run": _RUN,
        "halt": Halt(
            bar=10,
            timestamp=_TS,
            code="MAX_DRAWDOWN_HALT",
            message="drawdown=0.1530, limit=0.15",
            values={"drawdown": 0.153, "limit": 0.15},
        ),
    },
    "tradeloom_model_trained": {
        "run": _RUN,
        "training": ModelTraining(
            fold=0,
            train_start=0,
            train_end=2995,
            predict_start=3000,
            predict_end=3499,
            rows=2960,
            positives=1490,
            horizon=4,
            estimator="sklearn.ensemble.RandomForestClassifier",
        ),
    },
    "tradeloom_health_changed": {
        "run": _RUN,
        "change": HealthChange(
            bar=11,
            timestamp=_TS,
            monitor="rolling_auc",
            status="WARNING",
            previous="HEALTHY",
            metric="auc",
            value=0.51,
        ),
    },
    "tradeloom_health_action": {
        "run": _RUN,
        "action": HealthAction(
            bar=12,
            timestamp=_TS,
            rule=0,
            metric="calibration.brier",
            condition="above",
            threshold=0.27,
            value=0.291,
            action="retrain",
        ),
    },
    "tradeloom_live_event": {
        "run": _RUN,
        "event": StaleData(
            bar=13, timestamp=_TS, symbol="BTC/USDT", correlation_id=13, message="2 bars late"
        ),
    },
    "tradeloom_exchange_error": {
        "run": _RUN,
        "exchange": "binance",
        "error": "RequestTimeout",
        "message": "binance GET https://api.binance.com/api/v3/klines timed out",
    },
}


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Plugins, list[Any]]]:
    """Load the plugins with the recording observer; return them and its list of calls."""
    monkeypatch.syspath_prepend(str(FIXTURES))
    import recording_observer

    recording_observer.CALLS.clear()
    plugins = load_plugins(["recording_observer"], entry_points=False)
    yield plugins, recording_observer.CALLS
    recording_observer.CALLS.clear()


# -- names and documentation ----------------------------------------------------------------


def test_every_hook_is_named_tradeloom_and_none_was_removed() -> None:
    assert SPECS, "no hookspec found in tradeloom.plugins.hookspecs"
    assert all(name.startswith("tradeloom_") for name in SPECS)
    assert set(SPECS) >= PUBLISHED, f"hooks renamed or removed: {PUBLISHED - set(SPECS)}"


def test_every_tradeloom_function_of_the_module_is_a_hookspec() -> None:
    functions = {
        name
        for name, value in vars(hookspecs).items()
        if name.startswith("tradeloom_") and inspect.isfunction(value)
    }
    assert functions == set(SPECS)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_hook_documents_when_it_is_called_and_each_argument(name: str) -> None:
    spec = SPECS[name]
    doc = inspect.getdoc(spec)
    assert doc, f"{name} has no docstring"
    summary = doc.splitlines()[0]
    assert summary.endswith("."), f"{name}: the first line is a one-sentence summary"
    arguments = list(inspect.signature(spec).parameters)
    if arguments:
        assert "\nArgs:\n" in doc, f"{name} has no Args: section"
        args_section = doc.split("\nArgs:\n", 1)[1]
        for argument in arguments:
            assert re.search(rf"^    {argument}: \S", args_section, re.MULTILINE), (
                f"{name}: argument '{argument}' is not documented under Args:"
            )
    returns = inspect.signature(spec).return_annotation
    if returns not in ("None", None, inspect.Signature.empty):
        assert "\nReturns:\n" in doc, f"{name} returns {returns} but has no Returns: section"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_hook_argument_is_visible_to_pluggy(name: str) -> None:
    # pluggy reads positional-or-keyword parameters only: a keyword-only argument
    # (after `*`) would be invisible, and no implementation could receive it.
    spec = SPECS[name]
    declared = tuple(inspect.signature(spec).parameters)
    caller = getattr(load_plugins(entry_points=False).hook, name)

    assert caller.spec is not None
    assert caller.spec.argnames == declared


# -- every hook is called -------------------------------------------------------------------


def test_every_event_hook_has_a_call_below() -> None:
    assert set(EVENTS) == set(SPECS) - {"tradeloom_components"}


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_every_event_hook_reaches_an_observer_with_its_arguments(
    recorder: tuple[Plugins, list[Any]], name: str
) -> None:
    plugins, calls = recorder
    calls.clear()

    results = getattr(plugins.hook, name)(**EVENTS[name])

    assert calls == [(name, EVENTS[name])]
    assert results == []  # observers answer nothing


def test_tradeloom_components_is_called_once_per_plugin_when_loading(
    recorder: tuple[Plugins, list[Any]],
) -> None:
    plugins, calls = recorder

    assert calls == [("tradeloom_components", {})]
    by_name = {p.name: p for p in plugins.registry.plugins}
    assert by_name["recording_observer"].components == ()
    assert by_name["recording_observer"].source == "module recording_observer"


def test_tradeloom_components_collects_every_plugins_answer(
    recorder: tuple[Plugins, list[Any]],
) -> None:
    plugins, calls = recorder
    calls.clear()

    answers = plugins.hook.tradeloom_components()

    assert calls == [("tradeloom_components", {})]
    kinds = {(c.layer, c.kind) for answer in answers for c in answer}
    assert ("risk", "drawdown_halt") in kinds
    assert ("features", "volatility") in kinds
    assert len(answers) == len(plugins.registry.plugins)
