"""One kernel, two drivers: the batch backtest and a per-bar replay journal the same rows.

Over generated markets and strategies (every built-in sequential component and
option: both fill conventions, slippage, fees, shorting, partial fills by volume,
spot cash limits, Kelly and fixed sizing, drawdown halts, holding limits,
stop-loss and take-profit, regime labels and the ``signal.regimes`` filter, the
anomaly gate), the compiled batch driver and the per-bar driver give
the same journal digest, the same equity curve and the same trades. Then whole
strategies: the default one (a walk-forward forest with a monitor), shortened.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradeloom.core.layout import NEED_DONE
from tradeloom.core.state import BarInputs, CoreState
from tradeloom.domain import OHLCV
from tradeloom.journal import RUN_KINDS, journal_digest, read_rows
from tradeloom.runner.core_spec import core_spec
from tradeloom.runner.run import RunOutcome, run_strategy
from tradeloom.runner.wiring import build_pipeline
from tradeloom.schemas import load_strategy

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "plugins"
START = pd.Timestamp("2024-01-01T00:00:00Z")
SMALL_REGIME = {
    "trend_window": 4,
    "trend_threshold": 0.4,
    "volatility_window": 3,
    "volatility_lookback": 6,
    "high_volatility_quantile": 0.6,
}
"""Windows short enough for every label to turn up within the generated markets."""


@pytest.fixture(autouse=True)
def fixture_plugins_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make flagged_model (probabilities and anomaly scores from columns) importable."""
    monkeypatch.syspath_prepend(str(FIXTURES))


def _market(seed: int, n: int, volume_scale: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, n)))
    open_ = np.r_[close[0], close[:-1]] * np.exp(rng.normal(0.0, 0.004, n))
    wick = np.abs(rng.normal(0.0, 0.01, (2, n)))
    return pd.DataFrame(
        {
            "timestamp": [(START + pd.Timedelta(hours=i)).isoformat() for i in range(n)],
            "open": open_,
            "high": np.maximum(open_, close) * (1 + wick[0]),
            "low": np.minimum(open_, close) * (1 - wick[1]),
            "close": close,
            "volume": volume_scale * rng.uniform(0.05, 2.0, n),
            "p_up": np.where(rng.random(n) < 0.1, np.nan, rng.random(n)),
            # an anomaly detector's scores: about one bar in five below 0 (anomalous)
            "anomaly": np.random.default_rng([seed, 1]).normal(0.1, 0.12, n),
        }
    )


_strategies = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 10_000),
        "bars": st.integers(2, 160),
        "volume_scale": st.sampled_from([1.0, 20.0, 1e6]),
        "fill": st.sampled_from(["next_open", "close"]),
        "slippage_bps": st.sampled_from([0.0, 5.0, 30.0]),
        "fee_bps": st.sampled_from([0.0, 10.0]),
        "allow_short": st.booleans(),
        "max_volume_fraction": st.sampled_from([None, 0.05, 0.5, 1.0]),
        "sizing": st.one_of(
            st.fixed_dictionaries(
                {"kind": st.just("fixed_fraction"), "fraction": st.sampled_from([0.3, 1.0])}
            ),
            st.fixed_dictionaries(
                {
                    "kind": st.just("kelly"),
                    "fraction": st.sampled_from([0.5, 1.0]),
                    "avg_win": st.sampled_from([0.01, 0.03]),
                    "avg_loss": st.sampled_from([0.01, 0.02]),
                    "max_position": st.sampled_from([0.2, 1.0]),
                }
            ),
        ),
        "drawdown": st.sampled_from([None, 0.03, 0.2]),
        "max_holding_bars": st.sampled_from([None, 1, 3, 12]),
        "stop_loss": st.sampled_from([None, 0.01, 0.05]),
        "take_profit": st.sampled_from([None, 0.02, 0.1]),
        "threshold": st.sampled_from([0.05, 0.3, 0.8]),
        "min_interval": st.sampled_from([1, 3]),
        "monitor": st.booleans(),
        "regime": st.sampled_from([None, SMALL_REGIME, {"trend_window": 2}]),
        "regimes": st.sampled_from(
            [None, ["trending"], ["ranging", "high_volatility"], ["low_volatility"]]
        ),
        "anomaly": st.booleans(),
    }
)


PLAIN: dict[str, Any] = {
    "volume_scale": 1.0,
    "fill": "next_open",
    "slippage_bps": 0.0,
    "fee_bps": 0.0,
    "allow_short": False,
    "max_volume_fraction": None,
    "sizing": {"kind": "fixed_fraction", "fraction": 1.0},
    "drawdown": None,
    "max_holding_bars": None,
    "stop_loss": None,
    "take_profit": None,
    "threshold": 0.3,
    "min_interval": 1,
    "monitor": False,
    "regime": None,
    "regimes": None,
    "anomaly": False,
}
"""A strategy spec with every option off; tests override what they exercise."""


MONITORS: list[dict[str, Any]] = [
    {"kind": "rolling_auc", "window": 20, "min_samples": 10},
    {"kind": "calibration", "window": 20, "min_samples": 10, "bins": 4},
    {"kind": "prediction_rate", "window": 10, "min_samples": 5},
    {"kind": "execution_quality", "window": 10, "min_samples": 2},
    {"kind": "feature_drift", "window": 10, "min_samples": 5},
]
"""Every built-in monitor, with windows these short markets fill."""

WARN_RULES: list[dict[str, Any]] = [
    {"metric": "calibration.brier", "above": 0.3, "action": "warn"},
    {"metric": "prediction_rate.up_share", "below": 0.5, "action": "warn", "cooldown": 5},
    {"metric": "execution_quality.shortfall_bps", "above": 20, "action": "warn"},
    {"metric": "execution_quality.fill_ratio", "below": 0.99, "action": "warn"},
    {"metric": "rolling_auc.auc", "below": 0.5, "action": "warn", "cooldown": 3},
]
"""Health rules that only warn: they run under both drivers and journal alike."""


def _write(folder: Path, spec: dict[str, Any]) -> Path:
    frame = _market(spec["seed"], spec["bars"], spec["volume_scale"])
    frame.to_csv(folder / "bars.csv", index=False, float_format="%.17g")
    risk: dict[str, Any] = {"sizing": spec["sizing"]}
    for key in ("max_holding_bars", "stop_loss", "take_profit"):
        if spec[key] is not None:
            risk[key] = spec[key]
    if spec["drawdown"] is not None:
        risk["rules"] = [{"kind": "drawdown_halt", "max_drawdown": spec["drawdown"]}]
    execution: dict[str, Any] = {
        "kind": "simulated",
        "initial_cash": 10_000.0,
        "fill": spec["fill"],
        "slippage_bps": spec["slippage_bps"],
        "fee_bps": spec["fee_bps"],
        "allow_short": spec["allow_short"],
    }
    if spec["max_volume_fraction"] is not None:
        execution["max_volume_fraction"] = spec["max_volume_fraction"]
    doc: dict[str, Any] = {
        "name": "parity",
        "data": {"kind": "csv", "path": "bars.csv"},
        "features": [{"kind": "log_return", "period": 1}],
        "model": {"kind": "precomputed", "column": "p_up", "horizon": 2},
        "signal": {
            "kind": "threshold",
            "threshold": spec["threshold"],
            "min_interval": spec["min_interval"],
        },
        "risk": risk,
        "execution": execution,
    }
    if spec["anomaly"]:
        doc["plugins"] = ["flagged_model"]
        doc["model"] = {"kind": "flagged", "column": "p_up", "anomaly_column": "anomaly"}
        doc["model"]["horizon"] = 2
    if spec["regime"] is not None:
        doc["regime"] = spec["regime"]
    if spec["regimes"] is not None:
        doc["signal"]["regimes"] = spec["regimes"]
    if spec["monitor"]:
        doc["monitoring"] = MONITORS
        doc["health"] = WARN_RULES
    path = folder / "strategy.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def _run(path: Path, out: Path, driver: str, overrides: tuple[str, ...] = ()) -> RunOutcome:
    config, plugins = load_strategy(path, list(overrides))
    return run_strategy(build_pipeline(config), plugins, out=out, driver=driver)  # type: ignore[arg-type]


def _outputs(outcome: RunOutcome) -> dict[str, Any]:
    folder = outcome.run_dir
    files = {
        name: (folder / name).read_bytes()
        for name in ("equity.csv", "orders.csv", "fills.csv", "trades.csv")
    }
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics.pop("run_dir")
    return {
        "journal": journal_digest(folder / "journal.sqlite"),
        "files": files,
        "metrics": metrics,
    }


def _journal_rows(outcome: RunOutcome) -> list[tuple[Any, ...]]:
    return [
        (r.bar, r.timestamp, r.kind, r.correlation_id, r.values)
        for r in read_rows(outcome.run_dir / "journal.sqlite")
        if r.kind not in RUN_KINDS
    ]


def _assert_same(batch: RunOutcome, per_bar: RunOutcome) -> None:
    # first the rows, so that a failure shows the first row that differs
    for i, (a, b) in enumerate(zip(_journal_rows(batch), _journal_rows(per_bar), strict=True)):
        assert a == b, f"journal row {i}"
    assert _outputs(batch) == _outputs(per_bar)


@pytest.mark.slow
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=_strategies)
def test_batch_and_per_bar_journals_are_identical(
    tmp_path_factory: pytest.TempPathFactory, spec: dict[str, Any]
) -> None:
    folder = tmp_path_factory.mktemp("parity")
    path = _write(folder, spec)
    config, _ = load_strategy(path, [])
    cspec = core_spec(build_pipeline(config), 3600)
    # every sequential layer is built in: compiled in the core (monitors stop it per bar)
    assert None not in (cspec.signal, cspec.sizing, cspec.venue) and not cspec.external_rules
    batch = _run(path, folder / "batch", "auto")
    per_bar = _run(path, folder / "per_bar", "per_bar")
    _assert_same(batch, per_bar)


def test_the_generated_strategies_reach_every_event(tmp_path: Path) -> None:
    """The generator is not vacuous: together, a few fixed specs journal every event type."""
    seen: dict[str, int] = {}
    reasons: set[str] = set()
    cancels: set[str] = set()
    rejections: set[str] = set()
    fired: set[str] = set()
    outcomes: set[str] = set()
    base = {
        "bars": 160,
        "volume_scale": 20.0,
        "fill": "next_open",
        "slippage_bps": 5.0,
        "fee_bps": 10.0,
        "allow_short": True,
        "max_volume_fraction": 0.05,
        "sizing": {"kind": "kelly", "fraction": 1.0, "avg_win": 0.01, "avg_loss": 0.02},
        "drawdown": None,
        "max_holding_bars": 12,
        "stop_loss": 0.01,
        "take_profit": 0.02,
        "threshold": 0.3,
        "min_interval": 1,
        "monitor": True,
        "regime": None,
        "regimes": None,
        "anomaly": False,
    }
    variants = [
        {},
        {
            "allow_short": False,
            "max_volume_fraction": None,
            "fill": "close",
            "max_holding_bars": 2,
            "stop_loss": None,
            "take_profit": None,
        },
        {
            "drawdown": 0.03,
            "max_volume_fraction": None,
            "stop_loss": None,
            "take_profit": None,
            "sizing": {"kind": "fixed_fraction", "fraction": 1.0},
        },
        {
            "allow_short": False,
            "max_volume_fraction": None,
            "sizing": {"kind": "fixed_fraction", "fraction": 1.0},
        },
        {
            "sizing": {"kind": "fixed_fraction", "fraction": 1.0},
            "regime": SMALL_REGIME,
            "regimes": ["ranging", "high_volatility"],
            "anomaly": True,
        },
    ]
    for i, variant in enumerate(variants):
        folder = tmp_path / str(i)
        folder.mkdir()
        path = _write(folder, {**base, "seed": i, **variant})
        batch = _run(path, folder / "batch", "auto")
        per_bar = _run(path, folder / "per_bar", "per_bar")
        _assert_same(batch, per_bar)
        for row in read_rows(batch.run_dir / "journal.sqlite"):
            kind, data = row.kind, row.values
            seen[kind] = seen.get(kind, 0) + 1
            if kind == "order":
                reasons.add(data["reason"])
            elif kind == "order_cancelled":
                cancels.add(data["reason"])
            elif kind == "health_action":
                fired.add(data["metric"])
            elif kind == "risk_decision":
                outcomes.add(data["outcome"])
            elif kind == "rejection":
                outcomes.add("rejected")
                rejections.add(data["code"])
    assert {
        "signal", "risk_decision", "rejection", "order", "fill", "order_cancelled", "halt",
        "health", "regime_changed", "health_action",
    } <= set(seen)  # fmt: skip
    assert fired >= {rule["metric"] for rule in WARN_RULES}
    assert outcomes == {"accepted", "hold", "ignored", "rejected", "filtered"}
    assert reasons >= {
        "ENTRY",
        "REVERSE",
        "EXIT_SIGNAL",
        "EXIT_MAX_HOLDING",
        "EXIT_HALT",
        "EXIT_STOP_LOSS",
        "EXIT_TAKE_PROFIT",
    }
    assert cancels >= {"REPLACED", "PROTECTIVE_EXIT", "INSUFFICIENT_CASH"}
    assert rejections >= {"KELLY_NO_EDGE", "HALTED", "SHORT_NOT_ALLOWED", "ANOMALY"}


@pytest.mark.slow
def test_monitors_of_a_walk_forward_model_and_warn_rules_replay_alike(tmp_path: Path) -> None:
    """eth_hgb_stops' monitors (drift against each fold's training rows included), with its
    rules turned into warnings so that the batch driver may run them."""
    doc = yaml.safe_load((ROOT / "strategies" / "eth_hgb_stops.yaml").read_text())
    doc["data"]["bars"] = 3000
    doc["model"]["walk_forward"].update(train_window=1000, retrain_every=500)
    doc["model"]["params"]["max_iter"] = 20
    for monitor in doc["monitoring"]:
        monitor.update(window=200, min_samples=min(monitor.get("min_samples", 100), 100))
    doc["health"] = [{**rule, "action": "warn"} for rule in doc["health"]]
    doc["health"].append({"metric": "feature_drift.psi_max", "above": 1.0, "action": "warn"})
    path = tmp_path / "strategy.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    batch = _run(path, tmp_path / "batch", "auto")
    per_bar = _run(path, tmp_path / "per_bar", "per_bar")
    _assert_same(batch, per_bar)
    metrics = json.loads((batch.run_dir / "metrics.json").read_text())
    assert metrics["model_trainings"] >= 3 and metrics["fills"] >= 10
    assert metrics["monitoring"]["feature_drift"]["folds"] >= 3
    assert {r["metric"] for r in metrics["health_actions"] if r["fired"]} >= {
        "calibration.brier",
        "feature_drift.psi_max",
    }


@pytest.mark.slow
def test_the_default_strategy_replays_bar_by_bar_to_the_same_journal(tmp_path: Path) -> None:
    """A walk-forward forest with a monitor: trainings and health rows interleave alike."""
    overrides = (
        "data.bars=3000",
        "model.walk_forward.train_window=1000",
        "model.walk_forward.retrain_every=500",
        "model.params.n_estimators=20",
    )
    path = ROOT / "strategies" / "btc_rf.yaml"
    batch = _run(path, tmp_path / "batch", "auto", overrides)
    per_bar = _run(path, tmp_path / "per_bar", "per_bar", overrides)
    metrics = json.loads((batch.run_dir / "metrics.json").read_text())
    assert metrics["orders"] >= 10 and metrics["model_trainings"] >= 3
    _assert_same(batch, per_bar)


def test_nan_probability_never_trades(tmp_path: Path) -> None:
    spec = {**PLAIN, "seed": 1, "bars": 50, "allow_short": True, "threshold": 0.05}
    path = _write(tmp_path, spec)
    frame = pd.read_csv(tmp_path / "bars.csv")
    frame["p_up"] = math.nan
    frame.to_csv(tmp_path / "bars.csv", index=False)
    for driver in ("auto", "per_bar"):
        outcome = _run(path, tmp_path / driver, driver)
        assert outcome.result.recorder.orders == []


def test_a_full_event_buffer_resumes_at_the_bar_it_stopped_before(tmp_path: Path) -> None:
    spec = {
        **PLAIN,
        "seed": 7,
        "bars": 300,
        "volume_scale": 20.0,
        "slippage_bps": 5.0,
        "fee_bps": 10.0,
        "allow_short": True,
        "max_volume_fraction": 0.05,
        "max_holding_bars": 3,
        "stop_loss": 0.01,
        "take_profit": 0.02,
        "threshold": 0.05,
    }
    path = _write(tmp_path, spec)
    config, _ = load_strategy(path, [])
    pipeline = build_pipeline(config)
    cspec = core_spec(pipeline, 3600)
    assert cspec.compiled
    bars = pipeline.data.load()
    frame = bars.frame
    inputs = BarInputs.of(
        [frame[k].to_numpy(np.float64) for k in OHLCV],
        frame["p_up"].to_numpy(np.float64),
        frame.index.asi8,
    )
    whole = CoreState(cspec, capacity=100_000)
    assert whole.run(inputs, len(frame)) == NEED_DONE
    resumed = CoreState(cspec, capacity=1)  # room for one bar at a time: it grows
    assert resumed.run(inputs, len(frame)) == NEED_DONE
    assert whole.count > 3 * resumed.reserve  # the small buffer had to grow several times
    np.testing.assert_array_equal(resumed.rows(), whole.rows())
    for field in ("acct", "sym", "cur"):
        np.testing.assert_array_equal(getattr(resumed, field), getattr(whole, field))


class _Drifting:
    """A feature whose per-bar driver disagrees with its batch driver from bar 5 on."""

    def columns(self) -> list[str]:
        return ["drift"]

    def compute(self, bars, features):
        return pd.DataFrame({"drift": np.zeros(len(bars))}, index=bars.frame.index)

    def stepper(self, context):
        class Step:
            def step(self, bar, features):
                return (1e-12 if bar.index >= 5 else 0.0,)

        return Step()


def test_per_bar_features_must_equal_the_batch_features(tmp_path: Path) -> None:
    spec = {**PLAIN, "seed": 3, "bars": 20, "fill": "close"}
    path = _write(tmp_path, spec)
    config, plugins = load_strategy(path, [])
    pipeline = dataclasses.replace(build_pipeline(config), features=(_Drifting(),))
    with pytest.raises(
        RuntimeError,
        match=r"^feature column drift at bar 5: the per-bar driver gives 1e-12, "
        r"the batch driver 0\.0$",
    ):
        run_strategy(pipeline, plugins, out=tmp_path / "run", driver="per_bar")
    # the batch driver never steps features
    run_strategy(pipeline, plugins, out=tmp_path / "batch", driver="auto")
