"""Each trade's entry reason is the reason of the order whose fill opened it: the lookup
at array speed gives what a merge of the run's orders and fills gives."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.reporting.run_data import _entry_reasons

IDS = [f"run-{k:06d}" for k in range(6)]
REASONS = ["ENTRY", "EXIT_SIGNAL", "STOP_LOSS", "RISK_REDUCE"]
SYMBOLS = ["BTC/USDT", "ETH/USDT"]


def merged(trades: pd.DataFrame, orders: pd.DataFrame, fills: pd.DataFrame) -> list[str]:
    """The reasons as a merge finds them: each fill's order (the last of an id), the
    first fill of each entry's strategy, symbol and bar."""
    fills = fills.assign(
        reason=fills["order_id"].map(dict(zip(orders["id"], orders["reason"], strict=True)))
    )
    keys = [k for k in ("strategy", "symbol") if k in fills and k in trades]
    first = fills.drop_duplicates([*keys, "bar"])[[*keys, "bar", "reason"]]
    out = trades.merge(
        first.rename(columns={"bar": "entry_bar", "reason": "entry_reason"}),
        how="left",
        on=[*keys, "entry_bar"],
    )
    return out["entry_reason"].fillna("").tolist()


ORDERS = st.lists(st.tuples(st.sampled_from(IDS), st.sampled_from(REASONS)), min_size=1)
FILLS = st.lists(
    st.tuples(st.sampled_from([*IDS, "unknown"]), st.sampled_from(SYMBOLS), st.integers(0, 4))
)
TRADES = st.lists(st.tuples(st.sampled_from(SYMBOLS), st.integers(0, 5)), min_size=1)


@settings(max_examples=examples(50), deadline=None)
@given(ORDERS, FILLS, TRADES, st.booleans(), st.booleans())
def test_each_trades_entry_reason_is_its_first_fills_orders(
    orders: list[tuple[str, str]],
    fills: list[tuple[str, str, int]],
    trades: list[tuple[str, int]],
    in_order: bool,
    strategies: bool,
) -> None:
    if in_order:  # a backtest's: each order filled once, in the order of the orders
        orders = [(IDS[k % len(IDS)] + f"-{k:03d}", reason) for k, (_, reason) in enumerate(orders)]
        fills = [(order_id, SYMBOLS[0], k) for k, (order_id, _) in enumerate(orders)]
    order_frame = pd.DataFrame(orders, columns=["id", "reason"])
    fill_frame = pd.DataFrame(fills, columns=["order_id", "symbol", "bar"]).astype(
        {"order_id": "str", "symbol": "str", "bar": "int64"}
    )
    half = len(fill_frame) // 2  # text columns in two chunks, as a long file reads
    fill_frame = pd.concat([fill_frame[:half], fill_frame[half:]], ignore_index=True)
    trade_frame = pd.DataFrame(trades, columns=["symbol", "entry_bar"])
    if strategies:  # a portfolio's: its strategies' own orders
        fill_frame["strategy"] = ["a" if k % 3 else "b" for k in range(len(fill_frame))]
        trade_frame["strategy"] = ["a" if k % 2 else "b" for k in range(len(trade_frame))]
    with tempfile.TemporaryDirectory() as folder:
        run_dir = Path(folder)
        order_frame.to_csv(run_dir / "orders.csv", index=False)
        fill_frame.to_csv(run_dir / "fills.csv", index=False)
        written = {"orders.csv": order_frame, "fills.csv": fill_frame}
        for given_frames in ({}, written):  # read back, and as this process wrote them
            found = _entry_reasons(run_dir, trade_frame, given_frames)
            assert found["entry_reason"].tolist() == merged(trade_frame, order_frame, fill_frame)
            assert found.drop(columns="entry_reason").equals(trade_frame)
