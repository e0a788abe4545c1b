"""One calendar rule: a sizing that annualizes takes the data calendar's year, as the
statistics do (`tradeloom.engine.core_spec.sizing_year`), not 365 days of bars.

The rule is `TradingCalendar.periods_per_year`: the statistics give it the data's span,
a sizing none (its decision at a bar cannot read how far the data runs). A backtest on
an exchange's daily bars sizes ``volatility_target`` by the calendar's year, and its
``metrics.json`` annualizes by the same calendar.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.builders import PRECOMPUTED, strategy
from tests.core.test_sizing_formulas import ewma_variance
from tradeloom.cli.main import main
from tradeloom.core import layout as L
from tradeloom.engine.core_spec import core_spec, sizing_year
from tradeloom.engine.wiring import build_pipeline
from tradeloom.journal import read_events
from tradeloom.schemas import load_strategy
from tradeloom.time.calendars import CRYPTO, FOREX, REFERENCE_YEARS, get_calendar

pytest.importorskip("exchange_calendars")

XNYS = get_calendar("XNYS")


def test_the_sizing_year_is_the_calendars_own_year() -> None:
    assert sizing_year(CRYPTO, 3600) == 365 * 24
    assert sizing_year(FOREX, 86_400) == FOREX.periods_per_year(86_400)
    # an exchange's: its mean sessions over the reference years, whatever the data's span
    assert REFERENCE_YEARS == (2014, 2023)
    assert sizing_year(XNYS, 86_400) == pytest.approx(2516 / 10)
    assert sizing_year(XNYS, 86_400) == XNYS.periods_per_year(86_400)
    spanned = XNYS.periods_per_year(
        86_400, pd.Timestamp("2020-01-02").value, pd.Timestamp("2020-12-31").value
    )
    assert spanned == 253.0  # a statistic over 2020's bars: 2020's sessions


def _xnys_daily(folder: Path) -> Path:
    """XNYS sessions of 2021-2022 as daily bars (labelled by their date), with p_up."""
    import exchange_calendars

    days = exchange_calendars.get_calendar("XNYS", start="2021-01-01", end="2022-12-31").sessions
    rng = np.random.default_rng(3)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.015, len(days))))
    open_ = np.r_[close[0], close[:-1]]
    frame = pd.DataFrame(
        {
            "timestamp": days.strftime("%Y-%m-%d"),
            "open": open_,
            "high": np.maximum(open_, close) * 1.01,
            "low": np.minimum(open_, close) * 0.99,
            "close": close,
            "volume": 1_000.0,
            "p_up": np.where(np.arange(len(days)) % 7 == 3, 0.9, 0.5),
        }
    )
    path = folder / "xnys.csv"
    frame.to_csv(path, index=False, float_format="%.17g")
    return path


def _strategy(folder: Path, sizing: dict) -> Path:
    _xnys_daily(folder)
    doc = strategy(
        PRECOMPUTED,
        name="stocks",
        data={"kind": "csv", "path": "xnys.csv", "timeframe": "1d", "calendar": "XNYS"},
        model={"kind": "precomputed", "column": "p_up", "horizon": 1},
        signal={"threshold": 0.5, "min_interval": 1},
        risk={"sizing": sizing, "max_holding_bars": 2},
        execution={"initial_cash": 100_000, "fee_bps": 0, "slippage_bps": 0},
    )
    path = folder / "stocks.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def test_a_strategy_on_xnys_daily_bars_hands_the_core_the_calendars_year(tmp_path: Path) -> None:
    sizing = {"kind": "volatility_target", "target": 0.15, "window": 10}
    config, _ = load_strategy(_strategy(tmp_path, sizing))
    pipeline = build_pipeline(config)
    spec = core_spec(pipeline, 86_400, periods_per_year=sizing_year(XNYS, 86_400))

    assert spec.vector()[L.P_PERIODS_PER_YEAR] == pytest.approx(251.6)
    # the file's own periods_per_year wins
    config, _ = load_strategy(_strategy(tmp_path, {**sizing, "periods_per_year": 252}))
    own = core_spec(build_pipeline(config), 86_400, periods_per_year=251.6)
    assert own.vector()[L.P_PERIODS_PER_YEAR] == 252.0


def test_volatility_target_on_xnys_daily_bars_sizes_by_the_calendars_year(
    tmp_path: Path,
) -> None:
    """Every accepted entry is ``target / sqrt(variance * 251.6)``: the size a stock's
    daily bars call for, where 365 days of bars made each position sqrt(251.6 / 365)
    of it (17% small)."""
    window, target = 10, 0.05
    path = _strategy(tmp_path, {"kind": "volatility_target", "target": target, "window": window})
    out = tmp_path / "run"
    assert main(["run", str(path), "--out", str(out), "-q"]) == 0
    close = pd.read_csv(tmp_path / "xnys.csv")["close"].tolist()
    variance = ewma_variance(close, window)
    decisions = [
        event
        for event in read_events(out / "journal.sqlite", ["risk_decision"])
        if not math.isnan(event.target_fraction)
    ]
    assert len(decisions) > 10
    for event in decisions:
        want = min(target / math.sqrt(variance[event.bar] * 251.6), 1.0)
        assert abs(event.target_fraction) == pytest.approx(want, rel=1e-12), event.bar
        assert want < 1.0  # the cap does not hide the year
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["calendar"], metrics["periods_per_year"]) == ("XNYS", 251.5)
