"""The core's event rows, declared once: each kind's code, name and fields.

The compiled step records what happened as rows of floats in ``ev``
(`tradeloom.core.layout`): ``kind, bar, symbol`` then `VALUES` values, each kind's
written by its emitter (`tradeloom.core.rows`: ``emit_fill``...). Which value means
what is declared here and nowhere else: the kind codes of `tradeloom.core.layout`
(``EV_FILL``...) are these records' codes, the columns the compiled readers take
(`FILL_POSITION`...) come from the fields, and the one decoder
(`tradeloom.core.columns`) reads every row by field name through `split`: each kind's
rows gathered once, each field a typed column. A module that does something per kind
of row does it through one table keyed by these records (`dispatch`), checked against
them: a kind added here fails every such table that does not say what it does with it.

A field's type says how its float is read: ``int`` (a count, a bar, a direction, an
order's number), ``float``, ``code`` (a number of the run's `tradeloom.core.codes`
table) or ``ref`` (the index of a Python object the row stands for, `RowContext.refs`).
A field of ``width`` more than one is that many values (a rejection's figures).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "BAR",
    "HEAD",
    "KIND",
    "RECORDS",
    "SYMBOL",
    "VALUES",
    "WIDTH",
    "Columns",
    "Field",
    "Record",
    "dispatch",
    "record",
    "split",
]

KIND, BAR, SYMBOL = 0, 1, 2
"""The columns of every row's head: its kind's code, its bar, its symbol's index (-1:
the account)."""
HEAD = 3
"""Columns before the values."""
VALUES = 10
"""Values a row holds (a kind uses the first ones; the rest are 0)."""
WIDTH = HEAD + VALUES

FieldType = Literal["int", "float", "code", "ref"]


@dataclass(frozen=True)
class Field:
    """One value of a row (or ``width`` values).

    Attributes:
        name: Its name, as the decoder's column (the journal's field where it has one).
        type: ``int``, ``float``, ``code`` or ``ref`` (see the module).
        doc: What it holds.
        width: How many values it spans.
        to: The fields of the kind's journal event it gives (None: the one of its own
            name; empty: none, the row's head or the curves read it).
    """

    name: str
    type: FieldType
    doc: str = ""
    width: int = 1
    to: tuple[str, ...] | None = None

    @property
    def journal(self) -> tuple[str, ...]:
        """Return the journal fields it gives."""
        return (self.name,) if self.to is None else self.to


@dataclass(frozen=True)
class Record:
    """One kind of event row.

    Attributes:
        code: Its kind's code (the row's first column; ``EV_*`` of `tradeloom.core.layout`).
        name: Its name (the decoder's; the journal's kind is named by the decoder).
        doc: What the core records with it.
        fields: Its values, in row order.
        journal: The kind of journal event it is read into (``""``: none, or the Python
            object the row stands for: a training, an external object).
        head: The journal event's fields read from the row's head (a state change's
            ``at``: its bar's close).
    """

    code: int
    name: str
    doc: str
    fields: tuple[Field, ...]
    journal: str = ""
    head: tuple[str, ...] = ()
    offsets: dict[str, int] = field(init=False, repr=False, compare=False)
    slots: dict[str, tuple[int, int, bool]] = field(init=False, repr=False, compare=False)
    """Each field's place among the values, width and whether it is read as an integer."""

    def __post_init__(self) -> None:
        offsets: dict[str, int] = {}
        slots: dict[str, tuple[int, int, bool]] = {}
        at = HEAD
        for f in self.fields:
            offsets[f.name] = at
            slots[f.name] = (at - HEAD, f.width, f.type != "float")
            at += f.width
        if at > WIDTH:
            raise ValueError(f"record {self.name}: {at - HEAD} values, a row holds {VALUES}")
        object.__setattr__(self, "offsets", offsets)
        object.__setattr__(self, "slots", slots)

    def column(self, name: str) -> int:
        """Return the row column of field ``name``."""
        return self.offsets[name]

    def place(self, name: str) -> int:
        """Return field ``name``'s place among the values (its column in an array of
        the kind's values alone: a trade's, `tradeloom.core.accounting.TRADE_FIELDS`)."""
        return self.slots[name][0]

    def type_of(self, name: str) -> FieldType:
        """Return field ``name``'s type."""
        for f in self.fields:
            if f.name == name:
                return f.type
        raise KeyError(name)

    def read(self, values: list[float]) -> dict[str, Any]:
        """Return a row's fields by name from its ``values`` (the row after its head, as
        Python floats): an int for an ``int``, ``code`` or ``ref`` field, a tuple of
        floats for a field of several values, else a float."""
        row: dict[str, Any] = {}
        for name, (at, width, integer) in self.slots.items():
            if width > 1:
                row[name] = tuple(values[at : at + width])
            elif integer:
                row[name] = int(values[at])
            else:
                row[name] = values[at]
        return row

    def journaled(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Return the fields of ``row`` (`Columns.named`) under their journal names.

        For a kind whose every field gives its own journal field, one other or none
        (a liquidation, a funding booking); a field giving several is the reader's.
        """
        for f in self.fields:
            if len(f.journal) > 1:
                raise ValueError(f"record {self.name}: field {f.name} gives {f.journal}")
        return {f.journal[0]: row[f.name] for f in self.fields if f.journal}


TRAINING = Record(
    1,
    "training",
    "A walk-forward fold, journaled at the first bar it predicts (Python's k-th training "
    "at that bar; the journal's event is that object). Symbol -1.",
    (Field("index", "int", "the fold's place among the bar's trainings", to=()),),
)
SIGNAL = Record(
    2,
    "signal",
    "The signal rule's signal at a bar.",
    (
        Field("direction", "int", "+1 long, -1 short"),
        Field("confidence", "float"),
        Field("probability", "float", "the probability it came from"),
    ),
    journal="signal",
)
DECISION = Record(
    3,
    "decision",
    "What the risk layer did with a signal it did not reject.",
    (
        Field("outcome", "int", "codes.ACCEPTED, HOLD, IGNORED or FILTERED", to=("outcome",)),
        Field(
            "reason",
            "code",
            "the order reason (filtered: the bar's regime code, named by its labels)",
            to=("reason", "trend", "volatility"),
        ),
        Field("target_fraction", "float", "an accepted intent's signed fraction of equity"),
    ),
    journal="risk_decision",
)
REJECT = Record(
    4,
    "rejection",
    "A refused intent or order: a built-in code and its values, or code 0 and the ref "
    "of a plugin's `Rejection`; and what it was for.",
    (
        Field(
            "code", "code", "the reason code (0: a plugin's, see values[0])", to=("code", "message")
        ),
        Field(
            "values",
            "float",
            "the code's values (`codes.Code.values` order)",
            8,
            to=("values", "message"),
        ),
        Field(
            "purpose",
            "code",
            "the order reason of what was refused: a signal's ENTRY, REVERSE or "
            "SCALE_IN, an order's own (EXIT_STOP_LOSS...)",
        ),
    ),
    journal="rejection",
)
HALT = Record(
    5,
    "halt",
    "Trading halted: a built-in code and its values, or code 0 and the ref of a "
    "plugin's or a health rule's `Halt`. Symbol -1.",
    (
        Field(
            "code",
            "code",
            "the halt's code (0: a Python halt, see values[0])",
            to=("code", "message"),
        ),
        Field("values", "float", "the code's values", 9, to=("values", "message")),
    ),
    journal="halt",
)
ORDER = Record(
    6,
    "order",
    "An order decided (journaled before any venue sees it).",
    (
        Field("seq", "int", "its number (the client order id's suffix)", to=("id",)),
        Field("side", "int", "+1 buy, -1 sell"),
        Field("quantity", "float"),
        Field("reason", "code"),
        Field("reference_price", "float", "the decision's price"),
        Field("type", "int", "layout.ORDER_MARKET, ORDER_STOP or ORDER_LIMIT", to=("kind",)),
        Field(
            "price",
            "float",
            "a stop's trigger or a limit's price (NaN: market)",
            to=("stop_price", "limit_price"),
        ),
        Field("parent", "int", "the slicing parent's number (0: none)", to=("parent_id",)),
    ),
    journal="order",
)
FILL = Record(
    7,
    "fill",
    "An order (partly) filled, and the account after it.",
    (
        Field("seq", "int", "the order's number", to=("order_id",)),
        Field("side", "int"),
        Field("quantity", "float"),
        Field("price", "float"),
        Field("fee", "float"),
        Field("slippage", "float"),
        Field("decision_bar", "int", "the bar of the decision behind the order", to=()),
        Field("position", "float", "the symbol's position after the fill", to=()),
        Field("cash", "float", "the account's cash after the fill", to=()),
        Field("liquidity", "int", "layout.LIQ_TAKER, LIQ_MAKER or LIQ_UNKNOWN"),
    ),
    journal="fill",
)
CANCEL = Record(
    8,
    "cancel",
    "A venue stopped working an order.",
    (
        Field("seq", "int", "the order's number", to=("order_id",)),
        Field("remaining", "float", "the quantity left unfilled"),
        Field("reason", "code"),
        Field("decision_bar", "int", "the correlation id's bar", to=()),
    ),
    journal="order_cancelled",
)
TRADE = Record(
    9,
    "trade",
    "A round trip closed by the fill before it (an output, not journaled): "
    "`tradeloom.core.accounting.TRADE_FIELDS`.",
    (
        Field("direction", "int"),
        Field("entry_bar", "int"),
        Field("exit_bar", "int"),
        Field("quantity", "float", "its largest size"),
        Field("entry_price", "float"),
        Field("exit_price", "float"),
        Field("fees", "float"),
        Field("pnl", "float", "after fees"),
    ),
)
REGIME = Record(
    10,
    "regime",
    "A symbol's regime differs from its previous bar's.",
    (
        Field("code", "int", "the regime's code", to=("trend", "volatility")),
        Field("previous", "int", to=("previous_trend", "previous_volatility")),
    ),
    journal="regime_changed",
)
STATE = Record(
    11,
    "state",
    "The trading state changed (ACTIVE, REDUCING, HALTED). Symbol -1.",
    (
        Field("previous", "int", "codes.STATE_NAMES"),
        Field("state", "int"),
        Field("code", "code", "why", to=("code", "message")),
        Field("values", "float", "the code's values", 3, to=("message",)),
    ),
    journal="trading_state",
    head=("at",),
)
LIQUIDATION = Record(
    12,
    "liquidation",
    "A margin position liquidated at its level.",
    (
        Field("side", "int"),
        Field("quantity", "float"),
        Field("price", "float"),
        Field("fee", "float", "the liquidation fee"),
        Field("equity_before", "float"),
        Field("maintenance", "float", "the maintenance margin it fell below"),
    ),
    journal="liquidation",
)
EXTERNAL = Record(
    13,
    "external",
    "A Python object journaled at this point of the run (a health change, a live "
    "run's own event): the journal's event is that object.",
    (Field("ref", "ref", to=()),),
)
PARENT = Record(
    14,
    "sliced_order",
    "A sliced order: its children are orders whose parent is its number.",
    (
        Field("seq", "int", to=("id",)),
        Field("side", "int"),
        Field("quantity", "float"),
        Field("reason", "code"),
        Field("reference_price", "float"),
        Field("slicing", "int", "layout.SLICE_TWAP or SLICE_PARTICIPATION"),
        Field(
            "detail",
            "float",
            "twap: its children; participation: the volume fraction",
            to=("children", "max_volume_fraction"),
        ),
    ),
    journal="sliced_order",
)
FUNDING = Record(
    15,
    "funding",
    "A perpetual's funding booked (`tradeloom.core.funding`); position and cash sit "
    "where a fill has them (the equity curve reads both).",
    (
        Field("rate", "float"),
        Field("price", "float"),
        Field("quantity", "float", "the position funded", to=("position",)),
        Field("amount", "float", "+ received"),
        Field("unused", "float", "(0)", 3, to=()),
        Field("position", "float", "the position after it (the curves')", to=()),
        Field("cash", "float"),
    ),
    journal="funding",
)

RECORDS = (
    TRAINING,
    SIGNAL,
    DECISION,
    REJECT,
    HALT,
    ORDER,
    FILL,
    CANCEL,
    TRADE,
    REGIME,
    STATE,
    LIQUIDATION,
    EXTERNAL,
    PARENT,
    FUNDING,
)
"""Every kind of row, by code."""

_BY_CODE = {r.code: r for r in RECORDS}
_BY_NAME = {r.name: r for r in RECORDS}


def record(name: str) -> Record:
    """Return the record named ``name``."""
    return _BY_NAME[name]


H = TypeVar("H")


def dispatch(handlers: Mapping[Record, H], *, without: Iterable[Record] = ()) -> dict[str, H]:
    """Return ``handlers`` by kind name: a module's one dispatch over the kinds of rows.

    Every record is handled or named in ``without`` (a kind the module does nothing
    with), so a kind added to `RECORDS` fails, at import, every dispatch that does not
    say what it does with it.

    Raises:
        ValueError: A record neither handled nor left out, or both.
    """
    left = set(without)
    missing = [r.name for r in RECORDS if r not in handlers and r not in left]
    twice = [r.name for r in RECORDS if r in handlers and r in left]
    if missing or twice:
        raise ValueError(
            f"a dispatch over the event rows: {', '.join(missing) or 'none'} unhandled, "
            f"{', '.join(twice) or 'none'} both handled and left out"
        )
    return {r.name: handlers[r] for r in RECORDS if r in handlers}


# the columns the compiled readers take (the equity curve, the sweep's batched kernel)
FILL_POSITION = FILL.column("position")
FILL_CASH = FILL.column("cash")
FUNDING_POSITION = FUNDING.column("position")
FUNDING_CASH = FUNDING.column("cash")
if (FUNDING_POSITION, FUNDING_CASH) != (FILL_POSITION, FILL_CASH):  # pragma: no cover
    raise AssertionError("a funding row's position and cash must sit where a fill's do")
REJECT_CODE = REJECT.column("code")
HALT_CODE = HALT.column("code")
TRADE_VALUES = TRADE.column("direction")
"""The first of a trade row's values (`TRADE_FIELDS` order, one after another)."""
TRADE_SIZE = len(TRADE.fields)


@dataclass(slots=True)
class Columns:
    """The rows of one kind, gathered: their place, head and typed fields.

    Attributes:
        record: Their kind.
        positions: Each row's index among the rows split.
        bar: Each row's bar.
        symbol: Each row's symbol index (-1: the account).
        values: The rows' values (``[rows, VALUES]``).
    """

    record: Record
    positions: npt.NDArray[np.int64]
    bar: npt.NDArray[np.int64]
    symbol: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    _read: dict[str, npt.NDArray[Any]] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, name: str) -> npt.NDArray[Any]:
        """Return field ``name``: int64 for ``int``, ``code`` and ``ref``, else float64
        (a field of several values: ``[rows, width]``); read once."""
        column = self._read.get(name)
        if column is None:
            at, width, integer = self.record.slots[name]
            if width > 1:
                column = self.values[:, at : at + width]
            else:
                column = self.values[:, at]
                if integer:
                    column = column.astype(np.int64)
            self._read[name] = column
        return column

    def named(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """Yield each row's bar and its fields by name, as Python numbers: an int for an
        ``int``, ``code`` or ``ref`` field, a tuple of floats for a field of several
        values, else a float (the rarer kinds' rows, built one by one)."""
        read = self.record.read
        for bar, values in zip(self.bar.tolist(), self.values.tolist(), strict=True):
            yield bar, read(values)


_FEW = 64
"""Rows split with Python's grouping rather than numpy's (a paper run's bar, a flush)."""


def split(rows: npt.NDArray[np.float64]) -> dict[str, Columns]:
    """Return ``rows``' kinds by name (those present, in code order), each gathered once.

    Raises:
        ValueError: A row of a kind no record declares.
    """
    if len(rows) <= _FEW:
        groups: dict[int, list[int]] = {}
        for i, kind in enumerate(rows[:, KIND].tolist()):
            groups.setdefault(int(kind), []).append(i)
        places = [(code, np.array(groups[code], dtype=np.int64)) for code in sorted(groups)]
        gathered = [rows if len(places) == 1 else rows[where] for _, where in places]
    else:  # one sort by kind (stable: each kind's rows in order), one gather
        kinds = rows[:, KIND].astype(np.int64)
        # codes of a byte sort as bytes: numpy's stable sort of uint8 is a radix sort
        # (0.17 ms against 0.9 ms over the 110,000 rows of a 1M-bar run); the same order
        small = kinds.min() >= 0 and kinds.max() < 256
        order = np.argsort(kinds.astype(np.uint8) if small else kinds, kind="stable")
        ranked = rows[order]
        edges = np.flatnonzero(np.diff(kinds[order])) + 1
        starts, ends = np.r_[0, edges].tolist(), np.r_[edges, len(rows)].tolist()
        codes = kinds[order[starts]].tolist()
        places = [(code, order[a:b]) for code, a, b in zip(codes, starts, ends, strict=True)]
        gathered = [ranked[a:b] for a, b in zip(starts, ends, strict=True)]
    out: dict[str, Columns] = {}
    for (code, where), taken in zip(places, gathered, strict=True):
        rec = _BY_CODE.get(code)
        if rec is None:
            raise ValueError(f"unknown event row kind {code}")
        head = taken[:, :HEAD].astype(np.int64)
        out[rec.name] = Columns(rec, where, head[:, BAR], head[:, SYMBOL], taken[:, HEAD:])
    return out
