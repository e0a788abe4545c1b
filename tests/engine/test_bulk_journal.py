"""`rows_to_batches`: the order ids a bulk write gives orders, fills and cancellations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tradeloom.core import codes
from tradeloom.core import layout as L
from tradeloom.core.columns import RowContext
from tradeloom.engine.bulk_journal import rows_to_batches
from tradeloom.journal import FillEvent, OrderCancelled, OrderEvent


def _row(kind: int, bar: int, *values: float) -> list[float]:
    return [kind, bar, 0, *values, *[0.0] * (L.EV_VALUES - len(values))]


def _rows() -> np.ndarray:
    return np.array(
        [
            _row(L.EV_ORDER, 1, 1, 1, 2.0, codes.ENTRY, 100.0, 0, np.nan),
            _row(L.EV_FILL, 1, 1, 1, 2.0, 100.0, 0.1, 0.0, 1, 2.0, 0.0),
            _row(L.EV_ORDER, 2, 3, -1, 2.0, codes.EXIT_SIGNAL, 101.0, 0, np.nan),
            _row(L.EV_CANCEL, 2, 3, 2.0, codes.REPLACED, 2),
            _row(L.EV_ORDER, 3, 12, 1, 1.0, codes.ENTRY, 99.0, 0, np.nan),
            _row(L.EV_FILL, 3, 12, 1, 1.0, 99.0, 0.1, 0.0, 3, 1.0, 0.0),
            _row(L.EV_FILL, 4, 2, -1, 1.0, 98.0, 0.1, 0.0, 0, 0.0, 0.0),  # an earlier write's
        ]
    )


@pytest.mark.parametrize("prefix", ["run", "we%ird-%d", "a%%b", "x\0y", None])
def test_orders_fills_and_cancels_carry_the_ids_of_the_per_event_path(prefix: str | None) -> None:
    def order_id(n: int) -> str:
        return f"{prefix or 'asked'}-{n:06d}"

    ctx = RowContext(times=lambda i: pd.Timestamp(0), order_id=order_id, order_prefix=prefix)
    times = np.arange(10, dtype=np.int64) * 60_000_000_000
    batches = {b.kind: b for b in rows_to_batches(_rows(), ctx, times, "BTC/USDT").batches}
    assert batches[OrderEvent].columns["id"] == [order_id(1), order_id(3), order_id(12)]
    assert batches[FillEvent].columns["order_id"] == [order_id(1), order_id(12), order_id(2)]
    assert batches[OrderCancelled].columns["order_id"] == [order_id(3)]
    assert batches[FillEvent].positions.tolist() == [1, 5, 6]
