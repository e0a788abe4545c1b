"""One kernel, three drivers: the batch backtest, a per-bar replay and a paper run journal
the same rows.

Over generated markets and strategies (every built-in sequential component and
option: both fill conventions, slippage, fees, shorting, partial fills by volume,
spot cash limits, Kelly and fixed sizing, drawdown halts, holding limits,
stop-loss and take-profit, regime labels and the ``signal.regimes`` filter, the
anomaly gate, margin accounts with their liquidations and NO_EQUITY halts through
price gaps, and every ``risk.limits``), the compiled batch driver and the per-bar
driver give the same journal digest, the same equity curve and the same trades, and
the real paper runner (`paper_replay.paper_run`: warm-up, one tick per bar, the
simulated venue, sometimes killed and restarted from its journal mid-run) journals
the per-bar driver's rows (`_assert_paper_same` says exactly which). Then whole
strategies: the default one (a walk-forward forest with a monitor), shortened.

The runs are written in memory (`ram_tmp`): a paper run commits, fsync'd, at every bar,
which on a busy machine's disk took most of an example's time.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import structlog
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.backtest.run import RunOutcome, run_strategy
from tradeloom.core.layout import NEED_DONE
from tradeloom.core.state import BarInputs, CoreState
from tradeloom.domain import OHLCV
from tradeloom.engine.core_spec import core_spec
from tradeloom.engine.wiring import build_pipeline
from tradeloom.journal import RUN_KINDS, journal_digest, read_rows
from tradeloom.reporting.execution_quality import journal_execution_quality
from tradeloom.schemas import load_strategy

from tests.engine.paper_replay import PAPER_ONLY, paper_run  # isort: skip
from tests.ram_tmp import RamFolders  # isort: skip

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


@pytest.fixture(autouse=True)
def quiet_logs() -> None:
    """Keep the runs' log lines off the captured output: printing them took a tenth of
    each example's time. The debug lines (every signal, order and fill) are not even
    rendered: rendering them took a fifth of a three-driver example's CPU. Info lines and
    above are rendered and dropped (conftest puts the defaults back after)."""
    structlog.configure(
        logger_factory=structlog.ReturnLoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    )


def _market(
    seed: int, n: int, volume_scale: float, *, warm: int = 0, jump: float = 0.0
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, n)))
    open_ = np.r_[close[0], close[:-1]] * np.exp(rng.normal(0.0, 0.004, n))
    wick = np.abs(rng.normal(0.0, 0.01, (2, n)))
    if jump:
        # now and then a bar opens far from the last close, and the market stays there:
        # a leveraged position is liquidated at the open, past its liquidation price
        jumps = np.random.default_rng([seed, 2])
        gap = np.where(jumps.random(n) < 0.04, jumps.choice([-jump, jump], n), 0.0)
        level = np.exp(np.cumsum(gap))
        open_, close = open_ * level, close * level
    probability = np.where(rng.random(n) < 0.1, np.nan, rng.random(n))
    # an anomaly detector's scores: about one bar in five below 0 (anomalous)
    anomaly = np.random.default_rng([seed, 1]).normal(0.1, 0.12, n)
    # the history a paper run starts from is not traded: no prediction there
    probability[:warm] = np.nan
    anomaly[:warm] = np.nan
    return pd.DataFrame(
        {
            "timestamp": [(START + pd.Timedelta(hours=i)).isoformat() for i in range(n)],
            "open": open_,
            "high": np.maximum(open_, close) * (1 + wick[0]),
            "low": np.minimum(open_, close) * (1 - wick[1]),
            "close": close,
            "volume": volume_scale * rng.uniform(0.05, 2.0, n),
            "p_up": probability,
            "anomaly": anomaly,
        }
    )


MARGINS: list[dict[str, float] | None] = [
    None,
    {"initial": 0.5, "maintenance": 0.25, "leverage": 2.0, "liquidation_fee": 0.005},
    {"initial": 0.2, "maintenance": 0.15, "leverage": 5.0, "liquidation_fee": 0.0},
    {"initial": 0.1, "maintenance": 0.08, "leverage": 10.0, "liquidation_fee": 0.01},
]
"""No margin account, or one whose full position is liquidated after an adverse move of
about 33%, 5% or 2%."""

ORDERS: list[dict[str, Any]] = [
    {"type": "limit", "limit": {"offset_bps": 20, "fallback_after_bars": 2}},
    {"type": "limit", "limit": {"offset_bps": 5, "post_only": True, "expire_after_bars": 3}},
    {"type": "limit", "limit": {"offset_bps": 0, "time_in_force": "IOC"}, "queue": "touch"},
    {"type": "auto", "auto": {"max_spread_bps": 150, "urgent_confidence": 0.9}},
    {"stops": "bar_close"},
    {"slicing": {"kind": "twap", "children": 3, "every_bars": 2}},
    {
        "type": "limit",
        "limit": {"offset_bps": 10, "fallback_after_bars": 1},
        "slicing": {"kind": "participation", "max_volume_fraction": 0.3},
    },
]
"""``execution.orders`` settings: limits with a fallback, an expiry, IOC and touch, auto,
stops at the close, and TWAP and participation slicing (of limit children too)."""

EXITS: list[dict[str, Any]] = [
    {"trailing_stop": 0.01},
    {"trailing_stop": {"atr": 3, "multiple": 1.0}, "break_even": 0.005},
    {"break_even": 0.004, "cooldown_bars": 3},
    {"trailing_stop": 0.03, "cooldown_bars": 1, "exit_time": "09:30"},
]
"""The exits that follow a position, the cooldown and the time exit (``risk.*``)."""

_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "seed": st.integers(0, 10_000),
    # short markets for the edge cases, long ones for positions to run into limits
    "bars": st.one_of(st.integers(2, 40), st.integers(100, 160)),
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
        st.fixed_dictionaries(
            {
                "kind": st.just("volatility_target"),
                "target": st.sampled_from([0.5, 3.0]),
                "window": st.sampled_from([2, 10]),
                "max_position": st.sampled_from([0.3, 1.0]),
            }
        ),
        st.fixed_dictionaries(
            {
                "kind": st.just("risk_per_trade"),
                "risk": st.sampled_from([0.002, 0.02]),
                "max_position": st.sampled_from([0.5, 1.0]),
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
    "regimes": st.one_of(
        st.none(),
        st.sampled_from([["trending"], ["ranging", "high_volatility"], ["low_volatility"]]),
    ),
    "anomaly": st.booleans(),
    "warm": st.integers(1, 30),
    "jump": st.sampled_from([0.0, 0.12]),
    "margin": st.sampled_from(MARGINS),
    "limits": st.one_of(
        st.just({}),
        st.fixed_dictionaries(
            {
                # equity 10,000 at prices near 100: a full position is ~100 units and
                # ~10,000 notional at 1x, a reversal's order twice that; up to 10x
                "max_order_notional": st.sampled_from([None, 12_000.0, 40_000.0]),
                "max_position_quantity": st.sampled_from([None, 120.0, 400.0]),
                "max_orders_per_minute": st.sampled_from([None, 1, 2]),
                "price_collar": st.sampled_from([None, 0.01]),
                "daily_loss_limit": st.sampled_from([None, 0.004, 0.03]),
            }
        ),
    ),
    "restart_at": st.one_of(st.none(), st.integers(0, 159)),
    "orders": st.one_of(st.none(), st.sampled_from(ORDERS)),
    "exits": st.one_of(st.just({}), st.sampled_from(EXITS)),
}
"""Every option a generated strategy draws."""

_strategies = st.fixed_dictionaries(_FIELDS)

_risk_engine_strategies = st.fixed_dictionaries(
    {
        **_FIELDS,
        "bars": st.integers(100, 160),
        "margin": st.sampled_from(MARGINS[1:]),
        "jump": st.sampled_from([0.0, 0.12]),
        "allow_short": st.just(True),
        # a deep market: the volume cap does not keep positions small
        "volume_scale": st.just(1e6),
        "threshold": st.sampled_from([0.05, 0.3]),
        # most of the leverage used: a liquidation is some percent away
        "sizing": st.sampled_from(
            [
                {"kind": "fixed_fraction", "fraction": 1.0},
                {"kind": "fixed_fraction", "fraction": 0.6},
                {"kind": "kelly", "fraction": 1.0, "avg_win": 0.03, "avg_loss": 0.01},
            ]
        ),
        "drawdown": st.sampled_from([None, 0.3]),
        # limits that bind some of the leveraged orders (a full position at 10x: ~1,000
        # units, ~100,000 notional), not all of them
        "limits": st.fixed_dictionaries(
            {
                "max_order_notional": st.sampled_from([None, 60_000.0, 250_000.0]),
                "max_position_quantity": st.sampled_from([None, 700.0, 2500.0]),
                "max_orders_per_minute": st.sampled_from([None, 1]),
                "price_collar": st.sampled_from([None, 0.01]),
                "daily_loss_limit": st.sampled_from([None, 0.05]),
            }
        ),
        # exits that rarely come before a liquidation; no filters
        "max_holding_bars": st.sampled_from([None, 12]),
        "stop_loss": st.sampled_from([None, 0.05]),
        "take_profit": st.sampled_from([None, 0.1]),
        "regimes": st.none(),
        "anomaly": st.just(False),
        "monitor": st.just(False),
    }
)
"""Long markets traded on margin under risk.limits: liquidations and limits that bind."""


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
    "warm": 0,
    "jump": 0.0,
    "margin": None,
    "limits": {},
    "restart_at": None,
    "orders": None,
    "exits": {},
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


NO_PICTURES = {"report": False, "features": False}
"""A generated strategy's ``outputs:``: no report.html and no features.parquet, which no
parity check reads (a fifth of a run's time, and of the paper run's refreshes, went to
drawing the report); `test_the_generated_strategies_reach_every_event` writes both, so
that the report is still drawn from every event, rejection and halt the drivers journal."""


def _write(folder: Path, spec: dict[str, Any]) -> Path:
    frame = _market(
        spec["seed"], spec["bars"], spec["volume_scale"], warm=spec["warm"], jump=spec["jump"]
    )
    frame.to_csv(folder / "bars.csv", index=False, float_format="%.17g")
    risk: dict[str, Any] = {"sizing": spec["sizing"]}
    for key in ("max_holding_bars", "stop_loss", "take_profit"):
        if spec[key] is not None:
            risk[key] = spec[key]
    risk.update(spec.get("exits") or {})
    if spec["sizing"]["kind"] == "risk_per_trade" and not {"stop_loss", "trailing_stop"} & set(
        risk
    ):
        risk["stop_loss"] = 0.03  # it sizes by the stop's distance: the loader asks for one
    limits = {k: v for k, v in spec["limits"].items() if v is not None}
    if limits:
        risk["limits"] = limits
    if spec["drawdown"] is not None:
        risk["rules"] = [{"kind": "drawdown_halt", "max_drawdown": spec["drawdown"]}]
    if spec.get("scaling"):
        risk["scaling"] = spec["scaling"]
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
    if spec["margin"] is not None:
        execution["margin"] = spec["margin"]
    if spec.get("orders") is not None:
        execution["orders"] = spec["orders"]
        execution["maker_fee_bps"] = 2.0
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
    if spec.get("sides") is not None:
        doc["signal"]["sides"] = spec["sides"]
    if spec["monitor"]:
        doc["monitoring"] = MONITORS
        doc["health"] = WARN_RULES
    doc["outputs"] = spec.get("outputs", NO_PICTURES)
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
        (r.bar, r.timestamp, r.symbol, r.kind, r.correlation_id, r.values)
        for r in read_rows(outcome.run_dir / "journal.sqlite")
        if r.kind not in RUN_KINDS
    ]


def _assert_same(batch: RunOutcome, per_bar: RunOutcome) -> None:
    # first the rows, so that a failure shows the first row that differs
    for i, (a, b) in enumerate(zip(_journal_rows(batch), _journal_rows(per_bar), strict=True)):
        assert a == b, f"journal row {i}"
    assert _outputs(batch) == _outputs(per_bar)


BACKTEST_ONLY = frozenset({"data_loaded", "order_expired"})
"""Kinds only a backtest journals: the data it loaded, the orders left when the data ends."""


def _order_number(value: Any) -> Any:
    # a backtest's order ids are {strategy}-{hash of the file}-{n:06d}, a paper run's
    # {strategy}-{run key}-{n:06d}: the same order has the same n
    return int(value.rsplit("-", 1)[1]) if isinstance(value, str) else value


def _trading_rows(journal: Path, left_out: frozenset[str]) -> list[tuple[Any, ...]]:
    """Every row but the run bookkeeping and ``left_out``, client order ids as numbers."""
    return [
        (
            r.bar,
            r.timestamp,
            r.symbol,
            r.kind,
            r.correlation_id,
            {
                k: _order_number(v) if k in ("id", "order_id", "parent_id") else v
                for k, v in r.values.items()
            },
        )
        for r in read_rows(journal)
        if r.kind not in RUN_KINDS and r.kind not in left_out
    ]


def _assert_paper_same(per_bar: RunOutcome, paper: Path, spec: dict[str, Any]) -> None:
    """The paper run journals the per-bar backtest's rows, row for row.

    Compared: every row of both journals (bar, timestamp, symbol, kind, correlation id
    and every value) but the run bookkeeping (`RUN_KINDS`: wall-clock times), the
    backtest's `BACKTEST_ONLY` kinds and the paper run's `PAPER_ONLY` kinds, with the
    client order ids reduced to their order number (the run keys differ by design).
    So the signals, risk decisions, rejections, trading states, halts, orders, fills,
    cancellations, liquidations, regime and health rows must be equal, in the same
    order, the warm-up bars' included. The journal digest cannot be compared: it
    covers those kinds and the ids. Then the paper run's own rows: it predicted each
    bar after the warm-up, once, as the backtest's model did.
    """
    mine = _trading_rows(paper, PAPER_ONLY)
    theirs = _trading_rows(per_bar.run_dir / "journal.sqlite", BACKTEST_ONLY)
    for i, (a, b) in enumerate(zip(mine, theirs, strict=False)):
        assert a == b, f"journal row {i}"
    assert len(mine) == len(theirs)
    at = spec["restart_at"]
    restarted = at is not None and spec["warm"] <= at < spec["bars"]
    assert len(list(read_rows(paper, ["restarted"]))) == restarted
    probability = pd.read_csv(per_bar.run_dir.parent / "bars.csv")["p_up"].to_numpy()
    live = [(r.bar, r.values["probability"]) for r in read_rows(paper, ["live_bar"])]
    assert [bar for bar, _ in live] == list(range(spec["warm"], spec["bars"]))
    for bar, p in live:
        assert (p is None and math.isnan(probability[bar])) or p == probability[bar]
    # execution quality is measured from either journal alike
    document = yaml.safe_load((per_bar.run_dir / "strategy.yaml").read_text())
    mine = journal_execution_quality(paper, document)
    assert json.dumps(mine, sort_keys=True) == json.dumps(
        per_bar.metrics["execution_quality"], sort_keys=True
    )


def _show_reached(batch: RunOutcome) -> None:
    """Tell hypothesis what the example journaled (--hypothesis-show-statistics)."""
    journal = batch.run_dir / "journal.sqlite"
    for row in read_rows(journal, ["rejection", "halt", "liquidation", "trading_state"]):
        event(f"{row.kind} {row.values.get('code', '')}".strip())


def _three_drivers(folder: Path, spec: dict[str, Any]) -> RunOutcome:
    """Run the batch and per-bar backtests and the paper run; assert they agree."""
    path = _write(folder, spec)
    batch = _run(path, folder / "batch", "auto")
    per_bar = _run(path, folder / "per_bar", "per_bar")
    _assert_same(batch, per_bar)
    warm = min(spec["warm"], spec["bars"])
    paper = paper_run(path, folder / "paper", warm=warm, restart_at=spec["restart_at"])
    _assert_paper_same(per_bar, paper, {**spec, "warm": warm})
    return batch


@pytest.mark.slow
@settings(
    max_examples=examples(30, suite=15),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=_strategies)
def test_batch_per_bar_and_paper_journals_are_identical(
    ram_tmp_factory: RamFolders, spec: dict[str, Any]
) -> None:
    with ram_tmp_factory.folder("parity") as folder:
        path = _write(folder, spec)
        config, _ = load_strategy(path, [])
        cspec = core_spec(build_pipeline(config), 3600, periods_per_year=0.0)
        # every sequential layer is built in: compiled in the core (monitors stop it per bar)
        assert None not in (cspec.signal, cspec.sizing, cspec.venue) and not cspec.external_rules
        batch = _three_drivers(folder, spec)
        _show_reached(batch)


@pytest.mark.slow
@settings(
    max_examples=examples(12, suite=6),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=_risk_engine_strategies)
def test_margin_accounts_under_risk_limits_journal_alike_in_every_driver(
    ram_tmp_factory: RamFolders, spec: dict[str, Any]
) -> None:
    """Liquidations, NO_EQUITY halts and refusals by risk.limits, in the three drivers."""
    with ram_tmp_factory.folder("risk") as folder:
        _show_reached(_three_drivers(folder, spec))


@pytest.mark.slow
def test_the_generated_strategies_reach_every_event(ram_tmp_path: Path) -> None:
    """The generator is not vacuous: together, a few fixed specs journal every event type,
    every rejection and halt the options generated can cause, liquidations included, and
    the three drivers agree on each."""
    seen: dict[str, int] = {}
    reasons: set[str] = set()
    cancels: set[str] = set()
    rejections: set[str] = set()
    halts: set[str] = set()
    states: set[str] = set()
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
        "warm": 1,
        "jump": 0.0,
        "margin": None,
        "limits": {},
        "restart_at": None,
        "outputs": {"report": True, "features": True},
    }
    fixed = {"kind": "fixed_fraction", "fraction": 1.0}
    bare = {"max_volume_fraction": None, "stop_loss": None, "take_profit": None}
    variants = [
        {"warm": 20, "restart_at": 70},
        {
            "allow_short": False,
            "max_volume_fraction": None,
            "fill": "close",
            "max_holding_bars": 2,
            "stop_loss": None,
            "take_profit": None,
        },
        {"drawdown": 0.03, "sizing": fixed, **bare},
        {"allow_short": False, "max_volume_fraction": None, "sizing": fixed},
        {
            "sizing": fixed,
            "regime": SMALL_REGIME,
            "regimes": ["ranging", "high_volatility"],
            "anomaly": True,
            "warm": 12,
        },
        # a leveraged account through gaps: liquidated, then out of equity (halted); a
        # daily loss limit that trips REDUCING and rolls over at midnight
        {
            "seed": 7,
            "sizing": fixed,
            **bare,
            "max_holding_bars": None,
            "jump": 0.12,
            "margin": MARGINS[3],
            "limits": {"max_orders_per_minute": 1, "daily_loss_limit": 0.03},
            "restart_at": 60,
        },
        # the size limits on Kelly fractions at 2x: some orders too large, some not; one
        # order a minute: a stop's exit takes the bar's one, the signal's order is refused
        {
            "sizing": {"kind": "kelly", "fraction": 1.0, "avg_win": 0.03, "avg_loss": 0.01},
            **bare,
            "stop_loss": 0.01,
            "max_holding_bars": None,
            "margin": MARGINS[1],
            "limits": {
                "max_order_notional": 20_000.0,
                "max_position_quantity": 150.0,
                "max_orders_per_minute": 1,
            },
            "warm": 5,
            "restart_at": 90,
        },
    ]
    for i, variant in enumerate(variants):
        folder = ram_tmp_path / str(i)
        folder.mkdir()
        batch = _three_drivers(folder, {**base, "seed": i, **variant})
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
            elif kind == "halt":
                halts.add(data["code"])
            elif kind == "trading_state":
                states.add(data["code"])
    assert {
        "signal", "risk_decision", "rejection", "order", "fill", "order_cancelled", "halt",
        "health", "regime_changed", "health_action", "liquidation", "trading_state",
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
        "EXIT_LIQUIDATION",
    }
    assert cancels >= {"REPLACED", "PROTECTIVE_EXIT", "INSUFFICIENT_CASH"}
    # PRICE_COLLAR and INSUFFICIENT_MARGIN cannot bind here: a market order's reference
    # price is the last price, and one symbol's order is sized within its margin
    # (tests/core/test_margin.py and test_risk.py reach them)
    assert rejections >= {
        "KELLY_NO_EDGE", "HALTED", "SHORT_NOT_ALLOWED", "ANOMALY", "MAX_ORDER_NOTIONAL",
        "MAX_POSITION_QUANTITY", "ORDER_RATE", "TRADING_REDUCING",
    }  # fmt: skip
    assert halts >= {"MAX_DRAWDOWN_HALT", "NO_EQUITY"}
    assert states >= {"DAILY_LOSS", "DAY_ROLLOVER"}


SCALINGS: list[dict[str, Any]] = [
    {"take_profit_levels": [{"gain": 0.005, "close": 0.3}, {"gain": 0.012, "close": 0.3}]},
    {"scale_in": {"kind": "pyramid", "step": 0.004, "max_adds": 3, "max_position": 1.2}},
    {
        "take_profit_levels": [{"gain": 0.008, "close": 0.5}, {"gain": 0.015, "close": 0.5}],
        "scale_in": {"kind": "dca", "step": 0.006, "max_adds": 2, "max_position": 0.9},
    },
]
"""``risk.scaling`` settings: partial take-profits, pyramiding, DCA with partials."""

_scaling_strategies = st.fixed_dictionaries(
    {
        **_FIELDS,
        "scaling": st.sampled_from(SCALINGS),
        "sizing": st.sampled_from(
            [
                {"kind": "fixed_fraction", "fraction": 0.3},
                {"kind": "kelly", "fraction": 1.0, "avg_win": 0.03, "avg_loss": 0.01},
            ]
        ),
        # a take-profit beyond every level closes the rest
        "take_profit": st.sampled_from([None, 0.02, 0.1]),
        "min_interval": st.just(1),
        # the levels rest at the venue: stops: bar_close is refused with them
        "orders": st.one_of(
            st.none(), st.sampled_from([o for o in ORDERS if o.get("stops") != "bar_close"])
        ),
    }
)
"""Generated strategies that scale in and out, every other option drawn as above."""


@pytest.mark.slow
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=_scaling_strategies)
def test_scaling_in_and_out_journals_alike_in_every_driver(
    ram_tmp_factory: RamFolders, spec: dict[str, Any]
) -> None:
    """Partial take-profits and adds: the batch and per-bar backtests and the paper run
    (killed and restarted from its journal when drawn) journal the same rows."""
    with ram_tmp_factory.folder("scaling") as folder:
        _show_reached(_three_drivers(folder, spec))


LEGS_MARKET: dict[str, Any] = {
    **PLAIN,
    "seed": 11,
    "bars": 90,
    "volume_scale": 1e6,
    "fee_bps": 10.0,
    "slippage_bps": 5.0,
    "sizing": {"kind": "fixed_fraction", "fraction": 0.3},
    "threshold": 0.05,
    "warm": 10,
    "restart_at": 40,
    "stop_loss": 0.03,
}
"""A fixed market where scaled legs trade (a restart falls amid them)."""


@pytest.mark.parametrize("scaling", SCALINGS)
def test_each_leg_journals_alike_in_every_driver(
    ram_tmp_path: Path, scaling: dict[str, Any]
) -> None:
    """Each scaling setting sends its legs (SCALE_IN, TAKE_PROFIT_PARTIAL) on a fixed
    market, and the three drivers agree on every row; a restart falls amid the legs."""
    spec = {
        **LEGS_MARKET,
        "scaling": scaling,
    }
    batch = _three_drivers(ram_tmp_path, spec)
    reasons = {r.values["reason"] for r in read_rows(batch.run_dir / "journal.sqlite", ["order"])}
    if "scale_in" in scaling:
        assert "SCALE_IN" in reasons
    if "take_profit_levels" in scaling:
        assert "TAKE_PROFIT_PARTIAL" in reasons


def test_a_trailing_stop_over_scaled_legs_journals_alike_in_every_driver(
    ram_tmp_path: Path,
) -> None:
    """A trailing and break-even stop over pyramid adds and a partial take-profit: the three
    drivers agree on every row (a restart amid the legs), and each rule acted."""
    spec = {
        **LEGS_MARKET,
        "exits": {"trailing_stop": 0.015, "break_even": 0.006},
        "scaling": {
            "take_profit_levels": [{"gain": 0.01, "close": 0.4}],
            "scale_in": {"kind": "pyramid", "step": 0.004, "max_adds": 2, "max_position": 1.2},
        },
    }
    batch = _three_drivers(ram_tmp_path, spec)
    reasons = {r.values["reason"] for r in read_rows(batch.run_dir / "journal.sqlite", ["order"])}
    assert {"SCALE_IN", "TAKE_PROFIT_PARTIAL", "EXIT_TRAILING_STOP"} <= reasons, reasons


@pytest.mark.parametrize(
    ("allow_short", "sides"), [(False, "long"), (True, "long"), (True, "short")]
)
def test_signal_sides_journals_alike_in_every_driver(
    ram_tmp_path: Path, allow_short: bool, sides: str
) -> None:
    """``signal.sides``: the batch and per-bar backtests and a paper run (restarted amid
    the trades) journal the same rows; no position is ever on the side barred, nothing
    is refused SHORT_NOT_ALLOWED, and a signal on that side from flat is a hold. On a
    long-only venue the run is that of ``sides: both`` but for its refusals, which
    changed nothing: the same equity, orders and fills."""
    spec = {**LEGS_MARKET, "allow_short": allow_short, "stop_loss": None}
    barred = -1 if sides == "long" else 1
    runs = {}
    for said in (None, sides):
        folder = ram_tmp_path / str(said)
        folder.mkdir()
        runs[said] = _three_drivers(folder, {**spec, "sides": said})
    held = {said: pd.read_csv(run.run_dir / "equity.csv")["position"] for said, run in runs.items()}
    journal = {said: run.run_dir / "journal.sqlite" for said, run in runs.items()}
    refused = {
        said: [r.values["code"] for r in read_rows(journal[said], ["rejection"])] for said in runs
    }
    holds = [r.values["reason"] for r in read_rows(journal[sides], ["risk_decision"])]
    assert not (np.sign(held[sides]) == barred).any()
    assert "SHORT_NOT_ALLOWED" not in refused[sides]
    other = "short" if sides == "long" else "long"
    assert f"signal.sides is {sides}: no {other} position" in holds
    if allow_short:  # not vacuous: both sides were traded without the setting
        assert (np.sign(held[None]) == barred).any()
    else:
        assert "SHORT_NOT_ALLOWED" in refused[None]
        outputs = [_outputs(run) for run in runs.values()]
        for name in ("equity.csv", "trades.csv"):
            assert outputs[0]["files"][name] == outputs[1]["files"][name], name
        assert [refused[None].count(c) for c in set(refused[sides])] == [
            refused[sides].count(c) for c in set(refused[sides])
        ]


@pytest.mark.parametrize("orders", ORDERS)
def test_order_types_journal_alike_in_every_driver(
    ram_tmp_path: Path, orders: dict[str, Any]
) -> None:
    """Limit, stop and sliced orders: the batch and per-bar backtests and a paper run
    (restarted mid-run from its journal) journal the same orders, fills and cancels."""
    spec = {
        **PLAIN,
        "seed": 3,
        "bars": 120,
        "volume_scale": 20.0,
        "fill": "next_open",
        "slippage_bps": 5.0,
        "fee_bps": 10.0,
        "allow_short": True,
        "margin": MARGINS[1],
        "max_volume_fraction": 0.5,
        "stop_loss": 0.01,
        "take_profit": 0.02,
        "threshold": 0.3,
        "warm": 10,
        "restart_at": 60,
        "orders": orders,
    }
    batch = _three_drivers(ram_tmp_path, spec)
    journal = batch.run_dir / "journal.sqlite"
    kinds = {
        (r.values["kind"], r.values["parent_id"] is not None) for r in read_rows(journal, ["order"])
    }
    fills = list(read_rows(journal, ["fill"]))
    assert len(fills) > 5
    if orders.get("type") == "limit":
        assert ("limit", bool(orders.get("slicing"))) in kinds
    if orders.get("slicing"):
        assert list(read_rows(journal, ["sliced_order"]))
    if orders.get("stops") == "bar_close":
        assert ("stop", False) not in kinds


@pytest.mark.parametrize("exits", EXITS[1:], ids=["atr-break-even", "cooldown", "trail-time"])
def test_following_exits_journal_alike_in_every_driver(
    ram_tmp_path: Path, exits: dict[str, Any]
) -> None:
    """Trailing and break-even stops, cooldowns and time exits: the batch and per-bar
    backtests and a paper run (restarted mid-run from its journal) journal the same
    rows, and each rule acted."""
    spec = {
        **PLAIN,
        "seed": 5,
        "bars": 120,
        "volume_scale": 20.0,
        "fill": "next_open",
        "slippage_bps": 5.0,
        "fee_bps": 10.0,
        "allow_short": True,
        "margin": MARGINS[1],
        "stop_loss": 0.02,
        "threshold": 0.3,
        "warm": 10,
        "restart_at": 60,
        "exits": exits,
    }
    batch = _three_drivers(ram_tmp_path, spec)
    journal = batch.run_dir / "journal.sqlite"
    reasons = {r.values["reason"] for r in read_rows(journal, ["order"])}
    codes = {r.values["code"] for r in read_rows(journal, ["rejection"])}
    if "trailing_stop" in exits:
        assert "EXIT_TRAILING_STOP" in reasons
    if "break_even" in exits:
        assert "EXIT_BREAK_EVEN" in reasons
    if "exit_time" in exits:
        assert "EXIT_TIME" in reasons
    if exits.get("cooldown_bars", 1) > 1:
        assert "COOLDOWN" in codes


@pytest.mark.parametrize(
    ("sizing", "exits"),
    [
        ({"kind": "volatility_target", "target": 0.8, "window": 20, "max_position": 0.9}, {}),
        ({"kind": "risk_per_trade", "risk": 0.01}, EXITS[1]),
    ],
    ids=["volatility_target", "risk_per_trade-atr"],
)
def test_volatility_and_risk_sizings_journal_alike_in_every_driver(
    ram_tmp_path: Path, sizing: dict[str, Any], exits: dict[str, Any]
) -> None:
    """volatility_target and risk_per_trade (by an ATR trailing stop, tighter than the
    stop-loss once warmed up): the batch and per-bar backtests and a paper run restarted
    mid-run from its journal journal the same rows, with sizes that vary from entry to
    entry (and the volatility's warm-up refused NO_RISK_ESTIMATE)."""
    spec = {
        **PLAIN,
        "seed": 11,
        "bars": 120,
        "volume_scale": 20.0,
        "slippage_bps": 5.0,
        "fee_bps": 10.0,
        "allow_short": True,
        "margin": MARGINS[1],
        "stop_loss": 0.2 if exits else None,
        "threshold": 0.3,
        "warm": 10,
        "restart_at": 60,
        "sizing": sizing,
        "exits": exits,
    }
    batch = _three_drivers(ram_tmp_path, spec)
    journal = batch.run_dir / "journal.sqlite"
    codes = [r.values["code"] for r in read_rows(journal, ["rejection"])]
    assert ("NO_RISK_ESTIMATE" in codes) == (sizing["kind"] == "volatility_target")
    targets = {
        round(abs(r.values["target_fraction"]), 9)
        for r in read_rows(journal, ["risk_decision"])
        if r.values["outcome"] == "accepted"
    }
    assert len(targets) > 3


@pytest.mark.slow
def test_monitors_of_a_walk_forward_model_and_warn_rules_replay_alike(ram_tmp_path: Path) -> None:
    """eth_hgb_stops' monitors (drift against each fold's training rows included), with its
    rules turned into warnings so that the batch driver may run them."""
    doc = yaml.safe_load((ROOT / "strategies" / "eth_hgb_stops.yaml").read_text())
    # four folds, 31 fills, both rules fired: 3,000 bars (1,000/500) cost a fifth more
    doc["data"]["bars"] = 1600
    doc["model"]["walk_forward"].update(train_window=600, retrain_every=300)
    doc["model"]["params"]["max_iter"] = 20
    for monitor in doc["monitoring"]:
        monitor.update(window=200, min_samples=min(monitor.get("min_samples", 100), 100))
    doc["health"] = [{**rule, "action": "warn"} for rule in doc["health"]]
    doc["health"].append({"metric": "feature_drift.psi_max", "above": 1.0, "action": "warn"})
    path = ram_tmp_path / "strategy.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    batch = _run(path, ram_tmp_path / "batch", "auto")
    per_bar = _run(path, ram_tmp_path / "per_bar", "per_bar")
    _assert_same(batch, per_bar)
    metrics = json.loads((batch.run_dir / "metrics.json").read_text())
    assert metrics["model_trainings"] >= 3 and metrics["fills"] >= 10
    assert metrics["monitoring"]["feature_drift"]["folds"] >= 3
    assert {r["metric"] for r in metrics["health_actions"] if r["fired"]} >= {
        "calibration.brier",
        "feature_drift.psi_max",
    }


@pytest.mark.slow
def test_the_default_strategy_replays_bar_by_bar_to_the_same_journal(ram_tmp_path: Path) -> None:
    """A walk-forward forest with a monitor: trainings and health rows interleave alike."""
    overrides = (
        "data.bars=3000",
        "model.walk_forward.train_window=1000",
        "model.walk_forward.retrain_every=500",
        "model.params.n_estimators=20",
    )
    path = ROOT / "strategies" / "btc_rf.yaml"
    batch = _run(path, ram_tmp_path / "batch", "auto", overrides)
    per_bar = _run(path, ram_tmp_path / "per_bar", "per_bar", overrides)
    metrics = json.loads((batch.run_dir / "metrics.json").read_text())
    assert metrics["orders"] >= 10 and metrics["model_trainings"] >= 3
    _assert_same(batch, per_bar)


@pytest.mark.parametrize(
    ("label", "changes"),
    [
        ("classes", ()),
        (
            "return",
            (
                "model.estimator=sklearn.ensemble.RandomForestRegressor",
                "model.label.kind=return",
                "model.label.dead_band=null",
                "signal.threshold=0.001",
            ),
        ),
        ("direction", ("model.label.kind=direction", "model.label.dead_band=null")),
    ],
)
def test_higher_timeframe_features_and_each_label_kind_replay_bar_by_bar_alike(
    ram_tmp_path: Path, label: str, changes: tuple[str, ...]
) -> None:
    """strategies/btc_mtf.yaml (15m bars, 1h and 4h features), shortened, with each kind
    of label: the per-bar driver steps the features and predicts each row alone."""
    overrides = (
        "data.bars=1000",
        "model.walk_forward.train_window=400",
        "model.walk_forward.retrain_every=200",
        "signal.threshold=0.1",
        *changes,
    )
    path = ROOT / "strategies" / "btc_mtf.yaml"
    batch = _run(path, ram_tmp_path / "batch", "auto", overrides)
    per_bar = _run(path, ram_tmp_path / "per_bar", "per_bar", overrides)
    metrics = json.loads((batch.run_dir / "metrics.json").read_text())
    assert metrics["fills"] >= 2 and metrics["model_trainings"] >= 2
    document = yaml.safe_load((batch.run_dir / "strategy.yaml").read_text())
    assert document["model"]["label"]["kind"] == label
    _assert_same(batch, per_bar)


def test_nan_probability_never_trades(ram_tmp_path: Path) -> None:
    spec = {**PLAIN, "seed": 1, "bars": 50, "allow_short": True, "threshold": 0.05}
    path = _write(ram_tmp_path, spec)
    frame = pd.read_csv(ram_tmp_path / "bars.csv")
    frame["p_up"] = math.nan
    frame.to_csv(ram_tmp_path / "bars.csv", index=False)
    for driver in ("auto", "per_bar"):
        outcome = _run(path, ram_tmp_path / driver, driver)
        assert outcome.result.recorder.orders == []


def test_a_full_event_buffer_resumes_at_the_bar_it_stopped_before(ram_tmp_path: Path) -> None:
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
    path = _write(ram_tmp_path, spec)
    config, _ = load_strategy(path, [])
    pipeline = build_pipeline(config)
    cspec = core_spec(pipeline, 3600, periods_per_year=0.0)
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


def test_per_bar_features_must_equal_the_batch_features(ram_tmp_path: Path) -> None:
    spec = {**PLAIN, "seed": 3, "bars": 20, "fill": "close"}
    path = _write(ram_tmp_path, spec)
    config, plugins = load_strategy(path, [])
    pipeline = dataclasses.replace(build_pipeline(config), features=(_Drifting(),))
    with pytest.raises(
        RuntimeError,
        match=r"^feature column drift at bar 5: the per-bar driver gives 1e-12, "
        r"the batch driver 0\.0$",
    ):
        run_strategy(pipeline, plugins, out=ram_tmp_path / "run", driver="per_bar")
    # the batch driver never steps features
    run_strategy(pipeline, plugins, out=ram_tmp_path / "batch", driver="auto")


class _OtherBits:
    """A feature whose per-bar values equal the batch values but for their bits: -0.0
    for 0.0, and a NaN of another payload."""

    def columns(self) -> list[str]:
        return ["zero", "missing"]

    def compute(self, bars, features):
        n = len(bars)
        frame = {"zero": np.zeros(n), "missing": np.full(n, np.nan)}
        return pd.DataFrame(frame, index=bars.frame.index)

    def stepper(self, context):
        other_nan = float(np.array([0x7FF8_0000_0000_0001], np.uint64).view(np.float64)[0])

        class Step:
            def step(self, bar, features):
                return (-0.0, other_nan)

        return Step()


def test_per_bar_features_equal_as_numbers_pass_whatever_their_bits(ram_tmp_path: Path) -> None:
    spec = {**PLAIN, "seed": 3, "bars": 20, "fill": "close"}
    config, plugins = load_strategy(_write(ram_tmp_path, spec), [])
    pipeline = dataclasses.replace(build_pipeline(config), features=(_OtherBits(),))
    run_strategy(pipeline, plugins, out=ram_tmp_path / "run", driver="per_bar")


def test_informative_pair_features_replay_bar_by_bar_alike(ram_tmp_path: Path) -> None:
    """examples/informative_pair.yaml (BTC/USDT traded, ETH/USDT features beside it, one
    of them on ETH's 4h bars), shortened: the per-bar driver steps each ETH feature on
    ETH's bars as each closes, and every row equals the batch row (`_per_bar` checks
    them bar by bar), so the journals are the same."""
    overrides = (
        "data.bars=700",
        "model.walk_forward.train_window=300",
        "model.walk_forward.retrain_every=200",
    )
    path = ROOT / "examples" / "informative_pair.yaml"
    batch = _run(path, ram_tmp_path / "batch", "auto", overrides)
    per_bar = _run(path, ram_tmp_path / "per_bar", "per_bar", overrides)
    metrics = json.loads((batch.run_dir / "metrics.json").read_text())
    assert metrics["fills"] >= 2 and metrics["model_trainings"] >= 2
    assert "log_return_1@4h@ETH/USDT" in batch.result.symbol_features.columns
    _assert_same(batch, per_bar)


def test_a_pipelines_size_scales_journal_alike_in_both_backtest_drivers(
    ram_tmp_path: Path,
) -> None:
    """``Pipeline.scales`` (a parity replay's canary: a share of the size from the bar
    after one to the bar after another): the batch and per-bar drivers journal the same
    rows, and the entries between the changes are sized at the share."""
    _write(ram_tmp_path, LEGS_MARKET)
    config, plugins = load_strategy(ram_tmp_path / "strategy.yaml", [])
    times = pd.to_datetime(pd.read_csv(ram_tmp_path / "bars.csv")["timestamp"], utc=True)
    start, end = 25, 60
    scales = ((times[start].value, 0.25), (times[end].value, 1.0))
    pipeline = dataclasses.replace(build_pipeline(config), scales=scales)
    batch, per_bar = (
        run_strategy(pipeline, plugins, out=ram_tmp_path / driver, driver=driver)  # type: ignore[arg-type]
        for driver in ("batch", "per_bar")
    )
    _assert_same(batch, per_bar)
    sizes = {
        r.bar: abs(r.values["target_fraction"])
        for r in read_rows(batch.run_dir / "journal.sqlite", ["risk_decision"])
        if r.values["outcome"] == "accepted" and r.values["target_fraction"]
    }
    inside = [size for bar, size in sizes.items() if start < bar <= end]
    outside = [size for bar, size in sizes.items() if not start < bar <= end]
    assert inside and outside
    assert all(size == pytest.approx(0.3 * 0.25, rel=1e-12) for size in inside)
    assert all(size == pytest.approx(0.3, rel=1e-12) for size in outside)
