"""Read a journal: typed events in sequence order, one DataFrame per kind, its chain.

Each function takes the journal's path: a ``journal.sqlite`` file, or a run directory's
``journal.json``, which names a run in PostgreSQL (`tradeloom.journal.source`);
`tradeloom.journal.location.journal_path` returns the one a run directory has.
"""

from __future__ import annotations

import gc
import hashlib
import heapq
import sqlite3
import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tradeloom.journal import chain_numpy
from tradeloom.journal.blocks import Block, BlockDamaged, block_digest
from tradeloom.journal.columns import column_digests
from tradeloom.journal.errors import ChainBroken, JournalDamaged, JournalError
from tradeloom.journal.events.base import KINDS, Event
from tradeloom.journal.events.run import RUN_KINDS
from tradeloom.journal.location import POINTER_FILE
from tradeloom.journal.owner import check_owner
from tradeloom.journal.schema import (
    Codec,
    JournalValueError,
    Schema,
    jsonable,
    schema_of,
    value_decoder,
)
from tradeloom.journal.source import Source, open_source
from tradeloom.journal.sqlite import chain_seed
from tradeloom.journal.store import RunIdentity
from tradeloom.journal.tail import check_tail, compare_tail, read_tail
from tradeloom.runtime.lazy import pandas as pd

__all__ = [
    "EventFollower",
    "FrameFollower",
    "JournalInfo",
    "Row",
    "Verified",
    "journal_digest",
    "read_events",
    "read_frame",
    "read_frames",
    "read_info",
    "read_rows",
    "read_sequenced",
    "row_of",
    "verify",
    "verify_again",
]

_INT64_MIN = np.iinfo(np.int64).min


@dataclass(frozen=True)
class JournalInfo:
    """What a journal's meta table records.

    Attributes:
        format_version: The journal format.
        identity: The run it belongs to.
        tradeloom: The tradeloom version that created it.
    """

    format_version: int
    identity: RunIdentity
    tradeloom: str


@dataclass(frozen=True)
class Row:
    """One event as plain values: for diffs, logs and JSON (`read_rows`).

    Attributes:
        seq: Its sequence number.
        kind: Its kind.
        bar: The bar (-1: none).
        timestamp: The bar's time as ISO 8601 (None: none).
        symbol: The market ('' where none).
        correlation_id: The decision's bar (-1: none).
        values: The kind's own fields as JSON values (NaN and infinities None, times
            ISO 8601).
    """

    seq: int
    kind: str
    bar: int
    timestamp: str | None
    symbol: str
    correlation_id: int
    values: dict[str, Any]


@dataclass(frozen=True)
class Verified:
    """A journal whose chain holds.

    Attributes:
        rows: How many rows it has.
        head: The last row's chain value (hex); record it elsewhere to detect a
            rewrite of the whole file later.
    """

    rows: int
    head: str


def read_info(path: Path) -> JournalInfo:
    """Return the meta of the journal at ``path``.

    Raises:
        JournalError: Not a readable journal of this format (one line: what is wrong).
    """
    source = open_source(path)
    source.close()
    meta = source.meta
    identity = RunIdentity(meta.get("strategy", ""), meta.get("run_id", ""), meta.get("mode", ""))
    return JournalInfo(int(meta["format_version"]), identity, meta.get("tradeloom", ""))


def read_sequenced(
    path: Path, kinds: Iterable[str | type[Event]] | None = None
) -> Iterator[tuple[int, Event]]:
    """Yield ``(seq, event)`` for the journal's events of ``kinds`` (None: all), in order.

    Raises:
        JournalError: Not a readable journal, or a row that does not decode.
    """
    source = open_source(path)
    try:
        streams = [_decoded(source, schema_of(k)) for k in _kinds(kinds)]
        yield from heapq.merge(*streams, key=lambda item: item[0])
    finally:
        source.close()


class _Follower:
    """Follow a journal's ``kinds`` as rows are committed to it.

    Args:
        path: The journal (``journal_path(run_dir)``).
        kinds: The kinds to follow (names or classes).

    Raises:
        KeyError: An unknown kind.
    """

    def __init__(self, path: Path, kinds: Iterable[str | type[Event]]) -> None:
        self.path = path
        self._schemas = [schema_of(k) for k in _kinds(kinds)]
        self.seq = 0
        """The last sequence number read among the kinds followed (0: none yet)."""


class EventFollower(_Follower):
    """Read a journal's events of ``kinds`` as they are committed: each `read` returns
    the ones committed since the last, so following a run costs its new rows only.

    The journal stays open between reads (reopened when read from another thread: a
    SQLite connection belongs to its thread); each read is one read transaction, so it
    never misses a row committed to one kind's table while it read another's.
    """

    def __init__(self, path: Path, kinds: Iterable[str | type[Event]]) -> None:
        super().__init__(path, kinds)
        self._source: Source | None = None
        self._thread = 0

    def read(self) -> list[Event]:
        """Return the events committed since the last read, in sequence order.

        Raises:
            JournalError: Not a readable journal, or a row that does not decode (the
                next read opens the journal again).
        """
        return [event for _, event in self.read_sequenced()]

    def read_sequenced(self) -> list[tuple[int, Event]]:
        """Return ``(seq, event)`` for the events committed since the last read, in order.

        Raises:
            JournalError: As `read`.
        """
        thread = threading.get_ident()
        if self._source is None or thread != self._thread:
            self.close()
            self._source, self._thread = open_source(self.path), thread
        source = self._source
        try:
            source.snapshot()
            try:
                streams = [_decoded(source, s, self.seq) for s in self._schemas]
                found = list(heapq.merge(*streams, key=lambda item: item[0]))
            finally:
                source.end_snapshot()
        except BaseException:
            self.close()
            raise
        if found:
            self.seq = found[-1][0]
        return found

    def close(self) -> None:
        """Close the journal (a later `read` opens it again)."""
        if self._source is not None:
            source, self._source = self._source, None
            source.close()


class FrameFollower(_Follower):
    """Read a journal's frames of ``kinds`` (`read_frames`) as they are committed: each
    `read` adds the rows committed since the last to the frames it keeps, so following
    a run costs its new rows only, however long its journal is.

    A journal that is not the one read before starts the frames again from its first
    row, and `read` says why (`restarted`): its file was replaced (another inode: a
    rotation, a copy, a restore), it names another run, or the last row read is no
    longer there as it was (rows cut or rewritten).
    """

    def __init__(self, path: Path, kinds: Iterable[str | type[Event]]) -> None:
        super().__init__(path, kinds)
        self.frames: dict[str, pd.DataFrame] = {}
        """The rows read so far, by kind (empty before the first `read`)."""
        self.meta: dict[str, str] = {}
        self.restarted: str | None = None
        """Why the last `read` started from the first row again (None: it did not)."""
        self._file: tuple[int, int] | None = None
        self._last: tuple[Schema, int, Any] | None = None  # the last row: kind, seq, hash

    def read(self) -> bool:
        """Add the rows committed since the last read to `frames`; return whether any
        (or the frames started again: `restarted` says why).

        Raises:
            JournalError: Not a readable journal, or a row that does not decode (the
                frames are kept as they were).
        """
        file = _file_id(self.path)
        source = open_source(self.path)
        try:
            source.snapshot()
            why = self._changed(source, file) if self.frames else None
            after = 0 if why is not None or not self.frames else self.seq
            found = {s.kind: _new_frame(source, s, after) for s in self._schemas}
            new = {kind: frame for kind, frame in found.items() if frame is not None}
            ends = [(int(new[s.kind]["seq"].iloc[-1]), s) for s in self._schemas if s.kind in new]
            last = max(ends, key=lambda end: end[0], default=None)
            hash_ = None if last is None else _hash_at(source, last[1], last[0])
        finally:
            source.close()
        if after == 0:
            self.reset()
        self.meta, self._file, self.restarted = source.meta, file, why
        for schema in self._schemas:
            rows, held = new.get(schema.kind), self.frames.get(schema.kind)
            if rows is None:
                if held is None:  # none yet: the kind's empty frame, made once
                    self.frames[schema.kind] = _table_frame(self.path, schema, [])
            elif held is None or not len(held):
                self.frames[schema.kind] = rows
            else:
                self.frames[schema.kind] = pd.concat([held, rows], ignore_index=True)
        if last is not None:
            self.seq, self._last = last[0], (last[1], last[0], hash_)
        return last is not None or why is not None

    def reset(self) -> None:
        """Forget what was read: the next `read` reads the journal from its first row."""
        self.frames, self.seq, self._last = {}, 0, None

    def _changed(self, source: Source, file: tuple[int, int] | None) -> str | None:
        if file != self._file:
            return f"{self.path}: its file was replaced (rotated, copied or restored)"
        if source.meta.get("run_id") != self.meta.get("run_id"):
            return f"{self.path}: it now holds another run ({source.meta.get('run_id')})"
        if self._last is not None:
            schema, seq, hash_ = self._last
            if _hash_at(source, schema, seq) != hash_:
                return (
                    f"{self.path}: its row {seq} is no longer there as it was read (rows "
                    "cut or rewritten)"
                )
        return None


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


_MISSING = object()


def _hash_at(source: Source, schema: Schema, seq: int) -> Any:
    """The stored hash of row ``seq`` of ``schema``'s kind (None: a block's row, whose
    block holds it; `_MISSING`: no such row)."""
    found = _first_row(source.rows(schema, seq - 1))
    return found[-1] if found is not None and found[0] == seq else _MISSING


def _first_row(rows: Iterable[Any]) -> Any:
    """Return the first of ``rows`` (None: none), closing a cursor that has ``close``."""
    try:
        return next(iter(rows), None)
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()


def read_events(path: Path, kinds: Iterable[str | type[Event]] | None = None) -> Iterator[Event]:
    """Yield the journal's events of ``kinds`` (names or classes; None: all) in sequence order.

    Raises:
        JournalError: Not a readable journal, or a row that does not decode.
    """
    for _, event in read_sequenced(path, kinds):
        yield event


def read_rows(path: Path, kinds: Iterable[str | type[Event]] | None = None) -> Iterator[Row]:
    """Yield the journal's events of ``kinds`` (None: all) as plain `Row` values, in order.

    Raises:
        JournalError: Not a readable journal, or a row that does not decode.
    """
    for seq, event in read_sequenced(path, kinds):
        yield row_of(seq, event)


def row_of(seq: int, event: Event) -> Row:
    """Return ``event``, the journal's row ``seq``, as a plain `Row` (JSON values)."""
    schema = schema_of(event.KIND)
    stamp = event.timestamp
    return Row(
        seq,
        event.KIND,
        event.bar,
        None if stamp is pd.NaT else stamp.isoformat(),
        event.symbol,
        event.correlation_id,
        {c.name: jsonable(getattr(event, c.name)) for c in schema.fields},
    )


def read_frame(path: Path, kind: str | type[Event]) -> pd.DataFrame:
    """Return the events of one kind as a DataFrame.

    Columns: ``seq``, the header (``bar``, ``timestamp`` as UTC datetimes, ``symbol``,
    ``correlation_id``) and the kind's fields; floats NaN and times NaT where none.

    Raises:
        JournalError: Not a readable journal.
    """
    return read_frames(path, [kind])[_name(kind)]


def read_frames(
    path: Path, kinds: Iterable[str | type[Event]] | None = None
) -> dict[str, pd.DataFrame]:
    """Return one DataFrame per kind (see `read_frame`), for ``kinds`` (None: all).

    The frames are read in one transaction: a journal that a run is writing gives the
    rows committed at one moment, in every frame.

    Raises:
        JournalError: Not a readable journal.
    """
    names = _kinds(kinds)
    source = open_source(path)
    try:
        # one read transaction: the frames are one moment of a journal being written
        source.snapshot()
        return {k: _frame(source, schema_of(k)) for k in names}
    finally:
        source.close()


def verify(path: Path) -> Verified:
    """Check the hash chain of every row; return the row count and the head.

    Every row of a kind's table stores its chain value, so each link (a row's value
    from its digest and the value stored before it) is checked for every row at once
    (`chain_numpy.chain_next`); only the rows inside a bulk write's blocks, whose block
    stores the value after its last row alone, are chained one after another. A few
    array operations per kind and per link, whatever the journal's length: ``status``
    and ``report`` run it before they read a journal.

    Raises:
        ChainBroken: A row is missing, duplicated, or does not match its hash (edited,
            inserted or damaged); the message names the first bad sequence number.
        JournalError: Not a readable journal, its tail record says it was cut, or it
            is another run's (`tradeloom.journal.tail`).
    """
    found = _verify(path, None)
    assert found is not None  # (a whole check always answers)
    return found[0]


@dataclass(frozen=True)
class _Prefix:
    """What a check verified: its rows, its head, where its last row is, which file."""

    rows: int
    head: int
    last: tuple[str, bool]
    """The last row's kind and whether a block holds it."""
    file: tuple[int, int] | None
    meta: tuple[tuple[str, str], ...]
    schema: int | None = None
    """An SQLite file's schema version: editing a row of the prefix means dropping the
    append-only triggers, which moves it (None: no such number, PostgreSQL's)."""


class _Checked:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.prefix: _Prefix | None = None


_CHECKED: dict[str, _Checked] = {}
_CHECKED_LOCK = threading.Lock()


def verify_again(path: Path) -> Verified:
    """Check the journal as `verify` does, the rows this process verified before excepted:
    what a reader that reads a run again and again calls (``status``, the console, the
    agent door), at a cost of the rows appended since, not of the run.

    The first call in a process checks the whole journal and remembers the prefix it
    verified: its row count, its head (the chain value after its last row), the file and
    its meta. A later call checks that the file and its meta are the same and that the
    prefix's last row still stores that head, then chains the rows after it from that
    head, and checks the tail record as `verify` does. A journal replaced (another file,
    another run), cut, or rewritten at the prefix's last row, or any problem found in the
    rows since, is checked whole again: a bad journal's error is `verify`'s, word for
    word. An SQLite journal whose schema version moved (its append-only triggers dropped,
    as editing a row of the prefix needs) is checked whole again too; an edit of its bytes
    that leaves its last row as it was is not seen here: the first check of the next
    process (each ``tradeloom status`` command) and ``tradeloom journal verify`` read every
    row. The process keeps one small record per journal it checked.

    Raises:
        ChainBroken, JournalError: As `verify`.
    """
    key = str(path.absolute())
    with _CHECKED_LOCK:
        checked = _CHECKED.setdefault(key, _Checked())
    with checked.lock:
        found = None
        if checked.prefix is not None:
            try:
                found = _verify(path, checked.prefix)
            except JournalError:
                found = None  # the whole check says what is wrong, as `verify` says it
        if found is None:
            checked.prefix = None
            found = _verify(path, None)
            assert found is not None
        checked.prefix = found[1]
        return found[0]


class _PrefixUnknown(Exception):
    """The tail record names a row inside the prefix: the whole check answers."""


def _verify(path: Path, prefix: _Prefix | None) -> tuple[Verified, _Prefix] | None:
    """`verify`, of the rows after ``prefix`` (None: of every row); None: the prefix is
    not the journal's (or a row since has a problem): check it whole."""
    after = 0 if prefix is None else prefix.rows
    file = _file_id(path)
    # a SQLite journal's record before its rows: it is written after each commit, so
    # a journal that a run is writing is never behind a record read earlier
    beside = None if path.name == POINTER_FILE else read_tail(path)
    source = open_source(path)
    meta = source.meta
    if prefix is not None and (file != prefix.file or tuple(meta.items()) != prefix.meta):
        source.close()
        return None  # another file, or another run's
    source.stored_texts()  # texts hash as stored, even bytes that are not UTF-8
    source.snapshot()  # the rows (and a PostgreSQL run's record) as of one moment
    seqs, digests, stored, known = [], [], [], []
    blocks: list[Block] = []
    ends: list[tuple[int, str, bool]] = []  # each part's last row: seq, kind, in a block
    with _collector_paused():
        try:
            stamp = _schema_version(source)
            if prefix is not None and stamp != prefix.schema:
                return None  # its triggers dropped or made again: a row may have been edited
            if prefix is not None and _head_stored(source, prefix) != prefix.head:
                return None  # the prefix's last row is not as it was verified
            record = source.stored_tail()
            for kind in KINDS:
                schema = schema_of(kind)
                rows = list(source.table_rows(schema, after))
                if rows:
                    columns = list(zip(*rows, strict=True))  # seq, the kind's columns, hash
                    seqs.append(_integers(path, schema, columns[0]))
                    stored.append(_integers(path, schema, columns[-1]))
                    digests.append(column_digests(schema, columns[:-1]))
                    known.append(np.ones(len(rows), dtype=bool))
                    ends.append((int(seqs[-1].max()), kind, False))
                for block in source.blocks(schema, after):
                    if block.first <= after:
                        return None  # a block across the prefix's end (none is written)
                    found = block.digests(compiled=False)
                    # a block holds the chain value after its last row
                    hashes = np.zeros(len(found), dtype=np.uint64)
                    hashes[-1] = block.hash
                    blocks.append(block)
                    seqs.append(block.seq)
                    stored.append(hashes.view(np.int64))
                    digests.append(found)
                    known.append(np.arange(len(found)) == len(found) - 1)
                    ends.append((block.last, kind, True))
        finally:
            source.close()
    seed = chain_seed(meta) if prefix is None else prefix.head

    def check_end(rows: int, head_at: Callable[[int], str | None]) -> None:
        if record is None:
            check_tail(path, meta, rows, head_at, record=beside)  # its owner too
        else:  # a PostgreSQL run's record: its last ``tails`` row
            check_owner(path, meta)
            compare_tail(path, meta, record, rows, head_at)

    def remembered(rows: int, head: int, last: tuple[str, bool]) -> _Prefix:
        return _Prefix(rows, head, last, file, tuple(meta.items()), stamp)

    chained = np.empty(0, dtype=np.uint64)

    def head_at(rows: int) -> str | None:
        if rows == after:
            return f"{seed:016x}"
        if rows < after:  # (a prefix's row: `verify` knows it, this check does not)
            raise _PrefixUnknown
        return f"{int(chained[rows - after - 1]):016x}" if rows - after <= len(chained) else None

    if not seqs:
        if not _ended(check_end, after, head_at):
            return None
        if prefix is None:
            return Verified(0, f"{seed:016x}"), remembered(0, seed, ("", False))
        return Verified(after, f"{seed:016x}"), prefix
    seq = np.concatenate(seqs)
    order = np.argsort(seq, kind="stable")
    seq = seq[order]
    digest = np.concatenate(digests)[order]
    hashes = np.concatenate(stored)[order].view(np.uint64)
    mask = np.concatenate(known)[order]
    chained, bad = _chain_checked(digest, hashes, mask, seed)
    problems: list[tuple[int, int, str]] = []  # seq, structural first, what breaks
    expected = np.arange(after + 1, after + len(seq) + 1, dtype=np.int64)
    off = np.flatnonzero(seq != expected)
    if prefix is not None and (len(off) or len(bad)):
        return None  # the whole check names the first problem, as `verify` does
    if len(off):
        i = int(off[0])
        if i > 0 and seq[i] == seq[i - 1]:
            problems.append(
                (
                    int(seq[i]),
                    0,
                    f"{_breaks_at(int(seq[i]))} two rows have sequence {seq[i]} (a row inserted)",
                )
            )
        else:
            missing = int(expected[i])
            problems.append(
                (
                    missing,
                    0,
                    f"{_breaks_at(missing)} the row of sequence {missing} is missing (deleted)",
                )
            )
    if len(bad):
        block_ends = {block.last: block for block in blocks}
        s = int(seq[int(bad[0])])
        ended = block_ends.get(s)
        if ended is not None and len(ended.seq) > 0:
            why = (
                f"{_breaks_in(ended)} the chain after its last row is not its hash (rows "
                "before it edited, or a block of another journal)"
            )
        else:
            why = (
                f"{_breaks_at(s)} the row does not match its hash (edited, inserted or "
                "damaged after it was written)"
            )
        if s == 1:
            why += ", or the meta table was edited"
        problems.append((s, 1, why))
        # which block's bytes changed: its digest says (read only when the chain broke)
        for block in blocks:
            if block_digest(block.digests(compiled=False), compiled=False) != block.digest:
                problems.append(
                    (
                        block.first,
                        1,
                        f"{_breaks_in(block)} its bytes do not "
                        "match its digest (edited or damaged after it was written)",
                    )
                )
    if problems:
        s, _, why = min(problems)
        raise ChainBroken(f"{path}: {why}", s)

    if not _ended(check_end, after + len(seq), head_at):
        return None
    _, kind, in_block = max(ends)
    head = int(chained[-1])
    return Verified(after + len(seq), f"{head:016x}"), remembered(
        after + len(seq), head, (kind, in_block)
    )


def _ended(
    check_end: Callable[[int, Callable[[int], str | None]], None],
    rows: int,
    head_at: Callable[[int], str | None],
) -> bool:
    """Check the tail record; False: it names a row of the prefix (check it whole)."""
    try:
        check_end(rows, head_at)
    except _PrefixUnknown:
        return False
    return True


def _schema_version(source: Source) -> int | None:
    """The schema version an SQLite journal's file holds (None: not an SQLite file's)."""
    db = getattr(source, "db", None)
    if not isinstance(db, sqlite3.Connection):
        return None
    try:
        found = db.execute("PRAGMA schema_version").fetchone()
    except sqlite3.Error:
        return None
    return int(found[0]) if found is not None and isinstance(found[0], int) else None


def _head_stored(source: Source, prefix: _Prefix) -> int | None:
    """The chain value the journal stores after the prefix's last row (unsigned; None:
    no such row)."""
    if prefix.rows == 0:
        return prefix.head  # (no row: the seed, which the meta gives)
    kind, in_block = prefix.last
    schema = schema_of(kind)
    if in_block:
        for block in source.blocks(schema, prefix.rows - 1):
            return int(block.hash) if block.last == prefix.rows else None
        return None
    found = _first_row(source.table_rows(schema, prefix.rows - 1))
    if found is None or found[0] != prefix.rows or type(found[-1]) is not int:
        return None
    return int(found[-1]) & _UINT64


_UINT64 = (1 << 64) - 1


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a journal's rows are read: a big
    journal's are millions of tuples (none in a cycle), which the collector would scan
    again and again (40% of verify's time on 150,000 live bars)."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _integers(path: Path, schema: Schema, values: tuple[Any, ...]) -> np.ndarray:
    """A table's ``seq`` or ``hash`` column, as int64 (a damaged row's other value refused)."""
    if all(type(v) is int for v in values):
        return np.array(values, dtype=np.int64)
    raise JournalDamaged(f"{path}: a {schema.table} row has no sequence number or hash (damaged)")


def _chain_checked(
    digest: np.ndarray, stored: np.ndarray, known: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Check every link of the chain; return the chain values and the bad rows' indices.

    Args:
        digest: Each row's digest, in sequence order.
        stored: Each row's stored chain value (where ``known``).
        known: Whether the row stores its value (a block's rows but its last do not).
        seed: The chain value before the first row.

    A row whose previous value is stored is checked from that value, all such rows at
    once; a stretch of rows inside blocks is chained from the value before it, one row
    after another, up to the stored value after it.
    """
    n = len(digest)
    chained = stored.copy()
    previous = np.empty(n, dtype=np.uint64)
    previous[0] = np.uint64(seed)
    previous[1:] = stored[:-1]
    linked = np.ones(n, dtype=bool)
    linked[1:] = known[:-1]
    found = np.zeros(n, dtype=bool)
    direct = linked & known
    value = chain_numpy.chain_next(digest[direct], previous[direct])
    found[direct] = value != stored[direct]
    bad = np.flatnonzero(found)
    first_bad = int(bad[0]) if len(bad) else n
    anchors = np.flatnonzero(known)
    for start in np.flatnonzero(~known & linked).tolist():
        if start >= first_bad:
            break  # the first break is found: the rest is not needed
        at = int(np.searchsorted(anchors, start))
        stop = int(anchors[at]) if at < len(anchors) else n
        before = int(seed) if start == 0 else int(chained[start - 1])
        values = chain_numpy.chain_values(digest[start : stop + 1].tolist(), before)
        chained[start : start + len(values)] = values
        if stop < n and int(values[-1]) != int(stored[stop]):
            found[stop] = True
            first_bad = min(first_bad, stop)
    return chained, np.flatnonzero(found)


def journal_digest(path: Path, *, exclude: Iterable[str] = RUN_KINDS) -> str:
    """Return a SHA-256 over the journal's rows but their sequence numbers and hashes.

    Rows of ``exclude`` (run bookkeeping, with wall-clock times, by default) are left
    out: two runs of one strategy over the same bars then have the same digest.

    Raises:
        JournalError: Not a readable journal.
    """
    skip = set(exclude)
    digest = hashlib.sha256()
    source = open_source(path)
    try:
        schemas = [schema_of(k) for k in KINDS if k not in skip]
        streams = [_raw(source, schema) for schema in schemas]
        for seq, schema, row in heapq.merge(*streams, key=lambda item: item[0]):
            try:
                digest.update(schema.words(0, row[1:-1]))
            except (struct.error, TypeError, ValueError, AttributeError) as exc:
                raise JournalDamaged(
                    f"{path}: {schema.table} row {seq} cannot be decoded ({exc})"
                ) from None
    finally:
        source.close()
    return digest.hexdigest()


# --- helpers -----------------------------------------------------------------------


def _name(kind: str | type[Event]) -> str:
    return kind if isinstance(kind, str) else kind.KIND


def _kinds(kinds: Iterable[str | type[Event]] | None) -> list[str]:
    if kinds is None:
        return list(KINDS)
    names = [_name(k) for k in kinds]
    unknown = [k for k in names if k not in KINDS]
    if unknown:
        raise KeyError(f"no journal kind {unknown[0]!r}; kinds: {', '.join(sorted(KINDS))}")
    return names


def _raw(
    source: Source, schema: Schema, after: int = 0
) -> Iterator[tuple[int, Schema, tuple[Any, ...]]]:
    for row in source.rows(schema, after):
        if not isinstance(row[0], int):
            raise JournalDamaged(f"{source.path}: a {schema.table} row has no sequence number")
        yield row[0], schema, row


def _decoded(source: Source, schema: Schema, after: int = 0) -> Iterator[tuple[int, Event]]:
    for seq, _, row in _raw(source, schema, after):
        try:
            yield seq, schema.from_sql(row[1:-1])
        except (JournalValueError, TypeError) as exc:
            raise JournalDamaged(
                f"{source.path}: {schema.table} row {seq} cannot be decoded ({exc})"
            ) from None


def _breaks_at(seq: int) -> str:
    return f"the hash chain breaks at sequence {seq}:"


def _breaks_in(block: Block) -> str:
    return f"the hash chain breaks in {block.span}:"


def _frame(source: Source, schema: Schema) -> pd.DataFrame:
    found = _new_frame(source, schema, 0)
    return _table_frame(source.path, schema, []) if found is None else found


def _new_frame(source: Source, schema: Schema, after: int) -> pd.DataFrame | None:
    """The kind's rows after sequence ``after`` as a frame; None: there are none."""
    table = list(source.table_rows(schema, after))
    blocks = list(source.blocks(schema, after))
    if not table and not blocks:
        return None
    rows = _table_frame(source.path, schema, table)
    parts = [rows] if len(rows) else []
    for block in blocks:
        try:
            part = pd.DataFrame(block.frame_columns())
        except BlockDamaged as exc:
            raise JournalDamaged(f"{source.path}: {exc} (damaged)") from None
        parts.append(part[part["seq"] > after].reset_index(drop=True) if after else part)
    if len(parts) == 1:
        return parts[0]
    frame = pd.concat(parts, ignore_index=True)
    if len(rows):  # the table's rows may come before, between or after the blocks
        frame = frame.sort_values("seq", kind="stable", ignore_index=True)
    return frame


def _table_frame(path: Path, schema: Schema, rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    columns = list(zip(*rows, strict=True)) if rows else [()] * (len(schema.columns) + 2)
    data: dict[str, Any] = {"seq": np.array(columns[0], dtype=np.int64)}
    for j, column in enumerate(schema.columns, start=1):
        try:
            data[column.name] = _frame_column(column.codec, list(columns[j]))
        except (TypeError, ValueError) as exc:
            raise JournalDamaged(
                f"{path}: {schema.table}.{column.name} cannot be decoded ({exc})"
            ) from None
    return pd.DataFrame(data)


def _frame_column(codec: Codec, values: list[Any]) -> Any:
    if codec is Codec.FLOAT:
        return np.array(values, dtype=np.float64)
    if codec in (Codec.INT, Codec.BOOL, Codec.ID, Codec.TIME):
        null = -1 if codec is Codec.ID else _INT64_MIN
        array = np.array([null if v is None else v for v in values], dtype=np.int64)
        if codec is Codec.BOOL:
            return array.astype(bool)
        if codec is Codec.TIME:
            return pd.DatetimeIndex(array.view("datetime64[ns]")).tz_localize("UTC")
        return array
    if codec in (Codec.JSON, Codec.FLOAT_MAP):
        decode = value_decoder(codec)
        return pd.Series([decode(v) for v in values], dtype=object)
    return pd.Series(values, dtype=object)
