"""Series that are not bars (``data.auxiliary``), joined to the bars as-of, without look-ahead.

A data source may declare series beside its bars: a timestamped file (sentiment,
on-chain figures, macro releases: one global series, or one per symbol with a symbol
column) or an exchange's funding rates (``kind: funding_rate``, ccxt sources only).
Each is published some time after its timestamp, declared by ``available_after``
(required; ``0s`` allowed). A value stamped ``x`` is visible at a bar whose decision
time, the bar's close (open time + timeframe), is at or after ``x + available_after``;
never earlier. Each bar gets the latest visible value (NaN before the first one) in a
column of its ``Bars.frame`` named after the series; the ``series`` feature makes a
feature column of it.

A text source (``kind: text``: news, posts, filings) is declared here too, with the
same ``available_after``: its documents are no column; they ride beside each symbol's
bars (`Bars.documents`, read by `tradeloom.plugins.data.text_source`) for the text
features, which keep the same rule (a document is seen from the first bar whose close is
at or after its publication plus the delay).

Times follow the source's ``validation`` policy: under ``reject`` unsorted or
repeated times and missing values are an error naming the file, its line and the
remedy; under ``repair`` the rows are sorted, the first of repeated times kept and
missing values dropped. `check_lookahead` rebuilds these columns from what was
published by each cut (`AuxiliarySeries.published_by`), so a value used before its
publication is found.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import Field, field_validator, model_validator

from tradeloom.domain import OHLCV, AuxiliarySeries, Bars
from tradeloom.errors import DataError
from tradeloom.plugins.component import (
    BuildContext,
    ParamError,
    Params,
    param_errors,
    raise_collected,
)
from tradeloom.plugins.data.csv_lines import csv_line_numbers
from tradeloom.plugins.data.timestamps import parse_timestamps
from tradeloom.plugins.data.validation import (
    DataValidationError,
    ValidationPolicy,
    find_columns,
    rows_line,
)
from tradeloom.plugins.inner import inner_params
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd
from tradeloom.text.documents import DocumentFeed, Documents

if TYPE_CHECKING:
    # a text source's reading and feeds, imported where a text source is read: a source
    # of bars alone (csv, parquet, synthetic, ccxt) never imports them (~3 ms of a small
    # run's start-up)
    from tradeloom.plugins.data.received import TextRules
    from tradeloom.plugins.data.text_source import DocumentFile, TextColumns
    from tradeloom.text.feeds import DocumentReceiver

__all__ = [
    "AsOfRows",
    "Auxiliary",
    "AuxiliaryColumns",
    "AuxiliaryParams",
    "AuxiliarySeries",
    "FedSource",
    "FundingFetcher",
    "asof_values",
    "build_auxiliary",
    "join_asof",
    "parse_delay",
    "rejoin_published_by",
]

_DELAY = re.compile(r"^(0|[1-9][0-9]{0,8})([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_REPAIR = "set data.validation: repair"


def parse_delay(text: str) -> int:
    """Return a publication delay such as ``15m`` or ``0s`` in seconds.

    Raises:
        ValueError: Not a whole number and one of the units s, m, h, d, w.
    """
    match = _DELAY.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"must be a delay such as 0s, 90s, 15m, 8h or 1d (a whole number and s, m, h, d "
            f"or w); was '{text}'"
        )
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


class AuxiliaryParams(Params):
    """Keys of one series under ``data.auxiliary``."""

    name: str = Field(
        description="The series' name: the column of the bars it is joined to, and what a "
        "series feature's of: names (letters, digits and _)."
    )
    kind: Literal["file", "funding_rate", "text"] = Field(
        description="file: a timestamped CSV or Parquet file; funding_rate: the exchange's "
        "funding rate history of each symbol (data kind ccxt; kind synthetic simulates "
        "one, every 8 hours); text: documents (news, posts) from a CSV, JSON Lines or "
        "Parquet file, for the text features (of: this name)."
    )
    available_after: str = Field(
        description="Required: how long after its timestamp a value is published, such as "
        "15m or 0s. A value stamped x is used from the first bar whose close is at or "
        "after x + available_after."
    )
    path: str | None = Field(
        default=None,
        description="kind file: the file (.parquet or .pq: Parquet, else CSV); relative to "
        "the strategy file.",
    )
    column: str | None = Field(
        default=None, description="kind file: the value column (any case); default: name."
    )
    timestamp_column: str = Field(
        default="timestamp",
        min_length=1,
        description="kind file: the timestamp column (any case): ISO 8601 or epoch seconds or "
        "milliseconds, UTC.",
    )
    symbol_column: str | None = Field(
        default=None,
        description="kind file: a column naming each row's symbol, for a series per symbol; "
        "omitted: one series for every symbol. kind text: the symbol(s) each document is "
        "about (several separated by |, a list in JSON Lines; empty: the whole market).",
    )
    text_column: str = Field(
        default="text", min_length=1, description="kind text: the column of each document's text."
    )
    title_column: str | None = Field(
        default=None, description="kind text: a column of titles (optional)."
    )
    source_column: str | None = Field(
        default=None, description="kind text: a column naming each document's feed (optional)."
    )
    id_column: str | None = Field(
        default=None,
        description="kind text: a column of unique ids; omitted: each row's place in the file.",
    )
    published_column: str | None = Field(
        default=None,
        description="kind text: a column of publication times; a document is visible at its "
        "publication time plus available_after (omitted: its timestamp plus available_after).",
    )
    max_chars: int = Field(
        default=20_000,
        ge=1,
        le=10_000_000,
        description="kind text: the longest text allowed (characters, after normalisation).",
    )
    feed: dict[str, Any] | None = Field(
        default=None,
        description="kind text: where a paper or live run receives new documents while it "
        "runs, e.g. {kind: nats, stream: NEWS, subject: news.>} or {kind: http_poll, url: "
        "...} (`tradeloom plugins` lists the text_feed kinds); kept in the run folder "
        "(documents/NAME.jsonl), visible no earlier than their arrival. A backtest reads "
        "no feed.",
    )
    received: str | None = Field(
        default=None,
        description="kind text: the documents a run received (RUN/documents/NAME.jsonl), "
        "read beside path, each visible from its arrival: a backtest of what the run saw.",
    )

    @field_validator("feed", mode="before")
    @classmethod
    def _feed_kind(cls, value: Any) -> Any:
        if isinstance(value, dict) and not isinstance(value.get("kind"), str):
            raise ValueError(
                "expected the feed's kind: {kind: nats, ...} or {kind: http_poll, ...}"
            )
        return value

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                "must start with a letter or _ and hold only letters, digits and _ "
                f"(e.g. sentiment); was '{value}'"
            )
        if value.lower() in OHLCV:
            raise ValueError(f"'{value}' is a bars column; name the series otherwise")
        return value

    @field_validator("available_after")
    @classmethod
    def _check_delay(cls, value: str) -> str:
        parse_delay(value)
        return value

    @model_validator(mode="after")
    def _check_kind(self) -> AuxiliaryParams:
        file_keys = ("path", "column", "symbol_column")
        fed = self.feed is not None or self.received is not None
        if self.kind in ("file", "text") and self.path is None and not fed:
            raise ValueError(
                f"kind {self.kind} needs path: the file holding the series"
                + (" (or a feed, or received)" if self.kind == "text" else "")
            )
        given = [k for k in _TEXT_KEYS if k in self.model_fields_set]
        if self.kind != "text" and given:
            raise ValueError(f"{', '.join(given)}: for kind text only; remove them")
        if self.kind == "text" and "column" in self.model_fields_set:
            raise ValueError("kind text reads text_column, not column; rename the key")
        if self.kind == "funding_rate":
            given = [k for k in (*file_keys, "timestamp_column") if k in self.model_fields_set]
            if given:
                raise ValueError(
                    f"kind funding_rate reads the exchange, not a file; remove {', '.join(given)}"
                )
        return self

    @property
    def delay_seconds(self) -> int:
        """``available_after`` in seconds."""
        return parse_delay(self.available_after)


_TEXT_KEYS = (
    "text_column",
    "title_column",
    "source_column",
    "id_column",
    "published_column",
    "max_chars",
    "feed",
    "received",
)


class AuxiliaryColumns(Protocol):
    """Several series read from one file, such as a recorded order book's level columns
    (`tradeloom.plugins.data.order_book.OrderBookInput`)."""

    def names(self) -> set[str]:
        """Return the columns the series become in the bars."""
        ...

    def load(self, symbols: tuple[str, ...], policy: ValidationPolicy) -> list[AuxiliarySeries]:
        """Read and check the series for ``symbols`` under ``policy``."""
        ...


FundingFetcher = Callable[[str, str, int], AuxiliarySeries]
"""Returns the funding rates of a symbol as a series: ``fetch(name, symbol, delay_ns)``."""


_POLICY = "data.validation"


@dataclass(frozen=True)
class FedSource:
    """A text source with a feed, as two strategies of a portfolio file compare theirs:
    a source's name is its file in the run folder (``documents/NAME.jsonl``), so two of
    one name are one source, received once, only when their settings are equal.

    Attributes:
        position: Its place in ``data.auxiliary``.
        settings: What it reads and how, by key: its entry's keys (its files absolute,
            its feed's keys as ``feed.<key>``, checked, defaults filled in) and the
            source's ``data.validation``.
    """

    position: int
    settings: Mapping[str, Any]

    def path(self, key: str) -> str:
        """Return the key path of the setting ``key`` in the strategy file."""
        return key if key == _POLICY else f"data.auxiliary.{self.position}.{key}"


@dataclass(frozen=True)
class Auxiliary:
    """A source's declared series, ready to load.

    Args:
        items: The ``data.auxiliary`` entries.
        paths: Each entry's file, absolute (None for ``funding_rate``).
        policy: The source's ``validation`` policy.
        book: The recorded order book of ``data.order_book``, whose level columns are
            series like the others (`tradeloom.plugins.data.order_book`).
        received: Each entry's ``received`` file, absolute (None: none).
        receivers: Each text entry's feed, built, not started (None: none).
        feeds: Each text entry's ``feed`` keys as checked, defaults filled in (None: none).
    """

    items: tuple[AuxiliaryParams, ...] = ()
    paths: tuple[Path | None, ...] = ()
    policy: ValidationPolicy = "reject"
    book: AuxiliaryColumns | None = None
    received: tuple[Path | None, ...] = ()
    receivers: tuple[DocumentReceiver | None, ...] = ()
    # not compared: ``items`` holds each feed already, and a dict is not hashable
    feeds: tuple[dict[str, Any] | None, ...] = field(default=(), compare=False)
    _live: dict[str, DocumentFeed] = field(default_factory=dict, compare=False, repr=False)

    def __bool__(self) -> bool:
        return bool(self.items) or self.book is not None

    def names(self) -> set[str]:
        """Return the columns the series become in each symbol's bars (text sources
        become none: their documents ride beside the bars, `Bars.documents`)."""
        names = {item.name for item in self.items if item.kind != "text"}
        return names | self.book.names() if self.book is not None else names

    def text_names(self) -> tuple[str, ...]:
        """Return the names of the text sources (kind ``text``), in order."""
        return tuple(item.name for item in self.items if item.kind == "text")

    def documents(self) -> dict[str, Documents]:
        """Read every text source (kind ``text``), by name: its file and the documents a
        run received (``received``), each visible from its arrival (a feed is no part of
        a backtest).

        Raises:
            DataError: A file cannot be read or fails validation.
        """
        from tradeloom.plugins.data.received import merge_documents, read_received

        out: dict[str, Documents] = {}
        for position, item in enumerate(self.items):
            if item.kind != "text":
                continue
            file = self._file(position)
            history = Documents.empty() if file is None else file.documents()
            received = self._received(position)
            if received is not None:
                history = merge_documents(history, read_received(received, self._rules(position)))
            out[item.name] = history
        return out

    def fed_sources(self) -> dict[str, FedSource]:
        """Return each text source with a ``feed``, by name, as a portfolio file's
        strategies compare theirs (`FedSource`)."""
        out: dict[str, FedSource] = {}
        for position, item in enumerate(self.items):
            feed = self.feeds[position] if self.feeds else None
            if item.kind != "text" or feed is None:
                continue
            keys = item.model_dump(exclude={"name", "feed", "path", "received"})
            keys |= {f"feed.{name}": value for name, value in feed.items()}
            keys |= {"path": self.paths[position], "received": self._received(position)}
            out[item.name] = FedSource(position, keys | {_POLICY: self.policy})
        return out

    def document_files(self) -> dict[str, DocumentFeed]:
        """Return every text source as a paper or live run reads it (made once): a file
        read as it grows, and with a ``feed`` what the feed brings
        (`tradeloom.plugins.data.received.ReceivedText`, driven by the run)."""
        from tradeloom.plugins.data.received import ReceivedText

        if self._live:
            return dict(self._live)
        for position, item in enumerate(self.items):
            if item.kind != "text":
                continue
            file = self._file(position)
            receiver = self.receivers[position] if self.receivers else None
            received = self._received(position)
            if receiver is None and received is None:
                assert file is not None
                self._live[item.name] = file
                continue
            rules = self._rules(position)
            earlier: DocumentFeed | None = file
            if received is not None:
                earlier = _Joined(file, _ReceivedFile(received, rules))
            if receiver is None:
                assert earlier is not None
                self._live[item.name] = earlier
            else:
                self._live[item.name] = ReceivedText(rules, receiver, earlier)
        return dict(self._live)

    def _file(self, position: int) -> DocumentFile | None:
        from tradeloom.plugins.data.text_source import DocumentFile

        path = self.paths[position]
        if path is None:
            return None
        item = self.items[position]
        return DocumentFile(partial(_read_text, item, path, position, self.policy), path)

    def _received(self, position: int) -> Path | None:
        return self.received[position] if self.received else None

    def _rules(self, position: int) -> TextRules:
        from tradeloom.plugins.data.received import TextRules

        item = self.items[position]
        return TextRules(
            name=item.name,
            label=f"data.auxiliary.{position} ({item.name})",
            delay_ns=item.delay_seconds * 1_000_000_000,
            columns=_text_columns(item),
            max_chars=item.max_chars,
            policy=self.policy,
        )

    def load(
        self, symbols: Sequence[str], funding: FundingFetcher | None = None
    ) -> tuple[AuxiliarySeries, ...]:
        """Read every series for ``symbols`` (per-symbol series: one each).

        Raises:
            DataError: A file cannot be read or fails validation, or a per-symbol
                file has no rows for a symbol.
        """
        out: list[AuxiliarySeries] = []
        for position, (item, path) in enumerate(zip(self.items, self.paths, strict=True)):
            label = f"data.auxiliary.{position} ({item.name})"
            delay = item.delay_seconds * 1_000_000_000
            if item.kind == "text":
                continue  # documents, not a series: `documents`
            if item.kind == "funding_rate":
                if funding is None:  # refused when built; kept for a direct caller
                    raise DataError(f"{label}: funding rates come from an exchange")
                out.extend(funding(item.name, symbol, delay) for symbol in symbols)
                continue
            assert path is not None
            out.extend(_read_file(item, path, label, delay, symbols, self.policy))
        if self.book is not None:
            out.extend(self.book.load(tuple(symbols), self.policy))
        return tuple(out)


def build_auxiliary(
    items: Sequence[AuxiliaryParams],
    ctx: BuildContext,
    policy: ValidationPolicy,
    *,
    exchange: bool,
    book: AuxiliaryColumns | None = None,
) -> Auxiliary:
    """Return the series of ``items`` (and of a recorded book); every file must exist.

    Args:
        items: The ``data.auxiliary`` entries.
        ctx: Resolves relative paths.
        policy: The source's ``validation``.
        exchange: Whether the source is an exchange (``funding_rate`` allowed).
        book: The recorded order book of ``data.order_book``, built, if any.

    Raises:
        ParamError: A file that does not exist, or ``funding_rate`` on a source that
            is not an exchange.
    """
    paths: list[Path | None] = []
    received: list[Path | None] = []
    receivers: list[DocumentReceiver | None] = []
    feeds: list[dict[str, Any] | None] = []
    names: set[str] = set()
    errors: list[ParamError] = []
    for position, item in enumerate(items):
        key = f"auxiliary.{position}"
        receivers.append(None)
        feeds.append(None)
        received.append(None)
        if item.received is not None:
            file = ctx.resolve_path(item.received)
            if not file.is_file():
                errors.append(ParamError(f"{key}.received", f"file not found: {file}"))
            received[-1] = file
        if item.feed is not None:
            try:
                factory, feed = inner_params("text_feed", item.feed, f"{key}.feed")
                receivers[-1] = factory(feed, ctx)
                feeds[-1] = {"kind": item.feed["kind"], **dict(feed)}
            except ParamError as exc:
                errors.extend(param_errors(exc))
        if item.name in names:
            raise ParamError(f"{key}.name", f"'{item.name}' names two series; name each once")
        names.add(item.name)
        if item.kind == "funding_rate":
            if not exchange:
                raise ParamError(
                    f"{key}.kind",
                    "funding_rate series come from an exchange: use data kind ccxt (or "
                    "synthetic), or a kind file series of saved rates",
                )
            paths.append(None)
            continue
        if item.path is None:  # a text source read from its feed or received file only
            paths.append(None)
            continue
        path = ctx.resolve_path(item.path)
        if not path.is_file():
            raise ParamError(f"{key}.path", f"file not found: {path}")
        paths.append(path)
    raise_collected(errors)
    taken = names & book.names() if book is not None else set()
    if taken:
        raise ParamError(
            "auxiliary", f"'{sorted(taken)[0]}' is a column of data.order_book; rename it"
        )
    return Auxiliary(
        tuple(items), tuple(paths), policy, book, tuple(received), tuple(receivers), tuple(feeds)
    )


def join_asof(
    bars: Bars,
    series: Sequence[AuxiliarySeries],
    documents: Mapping[str, Documents] | None = None,
) -> Bars:
    """Return ``bars`` with a column per series that applies to its symbol, and the text
    sources' ``documents`` beside them (`Bars.documents`).

    Bar i (open time o) gets the value of the latest time x with
    ``x + delay <= o + timeframe`` (its close, when its decision is made); NaN when
    no value is published yet. Documents are kept whole: a text feature takes those
    visible at each bar's close (`tradeloom.plugins.features.text`).

    Raises:
        DataError: A series' name is a column the bars already have.
    """
    if documents:
        bars = replace(bars, documents={**bars.documents, **documents})
    wanted = [s for s in series if s.applies_to(bars.symbol)]
    if not wanted:
        return bars
    frame = bars.frame.copy()
    decision = frame.index.as_unit("ns").asi8 + bars.timeframe_seconds * 1_000_000_000
    for s in wanted:
        if s.name in frame.columns:
            raise DataError(
                f"data: {bars.symbol}: the bars already have a column '{s.name}'; "
                "give the auxiliary series another name"
            )
        frame[s.name] = asof_values(s.published(), s.values, decision)
    return replace(bars, frame=frame)


def asof_values(published: np.ndarray, values: np.ndarray, decision: np.ndarray) -> np.ndarray:
    """Return, per decision time, the last value published at or before it (NaN: none).

    Args:
        published: Sorted publication times (ns).
        values: A value per publication time (or a row of values: a 2-D array gives a
            row per decision time).
        decision: The decision times (ns).
    """
    last = np.searchsorted(published, decision, side="right") - 1
    out = np.full((len(decision), *values.shape[1:]), np.nan)
    seen = last >= 0
    out[seen] = values[last[seen]]
    return out


class AsOfRows:
    """One symbol's auxiliary series for a paper or live run, each bar's row as it closes.

    A bar's row is what `join_asof` joins to it in a backtest: per series, the last value
    published (its time plus ``available_after``) by the bar's close. The series are read
    again (``load``) when a bar closes after the newest value read so far was published,
    so that a file written to meanwhile, or an exchange's new funding rate, is seen.
    Implements `tradeloom.plugins.protocols_steps.LiveRows`.

    Args:
        load: Reads every declared series (all symbols').
        symbol: The symbol whose bars the rows are.
        timeframe_seconds: The bar length (a bar's decision is at its close).
    """

    def __init__(
        self,
        load: Callable[[], Sequence[AuxiliarySeries]],
        symbol: str,
        timeframe_seconds: int,
    ) -> None:
        self._load = load
        self._symbol = symbol
        self._bar_ns = timeframe_seconds * 1_000_000_000
        self._series = self._read()
        self.columns: tuple[str, ...] = tuple(s.name for s in self._series)

    def _read(self) -> list[AuxiliarySeries]:
        return [s for s in self._load() if s.applies_to(self._symbol)]

    def row_at(self, time: pd.Timestamp) -> pd.DataFrame:
        """Return the one row of the bar opening at ``time`` (indexed by that time)."""
        decision = np.array([time.value + self._bar_ns], np.int64)
        if any(not len(s.times) or s.published()[-1] < decision[0] for s in self._series):
            self._series = self._read()  # nothing newer was known: read again
        values = [float(asof_values(s.published(), s.values, decision)[0]) for s in self._series]
        index = pd.DatetimeIndex([time], name="timestamp")
        return pd.DataFrame([values], index=index, columns=list(self.columns), dtype=np.float64)


def rejoin_published_by(bars: Bars, series: Sequence[AuxiliarySeries], cut: int) -> Bars:
    """Return ``bars`` with every series' column rebuilt from what was published by the
    decision time of bar ``cut``, and only the documents visible by then
    (`check_lookahead`'s altered histories)."""
    if cut >= len(bars):
        return bars
    known_ns = int(bars.frame.index[cut].value) + bars.timeframe_seconds * 1_000_000_000
    if bars.documents:
        known = {name: docs.visible_by(known_ns) for name, docs in bars.documents.items()}
        bars = replace(bars, documents=known)
    wanted = [s for s in series if s.applies_to(bars.symbol)]
    if not wanted:
        return bars
    stripped = replace(bars, frame=bars.frame.drop(columns=[s.name for s in wanted]))
    return join_asof(stripped, [s.published_by(known_ns) for s in wanted])


# --- files -------------------------------------------------------------------------------


def _text_columns(item: AuxiliaryParams) -> TextColumns:
    from tradeloom.plugins.data.text_source import TextColumns

    return TextColumns(
        timestamp=item.timestamp_column,
        text=item.text_column,
        title=item.title_column,
        source=item.source_column,
        symbols=item.symbol_column,
        id=item.id_column,
        published=item.published_column,
    )


def _read_text(
    item: AuxiliaryParams, path: Path, position: int, policy: ValidationPolicy
) -> Documents:
    from tradeloom.plugins.data.text_source import read_documents

    return read_documents(
        path,
        label=f"data.auxiliary.{position} ({item.name})",
        delay_ns=item.delay_seconds * 1_000_000_000,
        columns=_text_columns(item),
        max_chars=item.max_chars,
        policy=policy,
    )


class _ReceivedFile:
    """A run's received documents (``received``) as a feed: read once, fixed."""

    def __init__(self, path: Path, rules: TextRules) -> None:
        self._path, self._rules = path, rules
        self._held: Documents | None = None

    def documents(self) -> Documents:
        from tradeloom.plugins.data.received import read_received

        if self._held is None:
            self._held = read_received(self._path, self._rules)
        return self._held


class _Joined:
    """A source's file (read as it grows) and a received file, merged by visibility."""

    def __init__(self, file: DocumentFeed | None, received: DocumentFeed) -> None:
        self._file, self._received = file, received
        self._held: tuple[Documents, Documents, Documents] | None = None

    def documents(self) -> Documents:
        from tradeloom.plugins.data.received import merge_documents

        first = Documents.empty() if self._file is None else self._file.documents()
        then = self._received.documents()
        held = self._held
        if held is not None and held[0] is first and held[1] is then:
            return held[2]
        merged = merge_documents(first, then)
        self._held = (first, then, merged)
        return merged


def _read_file(
    item: AuxiliaryParams,
    path: Path,
    label: str,
    delay_ns: int,
    symbols: Sequence[str],
    policy: ValidationPolicy,
) -> list[AuxiliarySeries]:
    parquet = path.suffix.lower() in (".parquet", ".pq")
    row_label = "row" if parquet else "line"
    source = f"{label}: {path}"
    try:
        raw = pd.read_parquet(path) if parquet else pd.read_csv(path, encoding="utf-8-sig")
    except Exception as exc:  # any reader failure is the file's
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"{source}: cannot read it: {reason}") from exc
    if parquet:
        raw = raw.reset_index() if any(n is not None for n in raw.index.names) else raw
        rows = np.arange(1, len(raw) + 1)
    else:
        rows = csv_line_numbers(path, len(raw))
    value_column = item.column or item.name
    wanted = {"timestamp": item.timestamp_column, "value": value_column}
    if item.symbol_column is not None:
        wanted["symbol"] = item.symbol_column
    columns = find_columns(raw, wanted, source)
    stamps, bad = parse_timestamps(raw[columns["timestamp"]])
    if bad.any():
        raise DataError(
            f"{source}: column '{columns['timestamp']}' has {int(bad.sum())} unparsable "
            f"timestamp(s) (first at {row_label} {rows[np.flatnonzero(bad)[0]]}); expected "
            "ISO 8601 or epoch seconds or milliseconds"
        )
    text = raw[columns["value"]]
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    typo = np.asarray(text.notna() & np.isnan(values), dtype=bool)
    if typo.any():
        first = np.flatnonzero(typo)[0]
        raise DataError(
            f"{source}: column '{columns['value']}' has {int(typo.sum())} non-numeric "
            f"value(s) (first '{text.iloc[first]}' at {row_label} {rows[first]}); expected numbers"
        )
    if item.symbol_column is None:
        return [_series(item.name, stamps, values, rows, delay_ns, None, source, row_label, policy)]
    owner = raw[columns["symbol"]].astype("string").str.strip().to_numpy()
    out = []
    for symbol in symbols:
        mine = owner == symbol
        if not mine.any():
            raise DataError(
                f"{source}: no rows for symbol {symbol} in column '{columns['symbol']}'; "
                "add them or remove the symbol"
            )
        out.append(
            _series(
                item.name,
                stamps[mine],
                values[mine],
                rows[mine],
                delay_ns,
                symbol,
                f"{source} ({symbol})",
                row_label,
                policy,
            )
        )
    return out


def _series(
    name: str,
    stamps: np.ndarray,
    values: np.ndarray,
    rows: np.ndarray,
    delay_ns: int,
    symbol: str | None,
    source: str,
    row_label: str,
    policy: ValidationPolicy,
) -> AuxiliarySeries:
    keep = ~np.isnan(values)
    problems: list[str] = []
    if not keep.all():
        problems.append(_line(source, ~keep, stamps, rows, row_label, "an empty value", "drop"))
    kept = np.flatnonzero(keep)
    repeated = np.zeros(len(stamps), dtype=bool)
    repeated[kept[pd.Index(stamps[kept]).duplicated(keep="first")]] = True
    if repeated.any():
        problems.append(
            _line(source, repeated, stamps, rows, row_label, "the time of an earlier row", "drop")
        )
    keep &= ~repeated
    kept = np.flatnonzero(keep)
    backwards = np.zeros(len(stamps), dtype=bool)
    backwards[kept[1:][np.diff(stamps[kept]) < 0]] = True
    if backwards.any():
        problems.append(
            _line(
                source,
                backwards,
                stamps,
                rows,
                row_label,
                "a time earlier than the row before",
                "sort",
            )
        )
    if problems and policy == "reject":
        raise DataValidationError(problems)
    kept = np.flatnonzero(keep)
    if len(kept) == 0:
        raise DataError(f"{source}: no values")
    order = kept[np.argsort(stamps[kept], kind="stable")]
    return AuxiliarySeries(
        name, stamps[order].astype(np.int64), values[order].astype(np.float64), delay_ns, symbol
    )


def _line(
    source: str,
    bad: np.ndarray,
    stamps: np.ndarray,
    rows: np.ndarray,
    row_label: str,
    what: str,
    remedy: str,
) -> str:
    fix = (
        f"sort the rows by time or {_REPAIR}" if remedy == "sort" else f"drop {{them}} or {_REPAIR}"
    )
    return rows_line(source, bad, stamps, rows, row_label, what, fix)
