"""Run metrics against figures computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from tests.hunting import examples
from tradeloom.domain import Trade
from tradeloom.reporting.drawdowns import drawdown_curve
from tradeloom.reporting.metrics import performance, prediction_auc, profit_factor

T0 = pd.Timestamp("2024-01-01", tz="UTC")


def trade(pnl: float) -> Trade:
    return Trade(1, 0, T0, 1, T0, 1.0, 100.0, 100.0 + pnl, 0.0, pnl)


def test_performance_by_hand() -> None:
    equity = pd.Series([110.0, 99.0, 121.0, 121.0])
    position = pd.Series([1.0, 1.0, 0.0, 0.0])
    m = performance(
        equity,
        position,
        initial_cash=100.0,
        timeframe_seconds=86_400,
        trades=[trade(21.0), trade(-5.0), trade(5.0)],
        fees=1.5,
    )
    r = np.array([0.10, -0.10, 121 / 99 - 1, 0.0])
    ppy = 365.0
    assert m["total_return"] == pytest.approx(0.21)
    assert m["cagr"] == pytest.approx(1.21 ** (365 / 4) - 1)
    assert m["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(ppy))
    downside = math.sqrt((0.1**2) / 4)
    assert m["sortino"] == pytest.approx(r.mean() / downside * math.sqrt(ppy))
    assert m["max_drawdown"] == pytest.approx(0.10)
    assert m["volatility"] == pytest.approx(r.std(ddof=1) * math.sqrt(ppy))
    assert m["trades"] == 3
    assert m["win_rate"] == pytest.approx(2 / 3)
    assert m["profit_factor"] == pytest.approx(26 / 5)
    assert m["exposure"] == pytest.approx(0.5)
    assert m["fees"] == 1.5
    assert m["final_equity"] == 121.0


def test_drawdown_counts_a_loss_from_the_initial_cash() -> None:
    m = performance(
        pd.Series([90.0, 95.0]),
        pd.Series([0.0, 0.0]),
        initial_cash=100.0,
        timeframe_seconds=3600,
        trades=[],
        fees=0.0,
    )
    assert m["max_drawdown"] == pytest.approx(0.10)
    assert m["win_rate"] == 0.0
    assert m["profit_factor"] is None


def test_an_account_below_zero_has_lost_everything_not_more() -> None:
    """A short gapped through: equity -40 of 100 is a drawdown of 100%, not 140%."""
    m = performance(
        pd.Series([120.0, -40.0, -40.0]),
        pd.Series([-1.0, 0.0, 0.0]),
        initial_cash=100.0,
        timeframe_seconds=86_400,
        trades=[],
        fees=0.0,
    )
    assert m["max_drawdown"] == 1.0
    assert m["final_equity"] == -40.0 and m["total_return"] == pytest.approx(-1.4)
    assert m["cagr"] == -1.0


def test_flat_equity_has_zero_ratios() -> None:
    m = performance(
        pd.Series([100.0] * 10),
        pd.Series([0.0] * 10),
        initial_cash=100.0,
        timeframe_seconds=60,
        trades=[],
        fees=0.0,
    )
    assert (m["sharpe"], m["sortino"], m["max_drawdown"], m["total_return"]) == (0, 0, 0, 0)


def test_prediction_auc_matches_sklearn_on_known_outcomes() -> None:
    rng = np.random.default_rng(3)
    close = pd.Series(100 + rng.normal(size=300).cumsum())
    prob = pd.Series(rng.random(300))
    prob[:20] = np.nan
    out = prediction_auc(prob, close, horizon=3)
    c = close.to_numpy()
    up = c[3:] > c[:-3]
    p = prob.to_numpy()[:-3]
    known = ~np.isnan(p)
    assert out["predictions"] == int(known.sum()) == 277
    assert out["auc"] == pytest.approx(roc_auc_score(up[known], p[known]))


@pytest.mark.filterwarnings("error")
def test_a_vanishing_loss_makes_the_profit_factor_unbounded_without_a_warning() -> None:
    # a loss of a subnormal size against real gains: the ratio is past the largest float
    tiny = [trade(10.0), trade(-5e-324), trade(2.5)]
    equity = pd.Series([100.0, 110.0, 112.5])
    m = performance(
        equity,
        pd.Series([1.0, 0.0, 0.0]),
        initial_cash=100.0,
        timeframe_seconds=86_400,
        trades=tiny,
        fees=0.0,
    )
    assert m["profit_factor"] == math.inf
    assert profit_factor(np.array([10.0, -4.0, 2.0, -1.0])) == 12.0 / 5.0
    assert profit_factor(np.array([10.0, 0.0])) is None  # no loss: no figure
    assert profit_factor(np.array([0.0, -1e-300])) == 0.0
    assert profit_factor(np.array([1e300, -1e-300])) == math.inf


@settings(max_examples=examples(300), deadline=None)
@given(
    st.lists(
        st.sampled_from([0.0, -0.0, 50.0, 100.0, float("nan"), float("inf"), -float("inf")])
        | st.floats(-1e3, 1e3),
        max_size=60,
    ),
    st.sampled_from([100.0, 1.0, 5e-324]),
)
def test_the_drawdown_curve_is_numpys_running_peak(values: list[float], cash: float) -> None:
    """One pass gives the equity table's drawdown column as numpy computed it, bit for
    bit (NaN holding the peak, infinities, zeros of either sign), and the maximum drawdown
    of `performance` as it computed it from the starting cash prepended."""
    equity = np.array(values, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        column = 1.0 - equity / np.maximum.accumulate(np.maximum(equity, cash))
        prepended = 1.0 - equity / np.maximum.accumulate(np.r_[cash, equity])[1:]
    found = drawdown_curve(equity, cash)
    np.testing.assert_array_equal(found.view(np.int64), column.view(np.int64))
    if len(equity):
        assert min(1.0, float(np.max(found))) == min(1.0, float(np.max(prepended)))
