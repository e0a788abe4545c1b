"""Writing event rows: one ``emit_<kind>`` per record, the one way the core records what happened.

A row is ``kind, bar, symbol`` and `VALUES` values, each kind's declared in
`tradeloom.core.records`. Each record has its emitter here, named after it and taking
its fields by name: ``emit_fill`` writes a `records.FILL` row. An emitter takes the
rows (``ev``) and their count (``cur``), the bar, the symbol (not for a kind whose rows
are the account's: symbol -1), then the fields: as plain arguments, or, for a kind with
more fields than a kernel takes arguments, a named tuple whose fields are the record's
(`tradeloom.core.context.Order`, `tradeloom.core.context.FillReport`, `Liquidation`,
`Funding`). A field of several values (a rejection's) is a tuple of floats, as many as
the code has. Each emitter lists its values in the record's order; tests/core/test_rows.py
writes every field by name and reads it back through the record, so an emitter and its
record cannot drift apart.

The caller guarantees room (`run_bars` checks it once per bar, Python before it feeds
a venue's events).
"""

from __future__ import annotations

from typing import NamedTuple

from tradeloom.core.context import FillReport, Order
from tradeloom.core.layout import (
    C_COUNT,
    EV_CANCEL,
    EV_DECISION,
    EV_EXTERNAL,
    EV_FILL,
    EV_FUNDING,
    EV_HALT,
    EV_LIQUIDATION,
    EV_ORDER,
    EV_PARENT,
    EV_REGIME,
    EV_REJECT,
    EV_SIGNAL,
    EV_STATE,
    EV_TRADE,
    EV_TRAINING,
)
from tradeloom.core.records import (
    BAR,
    HEAD,
    KIND,
    REJECT,
    SYMBOL,
    TRADE_SIZE,
    TRADE_VALUES,
    WIDTH,
)
from tradeloom.kernels.jit import core_kernel, core_loop
from tradeloom.runtime.lazy import numpy as np

__all__ = [
    "Funding",
    "Liquidation",
    "emit_cancel",
    "emit_decision",
    "emit_external",
    "emit_fill",
    "emit_funding",
    "emit_halt",
    "emit_liquidation",
    "emit_order",
    "emit_regime",
    "emit_rejection",
    "emit_signal",
    "emit_sliced_order",
    "emit_state",
    "emit_trade",
    "emit_training",
]

_ACCOUNT = -1
"""The symbol of a row that is the account's."""
_REJECT_PURPOSE = REJECT.column("purpose")


class Liquidation(NamedTuple):
    """A liquidation's fields (`records.LIQUIDATION`)."""

    side: int
    quantity: float
    price: float
    fee: float  # the liquidation fee
    equity_before: float
    maintenance: float  # the maintenance margin it fell below


class Funding(NamedTuple):
    """A funding's own fields (`records.FUNDING`; the account's after it are `emit_funding`'s)."""

    rate: float
    price: float
    quantity: float  # the position funded
    amount: float  # + received


@core_loop
def _open(ev: np.ndarray, cur: np.ndarray, kind: int, bar: int, symbol: int) -> int:
    """Append a row of ``kind`` and write its head; return its index.

    This and `_row` are called, not inlined (`core_loop`): inlined into each of the
    emitters' 57 call sites, numba copied and typed them at every one, and the bar's
    step compiled from an empty cache in 63.9 s of CPU against 56.6 s for the one
    generic emit it replaced; called, 48.0 s against 52.1 s, and the step ran as fast
    (benchmarks/bench_step_compile.py, each pair side by side, 2026-11-26).
    """
    i = cur[C_COUNT]
    ev[i, KIND] = kind
    ev[i, BAR] = bar
    ev[i, SYMBOL] = symbol
    cur[C_COUNT] = i + 1
    return i  # type: ignore[no-any-return]


@core_loop
def _row(
    ev: np.ndarray, cur: np.ndarray, kind: int, bar: int, symbol: int, values: tuple[float, ...]
) -> None:
    """Append a row of ``kind`` whose first values are ``values`` (floats), the rest 0."""
    i = _open(ev, cur, kind, bar, symbol)
    n = len(values)
    for k in range(n):
        ev[i, HEAD + k] = values[k]
    for k in range(HEAD + n, WIDTH):
        ev[i, k] = 0.0


@core_kernel
def emit_training(ev: np.ndarray, cur: np.ndarray, bar: int, index: int) -> None:
    """Record the ``index``-th walk-forward training of bar ``bar``."""
    _row(ev, cur, EV_TRAINING, bar, _ACCOUNT, (float(index),))


@core_kernel
def emit_signal(
    ev: np.ndarray,
    cur: np.ndarray,
    bar: int,
    symbol: int,
    direction: int,
    confidence: float,
    probability: float,
) -> None:
    """Record the signal rule's signal."""
    _row(ev, cur, EV_SIGNAL, bar, symbol, (float(direction), float(confidence), float(probability)))


@core_kernel
def emit_decision(
    ev: np.ndarray,
    cur: np.ndarray,
    bar: int,
    symbol: int,
    outcome: int,
    reason: int,
    target_fraction: float,
) -> None:
    """Record what the risk layer did with a signal it did not reject."""
    values = (float(outcome), float(reason), float(target_fraction))
    _row(ev, cur, EV_DECISION, bar, symbol, values)


@core_kernel
def emit_rejection(
    ev: np.ndarray,
    cur: np.ndarray,
    bar: int,
    symbol: int,
    code: int,
    values: tuple[float, ...],
    purpose: int,
) -> None:
    """Record a refused intent or order: ``code`` and its ``values`` (floats; code 0: a
    plugin's ref), and ``purpose``, the order reason of what was refused."""
    _row(ev, cur, EV_REJECT, bar, symbol, (float(code), *values))
    ev[cur[C_COUNT] - 1, _REJECT_PURPOSE] = purpose


@core_kernel
def emit_halt(
    ev: np.ndarray, cur: np.ndarray, bar: int, code: int, values: tuple[float, ...]
) -> None:
    """Record that trading halted: ``code`` and its ``values`` (floats; code 0: a Python ref)."""
    _row(ev, cur, EV_HALT, bar, _ACCOUNT, (float(code), *values))


@core_kernel
def _order_head(seq: float, order: Order) -> tuple[float, float, float, float, float]:
    """Return the values an order row and a sliced order's row begin with."""
    side, quantity, reason = float(order.side), float(order.quantity), float(order.reason)
    return float(seq), side, quantity, reason, float(order.reference_price)


@core_kernel
def emit_order(
    ev: np.ndarray, cur: np.ndarray, bar: int, symbol: int, seq: float, order: Order
) -> None:
    """Record order number ``seq``."""
    values = (*_order_head(seq, order), float(order.type), float(order.price), float(order.parent))
    _row(ev, cur, EV_ORDER, bar, symbol, values)


@core_kernel
def emit_fill(
    ev: np.ndarray,
    cur: np.ndarray,
    bar: int,
    symbol: int,
    fill: FillReport,
    position: float,
    cash: float,
) -> None:
    """Record ``fill``, and the symbol's ``position`` and the account's ``cash`` after it."""
    values = (
        float(fill.seq),
        float(fill.side),
        float(fill.quantity),
        float(fill.price),
        float(fill.fee),
        float(fill.slippage),
        float(fill.decision_bar),
        float(position),
        float(cash),
        float(fill.liquidity),
    )
    _row(ev, cur, EV_FILL, bar, symbol, values)


@core_kernel
def emit_cancel(
    ev: np.ndarray,
    cur: np.ndarray,
    bar: int,
    symbol: int,
    seq: float,
    remaining: float,
    reason: int,
    decision_bar: float,
) -> None:
    """Record that a venue stopped working order ``seq``."""
    values = (float(seq), float(remaining), float(reason), float(decision_bar))
    _row(ev, cur, EV_CANCEL, bar, symbol, values)


@core_kernel
def emit_trade(ev: np.ndarray, cur: np.ndarray, bar: int, symbol: int, trade: np.ndarray) -> None:
    """Record the round trip ``trade`` holds (`tradeloom.core.accounting.TRADE_FIELDS`)."""
    i = _open(ev, cur, EV_TRADE, bar, symbol)
    for k in range(TRADE_SIZE):
        ev[i, TRADE_VALUES + k] = trade[k]
    for k in range(TRADE_VALUES + TRADE_SIZE, WIDTH):
        ev[i, k] = 0.0


@core_kernel
def emit_regime(
    ev: np.ndarray, cur: np.ndarray, bar: int, symbol: int, code: int, previous: float
) -> None:
    """Record that the symbol's regime is ``code``, ``previous`` at the bar before."""
    _row(ev, cur, EV_REGIME, bar, symbol, (float(code), float(previous)))


@core_kernel
def emit_state(
    ev: np.ndarray,
    cur: np.ndarray,
    bar: int,
    previous: int,
    state: int,
    code: int,
    values: tuple[float, ...],
) -> None:
    """Record that the trading state moved from ``previous`` to ``state`` for ``code``."""
    _row(ev, cur, EV_STATE, bar, _ACCOUNT, (float(previous), float(state), float(code), *values))


@core_kernel
def emit_liquidation(
    ev: np.ndarray, cur: np.ndarray, bar: int, symbol: int, liquidation: Liquidation
) -> None:
    """Record that the symbol's margin position was liquidated."""
    values = (
        float(liquidation.side),
        float(liquidation.quantity),
        float(liquidation.price),
        float(liquidation.fee),
        float(liquidation.equity_before),
        float(liquidation.maintenance),
    )
    _row(ev, cur, EV_LIQUIDATION, bar, symbol, values)


@core_kernel
def emit_external(ev: np.ndarray, cur: np.ndarray, bar: int, symbol: int, ref: int) -> None:
    """Record a row standing for Python's object number ``ref``."""
    _row(ev, cur, EV_EXTERNAL, bar, symbol, (float(ref),))


@core_kernel
def emit_sliced_order(
    ev: np.ndarray,
    cur: np.ndarray,
    bar: int,
    symbol: int,
    seq: float,
    order: Order,
    slicing: float,
    detail: float,
) -> None:
    """Record sliced order number ``seq`` (``order``'s type, price and parent are its
    children's): its ``slicing`` and ``detail`` (a TWAP's children, a volume fraction)."""
    values = (*_order_head(seq, order), float(slicing), float(detail))
    _row(ev, cur, EV_PARENT, bar, symbol, values)


@core_kernel
def emit_funding(
    ev: np.ndarray,
    cur: np.ndarray,
    bar: int,
    symbol: int,
    funding: Funding,
    position: float,
    cash: float,
) -> None:
    """Record ``funding``, and the symbol's ``position`` and the account's ``cash`` after it."""
    values = (
        float(funding.rate),
        float(funding.price),
        float(funding.quantity),
        float(funding.amount),
        0.0,
        0.0,
        0.0,
        float(position),
        float(cash),
    )
    _row(ev, cur, EV_FUNDING, bar, symbol, values)
