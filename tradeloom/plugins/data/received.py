"""A text source fed while a paper or live run runs (``feed:``), kept in the run folder.

A feed's receiver (`tradeloom.text.feeds.DocumentReceiver`: an HTTP poll, a NATS
JetStream subject, a plugin's) hands payloads to an `Inbox`, which stamps each with the
run's clock. At each tick, before any bar, `ReceivedText.take` reads them: each document
(one JSON object; a payload may hold a JSON array of them or JSON Lines) passes the
checks of a file's rows (`tradeloom.plugins.data.text_source.frame_documents`, under the
source's ``validation``: the same normalisation, the same lengths, ids and times), then
is appended to ``documents/<name>.jsonl`` in the run folder, in the source's own column
names, normalised, with its arrival (``received_at``). One that fails is a `Refused`:
the run journals it (``document_refused``, where it came from and why) and goes on.

A document is visible from its publication plus ``available_after``, and never before
it arrived: a backtest (``received: RUN/documents/news.jsonl``) and ``tradeloom parity``
read that file and see each document from the bar the run saw it. A restart reads the
file back and resumes the feed after the last payload it took (``<name>.cursor``); a
payload sent again (a broker's redelivery, a poll's overlap) whose id was kept with the
same text is skipped, with another text it is refused.

A tick's documents are appended in one write of whole lines, fsync'd, and only then is
the cursor kept, durably too (written aside, fsync'd, renamed, its folder fsync'd): after
a kill or a power loss, the cursor kept never passes documents that were not. A write
of many pages can still be cut by a kill (the kernel stops copying at a page when the
process is killed), leaving a last line without its newline: a reader reads the lines
before it and says it left it out (a run may be writing it still), and a restart cuts it
off the file before it appends again. A last line that holds a whole object (a file
written by hand without its final newline) is read, and a restart gives it its newline
(`tradeloom.files.json_lines`, the rule of every file a run appends JSON Lines to). What
it held was never kept whole, and its cursor was not kept: the feed brings it again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import chain
from operator import attrgetter
from pathlib import Path
from typing import Any, TypeVar

from tradeloom.errors import DataError
from tradeloom.files.json_lines import complete_lines, end_on_newline
from tradeloom.journal.durable import make_folder, replace_durably, sync_folder
from tradeloom.plugins.data.text_source import (
    TextColumns,
    frame_documents,
    read_documents,
    text_format,
)
from tradeloom.plugins.data.timestamps import parse_timestamps
from tradeloom.plugins.data.validation import ValidationPolicy
from tradeloom.runtime.lazy import logger
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd
from tradeloom.text.documents import DocumentFeed, Documents
from tradeloom.text.feeds import Arrival, DocumentReceiver, Inbox, Refused

__all__ = [
    "RECEIVED_AT",
    "ReceivedText",
    "TextRules",
    "merge_documents",
    "read_received",
]

RECEIVED_AT = "received_at"
"""The column of a received document's arrival (ISO 8601, nanoseconds, UTC)."""

_log = logger("tradeloom.data")
_T = TypeVar("_T")


@dataclass(frozen=True)
class TextRules:
    """How a text source's documents are read and checked (its ``data.auxiliary`` keys).

    Attributes:
        name: The source's name.
        label: Names it in messages (``data.auxiliary.0 (news)``).
        delay_ns: ``available_after`` in nanoseconds.
        columns: Its columns (a received file's ids are in ``columns.id`` or ``id``).
        max_chars: The longest text allowed.
        policy: ``reject`` or ``repair``.
    """

    name: str
    label: str
    delay_ns: int
    columns: TextColumns
    max_chars: int
    policy: ValidationPolicy

    @property
    def received_columns(self) -> TextColumns:
        """The columns of a received file: the source's, an id and the arrival."""
        return replace(self.columns, id=self.columns.id or "id", received=RECEIVED_AT)


def read_received(path: Path, rules: TextRules) -> Documents:
    """Read a file of received documents (``documents/<name>.jsonl``) under ``rules``.

    Its complete lines only: a last line without a newline and without a whole object
    is an append cut short, or one a run is writing still (a warning says it was left
    out; the file is not changed); with a whole object it is read. A file that is not
    JSON Lines (a ``received`` a user wrote) is read whole.

    Raises:
        DataError: The file cannot be read or fails the checks.
    """
    if not path.is_file():
        return Documents.empty()
    lines = text_format(path) == "jsonl"
    size, whole = complete_lines(path) if lines else (path.stat().st_size,) * 2
    if whole < size:
        _log.warning(
            "received_partial_line",
            path=str(path),
            left_out_bytes=size - whole,
            why="its last line has no newline: an append cut short, or being written",
        )
    if whole == 0:
        return Documents.empty()
    return read_documents(
        path,
        label=rules.label,
        delay_ns=rules.delay_ns,
        columns=rules.received_columns,
        max_chars=rules.max_chars,
        policy=rules.policy,
        size=whole if lines else None,  # what was complete, whatever is appended since
    )


def merge_documents(first: Documents, then: Documents) -> Documents:
    """Return ``first`` and ``then`` as one batch sorted by visibility (ties: ``first``'s
    rows, then ``then``'s, each in its order): how a backtest and a run join a source's
    file and what its feed brought."""
    if not len(then):
        return first
    if not len(first):
        return then.take(np.argsort(then.visible_ns, kind="stable"))
    joined = _concat([first, then])
    return joined.take(np.argsort(joined.visible_ns, kind="stable"))


class ReceivedText:
    """A text source with a feed in a paper or live run: its file (if any) and what the
    feed brought (implements `tradeloom.text.documents.DocumentFeed` and
    `tradeloom.text.feeds.ReceivingFeed`).

    Args:
        rules: How its documents are read and checked.
        receiver: The feed's receiver (not started).
        history: The source's file, read as it grows, and a received file (None: the
            feed only).
    """

    def __init__(
        self, rules: TextRules, receiver: DocumentReceiver, history: DocumentFeed | None
    ) -> None:
        self.rules = rules
        self.receiver = receiver
        self.history = history
        self.path: Path | None = None
        self._cursor_path: Path | None = None
        self.cursor: str | None = None
        self._inbox: Inbox | None = None
        self._received = Documents.empty()
        self._last_arrival = 0
        self._texts: dict[str, str] = {}
        self._none = Documents.empty()
        """A feed-only source's history: one object, so that what it merged is kept."""
        self._held: tuple[object, int, Documents] | None = None
        self._file_ids: tuple[Documents, set[str]] | None = None
        self._shared: DocumentFeed | None = None

    # --- the run's folder -------------------------------------------------------------

    def attach(self, folder: Path) -> None:
        """Keep what arrives in ``folder/<name>.jsonl``; read what is kept there already.

        A last line without a newline (a kill inside an append) is cut off the file, with
        a warning: the next append starts on a line of its own.

        Raises:
            DataError: The kept file fails its checks (it was edited).
        """
        self.path = folder / f"{self.rules.name}.jsonl"
        self._cursor_path = folder / f"{self.rules.name}.cursor"
        if self.path.is_file():
            _cut_partial_line(self.path)
        self._received = read_received(self.path, self.rules)
        self._last_arrival = _last_arrival(self.path) if len(self._received) else 0
        self._texts = dict(zip(self._received.ids, self._received.texts, strict=True))
        if self._cursor_path.is_file():
            self.cursor = self._cursor_path.read_text(encoding="utf-8").strip() or None

    def start(self, clock: Callable[[], int]) -> None:
        """Start the receiver after the kept cursor, stamping no arrival before the last
        one kept (a restart's clock may resume earlier: the kept file stays in order)."""
        self._inbox = Inbox(clock, floor=self._last_arrival)
        self.receiver.start(self.cursor, self._inbox)

    def stop(self) -> None:
        """Stop the receiver."""
        if self._inbox is not None:
            self.receiver.stop()
            self._inbox = None

    def share(self, feed: DocumentFeed) -> None:
        """Read ``feed``'s documents from now on (another strategy's source of this name,
        the same source, which the run drives), receiving none."""
        self._shared = feed

    # --- what the features read -------------------------------------------------------

    def documents(self) -> Documents:
        """Return the file's documents and the received ones, sorted by visibility (the
        same object while neither changed)."""
        if self._shared is not None:
            return self._shared.documents()
        history = self._history()
        held, count = self._held, len(self._received)
        if held is not None and held[0] is history and held[1] == count:
            return held[2]
        if held is not None and held[0] is history and held[1] < count:
            merged = held[2]
            new = self._received.take(np.arange(held[1], count))
            if not len(merged) or new.visible_ns.min() >= merged.visible_ns[-1]:
                # (most ticks: what arrived is visible from its arrival, after all before)
                order = np.argsort(new.visible_ns, kind="stable")
                merged = _concat([merged, new.take(order)])
                self._held = (history, count, merged)
                return merged
        merged = merge_documents(history, self._received)
        self._held = (history, count, merged)
        return merged

    def _history(self) -> Documents:
        """The source's file's documents (a feed-only source: the same empty set each
        call, so a call that brought nothing returns what the last one merged)."""
        return self._none if self.history is None else self.history.documents()

    # --- a tick -----------------------------------------------------------------------

    def take(self) -> list[Refused]:
        """Check and keep what arrived since the last call; return what was refused.

        The documents of a tick are checked together (one pass of the file's rule over
        them all, each refused alone), in the order they arrived.
        """
        if self._inbox is None:
            return []
        arrivals = self._inbox.take()
        if not arrivals:
            return []
        refused: list[Refused] = []
        candidates: list[tuple[Arrival, str, dict[str, Any]]] = []
        for arrival in arrivals:
            for where, record in _records(arrival):
                reason = record if isinstance(record, str) else self._prepare(record, arrival)
                if isinstance(reason, str):
                    refused.append(self._refuse(arrival, where, reason))
                else:
                    candidates.append((arrival, where, reason))
        if candidates:
            refused += self._keep([c[2] for c in candidates], candidates)
        self.cursor = arrivals[-1].cursor or self.cursor
        self._keep_cursor()
        refused.sort(key=lambda r: r.received_ns)  # (stable: in the order they came)
        return refused

    def _keep(
        self, records: list[dict[str, Any]], candidates: list[tuple[Arrival, str, dict[str, Any]]]
    ) -> list[Refused]:
        """Check ``records`` together, keep those that pass; return the others."""
        rules = self.rules
        columns = rules.received_columns
        verdicts = [""] * len(records)
        try:
            checked = self._check(records, columns, verdicts)
        except DataError as exc:  # a problem of them all (none expected: each is refused)
            verdicts = ["; ".join(_lines(exc))] * len(records)
            checked = Documents.empty()
        known = self._known()
        refused: list[Refused] = []
        lines: list[str] = []
        row = 0
        for (arrival, where, record), verdict in zip(candidates, verdicts, strict=True):
            if verdict:
                reason = verdict.removeprefix(f"{rules.label}: ")
                refused.append(self._refuse(arrival, where, reason))
                continue
            at, row = row, row + 1
            document_id, text = checked.ids[at], checked.texts[at]
            before = self._texts.get(document_id)
            if document_id in known:
                reason = f"id '{document_id}' is a document of the source's file already"
            elif before is None:
                self._texts[document_id] = text
                lines.append(_canonical(record, checked, at, rules, arrival.received_ns))
                continue
            elif before == text:
                continue  # sent again: kept already with the same text
            else:
                reason = f"id '{document_id}' was received before with another text"
            refused.append(self._refuse(arrival, where, reason))
        if lines:
            self._append(lines)
            # the documents as the file gives them back: read from the lines kept
            again = self._check([json.loads(line) for line in lines], columns, [""] * len(lines))
            self._received = _concat([self._received, again])
        return refused

    def _known(self) -> set[str]:
        """The ids of the source's file (and received file), made again when it grew."""
        history = self._history()
        if self._file_ids is None or self._file_ids[0] is not history:
            self._file_ids = (history, set(history.ids))
        return self._file_ids[1]

    def _refuse(self, arrival: Arrival, where: str, reason: str) -> Refused:
        _log.warning("document_refused", source=self.rules.name, where=where, reason=reason)
        return Refused(self.rules.name, where, reason, arrival.received_ns)

    def _prepare(self, record: dict[str, Any], arrival: Arrival) -> dict[str, Any] | str:
        """Return the record as checked (an id, its arrival, the optional fields), or why
        it cannot be (a required field missing)."""
        rules = self.rules
        columns = rules.received_columns
        assert columns.id is not None
        record = dict(record)
        record.pop(RECEIVED_AT, None)  # the run says when it arrived, never the sender
        given = {str(k).strip().lower() for k in record}
        required = [(rules.columns.timestamp, "its time"), (rules.columns.text, "its text")]
        optional_roles = ((rules.columns.id, "its id"), (columns.published, "its publication time"))
        required += [(name, role) for name, role in optional_roles if name is not None]
        for name, role in required:
            if name.strip().lower() not in given:
                return f"no field '{name}' ({role}); it has {', '.join(map(str, record)) or 'none'}"
        if columns.id.strip().lower() not in given:
            record[columns.id] = _content_id(record, rules.columns)
        record[RECEIVED_AT] = _iso(arrival.received_ns)
        for optional in (columns.title, columns.source, columns.symbols):
            if optional is not None and optional.strip().lower() not in given:
                record[optional] = None  # a document may leave these out (a file has them)
        return record

    def _check(
        self, records: list[dict[str, Any]], columns: TextColumns, verdicts: list[str]
    ) -> Documents:
        rules = self.rules
        return frame_documents(
            pd.DataFrame.from_records(records),
            lambda: np.ones(len(records), dtype=np.int64),
            source=rules.label,
            row_label="document",
            delay_ns=rules.delay_ns,
            columns=columns,
            max_chars=rules.max_chars,
            policy=rules.policy,
            default_id=rules.name,
            reasons=verdicts,
        )

    def _append(self, lines: list[str]) -> None:
        assert self.path is not None
        new = not self.path.exists()
        if new:
            make_folder(self.path.parent)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write("".join(f"{line}\n" for line in lines))
            fh.flush()
            os.fsync(fh.fileno())
        if new:  # its name on disk too, before a cursor that counts on it
            sync_folder(self.path.parent)

    def _keep_cursor(self) -> None:
        """Keep the cursor durably (`replace_durably`), after the documents it follows
        were (`_append`): a power loss keeps a cursor only with what it passed."""
        if self._cursor_path is None or self.cursor is None:
            return
        make_folder(self._cursor_path.parent)
        replace_durably(self._cursor_path, self.cursor.encode("utf-8"))


def _cut_partial_line(path: Path) -> None:
    """End ``path`` on a newline, durably, before a restart appends to it
    (`tradeloom.files.json_lines.end_on_newline`), saying what it cut off."""
    end_on_newline(
        path,
        _log,
        "received_partial_line_cut",
        "an append cut short by a kill; the feed brings its documents again (their "
        "cursor was not kept)",
    )


def _last_arrival(path: Path) -> int:
    """The latest arrival kept in ``path`` (UTC ns), a file `read_received` checked."""
    with path.open(encoding="utf-8") as fh:
        arrivals = [_find(json.loads(line), RECEIVED_AT) for line in fh if line.strip()]
    stamps, bad = parse_timestamps(pd.Series(arrivals, dtype=object))
    return int(stamps[~bad].max(initial=0))


def _records(arrival: Arrival) -> list[tuple[str, dict[str, Any] | str]]:
    """Return the payload's documents with where each is, or why it holds none."""
    try:
        text = arrival.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [(arrival.where, f"bytes that are not UTF-8 (byte {exc.start}); send UTF-8")]
    try:
        value: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        lines = [line for line in text.split("\n") if line.strip()]
        if len(lines) < 2:
            return [(arrival.where, _not_json(exc))]
        out: list[tuple[str, dict[str, Any] | str]] = []
        for number, line in enumerate(text.split("\n"), start=1):
            if line.strip():
                out.extend(_items(f"{arrival.where} line {number}", line))
        return out
    if isinstance(value, list):
        return [
            (f"{arrival.where} item {k}", _record(item)) for k, item in enumerate(value, start=1)
        ]
    return [(arrival.where, _record(value))]


def _items(where: str, line: str) -> list[tuple[str, dict[str, Any] | str]]:
    try:
        return [(where, _record(json.loads(line)))]
    except json.JSONDecodeError as exc:
        return [(where, _not_json(exc))]


def _record(value: Any) -> dict[str, Any] | str:
    if isinstance(value, dict):
        return value
    return f"a JSON {type(value).__name__}, not an object; send one JSON object per document"


def _not_json(exc: json.JSONDecodeError) -> str:
    return (
        f"not JSON ({exc.msg} at character {exc.pos}); send a JSON object per document "
        "(or an array of them, or JSON Lines)"
    )


def _lines(exc: DataError) -> list[str]:
    lines = getattr(exc, "lines", None)
    found = lines() if callable(lines) else str(exc).splitlines()
    return [str(line) for line in found] or [str(exc)]


def _content_id(record: dict[str, Any], columns: TextColumns) -> str:
    """A document without an id: one from its time and text (sent again, it is the same)."""
    wanted = {c.lower(): c for c in (columns.timestamp, columns.text)}
    values = [str(v) for k, v in record.items() if str(k).strip().lower() in wanted]
    return hashlib.sha256("\x1f".join(values).encode("utf-8")).hexdigest()[:20]


def _iso(ns: int) -> str:
    """ISO 8601 to the nanosecond, UTC (every kept time written alike)."""
    return f"{np.datetime_as_string(np.datetime64(int(ns), 'ns'), unit='ns')}Z"


def _find(record: dict[str, Any], name: str | None) -> Any:
    if name is None:
        return None
    wanted = name.strip().lower()
    return next((v for k, v in record.items() if str(k).strip().lower() == wanted), None)


def _canonical(
    record: dict[str, Any], checked: Documents, at: int, rules: TextRules, received_ns: int
) -> str:
    """The line kept for ``checked``: the source's columns, each value as checked
    (normalised, cut under ``repair``), its times to the nanosecond, its arrival."""
    columns = rules.received_columns
    line: dict[str, Any] = {columns.timestamp: _iso(int(checked.stamped_ns[at]))}
    if columns.published is not None:
        published, _ = parse_timestamps(pd.Series([_find(record, columns.published)]))
        line[columns.published] = _iso(int(published[0]))
    assert columns.id is not None
    line[columns.id] = checked.ids[at]
    line[columns.text] = checked.texts[at]
    if columns.title is not None:
        line[columns.title] = checked.titles[at]
    if columns.source is not None:
        line[columns.source] = checked.sources[at]
    if columns.symbols is not None:
        line[columns.symbols] = list(checked.symbols[at])
    line[RECEIVED_AT] = _iso(received_ns)
    return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


def _concat(parts: list[Documents]) -> Documents:
    """``parts`` one after the other (sorted by visibility only when merged)."""

    def joined(column: Callable[[Documents], tuple[_T, ...]]) -> tuple[_T, ...]:
        if len(parts) == 2:  # a tick's arrivals after the rest: one copy of the pointers
            return column(parts[0]) + column(parts[1])
        return tuple(chain.from_iterable(map(column, parts)))

    return Documents(
        ids=joined(attrgetter("ids")),
        stamped_ns=np.concatenate([p.stamped_ns for p in parts]),
        visible_ns=np.concatenate([p.visible_ns for p in parts]),
        texts=joined(attrgetter("texts")),
        titles=joined(attrgetter("titles")),
        sources=joined(attrgetter("sources")),
        symbols=joined(attrgetter("symbols")),
    )
