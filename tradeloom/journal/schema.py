"""Each kind's table, generated from its event class's fields (never written by hand).

A table per kind, named after it (`tradeloom.journal.events.table_of`): ``seq``
(INTEGER PRIMARY KEY, the row's place in the run), the header (``bar``,
``timestamp``, ``symbol``, ``correlation_id``), the kind's fields in declaration
order, and ``hash`` (the chain, `tradeloom.journal.chain`). The tables are STRICT:
SQLite refuses a value of the wrong type.

Columns by Python type:

============================  ==================  ==========================================
field type                    SQL                 notes
============================  ==================  ==========================================
``int``                       INTEGER NOT NULL    64-bit; header ``bar``, ``correlation_id``:
                                                  NULL for -1 (none)
``bool``                      INTEGER NOT NULL    0 or 1
``float``                     REAL                NaN is NULL; ``-0.0`` is stored as ``0.0``
``pandas.Timestamp``          INTEGER             ns since the epoch, UTC; NaT is NULL
``str``                       TEXT NOT NULL       secrets redacted (`tradeloom.runtime.redaction`)
``str | None``                TEXT                None is NULL
anything else                 TEXT NOT NULL       JSON, keys sorted; a non-finite float is
                                                  ``null`` (a ``Mapping[str, float]`` reads
                                                  it back as NaN)
============================  ==================  ==========================================

A kind may gain a field after its format was released when the field is a ``str``
marked ``added`` in its metadata (``Fill.liquidity``): a table made before it reads
it as '' (`Schema.select_sql` of the table's columns), a file or database reopened to
append gets the column (`Schema.added_sql`, default ''), and an empty value adds no
word to the row's hash (`tradeloom.journal.chain`), so the older rows keep theirs.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import math
import struct
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from functools import cache
from typing import Any

import numpy as np

from tradeloom.journal.chain import chain_step, pack_text, pack_text_kept, packed_texts
from tradeloom.journal.events.base import KINDS, Event, table_of
from tradeloom.runtime.lazy import pandas as pd
from tradeloom.runtime.redaction import redact_recurring, redact_text

__all__ = [
    "HEADER",
    "Codec",
    "Column",
    "JournalValueError",
    "Schema",
    "jsonable",
    "schema_of",
    "value_decoder",
    "value_encoder",
]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_QUIET_NAN: float = struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000000))[0]


class JournalValueError(ValueError):
    """A value an event field cannot hold in its column (an int beyond 64 bits...)."""


class Codec(Enum):
    """How a field is stored, hashed and read back."""

    INT = "int"
    ID = "id"  # an int where -1 means none (NULL)
    BOOL = "bool"
    FLOAT = "float"
    TIME = "time"
    TEXT = "text"
    OPT_TEXT = "opt_text"
    JSON = "json"
    FLOAT_MAP = "float_map"

    @property
    def fixed(self) -> bool:
        """Whether the value is hashed as one 64-bit word (else as a text)."""
        return self in _FIXED

    @property
    def sql(self) -> str:
        """The column's declaration after its name."""
        return _SQL[self]


_FIXED = frozenset({Codec.INT, Codec.ID, Codec.BOOL, Codec.FLOAT, Codec.TIME})
_SQL = {
    Codec.INT: "INTEGER NOT NULL",
    Codec.ID: "INTEGER",
    Codec.BOOL: "INTEGER NOT NULL",
    Codec.FLOAT: "REAL",
    Codec.TIME: "INTEGER",
    Codec.TEXT: "TEXT NOT NULL",
    Codec.OPT_TEXT: "TEXT",
    Codec.JSON: "TEXT NOT NULL",
    Codec.FLOAT_MAP: "TEXT NOT NULL",
}


@dataclass(frozen=True)
class Column:
    """One column of a kind's table."""

    name: str
    codec: Codec
    added: bool = False


HEADER: tuple[Column, ...] = (
    Column("bar", Codec.ID),
    Column("timestamp", Codec.TIME),
    Column("symbol", Codec.TEXT),
    Column("correlation_id", Codec.ID),
)
"""The header columns every table has after ``seq``, in this order."""

_HEADER_NAMES = frozenset(c.name for c in HEADER)


class Schema:
    """The table of one kind: its columns, SQL, and row conversions.

    Attributes:
        kind: The kind's name.
        table: Its table.
        cls: Its event class.
        fields: The kind's own columns, in declaration order.
        columns: Every column after ``seq`` and before ``hash``: the header, then
            ``fields``.
    """

    def __init__(self, cls: type[Event]) -> None:
        self.cls = cls
        self.kind = cls.KIND
        self.table = table_of(cls.KIND)
        hints = _type_hints(cls)
        own = [
            Column(
                f.name,
                _codec(hints[f.name], f"{self.kind}.{f.name}"),
                f.metadata.get("added", False),
            )
            for f in dataclasses.fields(cls)
            if f.name not in _HEADER_NAMES and f.metadata.get("journal", True)
        ]
        for column in own:
            if column.added and column.codec is not Codec.TEXT:
                raise TypeError(f"{self.kind}.{column.name}: only a str field can be added")
        self.fields: tuple[Column, ...] = tuple(own)
        self.added: tuple[Column, ...] = tuple(c for c in own if c.added)
        self.columns: tuple[Column, ...] = HEADER + self.fields
        names = [c.name for c in self.columns]
        self.names = tuple(names)
        # the hash's word order: seq, the header's integers, the fixed fields; then texts
        self.fixed_index = tuple(
            [0, 1, 3] + [4 + i for i, c in enumerate(self.fields) if c.codec.fixed]
        )
        self.fixed_columns = tuple(self.columns[i] for i in self.fixed_index)
        self.text_index = tuple(
            [2] + [4 + i for i, c in enumerate(self.fields) if not c.codec.fixed]
        )
        self.text_columns = tuple(self.columns[i] for i in self.text_index)
        self._absent = frozenset(
            i for i in self.text_index if self.columns[i].added
        )  # an empty added text hashes as no word
        formats = "".join("d" if c.codec is Codec.FLOAT else "q" for c in self.fixed_columns)
        self.fixed_format = struct.Struct("<q" + formats)
        self.kind_words = pack_text(self.kind)
        self.insert_one = f"INSERT INTO {self.into} VALUES {self._row_marks()}"
        """`insert_sql` of one row, built once (every commit of a tick reads it)."""

    @functools.cached_property
    def _encoders(self) -> tuple[Callable[[Any], Any], ...]:
        # made when a row of the kind is first written: a new journal makes every kind's
        # schema for its tables, and writes a few kinds
        return tuple(value_encoder(c.codec, f"{self.kind}.{c.name}") for c in self.columns)

    @functools.cached_property
    def _decoders(self) -> tuple[Callable[[Any], Any], ...]:
        return tuple(value_decoder(c.codec) for c in self.columns)

    # --- SQL --------------------------------------------------------------------

    def create_sql(self) -> str:
        """Return the CREATE TABLE and its append-only triggers."""
        columns = ",\n  ".join(f'"{c.name}" {c.codec.sql}' for c in self.columns)
        table = self.table
        return (
            f'CREATE TABLE IF NOT EXISTS "{table}" (\n  "seq" INTEGER PRIMARY KEY,\n  '
            f'{columns},\n  "hash" INTEGER NOT NULL\n) STRICT;\n'
            f'CREATE TRIGGER IF NOT EXISTS "{table}_no_update" BEFORE UPDATE ON "{table}" '
            "BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;\n"
            f'CREATE TRIGGER IF NOT EXISTS "{table}_no_delete" BEFORE DELETE ON "{table}" '
            "BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;\n"
        )

    def insert_sql(self, rows: int = 1) -> str:
        """Return an INSERT of ``rows`` rows (every column, ``seq`` first, ``hash`` last)."""
        if rows == 1:
            return self.insert_one
        return f"INSERT INTO {self.into} VALUES " + ",".join([self._row_marks()] * rows)

    def _row_marks(self) -> str:
        return "(" + ",".join("?" * (len(self.columns) + 2)) + ")"

    @property
    def into(self) -> str:
        """Return the table and its columns as an INSERT names them (an added column is
        the table's last when ALTER TABLE gave it to an older file)."""
        names = ",".join(f'"{n}"' for n in ("seq", *self.names, "hash"))
        return f'"{self.table}" ({names})'

    def select_sql(self, stored: frozenset[str] | None = None) -> str:
        """Return the SELECT of every row in sequence order (``seq`` first, ``hash`` last).

        Args:
            stored: The table's columns when it may lack an added one (read as '') or
                hold it last (named, then, in the schema's order).
        """
        if stored is None:
            return f'SELECT * FROM "{self.table}" ORDER BY "seq"'
        names = ['"seq"', *(self.stored_column(c, stored) for c in self.columns), '"hash"']
        return f'SELECT {", ".join(names)} FROM "{self.table}" ORDER BY "seq"'

    @staticmethod
    def stored_column(column: Column, stored: frozenset[str]) -> str:
        """Return ``column`` in a SELECT list: '' for an added one the table lacks."""
        if column.added and column.name not in stored:
            return f"'' AS \"{column.name}\""
        return f'"{column.name}"'

    def added_sql(self, stored: frozenset[str]) -> list[str]:
        """Return the ALTER TABLEs that give a table of ``stored`` columns the added ones."""
        return [
            f'ALTER TABLE "{self.table}" ADD COLUMN "{c.name}" TEXT NOT NULL DEFAULT \'\''
            for c in self.added
            if c.name not in stored
        ]

    # --- rows -------------------------------------------------------------------

    @functools.cached_property
    def _row_and_words(
        self,
    ) -> tuple[
        Callable[[Event], list[Any]],
        Callable[[int, Any], bytes],
        Callable[[Event, int], tuple[list[Any], bytes]],
    ]:
        # compiled at the kind's first row: a backtest opens a journal with every kind's
        # table and writes rows of a few, in bulk (compiling all 50 cost ~10 ms a run)
        return _row_functions(self)

    def to_sql(self, event: Event) -> list[Any]:
        """Return ``event``'s values as stored, the header first (canonical, redacted).

        Raises:
            JournalValueError: A value that its column cannot hold.
        """
        return self._row_and_words[0](event)

    @functools.cached_property
    def stored(self) -> Callable[[Event, int], tuple[list[Any], bytes]]:
        """``stored(event, seq)``: the row a store appends (``seq``, `to_sql`'s values, a
        None for its chain value) and its `words`, in one call (a live tick's every row)."""
        return self._row_and_words[2]

    def chain_value(self, seq: int, row: list[Any], previous: int) -> int:
        """Return the chain value of stored row ``seq`` (``row``: its values after ``seq``)
        after the chain value ``previous`` (`tradeloom.journal.chain`)."""
        words = np.frombuffer(self.words(seq, row), dtype=np.uint64)
        return int(chain_step(words, len(words), np.uint64(previous)))

    def words(self, seq: int, row: list[Any] | tuple[Any, ...]) -> bytes:
        """Return the hash words of a stored row (``row``: the values after ``seq``)."""
        return self._row_and_words[1](seq, row)

    def from_sql(self, row: tuple[Any, ...] | list[Any]) -> Event:
        """Return the event of a stored row (``row``: the values after ``seq``, no ``hash``).

        Raises:
            JournalValueError: A value that does not decode (JSON that is not JSON...).
        """
        kwargs = {}
        for name, decode, value in zip(self.names, self._decoders, row, strict=True):
            try:
                kwargs[name] = decode(value)
            except (TypeError, ValueError) as exc:
                raise JournalValueError(f"{self.kind}.{name}: {exc}") from None
        return self.cls(**kwargs)


@cache
def schema_of(kind: str) -> Schema:
    """Return the schema of ``kind``.

    Raises:
        KeyError: No such kind.
    """
    return Schema(KINDS[kind])


def jsonable(value: Any) -> Any:
    """Return ``value`` as plain JSON values: non-finite floats become None."""
    if type(value) is float:  # most values of a row's document: past the unions' checks
        return value if math.isfinite(value) else None
    if type(value) is dict:  # a row's document: past the checks (the Mapping's is Python)
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, str) or value is None:
        return value
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return str(value)


# --- codecs ------------------------------------------------------------------------


class _TimeAnnotation:
    """What ``pd.Timestamp`` in an event's annotations reads as (`_ANNOTATION_NAMES`)."""


_TIME_ANNOTATION = _TimeAnnotation
_ANNOTATION_NAMES: dict[str, Any] = {"pd": types.SimpleNamespace(Timestamp=_TIME_ANNOTATION)}
"""The names an event's annotations are read with: its ``pd.Timestamp`` fields are told
from the text, without importing pandas (a journal's columns are known before pandas is
needed: `tradeloom.journal.verify` never decodes a time)."""


def _type_hints(cls: type) -> dict[str, Any]:
    """Return ``typing.get_type_hints(cls, localns=_ANNOTATION_NAMES)``, each annotation's
    text evaluated once per module where it is written: the kinds share most of theirs
    (the header's, ``int``, ``str``...), and a new journal makes every kind's schema
    (72 evaluated in full cost a small backtest ~10 ms)."""
    texts: dict[str, tuple[str, str]] = {}
    for base in reversed(cls.__mro__):
        for name, value in inspect.get_annotations(base).items():
            if not isinstance(value, str):
                return typing.get_type_hints(cls, localns=_ANNOTATION_NAMES)
            texts[name] = (value, base.__module__)
    return {name: _hint(text, module) for name, (text, module) in texts.items()}


@cache
def _hint(text: str, module: str) -> Any:
    """The annotation ``text`` of a class of ``module``, as `typing.get_type_hints` reads it."""
    holder = type("_Holder", (), {"__annotations__": {"value": text}, "__module__": module})
    return typing.get_type_hints(holder, localns=_ANNOTATION_NAMES)["value"]


def _codec(annotation: Any, where: str) -> Codec:
    if annotation is bool:
        return Codec.BOOL
    if annotation is int:
        return Codec.INT
    if annotation is float:
        return Codec.FLOAT
    if annotation is str:
        return Codec.TEXT
    if annotation is _TIME_ANNOTATION:
        return Codec.TIME
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal and all(isinstance(a, str) for a in args):
        return Codec.TEXT
    if set(args) == {str, type(None)}:
        return Codec.OPT_TEXT
    if origin in (Mapping, dict, typing.Mapping) and args == (str, float):
        return Codec.FLOAT_MAP
    if origin in (dict, list, tuple, Mapping) or annotation is Any or type(None) in args:
        return Codec.JSON
    raise TypeError(f"{where}: no journal column for the type {annotation!r}")


_NULL_WORD: dict[Codec, Any] = {
    Codec.ID: -1,
    Codec.TIME: _INT64_MIN,
    Codec.FLOAT: _QUIET_NAN,
}


def _row_functions(
    schema: Schema,
) -> tuple[
    Callable[[Event], list[Any]],
    Callable[[int, Any], bytes],
    Callable[[Event, int], tuple[list[Any], bytes]],
]:
    """Compile ``schema``'s `Schema.to_sql`, `Schema.words` and `Schema.stored`: one
    function each, the fixed-width columns' encoding written inline (a live run calls
    them for every row it journals: a function call per column cost more than the work).

    They do what `value_encoder`'s functions, column by column, and the chain's word
    order (`tradeloom.journal.chain`) say; the texts go through those functions.
    """
    env: dict[str, Any] = {
        "_big": _too_big,
        "_time": value_encoder(Codec.TIME, ""),
        "_Timestamp": pd.Timestamp,
        "_pack": schema.fixed_format.pack,
        "_pack_text": pack_text_kept,
        "_packed": packed_texts.get,
        "_redacted": redact_recurring,
        "_kind": schema.kind_words,
    }
    values = []
    for i, column in enumerate(schema.columns):
        v, where = f"e.{column.name}", repr(f"{schema.kind}.{column.name}")
        fits = f"{_INT64_MIN} <= n{i} <= {_INT64_MAX}"
        codec = column.codec
        if codec is Codec.INT:
            taken = f"{_INT64_MIN} <= (n{i} := int({v})) <= {_INT64_MAX}"
            values.append(f"(n{i} if {taken} else _big(n{i}, {where}))")
        elif codec is Codec.ID:
            values.append(
                f"(None if (n{i} := int({v})) == -1 else n{i} if {fits} else _big(n{i}, {where}))"
            )
        elif codec is Codec.BOOL:
            values.append(f"(1 if {v} else 0)")
        elif codec is Codec.FLOAT:
            values.append(f"(None if (x{i} := float({v})) != x{i} else x{i} + 0.0)")
        elif codec is Codec.TIME:
            values.append(f"(t{i}.value if type(t{i} := {v}) is _Timestamp else _time(t{i}))")
        elif codec is Codec.TEXT:  # a str (the rest: its encoder says what is wrong)
            env[f"_encode{i}"] = schema._encoders[i]
            values.append(f"(_redacted(s{i}) if type(s{i} := {v}) is str else _encode{i}(s{i}))")
        elif codec is Codec.OPT_TEXT:
            env[f"_encode{i}"] = schema._encoders[i]
            values.append(
                f"(None if (s{i} := {v}) is None else _redacted(s{i}) if type(s{i}) is str "
                f"else _encode{i}(s{i}))"
            )
        else:
            env[f"_encode{i}"] = schema._encoders[i]
            values.append(f"_encode{i}({v})")
    for i, column in zip(schema.fixed_index, schema.fixed_columns, strict=True):
        null = _NULL_WORD.get(column.codec, _INT64_MIN)  # NULL: only from a damaged file
        env[f"_null{i}"] = null

    def joined(at: int) -> str:
        """The words of a row whose value ``i`` is ``row[i + at]``, as one expression."""
        words = [f"(_null{i} if (w{i} := row[{i + at}]) is None else w{i})" for i in fixed_at]
        parts = [f"_pack(seq, {', '.join(words)})", "_kind"]
        for i in schema.text_index:
            # a text packed before is looked up (`packed_texts`: its words never change)
            packed = f"(_packed(p{i} := row[{i + at}]) or _pack_text(p{i}))"
            if i in schema._absent:  # an empty added text is no word
                packed = f"({packed} if row[{i + at}] else b'')"
            parts.append(packed)
        return "b''.join([" + ", ".join(parts) + "])"

    fixed_at = schema.fixed_index
    source = (
        "def to_sql(e):\n    return [" + ", ".join(values) + "]\n\n"
        f"def words(seq, row):\n    return {joined(0)}\n\n"
        # a row as a store appends it: seq first, its chain value (None) last, and its words
        "def stored(e, seq):\n    row = [seq, " + ", ".join(values) + ", None]\n"
        f"    return row, {joined(1)}\n"
    )
    exec(compile(source, f"<journal schema {schema.kind}>", "exec"), env)
    return env["to_sql"], env["words"], env["stored"]


def _too_big(number: int, where: str) -> int:
    raise JournalValueError(f"{where}: {number} does not fit a 64-bit integer")


def value_encoder(codec: Codec, where: str) -> Callable[[Any], Any]:
    """Return the function that turns a field's value into its SQL value (``where``: the
    field, for error messages)."""

    def integer(value: Any) -> int:
        number = int(value)
        if not _INT64_MIN <= number <= _INT64_MAX:
            raise JournalValueError(f"{where}: {number} does not fit a 64-bit integer")
        return number

    def identifier(value: Any) -> int | None:
        number = integer(value)
        return None if number == -1 else number

    def boolean(value: Any) -> int:
        return 1 if value else 0

    def real(value: Any) -> float | None:
        number = float(value)
        return None if number != number else number + 0.0

    def time(value: Any) -> int | None:
        if value is None or value is pd.NaT:
            return None
        if not isinstance(value, pd.Timestamp):
            value = pd.Timestamp(value)
            if value is pd.NaT:
                return None
        return int(value.value)

    def text(value: Any) -> str:
        if not isinstance(value, str):
            raise JournalValueError(f"{where}: expected a text, was {type(value).__name__}")
        return redact_text(value)

    def optional_text(value: Any) -> str | None:
        return None if value is None else text(value)

    def document(value: Any) -> str:
        return redact_text(_DOCUMENT.encode(jsonable(value)))

    return {
        Codec.INT: integer,
        Codec.ID: identifier,
        Codec.BOOL: boolean,
        Codec.FLOAT: real,
        Codec.TIME: time,
        Codec.TEXT: text,
        Codec.OPT_TEXT: optional_text,
        Codec.JSON: document,
        Codec.FLOAT_MAP: lambda value: document({k: _number(v) for k, v in value.items()}),
    }[codec]


_DOCUMENT = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
"""``json.dumps`` with these options, made once (``dumps`` makes one at every call)."""


def _number(value: Any) -> Any:
    # a float map holds floats: an int (a side, a count) is written as the float it reads
    # back as, so that a value and its reading encode alike
    if type(value) is float:  # a float map's values mostly are
        return value
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    ):
        return float(value)
    return value


def _decode_int(value: Any) -> int:
    if not isinstance(value, int):
        raise TypeError(f"expected an integer, was {value!r}")
    return value


def _decode_id(value: Any) -> int:
    return -1 if value is None else _decode_int(value)


def _decode_bool(value: Any) -> bool:
    if value not in (0, 1):
        raise TypeError(f"expected 0 or 1, was {value!r}")
    return bool(value)


def _decode_float(value: Any) -> float:
    if value is None:
        return math.nan
    if not isinstance(value, float | int):
        raise TypeError(f"expected a number, was {value!r}")
    return float(value)


def _decode_time(value: Any) -> pd.Timestamp:
    if value is None:
        return pd.NaT
    return pd.Timestamp(_decode_int(value), tz="UTC")


def _decode_text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a text, was {value!r}")
    return value


def _decode_optional_text(value: Any) -> str | None:
    return None if value is None else _decode_text(value)


def _decode_json(value: Any) -> Any:
    try:
        return json.loads(_decode_text(value))
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc})") from None


def _decode_float_map(value: Any) -> dict[str, float]:
    data = _decode_json(value)
    if not isinstance(data, dict):
        raise TypeError(f"expected a JSON object, was {value!r}")
    return {str(k): math.nan if v is None else float(v) for k, v in data.items()}


def value_decoder(codec: Codec) -> Callable[[Any], Any]:
    """Return the function that turns a stored SQL value back into a field's value."""
    return _DECODERS[codec]


_DECODERS: dict[Codec, Callable[[Any], Any]] = {
    Codec.INT: _decode_int,
    Codec.ID: _decode_id,
    Codec.BOOL: _decode_bool,
    Codec.FLOAT: _decode_float,
    Codec.TIME: _decode_time,
    Codec.TEXT: _decode_text,
    Codec.OPT_TEXT: _decode_optional_text,
    Codec.JSON: _decode_json,
    Codec.FLOAT_MAP: _decode_float_map,
}
