"""A backtest's event rows into the journal in bulk: one column batch per kind.

The compiled core records what happened as rows of floats (`tradeloom.core.layout`);
`rows_to_batches` turns every kind's rows into the columns of its typed event
(`tradeloom.journal`) with numpy, so the journal writes them without a Python object
per event (`tradeloom.journal.JournalStore.write_columns`). Texts are built once per
distinct value (an order reason, a regime's labels), except the messages of the
rarer kinds (rejections, halts, state changes), built row by row. Rows that stand for
a Python object (a plugin's rejection, a health change) are written from it.

A per-event decoding of the same rows (`tradeloom.core.decode`) gives the same events:
the drivers' journals are identical whichever path wrote them.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradeloom.core import codes
from tradeloom.core import layout as L
from tradeloom.core.decode import RowContext, funding_payload, sliced_payload, state_payload
from tradeloom.domain import HealthAction, HealthChange, ModelTraining
from tradeloom.journal import (
    ColumnBatch,
    Event,
    FillEvent,
    FundingPayment,
    HaltEvent,
    HealthActionFired,
    HealthChanged,
    Liquidation,
    ModelTrained,
    OrderCancelled,
    OrderEvent,
    RegimeChanged,
    RejectionEvent,
    RiskDecision,
    SignalEvent,
    SlicedOrder,
    TradingStateChanged,
)
from tradeloom.plugins.signal.regime import trend_label, volatility_label

__all__ = ["BulkRows", "rows_to_batches"]

_HOLD = "position already in the signal's direction"


@dataclass(frozen=True)
class BulkRows:
    """A backtest's rows, converted.

    Attributes:
        batches: One per kind present, for `JournalStore.write_columns`.
        counts: Rows written, by kind name.
    """

    batches: list[ColumnBatch]
    counts: dict[str, int]


def rows_to_batches(
    rows: npt.NDArray[np.float64],
    ctx: RowContext,
    times_ns: npt.NDArray[np.int64],
    symbol: str,
) -> BulkRows:
    """Return the journal batches of ``rows`` (the core's, in the run's order).

    Args:
        rows: The event rows.
        ctx: The run's row context (order ids, codes, the Python objects rows refer to,
            the trainings at each bar).
        times_ns: Each bar's open time, UTC ns, by bar.
        symbol: The market of a one-symbol strategy; over several (``ctx.symbols``),
            each market event is stamped with its own row's symbol.
    """
    kinds = rows[:, L.E_KIND].astype(np.int64)
    journaled = kinds != L.EV_TRADE  # trades are outputs, not events
    if not journaled.all():
        rows = rows[journaled]
        kinds = kinds[journaled]
    bars = rows[:, L.E_BAR].astype(np.int64)
    names = list(ctx.symbols)
    several = len(names) > 1
    symbols = rows[:, L.E_SYM].astype(np.int64) if several else None
    batches: list[ColumnBatch] = []
    counts: dict[str, int] = {}

    def of_kind(kind: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Return the positions of ``kind``'s rows and their values (one gather)."""
        where = np.flatnonzero(kinds == kind)
        return where, np.take(rows, where, axis=0)[:, 3:]

    def header(where: npt.NDArray[np.int64], market: bool, corr: Any = None) -> dict[str, Any]:
        b = bars[where]
        return {
            "bar": b,
            "timestamp": times_ns[b],
            "symbol": _markets(symbols[where], names)
            if market and symbols is not None
            else (symbol if market else ""),
            "correlation_id": b if corr is None else corr,
        }

    def add(cls: type[Event], where: npt.NDArray[np.int64], columns: dict[str, Any]) -> None:
        if len(where):
            batches.append(ColumnBatch(cls, where, columns))
            counts[cls.KIND] = counts.get(cls.KIND, 0) + len(where)

    table = ctx.table
    # signals
    where, v = of_kind(L.EV_SIGNAL)
    add(
        SignalEvent,
        where,
        {
            **header(where, True),
            "direction": v[:, 0].astype(np.int64),
            "confidence": v[:, 1],
            "probability": v[:, 2],
        },
    )
    # decisions that are not rejections: a handful of distinct texts, looked up
    where, v = of_kind(L.EV_DECISION)
    if len(where):
        outcome = v[:, 0].astype(np.int64)
        reason = v[:, 1].astype(np.int64)
        keys, inverse = _distinct(outcome * 1000 + reason)
        texts = [
            codes.decision(int(k) // 1000, int(k) % 1000, 0.0, ctx.allowed_regimes, table)
            for k in keys
        ]

        def text(field: str) -> pd.Categorical:
            return _vocabulary(inverse, [str(t.get(field, "")) for t in texts])

        add(
            RiskDecision,
            where,
            {
                **header(where, True),
                "outcome": text("outcome"),
                "reason": text("reason"),
                "target_fraction": np.where(outcome == codes.ACCEPTED, v[:, 2], np.nan),
                "trend": text("trend"),
                "volatility": text("volatility"),
            },
        )
    # orders, and the fills and cancellations that name them by id
    where, v = of_kind(L.EV_ORDER)
    order_seq = v[:, 0].astype(np.int64)
    order_ids = _order_ids(order_seq.tolist(), ctx)
    add(
        OrderEvent,
        where,
        {
            **header(where, True),
            "id": order_ids,
            "side": v[:, 1].astype(np.int64),
            "quantity": v[:, 2],
            "reason": _names(v[:, 3], table),
            "reference_price": v[:, 4],
            "kind": _vocabulary(v[:, 5].astype(np.int64), ["market", "stop", "limit"]),
            "stop_price": np.where(v[:, 5] == L.ORDER_STOP, v[:, 6], np.nan),
            "limit_price": np.where(v[:, 5] == L.ORDER_LIMIT, v[:, 6], np.nan),
            "parent_id": _parent_ids(v[:, 7].astype(np.int64), ctx),
        },
    )
    named = _Named(order_seq, order_ids, ctx)
    for kind, cls in ((L.EV_FILL, FillEvent), (L.EV_CANCEL, OrderCancelled)):
        where, v = of_kind(kind)
        if not len(where):
            continue
        if kind == L.EV_FILL:
            columns = {
                **header(where, True, v[:, 6].astype(np.int64)),
                "order_id": named(v[:, 0].astype(np.int64)),
                "side": v[:, 1].astype(np.int64),
                "quantity": v[:, 2],
                "price": v[:, 3],
                "fee": v[:, 4],
                "slippage": v[:, 5],
                "liquidity": _vocabulary(v[:, 9].astype(np.int64), list(L.LIQUIDITY)),
            }
        else:
            columns = {
                **header(where, True, v[:, 3].astype(np.int64)),
                "order_id": named(v[:, 0].astype(np.int64)),
                "remaining": v[:, 1],
                "reason": _names(v[:, 2], table),
            }
        add(cls, where, columns)
    # regime changes
    where, v = of_kind(L.EV_REGIME)
    if len(where):
        now, before = v[:, 0].astype(np.int64), v[:, 1].astype(np.int64)
        add(
            RegimeChanged,
            where,
            {
                **header(where, True),
                "trend": [trend_label(int(c)) for c in now],
                "volatility": [volatility_label(int(c)) for c in now],
                "previous_trend": [trend_label(int(c)) for c in before],
                "previous_volatility": [volatility_label(int(c)) for c in before],
            },
        )
    # the rarer kinds, row by row: rejections, halts, state changes, liquidations,
    # trainings and Python's objects
    rest = np.flatnonzero(
        np.isin(
            kinds,
            (
                L.EV_REJECT,
                L.EV_HALT,
                L.EV_STATE,
                L.EV_LIQUIDATION,
                L.EV_FUNDING,
                L.EV_TRAINING,
                L.EV_EXTERNAL,
                L.EV_PARENT,
            ),
        )
    )
    grouped: dict[type[Event], list[tuple[int, Event]]] = defaultdict(list)
    seen: dict[int, int] = {}
    for i in rest.tolist():
        market = symbol if symbols is None or symbols[i] < 0 else names[symbols[i]]
        event = _event(int(kinds[i]), int(bars[i]), rows[i, 3:], ctx, times_ns, market, seen)
        grouped[type(event)].append((i, event))
    for event_class, items in grouped.items():
        batches.append(ColumnBatch.of([e for _, e in items], [p for p, _ in items]))
        counts[event_class.KIND] = counts.get(event_class.KIND, 0) + len(items)
    return BulkRows(batches, counts)


def _markets(index: npt.NDArray[np.int64], names: list[str]) -> pd.Categorical:
    """Return each market row's symbol by its index (a market row always has one)."""
    if len(index) and index.min() < 0:
        raise RuntimeError("a market event row names no symbol")
    return pd.Categorical.from_codes(index, categories=names)


def _names(values: npt.NDArray[np.float64], table: codes.CodeTable) -> pd.Categorical:
    keys, inverse = _distinct(values.astype(np.int64))
    return _vocabulary(inverse, [table.name(int(k)) for k in keys])


def _distinct(values: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Return ``np.unique(values, return_inverse=True)``; counted, not sorted, for codes."""
    if len(values) and values.min() >= 0 and values.max() < 1 << 16:
        keys = np.flatnonzero(np.bincount(values))
        lookup = np.zeros(int(keys[-1]) + 1, dtype=np.int64)
        lookup[keys] = np.arange(len(keys))
        return keys, lookup[values]
    keys, inverse = np.unique(values, return_inverse=True)
    return keys, inverse


def _vocabulary(codes_: npt.NDArray[np.int64], labels: list[str]) -> pd.Categorical:
    """Return the texts ``labels[codes_]`` as the journal takes them cheapest."""
    distinct = list(dict.fromkeys(labels))
    if len(distinct) < len(labels):  # a Categorical's labels are unique
        remap = np.array([distinct.index(label) for label in labels], dtype=np.int64)
        codes_ = remap[codes_]
    return pd.Categorical.from_codes(codes_, categories=distinct)


def _order_ids(seq: list[int], ctx: RowContext) -> list[str]:
    """Return the client order ids of the orders numbered ``seq``."""
    prefix = ctx.order_prefix
    if prefix is None:
        return [ctx.order_id(k) for k in seq]
    if "\0" in prefix:
        return [f"{prefix}-{k:06d}" for k in seq]
    # one % over every number: the same texts as f"{prefix}-{k:06d}", formatted in C
    joined = (prefix.replace("%", "%%") + "-%06d\0") * len(seq) % tuple(seq)
    return joined.split("\0")[:-1]


def _parent_ids(parent: npt.NDArray[np.int64], ctx: RowContext) -> list[str | None]:
    """Return each order's parent id (None: not a child), from the parents' numbers."""
    if not parent.any():
        return [None] * len(parent)
    ids = _order_ids(parent.tolist(), ctx)
    return [None if k == 0 else ids[i] for i, k in enumerate(parent.tolist())]


class _Named:
    """The order ids of the orders of this write, looked up by order number."""

    def __init__(self, seq: npt.NDArray[np.int64], ids: list[str], ctx: RowContext) -> None:
        ids_ = np.array(ids, dtype=object) if ids else np.array([], dtype=object)
        if len(seq) > 1 and not bool(np.all(seq[1:] > seq[:-1])):  # numbered in order
            order = np.argsort(seq, kind="stable")
            seq, ids_ = seq[order], ids_[order]
        self._seq = seq
        self._ids = ids_
        self._ctx = ctx

    def __call__(self, seq: npt.NDArray[np.int64]) -> list[str]:
        """Return the ids of orders ``seq``; an order of an earlier write asks the context."""
        if not len(self._seq):
            return [self._ctx.order_id(k) for k in seq.tolist()]
        at = np.minimum(np.searchsorted(self._seq, seq), len(self._seq) - 1)
        found = self._seq[at] == seq
        ids: list[str] = self._ids[at].tolist()
        if not found.all():
            for i in np.flatnonzero(~found).tolist():
                ids[i] = self._ctx.order_id(int(seq[i]))
        return ids


def _event(
    kind: int,
    bar: int,
    v: npt.NDArray[np.float64],
    ctx: RowContext,
    times_ns: npt.NDArray[np.int64],
    symbol: str,
    seen: dict[int, int],
) -> Event:
    """Return the event of one of the rarer rows (as the per-event path would)."""
    ts = pd.Timestamp(int(times_ns[bar]), tz="UTC")
    head: dict[str, Any] = {"bar": bar, "timestamp": ts, "correlation_id": bar}
    table = ctx.table
    if kind == L.EV_TRAINING:
        k = seen.get(bar, 0)
        seen[bar] = k + 1
        training = ctx.trainings_at[bar][k]
        return _from(ModelTrained, training, {**head, "correlation_id": training.predict_start})
    if kind == L.EV_EXTERNAL:
        return _external(ctx.refs[int(v[0])], symbol)
    code = int(v[0])
    if kind == L.EV_REJECT:
        if code == 0:
            rejection = ctx.refs[int(v[1])]
            header = {"symbol": symbol, "correlation_id": rejection.bar}
            return _from(RejectionEvent, rejection, header)
        message, values = codes.describe(code, tuple(float(x) for x in v[1:]), table)
        return RejectionEvent(
            **head, symbol=symbol, code=table.name(code), message=message, values=values
        )
    if kind == L.EV_HALT:
        if code == 0:
            halt = ctx.refs[int(v[1])]
            return _from(HaltEvent, halt, {"correlation_id": halt.bar})
        message, values = codes.describe(code, tuple(float(x) for x in v[1:]), table)
        return HaltEvent(**head, code=table.name(code), message=message, values=values)
    if kind == L.EV_STATE:
        return TradingStateChanged(**head, **state_payload(v, ctx, ts))
    if kind == L.EV_PARENT:
        order_id = _order_ids([int(v[0])], ctx)[0]
        return SlicedOrder(**head, symbol=symbol, **sliced_payload(v, ctx, order_id))
    if kind == L.EV_LIQUIDATION:
        return Liquidation(
            **head,
            symbol=symbol,
            side=int(v[0]),
            quantity=float(v[1]),
            price=float(v[2]),
            fee=float(v[3]),
            equity_before=float(v[4]),
            maintenance=float(v[5]),
        )
    if kind == L.EV_FUNDING:
        return FundingPayment(**head, symbol=symbol, **funding_payload(v))
    raise ValueError(f"unknown event row kind {kind} at bar {bar}")  # pragma: no cover


def _external(value: Any, symbol: str) -> Event:
    if isinstance(value, HealthChange):
        return _from(HealthChanged, value, {"correlation_id": value.bar})
    if isinstance(value, HealthAction):
        return _from(HealthActionFired, value, {"correlation_id": value.bar})
    if isinstance(value, Event):
        return value
    raise TypeError(f"cannot journal {value!r}")  # pragma: no cover


def _from(cls: type[Event], value: Any, header: Mapping[str, Any]) -> Event:
    if isinstance(value, cls):
        return dataclasses.replace(value, **header) if header else value
    names = [f.name for f in dataclasses.fields(value) if f.metadata.get("journal", True)]
    fields = {name: getattr(value, name) for name in names}
    fields.update(header)
    if isinstance(value, ModelTraining):
        fields.pop("reference", None)
    return cls(**fields)
