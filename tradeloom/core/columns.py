"""The core's event rows read back: the one decoder, a column per field.

`decode` reads rows of the compiled step (declared in `tradeloom.core.records`) into a
`Table` per kind: the rows' places, bars, symbols and times, and their fields as the
journal names them, each a numpy column, a `Texts` (codes into the distinct texts,
each text built once: an order's reason, a decision's outcome, a regime's labels) or
a list (the order ids). Nothing there is a Python object per row: a backtest journals
the tables as they are (`tradeloom.engine.bulk_journal`) and reads its outputs from
them. The domain's objects (`Signal`, `Order`, `Fill`...) are built from the columns
only where one is wanted, once per table: a paper or live run's journal and observers
(`Tables.events`, in the rows' order), a Python venue's orders (`RowContext.order`), a
backtest's monitors, an observer plugin.

The rarer kinds (rejections and halts with their messages, trading-state changes,
liquidations, funding, sliced orders, trainings, Python's objects) are built as
objects at once, row by row: a run has few of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeAlias

import pandas as pd

from tradeloom.core import codes
from tradeloom.core import layout as L
from tradeloom.core import records as R
from tradeloom.core.kernels.labels import trend_label, volatility_label
from tradeloom.core.records import Columns, dispatch, split
from tradeloom.domain import (
    Cancellation,
    Fill,
    Halt,
    ModelTraining,
    Order,
    Rejection,
    Signal,
)
from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "BarTimes",
    "RowContext",
    "RowEvent",
    "Table",
    "Tables",
    "Texts",
    "decode",
    "distinct",
    "few_events",
    "order_ids",
]

ORDER_KINDS: tuple[Literal["market", "stop", "limit"], ...] = ("market", "stop", "limit")
"""An order's kind, by its row's type (`layout.ORDER_MARKET`...)."""
_FEW = 64  # rows read with Python's dicts rather than numpy's sorts and counts
_FEW_TEXTS = 8  # rows whose texts are made one by one


class BarTimes:
    """A `RowContext`'s ``times`` over a DatetimeIndex: each bar's time boxed once.

    Indexing a DatetimeIndex boxes a new Timestamp at every call (microseconds each),
    and a run's rows ask for the same bars again and again (a fill's bar, its trade's).
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


@dataclass
class RowContext:
    """What reading a run's rows needs besides the rows.

    Attributes:
        times: The open time of each bar (``times[bar]``); a `BarTimes` gives the
            tables their times as a DatetimeIndex at once.
        order_id: The client order id of order number ``seq``.
        table: The run's codes.
        refs: Python's objects that rows refer to (``EV_EXTERNAL``, a plugin's
            rejection or halt), by index.
        trainings_at: The model trainings journaled at each bar, in order.
        allowed_regimes: ``signal.regimes``.
        symbols: The symbols, by index.
        orders: The orders built as objects so far, by number (`order` builds the others
            from their tables when asked).
        order_seq: The orders' numbers, by client order id (those of a few rows' reads:
            `seq_of` finds the others).
        order_rows: The symbol row of each order, by number (likewise: `row_of`).
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
    _few: dict[int, tuple[Table, int]] = field(default_factory=dict, repr=False)
    _many: list[Table] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if not self.table.symbols:
            self.table.symbols = tuple(self.symbols)
        if not self.table.groups:
            self.table.groups = tuple(self.groups)

    def ref(self, obj: object) -> int:
        """Keep ``obj`` for a row to refer to; return its index."""
        self.refs.append(obj)
        return len(self.refs) - 1

    def order(self, seq: int) -> Order:
        """Return order number ``seq`` as an object (built from its table the first time).

        Raises:
            KeyError: No order of that number was read.
        """
        order = self.get_order(seq)
        if order is None:
            raise KeyError(seq)
        return order

    def get_order(self, seq: int) -> Order | None:
        """Return order number ``seq`` as an object (None: no such order was read)."""
        order = self.orders.get(seq)
        if order is None:
            found = self._find(seq)
            if found is None:
                return None
            table, at = found
            order = self.orders[seq] = _order_objects(table, [at])[0]
            self._few.pop(seq, None)
        return order

    def seq_of(self, order_id: str) -> int | None:
        """Return the number of the order of id ``order_id`` (None: none was read)."""
        seq = self.order_seq.get(order_id)
        if seq is None:
            for table in reversed(self._many):
                hits = np.flatnonzero(table.column("id") == order_id)
                if len(hits):
                    return int(table.rows["seq"][hits[-1]])
        return seq

    def row_of(self, seq: int) -> int | None:
        """Return the symbol row of order number ``seq`` (None: no such order was read)."""
        row = self.order_rows.get(seq)
        if row is None:
            found = self._find(seq)
            if found is not None:
                return int(found[0].symbol[found[1]])
        return row

    def _find(self, seq: int) -> tuple[Table, int] | None:
        found = self._few.get(seq)
        if found is None:
            for table in reversed(self._many):
                hits = np.flatnonzero(table.rows["seq"] == seq)
                if len(hits):
                    return table, int(hits[-1])
        return found

    def stamps(self, bars: npt.NDArray[np.int64]) -> pd.DatetimeIndex | list[pd.Timestamp]:
        """Return the times of ``bars``: a DatetimeIndex over a `BarTimes`."""
        if isinstance(self.times, BarTimes):
            return self.times.index.take(bars)
        times = self.times
        return [times(b) for b in bars.tolist()]

    def id_of(self, symbol: int, seq: int) -> str:
        """Return the client order id of order ``seq`` of symbol row ``symbol``."""
        if self.prefixes:
            return f"{self.prefixes[symbol]}-{seq:06d}"
        return self.order_id(seq)

    def _register(self, table: Table) -> None:
        """Know the orders of ``table``: a few rows' by number and id at once (a paper
        run's fills look them up as they come), a bulk read's by search when asked."""
        if len(table) > _FEW:
            self._many.append(table)
            return
        seq = table.rows["seq"].tolist()
        self.order_seq.update(zip(table.columns["id"], seq, strict=True))
        self.order_rows.update(zip(seq, table.symbol.tolist(), strict=True))
        self._few.update((k, (table, i)) for i, k in enumerate(seq))

    def _built(self, seq: list[int], orders: list[Order]) -> None:
        self.orders.update(zip(seq, orders, strict=True))
        for k in seq:
            self._few.pop(k, None)


@dataclass(slots=True)
class Texts:
    """A column of texts as each row's index into the texts (each text built once).

    Attributes:
        codes: Each row's index into ``labels``.
        labels: The texts (not necessarily distinct).
    """

    codes: npt.NDArray[np.int64]
    labels: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.codes)

    def array(self) -> npt.NDArray[np.object_]:
        """Return each row's text."""
        labels = np.empty(len(self.labels), dtype=object)
        labels[:] = self.labels
        return labels[self.codes]

    def tolist(self) -> list[str]:
        """Return each row's text."""
        labels = self.labels
        return [labels[k] for k in self.codes.tolist()]

    def categorical(self) -> pd.Categorical:
        """Return the texts as a Categorical (its categories distinct)."""
        distinct = list(dict.fromkeys(self.labels))
        codes_ = self.codes
        if len(distinct) < len(self.labels):
            remap = np.array([distinct.index(label) for label in self.labels], dtype=np.int64)
            codes_ = remap[codes_]
        return pd.Categorical.from_codes(codes_, categories=distinct)

    @classmethod
    def of(cls, values: npt.NDArray[np.int64], text: Callable[[int], str]) -> Texts:
        """Return ``text(v)`` of each of ``values``, called once per distinct value
        (`distinct`)."""
        keys, inverse = distinct(values)
        return cls(inverse, tuple(text(int(k)) for k in keys.tolist()))


class RowEvent(NamedTuple):
    """One event read back, as an object (the per-event path).

    Attributes:
        kind: ``training``, ``signal``, ``decision``, ``rejection``, ``halt``, ``order``,
            ``fill``, ``cancel``, ``trade``, ``regime``, ``state``, ``liquidation``,
            ``funding``, ``sliced_order`` or ``external``.
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


@dataclass(slots=True)
class Table:
    """The rows of one kind, read back.

    Attributes:
        name: The kind (`RowEvent.kind`).
        rows: The rows' typed fields (`tradeloom.core.records.Columns`).
        timestamp: Each row's bar's time.
        correlation: Each row's correlation id (the decision's bar; a fill's and a
            cancellation's is its order's).
        columns: The fields of the kind's journal event, by name (numpy arrays,
            `Texts`, or lists); empty for the rarer kinds, whose rows are objects.
    """

    name: str
    rows: Columns
    timestamp: pd.DatetimeIndex | list[pd.Timestamp]
    correlation: npt.NDArray[np.int64]
    columns: dict[str, Any]
    _build: Callable[[Table], list[Any]] = field(repr=False)
    _objects: list[Any] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def positions(self) -> npt.NDArray[np.int64]:
        """Each row's index among the rows decoded."""
        return self.rows.positions

    @property
    def bar(self) -> npt.NDArray[np.int64]:
        """Each row's bar."""
        return self.rows.bar

    @property
    def symbol(self) -> npt.NDArray[np.int64]:
        """Each row's symbol index (-1: the account)."""
        return self.rows.symbol

    def column(self, name: str) -> npt.NDArray[Any]:
        """Return field ``name`` as an array (texts as Python strings)."""
        value = self.columns[name]
        if isinstance(value, Texts):
            return value.array()
        if isinstance(value, list):
            out = np.empty(len(value), dtype=object)
            out[:] = value
            return out
        return np.asarray(value)

    def objects(self) -> list[Any]:
        """Return each row's object (`RowEvent.value`), built once."""
        if self._objects is None:
            self._objects = self._build(self)
        return self._objects


@dataclass(slots=True)
class Tables:
    """Rows read back, a `Table` per kind present.

    Attributes:
        count: How many rows were read.
        by_kind: The tables, by kind.
    """

    count: int
    by_kind: dict[str, Table]

    def get(self, kind: str) -> Table | None:
        """Return the table of ``kind`` (None: no such row)."""
        return self.by_kind.get(kind)

    def events(self, kinds: Iterable[str] | None = None) -> list[RowEvent]:
        """Return the events of ``kinds`` (None: every kind) as objects, in the rows' order."""
        chosen = (
            self.by_kind
            if kinds is None
            else {k: self.by_kind[k] for k in kinds if k in self.by_kind}
        )
        slots: list[RowEvent | None] = [None] * self.count
        for name, table in chosen.items():
            values = table.objects()
            decided = table.correlation.tolist()  # a row's own bar but a fill's, a cancel's
            bars = table.bar.tolist()
            symbols = table.symbol.tolist()
            for i, p in enumerate(table.positions.tolist()):
                slots[p] = RowEvent(name, bars[i], symbols[i], values[i], decided[i])
        return [e for e in slots if e is not None]


def decode(rows: npt.NDArray[np.float64], ctx: RowContext) -> Tables:
    """Read ``rows`` (the core's, in the run's order) back into a table per kind.

    Orders are registered with ``ctx`` (their numbers, ids and symbol rows), so the
    fills and cancellations of later rows name them.
    """
    parts = split(rows)
    tables: dict[str, Table] = {}
    for name, part in parts.items():  # in code order: orders before fills and cancels
        tables[name] = _READERS[name](part, ctx.stamps(part.bar), ctx, tables)
    return Tables(len(rows), tables)


def few_events(rows: npt.NDArray[np.float64], ctx: RowContext) -> list[RowEvent] | None:
    """Return a few rows' events as `decode` then `Tables.events` would, or None.

    A paper or live bar writes a few rows (a signal and its decision or rejection, a
    regime's change): those are read straight into their events, field by field as
    their records declare them, without a table per kind (whose fixed cost was most of
    a tick's decoding). None: more rows, or a kind read only by `decode` (an order,
    whose later fills look it up; a fill or a funding, whose cash the curve marks).
    """
    if len(rows) > _FEW_EVENTS:
        return None
    listed = rows.tolist()
    for row in listed:
        if row[R.KIND] not in _STRAIGHT:  # a float code finds its int key
            return None
    events = []
    for row in listed:
        name, make = _STRAIGHT[row[R.KIND]]
        bar = int(row[R.BAR])
        value = make(bar, row[R.HEAD :], ctx)
        events.append(RowEvent(name, bar, int(row[R.SYMBOL]), value, bar))
    return events


def _signal_event(bar: int, values: list[float], ctx: RowContext) -> Any:
    f = R.SIGNAL.read(values)
    return Signal(bar, ctx.times(bar), f["direction"], f["confidence"], f["probability"])


def _decision_event(bar: int, values: list[float], ctx: RowContext) -> Any:
    f = R.DECISION.read(values)
    payload = codes.decision(f["outcome"], f["reason"], math.nan, ctx.allowed_regimes, ctx.table)
    if "target_fraction" in payload:
        payload["target_fraction"] = f["target_fraction"]
    return payload


def _one_event(
    record: R.Record, one: Callable[[int, _Row, pd.Timestamp, RowContext], Any]
) -> Callable[[int, list[float], RowContext], Any]:
    """Return the straight reader of a kind whose rows are objects one by one (`_objects`)."""

    def make(bar: int, values: list[float], ctx: RowContext) -> Any:
        return one(bar, record.read(values), ctx.times(bar), ctx)

    return make


_FEW_EVENTS = 8  # rows read straight into events (`few_events`)


def distinct(
    values: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Return ``np.unique(values, return_inverse=True)``; counted, not sorted, for codes.

    A few values (a paper run's bar) are their own keys, repeats and all: sorting them
    out would cost more than what they save.
    """
    if len(values) <= _FEW_TEXTS:
        return values, np.arange(len(values))
    if len(values) <= _FEW:  # Python's dict is quicker than numpy's counts
        listed = values.tolist()
        keys_ = sorted(set(listed))
        at = {k: i for i, k in enumerate(keys_)}
        return np.array(keys_, dtype=np.int64), np.array([at[v] for v in listed], np.int64)
    if values.min() >= 0 and values.max() < 1 << 16:
        keys = np.flatnonzero(np.bincount(values))
        lookup = np.zeros(int(keys[-1]) + 1, dtype=np.int64)
        lookup[keys] = np.arange(len(keys))
        return keys, lookup[values]
    keys, inverse = np.unique(values, return_inverse=True)
    return keys, inverse.reshape(-1)


def order_ids(seq: list[int], ctx: RowContext, symbols: list[int] | None = None) -> list[str]:
    """Return the client order ids of the orders numbered ``seq`` (of symbol rows
    ``symbols``: a portfolio file's books have their own prefixes)."""
    if ctx.prefixes:
        assert symbols is not None
        return [ctx.id_of(s, k) for s, k in zip(symbols, seq, strict=True)]
    prefix = ctx.order_prefix
    if prefix is None:
        return [ctx.order_id(k) for k in seq]
    if "\0" in prefix or len(seq) < 8:
        return [f"{prefix}-{k:06d}" for k in seq]
    # one % over every number: the same texts as f"{prefix}-{k:06d}", formatted in C
    joined = (prefix.replace("%", "%%") + "-%06d\0") * len(seq) % tuple(seq)
    return joined.split("\0")[:-1]


# --- the readers, one per kind -------------------------------------------------------------


def _where(keep: npt.NDArray[np.bool_], values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Return ``values`` where ``keep``, NaN elsewhere (``np.where``, without its cost
    on a few rows)."""
    out = values.copy()
    out[~keep] = np.nan
    return out


_Stamps: TypeAlias = pd.DatetimeIndex | list[pd.Timestamp]
_Read: TypeAlias = Mapping[str, Table]
"""The tables read before, by kind (a fill's and a cancel's orders)."""
_Reader: TypeAlias = Callable[[Columns, _Stamps, RowContext, _Read], Table]


def _table(
    name: str,
    part: Columns,
    stamps: _Stamps,
    columns: dict[str, Any],
    build: Callable[[Table], list[Any]],
    correlation: npt.NDArray[np.int64] | None = None,
) -> Table:
    corr = part.bar if correlation is None else correlation
    return Table(name, part, stamps, corr, columns, build)


def _signal(part: Columns, stamps: _Stamps, ctx: RowContext, read: _Read) -> Table:
    columns = {
        "direction": part["direction"],
        "confidence": part["confidence"],
        "probability": part["probability"],
    }

    def build(t: Table) -> list[Any]:
        return [
            Signal(*row)
            for row in zip(
                t.bar.tolist(),
                list(t.timestamp),
                columns["direction"].tolist(),
                columns["confidence"].tolist(),
                columns["probability"].tolist(),
                strict=True,
            )
        ]

    return _table("signal", part, stamps, columns, build)


def _decision(part: Columns, stamps: _Stamps, ctx: RowContext, read: _Read) -> Table:
    outcome = part["outcome"]
    reason = part["reason"]
    target = part["target_fraction"]
    keys, inverse = distinct(reason * 8 + outcome)  # an outcome is under 8
    payloads = [
        codes.decision(int(k) % 8, int(k) // 8, math.nan, ctx.allowed_regimes, ctx.table)
        for k in keys.tolist()
    ]

    def text(name: str) -> Texts:
        return Texts(inverse, tuple(str(p.get(name, "")) for p in payloads))

    columns = {
        "outcome": text("outcome"),
        "reason": text("reason"),
        "target_fraction": _where(outcome == codes.ACCEPTED, target),
        "trend": text("trend"),
        "volatility": text("volatility"),
    }

    def build(t: Table) -> list[Any]:
        out = []
        for k, fraction in zip(inverse.tolist(), target.tolist(), strict=True):
            payload = dict(payloads[k])
            if "target_fraction" in payload:
                payload["target_fraction"] = fraction
            out.append(payload)
        return out

    return _table("decision", part, stamps, columns, build)


def _order(part: Columns, stamps: _Stamps, ctx: RowContext, read: _Read) -> Table:
    seq = part["seq"]
    kind = part["type"]
    price = part["price"]
    parent = part["parent"]
    symbols = part.symbol.tolist()
    ids = order_ids(seq.tolist(), ctx, symbols)
    parent_ids: list[str | None] = [None] * len(seq)
    if np.count_nonzero(parent):
        named = order_ids(parent.tolist(), ctx, symbols)
        parent_ids = [None if k == 0 else named[i] for i, k in enumerate(parent.tolist())]
    columns: dict[str, Any] = {
        "id": ids,
        "side": part["side"],
        "quantity": part["quantity"],
        "reason": Texts.of(part["reason"], ctx.table.name),
        "reference_price": part["reference_price"],
        "kind": Texts(kind, ORDER_KINDS),
        "stop_price": _where(kind == L.ORDER_STOP, price),
        "limit_price": _where(kind == L.ORDER_LIMIT, price),
        "parent_id": parent_ids,
    }

    def build(t: Table) -> list[Any]:
        orders = _order_objects(t)
        ctx._built(t.rows["seq"].tolist(), orders)
        return orders

    table = _table("order", part, stamps, columns, build)
    ctx._register(table)  # the fills and cancels of later rows name its orders
    return table


def _order_objects(t: Table, at: list[int] | None = None) -> list[Order]:
    """Return the orders of ``t`` (those at rows ``at``: None, every one) as objects."""
    c = t.columns

    def pick(values: Any) -> list[Any]:
        if isinstance(values, list):
            return values if at is None else [values[i] for i in at]
        if isinstance(values, pd.DatetimeIndex):
            return list(values if at is None else values[at])
        if isinstance(values, Texts):
            return (
                values.tolist() if at is None else Texts(values.codes[at], values.labels).tolist()
            )
        return (values if at is None else values[at]).tolist()  # type: ignore[no-any-return]

    return [
        Order(*row)
        for row in zip(
            pick(c["id"]),
            pick(t.bar),
            pick(t.timestamp),
            pick(c["side"]),
            pick(c["quantity"]),
            pick(c["reason"]),
            pick(c["reference_price"]),
            pick(c["kind"]),
            pick(c["stop_price"]),
            pick(c["limit_price"]),
            pick(c["parent_id"]),
            strict=True,
        )
    ]


def _named(
    seq: npt.NDArray[np.int64], symbols: npt.NDArray[np.int64], ctx: RowContext, own: Table | None
) -> list[str]:
    """Return the ids of orders ``seq``: this read's, or one read before, or by rule."""
    ids: list[Any] = [None] * len(seq)
    missing: Iterable[int] = range(len(seq))
    if own is not None and len(seq) <= _FEW:
        named = dict(zip(own.rows["seq"].tolist(), own.columns["id"], strict=True))
        ids = [named.get(k) for k in seq.tolist()]
        missing = [i for i, known in enumerate(ids) if known is None]
    elif own is not None and len(own):
        order_seq = own.rows["seq"]
        by_seq = np.argsort(order_seq, kind="stable")
        at = np.minimum(np.searchsorted(order_seq[by_seq], seq), len(by_seq) - 1)
        found = order_seq[by_seq[at]] == seq
        ids = own.column("id")[by_seq[at]].tolist()
        missing = np.flatnonzero(~found).tolist()
    for i in missing:  # an order of an earlier read (a paper run's, bars before)
        k = int(seq[i])
        order = ctx.get_order(k)
        ids[i] = ctx.id_of(int(symbols[i]), k) if order is None else order.id
    return ids


def _fill(part: Columns, stamps: _Stamps, ctx: RowContext, read: _Read) -> Table:
    columns: dict[str, Any] = {
        "order_id": _named(part["seq"], part.symbol, ctx, read.get("order")),
        "side": part["side"],
        "quantity": part["quantity"],
        "price": part["price"],
        "fee": part["fee"],
        "slippage": part["slippage"],
        "liquidity": Texts(part["liquidity"], L.LIQUIDITY),
    }

    def build(t: Table) -> list[Any]:
        return [
            Fill(*row)
            for row in zip(
                columns["order_id"],
                t.bar.tolist(),
                list(t.timestamp),
                columns["side"].tolist(),
                columns["quantity"].tolist(),
                columns["price"].tolist(),
                columns["fee"].tolist(),
                columns["slippage"].tolist(),
                columns["liquidity"].tolist(),
                strict=True,
            )
        ]

    return _table("fill", part, stamps, columns, build, part["decision_bar"])


def _cancel(part: Columns, stamps: _Stamps, ctx: RowContext, read: _Read) -> Table:
    columns: dict[str, Any] = {
        "order_id": _named(part["seq"], part.symbol, ctx, read.get("order")),
        "remaining": part["remaining"],
        "reason": Texts.of(part["reason"], ctx.table.name),
    }

    def build(t: Table) -> list[Any]:
        return [
            Cancellation(*row)
            for row in zip(
                columns["order_id"],
                t.bar.tolist(),
                list(t.timestamp),
                columns["remaining"].tolist(),
                columns["reason"].tolist(),
                strict=True,
            )
        ]

    return _table("cancel", part, stamps, columns, build, part["decision_bar"])


def _trade(part: Columns, stamps: _Stamps, ctx: RowContext, read: _Read) -> Table:
    columns = {f.name: part[f.name] for f in R.TRADE.fields}

    def build(t: Table) -> list[Any]:
        return [fields for _, fields in t.rows.named()]

    return _table("trade", part, stamps, columns, build)


def _regime(part: Columns, stamps: _Stamps, ctx: RowContext, read: _Read) -> Table:
    now, before = part["code"], part["previous"]
    columns = {
        "trend": Texts.of(now, trend_label),
        "volatility": Texts.of(now, volatility_label),
        "previous_trend": Texts.of(before, trend_label),
        "previous_volatility": Texts.of(before, volatility_label),
    }

    def build(t: Table) -> list[Any]:
        return [fields for _, fields in t.rows.named()]  # its code and previous code

    return _table("regime", part, stamps, columns, build)


_Row: TypeAlias = dict[str, Any]
"""A row's fields by name (`tradeloom.core.records.Columns.named`)."""


def _objects(name: str, one: Callable[[int, _Row, pd.Timestamp, RowContext], Any]) -> _Reader:
    """Return the reader of a rarer kind: each row's object built at once."""

    def read(part: Columns, stamps: _Stamps, ctx: RowContext, _read: _Read) -> Table:
        built = [
            one(bar, row, ts, ctx)
            for (bar, row), ts in zip(part.named(), list(stamps), strict=True)
        ]
        table = _table(name, part, stamps, {}, lambda t: built)
        table.objects()
        return table

    return read


def _rejection(bar: int, row: _Row, ts: pd.Timestamp, ctx: RowContext) -> Any:
    code, purpose = row["code"], ctx.table.name(row["purpose"])
    if code == 0:  # a plugin's (the ref of its `Rejection`): what it was for is the core's
        ref = ctx.refs[int(row["values"][0])]
        return replace(ref, purpose=purpose) if isinstance(ref, Rejection) else ref
    message, values = codes.describe(code, row["values"], ctx.table)
    return Rejection(bar, ts, ctx.table.name(code), message, values, purpose)


def _halt(bar: int, row: _Row, ts: pd.Timestamp, ctx: RowContext) -> Any:
    code = row["code"]
    if code == 0:  # a Python halt: the ref of its object
        return ctx.refs[int(row["values"][0])]
    message, values = codes.describe(code, row["values"], ctx.table)
    return Halt(bar, ts, ctx.table.name(code), message, values)


def _training(bar: int, row: _Row, ts: pd.Timestamp, ctx: RowContext) -> Any:
    return ctx.trainings_at[bar][row["index"]]


def _external(bar: int, row: _Row, ts: pd.Timestamp, ctx: RowContext) -> Any:
    return ctx.refs[row["ref"]]


def _state(bar: int, row: _Row, ts: pd.Timestamp, ctx: RowContext) -> Any:
    why = row["code"]
    values = row["values"]
    if why == codes.DAILY_LOSS:
        message, _ = codes.describe(why, values, ctx.table)
    elif why == codes.DAY_ROLLOVER:
        day = pd.Timestamp(int(values[0]) * 86_400_000_000_000, tz="UTC")
        message = f"new UTC day {day:%Y-%m-%d}"
    else:
        message = ctx.table.name(why)
    return {
        "previous": codes.STATE_NAMES[row["previous"]],
        "state": codes.STATE_NAMES[row["state"]],
        "code": ctx.table.name(why),
        "message": message,
        "at": ts + ctx.bar_length,
    }


def _liquidation(bar: int, row: _Row, ts: pd.Timestamp, ctx: RowContext) -> Any:
    return R.LIQUIDATION.journaled(row)


def _funding(bar: int, row: _Row, ts: pd.Timestamp, ctx: RowContext) -> Any:
    return R.FUNDING.journaled(row)


def _sliced(part: Columns, stamps: _Stamps, ctx: RowContext, read: _Read) -> Table:
    ids = order_ids(part["seq"].tolist(), ctx, part.symbol.tolist())

    def one(i: int, row: _Row) -> dict[str, Any]:
        twap = row["slicing"] == L.SLICE_TWAP
        return {
            "id": ids[i],
            "side": row["side"],
            "quantity": row["quantity"],
            "reason": ctx.table.name(row["reason"]),
            "reference_price": row["reference_price"],
            "slicing": "twap" if twap else "participation",
            "children": int(row["detail"]) if twap else 0,
            "max_volume_fraction": math.nan if twap else row["detail"],
        }

    built = [one(i, row) for i, (_, row) in enumerate(part.named())]
    table = _table("sliced_order", part, stamps, {}, lambda t: built)
    table.objects()
    return table


_READERS = dispatch(
    {
        R.TRAINING: _objects("training", _training),
        R.SIGNAL: _signal,
        R.DECISION: _decision,
        R.REJECT: _objects("rejection", _rejection),
        R.HALT: _objects("halt", _halt),
        R.ORDER: _order,
        R.FILL: _fill,
        R.CANCEL: _cancel,
        R.TRADE: _trade,
        R.REGIME: _regime,
        R.STATE: _objects("state", _state),
        R.LIQUIDATION: _objects("liquidation", _liquidation),
        R.EXTERNAL: _objects("external", _external),
        R.PARENT: _sliced,
        R.FUNDING: _objects("funding", _funding),
    }
)
"""The reader of each kind of row."""

_STRAIGHT: dict[int, tuple[str, Callable[[int, list[float], RowContext], Any]]] = {
    R.SIGNAL.code: ("signal", _signal_event),
    R.DECISION.code: ("decision", _decision_event),
    R.REGIME.code: ("regime", lambda bar, values, ctx: R.REGIME.read(values)),
    R.TRAINING.code: ("training", _one_event(R.TRAINING, _training)),
    R.REJECT.code: ("rejection", _one_event(R.REJECT, _rejection)),
    R.HALT.code: ("halt", _one_event(R.HALT, _halt)),
    R.STATE.code: ("state", _one_event(R.STATE, _state)),
    R.LIQUIDATION.code: ("liquidation", _one_event(R.LIQUIDATION, _liquidation)),
    R.EXTERNAL.code: ("external", _one_event(R.EXTERNAL, _external)),
}
"""The kinds `few_events` reads straight, by code: each row's event alone, its
correlation its own bar (a fill's and a cancellation's is their order's: `decode`)."""
