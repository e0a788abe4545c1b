"""A rebalance reaches its target, on real prices (six S&P 500 stocks, daily, 2015-2022).

A solver's weight at its lower bound comes back as ~1e-12 (or a few 1e-9): the rebalance
used to size a target position below the venue's minimum and refuse its order
(``BELOW_MINIMUM``), so the whole old position was kept, rebalance after rebalance
(minimum variance held AAPL for years at a target of 0). A target within 1e-6 of zero,
or whose position is below the minimum, is now a target of zero: the position is closed
(`tradeloom.engine.rebalance.tradable`, `tradeloom.core.dust`). On a margin account
(``allow_short``) a rebalance's pre-trade check nets the same rebalance's sales, sent
first, so its purchases pass.

The reference is vectorbt's ``Portfolio.from_orders`` with target-percent sizing, driven
by the run's own journaled weights under the documented rule: each weight within 1e-6 of
zero made 0, a change below ``min_trade`` left untraded unless its target is 0, the
weight over ``(1 + slippage)(1 + fee)`` (the core sizes a target after costs), valued at
the decision's close and filled at the next open, sales first (``call_seq="auto"``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import tradeloom
from tests.reference_libraries import ON_VECTORBTS_WORKER

pytest.importorskip("skfolio")

SYMBOLS = ("AAPL", "JNJ", "KO", "PG", "WMT", "XOM")
SLIPPAGE, FEE, MIN_TRADE = 5e-4, 1e-3, 0.005
CASH = 100_000.0


def _prices() -> pd.DataFrame:
    """The six stocks' daily closes of 2015-2022 as bars: each open the previous close."""
    from skfolio.datasets import load_sp500_dataset

    closes = load_sp500_dataset().loc["2015-01-01":"2022-12-31", list(SYMBOLS)]
    times = pd.DatetimeIndex(closes.index, tz="UTC", name="timestamp")
    parts = []
    for symbol in SYMBOLS:
        close = closes[symbol].to_numpy(np.float64)
        open_ = np.r_[close[0], close[:-1]]
        frame = pd.DataFrame(
            {
                "symbol": symbol,
                "open": open_,
                "high": np.maximum(open_, close),
                "low": np.minimum(open_, close),
                "close": close,
                "volume": 1e9,
                "p_up": 0.5,
            },
            index=times,
        )
        parts.append(frame)
    return pd.concat(parts).sort_index(kind="stable")


def _document(
    bars: Path, constraints: dict[str, Any], *, allow_short: bool, sides: str = "both"
) -> dict[str, Any]:
    return {
        "name": "sp500_min_variance",
        "data": {
            "kind": "parquet",
            "path": str(bars),
            "symbol_column": "symbol",
            "symbols": list(SYMBOLS),
            "timeframe": "1d",
            "calendar": "XNYS",
        },
        "features": [{"kind": "log_return", "period": 1}],
        "model": {"kind": "precomputed", "column": "p_up", "horizon": 1},
        "signal": {"kind": "threshold", "threshold": 0.2, "sides": sides},
        "allocation": {
            "kind": "minimum_variance",
            "window": 250,
            "constraints": constraints,
            "rebalance": {"calendar": "monthly"},
        },
        "risk": {"sizing": {"kind": "fixed_fraction", "fraction": 0.1}},
        "execution": {
            "kind": "simulated",
            "initial_cash": CASH,
            "slippage_bps": SLIPPAGE * 1e4,
            "fee_bps": FEE * 1e4,
            "allow_short": allow_short,
        },
    }


LONG_ONLY = {"max_weight": 0.3, "net_exposure": 0.98, "min_trade": MIN_TRADE}
LONG_SHORT = {
    "side": "long_short",
    "net_exposure": 0.8,
    "gross_exposure": 0.98,
    "min_weight": -0.3,
    "max_weight": 0.3,
}


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    return _prices()


@pytest.fixture(scope="module")
def backtest(
    prices: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., tradeloom.Run]:
    """Backtest minimum variance over the six stocks (each run once a module)."""
    bars = tmp_path_factory.mktemp("sp500") / "sp500.parquet"
    prices.reset_index().to_parquet(bars)
    runs: dict[tuple[str, bool, str], tradeloom.Run] = {}

    def run(
        constraints: dict[str, Any], *, allow_short: bool = False, sides: str = "both"
    ) -> tradeloom.Run:
        key = (repr(sorted(constraints.items())), allow_short, sides)
        if key not in runs:
            document = _document(bars, constraints, allow_short=allow_short, sides=sides)
            runs[key] = tradeloom.load(document).backtest(quiet=True)
        return runs[key]

    return run


def _wide(prices: pd.DataFrame, column: str) -> pd.DataFrame:
    return prices.pivot(columns="symbol", values=column)[list(SYMBOLS)]


def _decisions(run: tradeloom.Run) -> pd.DataFrame:
    frame = run.journal("allocation_decided")
    assert set(frame["status"]) == {"ok"}
    return frame


def _held(run: tradeloom.Run, bars: int) -> np.ndarray:
    """Return each bar's position per symbol (``[bars, symbols]``)."""
    positions = run.positions.pivot(index="bar", columns="symbol", values="position")
    wide = positions.reindex(index=range(bars), columns=list(SYMBOLS))
    return wide.fillna(0.0).to_numpy(np.float64)


def _refused(run: tradeloom.Run) -> int:
    return int(run.metrics["refusals_total"])


def _vectorbt_equity(
    prices: pd.DataFrame, decisions: pd.DataFrame, *, min_trade: float | None, short: bool
) -> np.ndarray:
    """vectorbt's equity, its target percents the journaled weights under the rule."""
    vbt = pytest.importorskip("vectorbt")
    close, open_ = _wide(prices, "close"), _wide(prices, "open")
    size = np.full(close.shape, np.nan)
    for row in decisions.itertuples():
        weights = np.array(row.weights, dtype=np.float64)
        held = np.array(row.held, dtype=np.float64)
        weights[np.abs(weights) < 1e-6] = 0.0
        target = weights / ((1.0 + SLIPPAGE) * (1.0 + FEE))
        if min_trade is not None:
            target[(np.abs(weights - held) < min_trade) & (weights != 0.0)] = np.nan
        size[int(row.bar) + 1] = target  # decided at the close, filled at the next open
    portfolio = vbt.Portfolio.from_orders(
        close.to_numpy(),
        size=size,
        size_type="targetpercent",
        price=open_.to_numpy(),
        val_price=close.shift(1).to_numpy(),  # valued, as sized, at the decision's close
        fees=FEE,
        slippage=SLIPPAGE,
        init_cash=CASH,
        cash_sharing=True,
        group_by=True,
        call_seq="auto",
        direction="both" if short else "longonly",
        freq="1D",
    )
    return np.asarray(portfolio.value().to_numpy(), dtype=np.float64)


@pytest.mark.slow
def test_minimum_variance_holds_no_symbol_it_weighs_at_zero(
    prices: pd.DataFrame, backtest: Callable[..., tradeloom.Run]
) -> None:
    run = backtest(LONG_ONLY)
    decisions = _decisions(run)
    held = _held(run, len(_wide(prices, "close")))
    weights = np.array([list(w) for w in decisions["weights"]])
    before = np.array([list(h) for h in decisions["held"]])
    zero = np.abs(weights) < 1e-6
    # the case: a solver's zero over a position held (AAPL among them), 3 times
    assert (zero & (before > 0.01)).sum() >= 3
    assert 0.0 < weights[zero].max() < 1e-6  # a solver's ~0, not an exact 0
    bars = decisions["bar"].to_numpy() + 1  # filled at the next open
    after = held[bars]
    assert (after[zero] == 0.0).all()
    assert (after[weights >= MIN_TRADE] != 0.0).all()
    assert _refused(run) == 0  # no BELOW_MINIMUM, no cut


@pytest.mark.slow
@ON_VECTORBTS_WORKER
def test_its_equity_is_vectorbts_driven_by_the_journaled_weights(
    prices: pd.DataFrame, backtest: Callable[..., tradeloom.Run]
) -> None:
    run = backtest(LONG_ONLY)
    expected = _vectorbt_equity(prices, _decisions(run), min_trade=MIN_TRADE, short=False)
    equity = run.equity["equity"].to_numpy(np.float64)
    np.testing.assert_allclose(equity, expected, rtol=1e-9, atol=0.0)


@pytest.mark.slow
def test_on_a_margin_account_the_rebalance_passes_as_on_cash(
    backtest: Callable[..., tradeloom.Run],
) -> None:
    """Long-only weights summing to 0.98 on an ``allow_short`` account: every purchase is
    checked after the same rebalance's sales (sent first), so none is refused
    ``INSUFFICIENT_MARGIN`` and the fills are the cash account's."""
    margin = backtest(LONG_ONLY, allow_short=True)
    cash = backtest(LONG_ONLY)
    assert _refused(margin) == 0
    columns = ["bar", "symbol", "side", "quantity", "price", "fee"]
    pd.testing.assert_frame_equal(margin.fills[columns], cash.fills[columns])
    np.testing.assert_array_equal(margin.equity["equity"], cash.equity["equity"])


@pytest.mark.slow
@ON_VECTORBTS_WORKER
def test_a_long_short_minimum_variance_rebalances_in_full(
    prices: pd.DataFrame, backtest: Callable[..., tradeloom.Run]
) -> None:
    run = backtest(LONG_SHORT, allow_short=True)
    decisions = _decisions(run)
    assert (np.array([list(w) for w in decisions["weights"]]) < -0.01).any()  # it shorts
    assert _refused(run) == 0
    expected = _vectorbt_equity(prices, decisions, min_trade=None, short=True)
    equity = run.equity["equity"].to_numpy(np.float64)
    np.testing.assert_allclose(equity, expected, rtol=1e-9, atol=0.0)


@pytest.mark.slow
def test_signal_sides_long_keeps_long_short_weights_long(
    backtest: Callable[..., tradeloom.Run],
) -> None:
    """``signal.sides: long`` holds with an allocation layer: the weights' lower bounds
    are 0, so minimum variance solves long-only under the rest of the constraints (the
    key used to be ignored: the same run shorted)."""
    run = backtest(LONG_SHORT, allow_short=True, sides="long")
    weights = np.array([list(w) for w in _decisions(run)["weights"]])
    assert weights.min() > -1e-6
    assert np.allclose(weights.sum(axis=1), LONG_SHORT["net_exposure"], atol=1e-6)
    assert (run.positions["position"] >= 0.0).all()
    assert _refused(run) == 0
