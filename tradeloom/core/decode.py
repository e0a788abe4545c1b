"""Reading event rows back as the domain's objects, in the run's order.

The per-event path: a live run journals each event before it acts, and the
monitors and observers see objects. A backtest writes its rows in bulk instead
(`tradeloom.core.columns`). Both read the same rows the same way, through the
run's `RowContext`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradeloom.core import codes
from tradeloom.core import layout as L
from tradeloom.domain import (
    Cancellation,
    Fill,
    Halt,
    ModelTraining,
    Order,
    Rejection,
    Signal,
)

__all__ = [
    "BarTimes",
    "Decoded",
    "RowContext",
    "decode",
    "funding_payload",
    "sliced_payload",
    "state_payload",
]


class BarTimes:
    """A `RowContext`'s ``times`` over a DatetimeIndex: each bar's time boxed once.

    Indexing a DatetimeIndex boxes a new Timestamp at every call (microseconds each),
    and a run's rows ask for the same bars again and again (a fill's bar, its trade's);
    `box` boxes the bars a batch of rows names at once.
    """

    def __init__(self, index: pd.DatetimeIndex) -> None:
        self.index = index
        self._boxed: dict[int, pd.Timestamp] = {}

    def __call__(self, bar: int) -> pd.Timestamp:
        """Return ``index[bar]``."""
        boxed = self._boxed.get(bar)
        if boxed is None:
            boxed = self._boxed[bar] = self.index[bar]
        return boxed

    def box(self, bars: npt.NDArray[np.int64]) -> None:
        """Box the times of ``bars`` (each once) for the calls to come."""
        bars = np.unique(bars)
        self._boxed.update(zip(bars.tolist(), self.index[bars], strict=True))


@dataclass
class RowContext:
    """What reading a run's rows needs besides the rows.

    Attributes:
        times: The open time of each bar (``times[bar]``).
        order_id: The client order id of order number ``seq``.
        table: The run's codes.
        refs: Python's objects that rows refer to (``EV_EXTERNAL``, a plugin's
            rejection or halt), by index.
        trainings_at: The model trainings journaled at each bar, in order.
        allowed_regimes: ``signal.regimes``.
        symbols: The symbols, by index.
        orders: The orders read so far, by number (fills and cancellations name them).
        order_seq: Their numbers, by client order id.
        order_rows: The symbol row of each order, by number.
        bar_length: The bars' length: the risk clock reads a bar at its close.
        order_prefix: ``order_id(n)`` is ``f"{order_prefix}-{n:06d}"`` (a backtest's ids,
            built in bulk); None: ask ``order_id``.
        groups: The names of ``risk.portfolio.groups``, in file order.
        prefixes: Per symbol row, the start of its orders' client ids (a portfolio
            file's books: ``f"{prefixes[row]}-{n:06d}"``); empty: ask ``order_id``.

    The table learns the symbols' and the groups' names unless it has its own, so a
    portfolio refusal names them (``CORRELATION: ... with ETH/USDT``).
    """

    times: Callable[[int], pd.Timestamp]
    order_id: Callable[[int], str]
    table: codes.CodeTable = field(default_factory=codes.CodeTable)
    refs: list[Any] = field(default_factory=list)
    trainings_at: Mapping[int, Sequence[ModelTraining]] = field(default_factory=dict)
    allowed_regimes: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ("",)
    orders: dict[int, Order] = field(default_factory=dict)
    order_seq: dict[str, int] = field(default_factory=dict)
    order_rows: dict[int, int] = field(default_factory=dict)
    bar_length: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(0))
    order_prefix: str | None = None
    groups: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.table.symbols:
            self.table.symbols = tuple(self.symbols)
        if not self.table.groups:
            self.table.groups = tuple(self.groups)

    def ref(self, obj: object) -> int:
        """Keep ``obj`` for a row to refer to; return its index."""
        self.refs.append(obj)
        return len(self.refs) - 1


@dataclass(frozen=True)
class Decoded:
    """One event read back.

    Attributes:
        kind: ``training``, ``signal``, ``decision``, ``rejection``, ``halt``, ``order``,
            ``fill``, ``cancel``, ``trade``, ``regime``, ``state``, ``liquidation``,
            ``sliced_order`` or ``external``.
        bar: Its bar.
        symbol: Its symbol's index (-1: the account).
        value: The object (a domain object, or a payload mapping).
        decision_bar: For fills and cancellations, the bar of the decision behind the
            order (the correlation id's bar); otherwise ``bar``.
    """

    kind: str
    bar: int
    symbol: int
    value: Any
    decision_bar: int


def _values(row: Sequence[float]) -> tuple[float, ...]:
    return tuple(float(v) for v in row[3:])


def decode(rows: npt.NDArray[np.float64], ctx: RowContext) -> Iterator[Decoded]:
    """Yield the events of ``rows`` in order."""
    seen: dict[int, int] = {}
    # read as Python floats at once: a numpy scalar per value cost more than the event
    for row in rows.tolist():
        kind, bar, sym = int(row[0]), int(row[1]), int(row[2])
        v = row[3:]
        ts = ctx.times(bar)
        if kind == L.EV_TRAINING:
            k = seen.get(bar, 0)
            seen[bar] = k + 1
            yield Decoded("training", bar, -1, ctx.trainings_at[bar][k], bar)
        elif kind == L.EV_SIGNAL:
            signal = Signal(bar, ts, int(v[0]), float(v[1]), float(v[2]))
            yield Decoded("signal", bar, sym, signal, bar)
        elif kind == L.EV_DECISION:
            payload = codes.decision(
                int(v[0]), int(v[1]), float(v[2]), ctx.allowed_regimes, ctx.table
            )
            yield Decoded("decision", bar, sym, payload, bar)
        elif kind == L.EV_REJECT:
            code = int(v[0])
            if code == 0:
                yield Decoded("rejection", bar, sym, ctx.refs[int(v[1])], bar)
            else:
                message, values = codes.describe(code, _values(row)[1:], ctx.table)
                rejection = Rejection(bar, ts, ctx.table.name(code), message, values)
                yield Decoded("rejection", bar, sym, rejection, bar)
        elif kind == L.EV_HALT:
            code = int(v[0])
            if code == 0:
                yield Decoded("halt", bar, sym, ctx.refs[int(v[1])], bar)
            else:
                message, values = codes.describe(code, _values(row)[1:], ctx.table)
                yield Decoded(
                    "halt", bar, sym, Halt(bar, ts, ctx.table.name(code), message, values), bar
                )
        elif kind == L.EV_ORDER:
            seq = int(v[0])
            kind_ = int(v[5])
            parent = int(v[7])
            order = Order(
                id=_order_id(ctx, sym, seq),
                bar=bar,
                timestamp=ts,
                side=int(v[1]),
                quantity=float(v[2]),
                reason=ctx.table.name(int(v[3])),
                reference_price=float(v[4]),
                kind=_ORDER_KINDS[kind_],
                stop_price=float(v[6]) if kind_ == L.ORDER_STOP else math.nan,
                limit_price=float(v[6]) if kind_ == L.ORDER_LIMIT else math.nan,
                parent_id=_order_id(ctx, sym, parent) if parent else None,
            )
            ctx.orders[seq] = order
            ctx.order_seq[order.id] = seq
            ctx.order_rows[seq] = sym
            yield Decoded("order", bar, sym, order, bar)
        elif kind == L.EV_FILL:
            order = ctx.orders[int(v[0])]
            fill = Fill(
                order.id, bar, ts, int(v[1]), float(v[2]), float(v[3]), float(v[4]), float(v[5]),
                L.LIQUIDITY[int(v[9])],
            )  # fmt: skip
            yield Decoded("fill", bar, sym, fill, int(v[6]))
        elif kind == L.EV_CANCEL:
            order = ctx.orders[int(v[0])]
            reason = ctx.table.name(int(v[2]))
            yield Decoded(
                "cancel", bar, sym, Cancellation(order.id, bar, ts, float(v[1]), reason), int(v[3])
            )
        elif kind == L.EV_TRADE:
            yield Decoded("trade", bar, sym, np.array(v[:8]), bar)
        elif kind == L.EV_REGIME:
            yield Decoded("regime", bar, sym, (int(v[0]), int(v[1])), bar)
        elif kind == L.EV_STATE:
            yield Decoded("state", bar, -1, state_payload(v, ctx, ts), bar)
        elif kind == L.EV_LIQUIDATION:
            payload = {
                "side": int(v[0]),
                "quantity": float(v[1]),
                "price": float(v[2]),
                "fee": float(v[3]),
                "equity_before": float(v[4]),
                "maintenance": float(v[5]),
            }
            yield Decoded("liquidation", bar, sym, payload, bar)
        elif kind == L.EV_FUNDING:
            yield Decoded("funding", bar, sym, funding_payload(v), bar)
        elif kind == L.EV_EXTERNAL:
            yield Decoded("external", bar, sym, ctx.refs[int(v[0])], bar)
        elif kind == L.EV_PARENT:
            yield Decoded(
                "sliced_order",
                bar,
                sym,
                sliced_payload(v, ctx, _order_id(ctx, sym, int(v[0]))),
                bar,
            )
        else:  # pragma: no cover - the core writes no other kind
            raise ValueError(f"unknown event row kind {kind} at bar {bar}")


_ORDER_KINDS: dict[int, Literal["market", "stop", "limit"]] = {
    L.ORDER_MARKET: "market",
    L.ORDER_STOP: "stop",
    L.ORDER_LIMIT: "limit",
}


def _order_id(ctx: RowContext, sym: int, seq: int) -> str:
    return f"{ctx.prefixes[sym]}-{seq:06d}" if ctx.prefixes else ctx.order_id(seq)


def sliced_payload(
    v: Sequence[float] | npt.NDArray[np.float64], ctx: RowContext, order_id: str
) -> dict[str, Any]:
    """Return the fields of a sliced order's row (``v``: its values), named ``order_id``."""
    twap = int(v[5]) == L.SLICE_TWAP
    return {
        "id": order_id,
        "side": int(v[1]),
        "quantity": float(v[2]),
        "reason": ctx.table.name(int(v[3])),
        "reference_price": float(v[4]),
        "slicing": "twap" if twap else "participation",
        "children": int(v[6]) if twap else 0,
        "max_volume_fraction": math.nan if twap else float(v[6]),
    }


def state_payload(
    v: Sequence[float] | npt.NDArray[np.float64], ctx: RowContext, ts: pd.Timestamp
) -> dict[str, Any]:
    """Return the fields of a trading state change row (``v``: its values)."""
    why = int(v[2])
    values = tuple(float(x) for x in v[3:6])
    if why == codes.DAILY_LOSS:
        message, _ = codes.describe(why, values, ctx.table)
    elif why == codes.DAY_ROLLOVER:
        day = pd.Timestamp(int(values[0]) * 86_400_000_000_000, tz="UTC")
        message = f"new UTC day {day:%Y-%m-%d}"
    else:
        message = ctx.table.name(why)
    return {
        "previous": codes.STATE_NAMES[int(v[0])],
        "state": codes.STATE_NAMES[int(v[1])],
        "code": ctx.table.name(why),
        "message": message,
        "at": ts + ctx.bar_length,
    }


def funding_payload(v: Sequence[float] | npt.NDArray[np.float64]) -> dict[str, Any]:
    """Return the fields of a funding row (``v``: its values, `tradeloom.core.funding`)."""
    return {
        "rate": float(v[0]),
        "price": float(v[1]),
        "position": float(v[2]),
        "amount": float(v[3]),
        "cash": float(v[8]),
    }
