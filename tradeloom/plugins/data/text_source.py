"""Read a text source (``data.auxiliary`` kind ``text``): documents from CSV, JSON Lines or Parquet.

Each row is one document: its time, its text, and optionally a title, a source, the
symbol(s) it is about (empty: the whole market; several separated by ``|``, ``,`` or
``;``, or a list in JSON Lines and Parquet), an id (default: its row in the file) and a
publication time. A document becomes visible at its publication time (else its own
time) plus ``available_after``; never earlier (`tradeloom.text.documents.Documents`).
Every text goes through `tradeloom.text.normalise.normalise_text`, in every mode.

Checked under the source's ``validation`` policy, one line per kind of problem naming
the file, the first rows and the remedy: bytes that are not UTF-8, empty texts (after
normalisation), texts longer than ``max_chars``, repeated ids, times earlier than the
row before, publication before the document's own time. ``reject`` refuses the file;
``repair`` replaces bad bytes with U+FFFD, drops empty texts, cuts long ones at
``max_chars``, keeps the first of repeated ids, and sorts. An unparsable time is refused
under both.

`DocumentFile` is the same file in a paper or live run: read again whenever it has
changed (rows appended), through the same reading and checks.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from tradeloom.errors import DataError
from tradeloom.plugins.data.csv_lines import csv_line_numbers
from tradeloom.plugins.data.timestamps import parse_timestamps
from tradeloom.plugins.data.validation import (
    DataValidationError,
    ValidationPolicy,
    find_columns,
    rows_line,
)
from tradeloom.runtime.lazy import logger
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd
from tradeloom.text.documents import Documents
from tradeloom.text.normalise import normalise_text

__all__ = ["DocumentFile", "TextColumns", "frame_documents", "read_documents", "text_format"]

_REPAIR = "set data.validation: repair"
_SEPARATORS = ("|", ",", ";")
_log = logger("tradeloom.data")


@dataclass(frozen=True)
class TextColumns:
    """Which columns (any case) hold what; None: the file has none."""

    timestamp: str = "timestamp"
    text: str = "text"
    title: str | None = None
    source: str | None = None
    symbols: str | None = None
    id: str | None = None
    published: str | None = None
    received: str | None = None


def text_format(path: Path) -> str:
    """Return ``parquet``, ``jsonl`` or ``csv`` from the file's suffix."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    return "csv"


def read_documents(
    path: Path,
    *,
    label: str,
    delay_ns: int,
    columns: TextColumns,
    max_chars: int,
    policy: ValidationPolicy,
    size: int | None = None,
) -> Documents:
    """Read, check and return the documents of ``path`` sorted by visibility.

    Args:
        path: The file (format by suffix: `text_format`).
        label: Names the source in messages (``data.auxiliary.0 (news)``).
        delay_ns: ``available_after`` in nanoseconds.
        columns: The columns to read.
        max_chars: The longest text allowed (after normalisation).
        policy: ``reject`` or ``repair``.
        size: Read its first ``size`` bytes only (a CSV or JSON Lines file; None: all):
            the complete lines of a file that is appended to.

    Raises:
        DataError: The file cannot be read, a column is missing, a time cannot be
            parsed, no document is left, or (``reject``) a check fails.
    """
    source = f"{label}: {path}"
    kind = text_format(path)
    raw, rows, problems = _read(path, kind, source, policy, size)
    return frame_documents(
        raw,
        rows,
        source=source,
        row_label="row" if kind == "parquet" else "line",
        delay_ns=delay_ns,
        columns=columns,
        max_chars=max_chars,
        policy=policy,
        default_id=path.name,
        problems=problems,
    )


def frame_documents(
    raw: pd.DataFrame,
    rows: Callable[[], np.ndarray],
    *,
    source: str,
    row_label: str,
    delay_ns: int,
    columns: TextColumns,
    max_chars: int,
    policy: ValidationPolicy,
    default_id: str,
    problems: list[str] | None = None,
    allow_empty: bool = False,
    reasons: list[str] | None = None,
) -> Documents:
    """Check ``raw``'s rows and return them as documents sorted by visibility: the one
    rule a file's rows and a feed's documents (`tradeloom.plugins.data.received`) pass.

    Args:
        raw: The rows as read (any column type).
        rows: Each row's line (or row) number, for messages.
        source: Names where they came from in messages.
        row_label: ``line``, ``row`` or ``document``.
        delay_ns: ``available_after`` in nanoseconds.
        columns: The columns to read; with ``received`` (a feed's documents as a run
            received them) a document is visible no earlier than its arrival, and the
            rows' order is checked on arrival, not on their own times.
        max_chars: The longest text allowed (after normalisation).
        policy: ``reject`` or ``repair``.
        default_id: A row without an id column is ``<default_id>:<row>``.
        problems: Problems found reading them (bad bytes), reported with the rest.
        allow_empty: No document left is no error (a feed that received none yet).
        reasons: Each row's own verdict, filled in (a feed's documents, checked together
            and refused one by one): ``""`` for a row kept, else the line that refuses
            it (the file's line for that row alone). A row that the file's rule would
            drop or refuse, or (``reject``) cut, is refused; repeated ids and the rows'
            order are left to the caller; nothing is raised for a row. The documents
            kept are returned in the rows' order, not sorted.

    Raises:
        DataError: A column is missing, a time cannot be parsed, no document is left
            (unless ``allow_empty``), or (``reject``) a check fails.
    """
    problems = [] if problems is None else problems
    found = _find(raw, columns, source)
    n = len(raw)
    unparsed = np.zeros(n, dtype=bool)

    def times(role: str) -> np.ndarray:
        stamps, bad = parse_timestamps(raw[found[role]])
        if reasons is None:
            _refuse_bad_times(bad, rows, row_label, source, found[role])
        else:  # each bad row refused alone, with the file's line for it
            for i in np.flatnonzero(bad & ~unparsed).tolist():
                reasons[i] = _bad_times_line(rows()[i : i + 1], row_label, found[role])
            unparsed[:] |= bad
        return stamps

    stamps = times("timestamp")
    published = times("published") if "published" in found else stamps
    order_by = stamps
    received: np.ndarray | None = None
    if "received" in found:
        received = order_by = times("received")
    texts = _texts(raw[found["text"]])
    keep = ~unparsed

    def problem(mask: np.ndarray, what: str, remedy: str) -> None:
        if reasons is None:
            problems.append(_line(source, mask, stamps, rows(), row_label, what, remedy))
            return
        if remedy == "cut" and policy == "repair":
            return  # cut, kept
        for i in np.flatnonzero(mask & keep).tolist():
            one = np.zeros(n, dtype=bool)
            one[i] = True
            reasons[i] = _line(source, one, stamps, rows(), row_label, what, remedy)
            keep[i] = False

    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=n)
    empty = lengths == 0
    if empty.any():
        problem(empty, "an empty text", "drop")
        keep &= ~empty
    long = (lengths > max_chars) & keep
    if long.any():
        problem(long, f"a text longer than max_chars ({max_chars:,})", "cut")
        for i in np.flatnonzero(long).tolist():
            texts[i] = texts[i][:max_chars].rstrip()
    early = keep & (published < stamps)
    if early.any():
        problem(early, "a publication time before its own time", "drop")
        keep &= ~early
    ids = _texts(raw[found["id"]]) if "id" in found else [f"{default_id}:{r}" for r in rows()]
    missing_id = np.fromiter(map(len, ids), dtype=np.int64, count=n) == 0
    kept = np.flatnonzero(keep)
    repeated = np.zeros(n, dtype=bool)
    if reasons is None:
        repeated[kept[pd.Index(_pick(ids, kept)).duplicated(keep="first")]] = True
    missing_id &= keep
    if missing_id.any():
        problem(missing_id, "no id", "drop")
        keep &= ~missing_id
    if reasons is not None:
        keep &= np.fromiter(map(len, reasons), dtype=np.int64, count=n) == 0
        if not keep.any():
            return Documents.empty()
        visible = published + delay_ns
        if received is not None:
            visible = np.maximum(visible, received)
        return _documents(raw, found, np.flatnonzero(keep), ids, stamps, visible, texts)
    if repeated.any():
        problem(repeated, "the id of an earlier row", "drop")
        keep &= ~repeated
    kept = np.flatnonzero(keep)
    backwards = np.zeros(n, dtype=bool)
    backwards[kept[1:][np.diff(order_by[kept]) < 0]] = True
    if backwards.any():
        what = "an arrival earlier than the row before" if received is not None else None
        problem(backwards, what or "a time earlier than the row before", "sort")
    if problems and policy == "reject":
        raise DataValidationError(problems)
    if problems:
        _log.warning("text_repaired", source=source, problems=problems)
    if not keep.any():
        if allow_empty:
            return Documents.empty()
        raise DataError(f"{source}: no documents")
    visible = published + delay_ns
    if received is not None:  # never before it arrived, whatever it says of itself
        visible = np.maximum(visible, received)
    order = kept[np.argsort(visible[kept], kind="stable")]
    return _documents(raw, found, order, ids, stamps, visible, texts)


def _documents(
    raw: pd.DataFrame,
    found: dict[str, str],
    order: np.ndarray,
    ids: list[str],
    stamps: np.ndarray,
    visible: np.ndarray,
    texts: list[str],
) -> Documents:
    return Documents(
        ids=_pick(ids, order),
        stamped_ns=stamps[order].astype(np.int64),
        visible_ns=visible[order].astype(np.int64),
        texts=_pick(texts, order),
        titles=_optional(raw, found.get("title"), order),
        sources=_optional(raw, found.get("source"), order),
        symbols=_symbols(raw, found.get("symbols"), order),
    )


def _pick(values: list[str], order: np.ndarray) -> tuple[str, ...]:
    if len(order) == len(values) and (len(order) < 2 or bool((np.diff(order) == 1).all())):
        return tuple(values)  # every row, in the file's order (most files)
    return tuple(map(values.__getitem__, order.tolist()))


# --- reading ----------------------------------------------------------------------------


def _read(
    path: Path, kind: str, source: str, policy: ValidationPolicy, size: int | None = None
) -> tuple[pd.DataFrame, Callable[[], np.ndarray], list[str]]:
    """Return the file's rows, their lines (or rows) when a message needs them, and the
    problems found reading it."""
    problems: list[str] = []
    if kind == "parquet":
        try:
            raw = pd.read_parquet(path)
        except Exception as exc:  # any reader failure is the file's
            raise DataError(f"{source}: cannot read it: {_first_line(exc)}") from exc
        raw = raw.reset_index() if any(n is not None for n in raw.index.names) else raw
        return raw, lambda: np.arange(1, len(raw) + 1), problems
    try:
        if size is None:
            data = path.read_bytes()
        else:
            with path.open("rb") as fh:
                data = fh.read(size)
    except OSError as exc:
        raise DataError(f"{source}: cannot read it: {_first_line(exc)}") from exc
    text = _decode(data, source, policy, problems)
    if kind == "jsonl":
        raw, lines = _jsonl(text, source)
        return raw, lambda: lines, problems
    # checked as UTF-8 above: pandas parses these bytes (faster than a str)
    checked = text.encode("utf-8") if problems else data.removeprefix(b"\xef\xbb\xbf")
    try:
        raw = _csv(checked)
    except Exception as exc:
        raise DataError(f"{source}: cannot read it: {_first_line(exc)}") from exc
    return raw, cache(lambda: csv_line_numbers(path, len(raw))), problems


def _csv(data: bytes) -> pd.DataFrame:
    """Return every column of a CSV file as the text written in it (``007`` stays ``007``).

    pandas reads text columns five times faster when it infers their types than when
    told ``dtype=str``; the file is read again as text only when a column was inferred
    as something else (numbers, booleans, a mix), and then only those columns as text.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pd.errors.DtypeWarning)  # a mix: read again below
        raw = pd.read_csv(io.BytesIO(data), keep_default_na=False)
    typed = [c for c in raw.columns if not _is_text(raw[c])]
    if typed:
        raw = pd.read_csv(io.BytesIO(data), dtype={c: str for c in typed}, keep_default_na=False)
    return raw


def _is_text(column: pd.Series) -> bool:
    if isinstance(column.dtype, pd.StringDtype):
        return True
    return column.dtype == object and pd.api.types.infer_dtype(column, skipna=True) in (
        "string",
        "empty",
    )


def _decode(data: bytes, source: str, policy: ValidationPolicy, problems: list[str]) -> str:
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        problems.append(
            f"{source}: bytes that are not UTF-8 (first at line {line}, byte {exc.start}); "
            f"save the file as UTF-8 or {_REPAIR} (they become U+FFFD)"
        )
        if policy == "reject":
            raise DataValidationError(problems) from None
        return data.decode("utf-8", errors="replace")


def _jsonl(text: str, source: str) -> tuple[pd.DataFrame, np.ndarray]:
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{source}: line {number} is not JSON ({exc.msg}); write one JSON object per line"
            ) from None
        if not isinstance(record, dict):
            raise DataError(
                f"{source}: line {number} is a JSON {type(record).__name__}, not an object; "
                "write one JSON object per line"
            )
        records.append(record)
        lines.append(number)
    return pd.DataFrame.from_records(records), np.asarray(lines, dtype=np.int64)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _find(raw: pd.DataFrame, columns: TextColumns, source: str) -> dict[str, str]:
    wanted = {
        role: name
        for role, name in (
            ("timestamp", columns.timestamp),
            ("text", columns.text),
            ("title", columns.title),
            ("source", columns.source),
            ("symbols", columns.symbols),
            ("id", columns.id),
            ("published", columns.published),
            ("received", columns.received),
        )
        if name is not None
    }
    return find_columns(raw, wanted, source)


def _refuse_bad_times(
    bad: np.ndarray, rows: Callable[[], np.ndarray], row_label: str, source: str, column: str
) -> None:
    if bad.any():
        line = _bad_times_line(rows()[bad], row_label, column)
        raise DataError(f"{source}: {line}")


def _bad_times_line(rows: np.ndarray, row_label: str, column: str) -> str:
    return (
        f"column '{column}' has {len(rows)} unparsable or missing timestamp(s) (first at "
        f"{row_label} {rows[0]}); expected ISO 8601 or epoch seconds or milliseconds"
    )


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return normalise_text(str(value))


def _texts(column: pd.Series) -> list[str]:
    """Return the column's values as normalised texts (``""`` where missing)."""
    values: list[Any] = column.tolist()
    normal = _already_normal(column)
    redo = range(len(values)) if normal is None else np.flatnonzero(~normal).tolist()
    for i in redo:
        values[i] = _text(values[i])
    return values


def _already_normal(column: pd.Series) -> np.ndarray | None:
    """Return where a column of Arrow strings holds texts `normalise_text` returns
    unchanged by its first test (printable ASCII, no two spaces running, none at either
    end), tested by Arrow for the whole column at once; None: not Arrow strings."""
    dtype = column.dtype
    if not (isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"):
        return None
    import pyarrow as pa
    import pyarrow.compute as pc

    array = pa.array(column, from_pandas=True)
    normal = pc.and_kleene(
        pc.and_kleene(pc.ascii_is_printable(array), pc.invert(pc.match_substring(array, "  "))),
        pc.invert(pc.or_kleene(pc.starts_with(array, " "), pc.ends_with(array, " "))),
    )
    return np.asarray(normal.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _optional(raw: pd.DataFrame, column: str | None, order: np.ndarray) -> tuple[str, ...]:
    if column is None:
        return ("",) * len(order)
    return _pick(_texts(raw[column]), order)


def _symbols(
    raw: pd.DataFrame, column: str | None, order: np.ndarray
) -> tuple[tuple[str, ...], ...]:
    if column is None:
        return ((),) * len(order)
    values = raw[column]
    if _is_text(values):  # a feed names few symbols: each distinct value split once
        codes, uniques = pd.factorize(values)
        splits = [_split(u) for u in uniques.tolist()] + [()]  # code -1: missing
        return tuple(map(splits.__getitem__, codes[order].tolist()))
    cells = values.to_numpy(dtype=object)
    return tuple(_split(cells[i]) for i in order.tolist())


def _split(value: object) -> tuple[str, ...]:
    if isinstance(value, list | tuple | np.ndarray):
        return tuple(s for s in (str(v).strip() for v in value) if s)
    text = _text(value)
    for separator in _SEPARATORS:
        text = text.replace(separator, "|")
    return tuple(s for s in (part.strip() for part in text.split("|")) if s)


_FIXES = {
    "sort": f"sort the rows by time or {_REPAIR}",
    "cut": f"shorten {{them}}, raise max_chars or {_REPAIR} (cut at max_chars)",
    "drop": f"fix or drop {{them}}, or {_REPAIR} (dropped)",
}


def _line(
    source: str,
    bad: np.ndarray,
    stamps: np.ndarray,
    rows: np.ndarray,
    row_label: str,
    what: str,
    remedy: str,
) -> str:
    return rows_line(source, bad, stamps, rows, row_label, what, _FIXES[remedy])


# --- a growing file ---------------------------------------------------------------------


@dataclass
class DocumentFile:
    """A text file in a paper or live run: read again whenever it has changed.

    Implements `tradeloom.plugins.protocols_steps.DocumentFeed`. A re-read that fails
    its checks (a row half written, a bad row appended) keeps the documents read before
    and logs the problem once per change; the next change is read again.

    Args:
        read: Reads and checks the file (`read_documents` with the source's keys).
        path: The file.
    """

    read: Callable[[], Documents]
    path: Path
    _stamp: tuple[int, int] | None = field(default=None, repr=False)
    _held: Documents | None = field(default=None, repr=False)

    def documents(self) -> Documents:
        """Return every document in the file now (the same object while it is unchanged).

        Raises:
            DataError: The first read fails.
        """
        try:
            stat = os.stat(self.path)
            stamp = (stat.st_size, stat.st_mtime_ns)
        except OSError:
            stamp = None
        if self._held is not None and stamp == self._stamp:
            return self._held
        try:
            documents = self.read()
        except DataError as exc:
            if self._held is None:
                raise
            _log.warning("text_reread_failed", path=str(self.path), error=str(exc))
            self._stamp = stamp
            return self._held
        self._stamp, self._held = stamp, documents
        return documents
