"""Run statistics against figures computed by hand and by backtesting.py on real data.

backtesting.py's ``compute_stats`` is the independent reference: it is given the same
equity curve and the same trades, and where it defines a figure as tradeloom does the two
must agree. Where the definitions differ (profit factor, average trade) the test says so
and checks tradeloom's definition by hand instead.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeloom.reporting.metrics import performance
from tradeloom.reporting.statistics import (
    drawdown_duration,
    equity_statistics,
    period_returns,
    trade_statistics,
)
from tradeloom.reporting.trades import exit_reasons


def sma(values: np.ndarray, n: int) -> np.ndarray:
    return pd.Series(values).rolling(n).mean().to_numpy()


@pytest.fixture(scope="module")
def goog() -> pd.DataFrame:
    """backtesting.py's GOOG bars (backtesting.py is imported by the tests that use it:
    every worker collects this module)."""
    backtesting = pytest.importorskip("backtesting")
    path = Path(backtesting.__file__).parent / "test" / "GOOG.csv"
    return pd.read_csv(path, index_col=0, parse_dates=True)


@pytest.fixture(scope="module")
def goog_stats(goog: pd.DataFrame) -> pd.Series:
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover

    class SmaCross(Strategy):
        def init(self) -> None:
            self.fast = self.I(sma, self.data.Close, 10)
            self.slow = self.I(sma, self.data.Close, 30)

        def next(self) -> None:
            if crossover(self.fast, self.slow):
                self.position.close()
                self.buy()
            elif crossover(self.slow, self.fast):
                self.position.close()
                self.sell()

    return Backtest(goog, SmaCross, cash=10_000, commission=0.002, finalize_trades=True).run()


def as_trade_frame(trades: pd.DataFrame) -> pd.DataFrame:
    """backtesting.py's trades in the columns of tradeloom's trades.csv."""
    return pd.DataFrame(
        {
            "pnl": trades["PnL"],
            "return": trades["ReturnPct"],
            "holding_bars": trades["ExitBar"] - trades["EntryBar"],
            "entry_time": trades["EntryTime"],
            "exit_time": trades["ExitTime"],
            "side": np.where(trades["Size"] > 0, "long", "short"),
            "exit_reason": "EXIT_SIGNAL",
        }
    )


def test_trade_figures_match_backtesting_py(goog_stats: pd.Series) -> None:
    trades = goog_stats["_trades"]
    ours = trade_statistics(as_trade_frame(trades), 86_400)
    assert ours["trades"] == goog_stats["# Trades"] >= 20
    assert isinstance(ours["trades"], int) and isinstance(ours["long_trades"], int)
    assert ours["sqn"] == pytest.approx(goog_stats["SQN"], rel=1e-12)
    # backtesting.py's "Expectancy" is the mean trade return: tradeloom's avg_trade_return
    assert ours["avg_trade_return"] * 100 == pytest.approx(goog_stats["Expectancy [%]"], rel=1e-12)
    assert ours["best_trade"] * 100 == pytest.approx(goog_stats["Best Trade [%]"], rel=1e-12)
    assert ours["worst_trade"] * 100 == pytest.approx(goog_stats["Worst Trade [%]"], rel=1e-12)
    assert ours["win_rate"] * 100 == pytest.approx(goog_stats["Win Rate [%]"], rel=1e-12)
    # tradeloom's expectancy is the mean P&L in money; its profit factor divides money
    # (backtesting.py divides the sums of returns: the same only for equal notionals)
    pnl = trades["PnL"].to_numpy()
    assert ours["expectancy"] == pytest.approx(pnl.mean(), rel=1e-12)
    assert ours["profit_factor"] == pytest.approx(pnl[pnl > 0].sum() / -pnl[pnl < 0].sum())
    assert ours["avg_holding_seconds"] == pytest.approx(
        (trades["ExitTime"] - trades["EntryTime"]).dt.total_seconds().mean()
    )
    assert ours["exits"] == {"EXIT_SIGNAL": len(trades)}


def test_drawdown_duration_matches_backtesting_py(goog_stats: pd.Series) -> None:
    curve = goog_stats["_equity_curve"]["Equity"]
    bars, duration = drawdown_duration(curve, initial_cash=float(curve.iloc[0]))
    assert duration == goog_stats["Max. Drawdown Duration"]  # daily bars: whole days
    durations = goog_stats["_equity_curve"]["DrawdownDuration"]
    end = curve.index.get_loc(durations.idxmax())
    start = curve.index.get_loc(curve.index[end] - durations.max())
    assert bars == end - start


def test_calmar_and_buy_and_hold_match_backtesting_py(
    goog: pd.DataFrame, goog_stats: pd.Series
) -> None:
    """backtesting.py annualizes with 252 bars a year for a market closed on weekends; so
    does tradeloom with an exchange calendar. tradeloom counts the return of the first bar
    from the starting cash, so the curve starts one bar later with its first value as cash.
    """
    from backtesting._stats import compute_stats

    curve = goog_stats["_equity_curve"]["Equity"]
    data = goog
    # compute_stats without the strategy: buy and hold from the first bar, as tradeloom
    reference = compute_stats(goog_stats["_trades"], curve.to_numpy(), data, None)
    equity = curve.iloc[1:]
    perf = performance(
        equity,
        pd.Series(0.0, index=equity.index),
        initial_cash=float(curve.iloc[0]),
        timeframe_seconds=86_400,
        trades=[],
        fees=0.0,
        periods_per_year=252,
    )
    stats = equity_statistics(
        equity,
        data["Close"].iloc[1:],
        initial_cash=float(curve.iloc[0]),
        cagr=perf["cagr"],
        max_drawdown=perf["max_drawdown"],
    )
    assert perf["max_drawdown"] * 100 == pytest.approx(-reference["Max. Drawdown [%]"], rel=1e-12)
    assert stats["calmar"] == pytest.approx(reference["Calmar Ratio"], rel=1e-9)
    close = data["Close"].to_numpy()
    assert equity_statistics(curve, data["Close"], initial_cash=10_000, cagr=0.0, max_drawdown=0.1)[
        "buy_and_hold_return"
    ] * 100 == pytest.approx(reference["Buy & Hold Return [%]"])
    assert stats["buy_and_hold_return"] == pytest.approx(close[-1] / close[1] - 1)


def test_statistics_by_hand() -> None:
    index = pd.date_range("2024-01-30", periods=6, freq="D", tz="UTC")
    # Jan 30, 31 | Feb 1, 2, 3, 4
    equity = pd.Series([110.0, 99.0, 95.0, 104.0, 121.0, 115.0], index=index)
    stats = equity_statistics(
        equity,
        pd.Series([10.0, 11, 12, 13, 14, 15], index=index),
        initial_cash=100.0,
        cagr=0.5,
        max_drawdown=95 / 110 * -1 + 1,
    )
    assert stats["buy_and_hold_return"] == pytest.approx(0.5)
    assert stats["calmar"] == pytest.approx(0.5 / (1 - 95 / 110))
    # peak 110 at Jan 30, regained on Feb 3 (121): 4 bars, 4 days; then down to the end
    assert stats["max_drawdown_duration_bars"] == 4
    assert stats["max_drawdown_duration_days"] == 4.0
    assert stats["monthly_returns"] == {
        "2024-01": pytest.approx(99 / 100 - 1),
        "2024-02": pytest.approx(115 / 99 - 1),
    }
    assert stats["yearly_returns"] == {"2024": pytest.approx(0.15)}


def test_a_run_in_drawdown_from_its_first_bar_to_its_last() -> None:
    index = pd.date_range("2024-01-01", periods=4, freq="h", tz="UTC")
    bars, duration = drawdown_duration(pd.Series([90.0, 95, 80, 99], index=index), 100.0)
    assert (bars, duration) == (3, pd.Timedelta(hours=3))
    flat = pd.Series([100.0] * 4, index=index)
    assert drawdown_duration(flat, 100.0) == (0, pd.Timedelta(0))


def test_monthly_returns_match_a_resample() -> None:
    rng = np.random.default_rng(4)
    index = pd.date_range("2023-11-15", periods=24 * 120, freq="h", tz="UTC")
    equity = pd.Series(1000 * np.exp(np.cumsum(rng.normal(0, 0.002, len(index)))), index=index)
    month_end = equity.resample("ME").last()
    expected = month_end / month_end.shift(1, fill_value=1000.0) - 1
    got = period_returns(equity, 1000.0, "M")
    assert list(got) == [f"{t:%Y-%m}" for t in month_end.index]
    np.testing.assert_allclose(list(got.values()), expected.to_numpy(), rtol=1e-12)


def test_trade_statistics_by_hand() -> None:
    trades = pd.DataFrame(
        {
            "pnl": [30.0, -10.0, 20.0, -20.0],
            "return": [0.03, -0.01, 0.02, -0.02],
            "holding_bars": [2, 4, 6, 8],
            "entry_time": pd.to_datetime(["2024-01-01"] * 4, utc=True),
            "exit_time": pd.to_datetime(["2024-01-02"] * 4, utc=True),
            "side": ["long", "short", "long", "long"],
            "exit_reason": ["EXIT_SIGNAL", "EXIT_STOP_LOSS", "EXIT_SIGNAL", "EXIT_HALT"],
        }
    )
    s = trade_statistics(trades, 3600)
    std = np.std([30.0, -10, 20, -20], ddof=1)
    assert s["sqn"] == pytest.approx(math.sqrt(4) * 5.0 / std)
    assert (s["expectancy"], s["profit_factor"]) == (5.0, pytest.approx(50 / 30))
    assert (s["long_trades"], s["short_trades"], s["max_holding_bars"]) == (3, 1, 8)
    assert s["avg_holding_bars"] == 5.0
    assert s["exits"] == {"EXIT_SIGNAL": 2, "EXIT_HALT": 1, "EXIT_STOP_LOSS": 1}
    empty = trade_statistics(trades.iloc[:0], 3600)
    assert (empty["trades"], empty["sqn"], empty["profit_factor"], empty["exits"]) == (
        0,
        None,
        None,
        {},
    )


class _Row:
    def __init__(self, **kw: object) -> None:
        self.__dict__.update(kw)


def test_exit_reasons_follow_the_closing_fills() -> None:
    orders = [
        _Row(id="a", reason="ENTRY"),
        _Row(id="b", reason="REVERSE"),
        _Row(id="c", reason="EXIT_STOP_LOSS"),
        _Row(id="d", reason="ENTRY"),
        _Row(id="e", reason="EXIT_SIGNAL"),
    ]
    fills = [
        _Row(order_id="a", side=1, quantity=1.0),
        _Row(order_id="b", side=-1, quantity=0.5),  # partial: still long
        _Row(order_id="b", side=-1, quantity=1.5),  # flips short: closes the long
        _Row(order_id="c", side=1, quantity=1.0),  # closes the short
        _Row(order_id="d", side=1, quantity=0.1 + 0.2),
        _Row(order_id="e", side=-1, quantity=0.3),  # rounding dust: still a close
    ]
    assert exit_reasons(orders, fills) == ["REVERSE", "EXIT_STOP_LOSS", "EXIT_SIGNAL"]


def _mapped_reasons(orders: list[_Row], fills: list[_Row], symbols: dict[str, str]) -> list[str]:
    """The rule as a mapping states it: each symbol's position replayed fill by fill, the
    reason of the last order of the closing fill's id ("" for an unknown id)."""
    reason = {str(o.id): str(o.reason) for o in orders}
    positions: dict[str, float] = {}
    found = []
    for f in fills:
        before = positions.get(symbols[f.order_id], 0.0)
        signed = f.side * f.quantity
        after = before + signed
        if abs(after) <= 1e-12 * max(abs(before), abs(signed)):
            after = 0.0
        if before != 0.0 and (after == 0.0 or (after > 0) != (before > 0)):
            found.append(reason.get(str(f.order_id), ""))
        positions[symbols[f.order_id]] = after
    return found


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", "d", "e"]),  # the order (an id twice, or unknown)
            st.sampled_from([-1, 1]),
            st.sampled_from([0.1, 0.2, 0.3, 1.0, 1.5]),
        ),
        max_size=30,
    ),
    st.lists(st.sampled_from(["ENTRY", "EXIT_SIGNAL", "REVERSE", "EXIT_HALT"]), min_size=6),
    st.booleans(),
)
def test_exit_reasons_are_the_closing_orders_reasons_by_id(
    rows: list[tuple[str, int, float]], reasons: list[str], two_symbols: bool
) -> None:
    # "a" to "c" are orders, "c" twice (the last wins), "d" of no order (no reason)
    orders = [_Row(id=i, reason=r) for i, r in zip("abcc", reasons, strict=False)]
    symbols = {i: ("ETH" if two_symbols and i in "bd" else "BTC") for i in "abcde"}
    fills = [_Row(order_id=i, side=side, quantity=q) for i, side, q in rows if i != "e"]
    assert exit_reasons(orders, fills, symbols) == _mapped_reasons(orders, fills, symbols)
    unique = [o for o in orders if o is not orders[2]]  # "c" once: looked up as an index
    assert exit_reasons(unique, fills, symbols) == _mapped_reasons(unique, fills, symbols)


@pytest.mark.filterwarnings("error")
def test_a_vanishing_loss_makes_the_trades_profit_factor_unbounded() -> None:
    trades = pd.DataFrame(
        {
            "pnl": [10.0, -5e-324, 2.5],
            "return": [0.1, -1e-320, 0.02],
            "holding_bars": [1, 2, 3],
            "entry_time": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"], utc=True),
            "exit_time": pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04"], utc=True),
            "side": ["long", "long", "short"],
            "exit_reason": ["EXIT_SIGNAL"] * 3,
        }
    )
    stats = trade_statistics(trades, 60)
    assert stats["profit_factor"] == math.inf
    assert trade_statistics(trades.iloc[[0, 2]], 60)["profit_factor"] is None


@settings(max_examples=50, deadline=None)
@given(
    steps=st.lists(st.floats(-0.05, 0.05), min_size=1, max_size=60),
    gaps=st.lists(st.integers(1, 10_000), min_size=60, max_size=60),
)
def test_a_sweep_s_drawdown_duration_from_nanoseconds_is_the_index_s(
    steps: list[float], gaps: list[int]
) -> None:
    equity = 100.0 * np.cumprod(1.0 + np.array(steps))
    times = pd.Timestamp("2024-01-01", tz="UTC").value + np.cumsum(gaps[: len(steps)]) * 60 * 10**9
    index = pd.DatetimeIndex(times.view("datetime64[ns]")).tz_localize("UTC")
    curve = pd.Series(equity, index=index)
    by_index = drawdown_duration(curve, 100.0)
    by_ns = drawdown_duration(curve, 100.0, np.asarray(times, np.int64))
    assert by_ns == by_index
    assert by_ns[1].total_seconds() == by_index[1].total_seconds()
