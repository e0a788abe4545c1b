"""The rule between a rebalance's weights and its fills, as a property over random weights.

An allocator (`tests/fixtures/plugins/given_allocator.py`) answers weight vectors drawn
here, some a solver's ~0 (1e-12, -1e-12, 3e-9, 5e-7), some whose positions are below the
venue's minimum order (50 on 10,000), the rest ordinary. After each rebalance (filled at
its close) every symbol holds what the documented rule says, worked out here from the
journal's weights and the run's own equity and closes:

- a weight within 1e-6 of zero is 0 (`tradeloom.engine.rebalance.tradable`);
- a change below ``min_trade`` is not traded, unless its target is 0;
- the target position is ``w * equity / (close * (1 + slippage) * (1 + fee))``; worth
  less than the minimum, it is 0 (`tradeloom.core.dust`);
- an order (target minus held) worth less than the minimum is refused ``BELOW_MINIMUM``
  and the position stays, unless the target is 0 and the position is flat or dust: then
  nothing is sent and nothing is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tradeloom
from tests.hunting import examples

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "plugins"
SYMBOLS = ("AAA/USDT", "BBB/USDT", "CCC/USDT")
CASH, MINIMUM, NET = 10_000.0, 50.0, 0.9
SLIPPAGE, FEE = 5e-4, 1e-3
EVERY, REBALANCES = 3, 5
BARS = 2 + EVERY * REBALANCES

ZERO = st.sampled_from([1e-12, -1e-12, 3e-9, 5e-7, 0.0])
"""A solver's weight at its bound of 0."""
BELOW = st.floats(0.0005, 0.0045)
"""A weight whose position (of ~10,000) is below the minimum order of 50."""


@st.composite
def weight_rows(draw: st.DrawFn) -> list[list[float]]:
    """Weight vectors summing to `NET`: each symbol a ~0, a weight below the minimum, or
    a share of what those leave (at least one symbol takes a share)."""
    rows = []
    for _ in range(REBALANCES):
        kinds = draw(st.lists(st.sampled_from("zbs"), min_size=3, max_size=3))
        if "s" not in kinds:
            kinds[draw(st.integers(0, 2))] = "s"
        row = [draw(ZERO) if k == "z" else draw(BELOW) if k == "b" else 0.0 for k in kinds]
        shares = [draw(st.floats(0.1, 1.0)) if k == "s" else 0.0 for k in kinds]
        left = NET - sum(row)
        row = [w + left * s / sum(shares) for w, s in zip(row, shares, strict=True)]
        rows.append(row)
    return rows


@pytest.fixture(scope="module", autouse=True)
def given_allocator() -> Iterator[None]:
    """Make the test allocator importable (``plugins: [given_allocator]``)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(FIXTURES))
        yield


def _bars(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    times = pd.date_range("2024-01-01", periods=BARS, freq="h", tz="UTC", name="timestamp")
    parts = []
    for symbol in SYMBOLS:
        close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, BARS)))
        open_ = np.r_[close[0], close[:-1]]
        parts.append(
            pd.DataFrame(
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
        )
    return pd.concat(parts).sort_index(kind="stable")


def _strategy(rows: list[list[float]], min_trade: float | None) -> tradeloom.Strategy:
    constraints: dict[str, float] = {"net_exposure": NET}
    if min_trade is not None:
        constraints["min_trade"] = min_trade
    document = {
        "name": "given_weights",
        "plugins": ["given_allocator"],
        "data": {"kind": "synthetic", "symbols": list(SYMBOLS), "timeframe": "1h"},
        "features": [{"kind": "log_return", "period": 1}],
        "model": {"kind": "precomputed", "column": "p_up", "horizon": 1},
        "signal": {"kind": "threshold", "threshold": 0.2},
        "allocation": {
            "kind": "given",
            "weights": rows,
            "window": 2,
            "constraints": constraints,
            "rebalance": {"every": EVERY},
        },
        "risk": {"sizing": {"kind": "fixed_fraction", "fraction": 0.1}},
        "execution": {
            "kind": "simulated",
            "initial_cash": CASH,
            "fill": "close",
            "min_notional": MINIMUM,
            "slippage_bps": SLIPPAGE * 1e4,
            "fee_bps": FEE * 1e4,
            "allow_short": True,  # a margin account: no purchase is cut to the cash
        },
    }
    return tradeloom.load(document)


def _expected(
    weight: float, held_weight: float, position: float, equity: float, close: float,
    min_trade: float | None,
) -> tuple[float, bool]:  # fmt: skip
    """Return the rule's position after a rebalance, and whether its order is refused."""
    if abs(weight) < 1e-6:
        weight = 0.0
    if min_trade is not None and weight != 0.0 and abs(weight - held_weight) < min_trade:
        return position, False
    target = weight * equity / (close * (1.0 + SLIPPAGE) * (1.0 + FEE))
    if abs(target) * close < MINIMUM:
        target = 0.0
    if abs(target - position) * close < MINIMUM:
        refused = not (target == 0.0 and abs(position) * close < MINIMUM) and target != position
        return position, refused
    return target, False


@pytest.mark.slow
@settings(max_examples=examples(150, suite=8), deadline=None)
@given(
    rows=weight_rows(),
    min_trade=st.sampled_from([None, 0.01]),
    seed=st.integers(0, 2**16),
)
def test_each_rebalance_holds_what_the_rule_says(
    rows: list[list[float]], min_trade: float | None, seed: int
) -> None:
    bars = _bars(seed)
    run = _strategy(rows, min_trade).with_data(bars).backtest(quiet=True)
    close = bars.pivot(columns="symbol", values="close")[list(SYMBOLS)].to_numpy()
    positions = run.positions.pivot(index="bar", columns="symbol", values="position")
    held = positions.reindex(index=range(BARS), columns=list(SYMBOLS)).fillna(0.0).to_numpy()
    cash = run.equity["cash"].to_numpy(np.float64)
    decisions = run.journal("allocation_decided")
    assert len(decisions) == REBALANCES
    refused = 0
    for row in decisions.itertuples():
        t = int(row.bar)
        before = held[t - 1]
        equity = cash[t - 1] + float(before @ close[t])  # marked at the decision's close
        for s in range(len(SYMBOLS)):
            want, no = _expected(
                row.weights[s], row.held[s], before[s], equity, close[t, s], min_trade
            )
            assert held[t, s] == pytest.approx(want, rel=1e-9, abs=1e-12), (t, s)
            refused += no
    rejected = run.metrics["refusals"]["rejected"]
    assert rejected.get("BELOW_MINIMUM", {}).get("REBALANCE", 0) == refused
    assert run.metrics["refusals_total"] == refused
