"""The SQLite journal store: one STRICT table per kind, a meta table, triggers, WAL.

Layout (format `FORMAT_VERSION`):

- ``meta(key, value)``: ``format_version``, ``strategy``, ``run_id``, ``mode`` and
  ``tradeloom`` (the version that created the file), and in a run's journal
  ``strategy_sha256``, ``tail`` and ``folder_key`` (`tradeloom.journal.owner`). The
  chain starts from a hash of all but ``tradeloom``, so an edited meta breaks it at
  the first row.
- one table per kind (`tradeloom.journal.schema`), its rows chained across tables
  in ``seq`` order;
- ``segment`` (format 3): the rows of bulk writes, as typed columnar blocks
  (`tradeloom.journal.blocks`), each chained into the same hash chain;
- ``events``: a view of the header of every row of the kind tables (not of blocks)
  with its kind, in sequence order.

Every table refuses UPDATE and DELETE (triggers). The file runs in WAL mode.

Durability: `SqliteJournal.flush` commits in one of two ways.

- durable (the default): committed with ``synchronous=FULL`` (the write-ahead log is
  fsync'd), then the tail record is written (`tradeloom.journal.tail`, fsync'd too).
  A durable commit survives a crash of the process and of the machine (a power loss),
  and so does every commit before it: the log is one file, fsync'd whole.
- ``durable=False``: committed with ``synchronous=NORMAL``, no fsync and no tail
  record. The rows are in the operating system's cache when it returns: a crash of
  the process (``kill -9``) keeps them; a crash of the machine may lose the commits
  made since the last durable one, never a durable one, and never some rows of a
  commit without the others (SQLite's recovery keeps the longest whole prefix of the
  log). The tail record then names an earlier row count, which a reader accepts when
  the journal's chain at that row matches it (`tradeloom.journal.tail`).

Paper and live commit the rows of a tick that sends nothing without fsync, and commit
durably before anything is sent (an order is durable before it leaves), on control
requests, at start and at stop: see the docs' "Operating live runs".

Writes: `SqliteJournal.append` buffers one event and `SqliteJournal.flush` commits;
`SqliteJournal.write_columns` writes a backtest's column batches in one transaction,
each kind's rows as blocks: numpy buffers, hashed in compiled code, nothing per event
in Python. A format-2 file (reopened to append) gets them as table rows instead, with
multi-row INSERTs of `INSERT_ROWS` rows; a column that holds one value in every row
of a batch (the symbol, a constant fee...) is bound once per INSERT.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tradeloom.files.addresses import sqlite_uri
from tradeloom.files.reading import UnreadableFile
from tradeloom.journal import files
from tradeloom.journal.blocks import SEGMENT_SQL, block_digest, chunks, encode_block, pack
from tradeloom.journal.chain import chain_rows, pack_text, signed
from tradeloom.journal.chain_numpy import xxh64
from tradeloom.journal.columns import PreparedBatch, chain_batches, prepare
from tradeloom.journal.errors import (
    JournalDamaged,
    JournalOwnerError,
    JournalVersionError,
)
from tradeloom.journal.events.base import FORMAT_VERSION, KINDS, READ_FORMATS, Event
from tradeloom.journal.schema import Schema, schema_of
from tradeloom.journal.store import ColumnBatch, RunIdentity
from tradeloom.journal.tail import TailCut, check_tail, tail_of, write_tail
from tradeloom.version import __version__

__all__ = [
    "CACHE_KIB",
    "INSERT_ROWS",
    "PAGE_SIZES",
    "SqliteJournal",
    "chain_seed",
    "connect",
    "has_segments",
    "last_row",
    "open_journal",
    "stored_columns",
]

INSERT_ROWS = 100
"""Rows per INSERT statement of a bulk write (measured: 50..400 perform alike)."""

_HEADER = b"SQLite format 3\x00"
_META_KEYS = ("format_version", "strategy", "run_id", "mode")
_BOUND_KEYS = ("strategy_sha256", "tail", "folder_key")
"""Meta keys bound into the chain when present (a journal from before them has none):
the strategy document's hash, that the journal keeps a tail record, and the key of the
run folder it was created in (`tradeloom.journal.owner`, `tradeloom.journal.tail`)."""


def chain_seed(meta: dict[str, str]) -> int:
    """Return the chain value before the first row: XXH64 of the meta's identity texts."""
    keys = _META_KEYS + tuple(key for key in _BOUND_KEYS if key in meta)
    words = b"".join(pack_text(key) + pack_text(meta.get(key, "")) for key in keys)
    return int(xxh64(np.frombuffer(words, dtype=np.uint64)[None, :])[0])


def _unsigned(value: int) -> int:
    return value + (1 << 64) if value < 0 else value


def connect(path: Path, *, readonly: bool = True) -> tuple[files.JournalConnection, dict[str, str]]:
    """Open an existing journal; return the connection and its meta.

    Raises:
        JournalDamaged: Missing, a directory, empty, not SQLite, malformed, or its
            tables gone (a write-ahead log lost after a crash).
        JournalVersionError: Another format version.
    """
    if not path.exists():
        raise JournalDamaged(f"{path}: no such journal")
    if path.is_dir():
        raise JournalDamaged(f"{path}: is a directory, not a journal file")
    try:
        # a FIFO or a device in the journal's place is refused, never opened (it would
        # block); the descriptor is held until the connection closes (`files`)
        held = files.hold(path)
    except UnreadableFile as exc:
        raise JournalDamaged(str(exc)) from None
    try:
        head = held.head(len(_HEADER))
        if not head:
            raise JournalDamaged(f"{path}: an empty file, not a journal")
        if head != _HEADER:
            raise JournalDamaged(
                f"{path}: not a SQLite database (damaged, or another kind of file)"
            )
    except BaseException:
        held.release()
        raise
    uri = sqlite_uri(path.resolve(), "ro" if readonly else "rw")
    try:
        db = files.connect(uri, held)
    except sqlite3.Error as exc:
        raise JournalDamaged(f"{path}: cannot be opened (SQLite: {exc})") from None
    try:
        meta = _read_meta(path, db)
    except BaseException:
        db.close()
        raise
    return db, meta


READ_ERRORS = (sqlite3.DatabaseError, UnicodeDecodeError)
"""What reading a damaged file raises: SQLite's errors, and a stored text not UTF-8."""


def damage(exc: Exception) -> str:
    """Say what a `READ_ERRORS` error found, for a one-line message."""
    if isinstance(exc, UnicodeDecodeError):
        return f"a stored text is not UTF-8: {exc.reason} at byte {exc.start}"
    return f"SQLite: {exc}"


def _read_meta(path: Path, db: sqlite3.Connection) -> dict[str, str]:
    try:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        if "meta" not in tables:
            if "events" in tables:
                raise JournalVersionError(
                    f"{path}: a journal of format 1 (tradeloom before the typed journal); "
                    f"this tradeloom reads format {FORMAT_VERSION}: start a new run in "
                    "another folder, or read it with the tradeloom that wrote it"
                )
            raise JournalDamaged(
                f"{path}: holds no journal tables (no such table: meta); its write-ahead "
                f"log ({path.name}-wal) was lost after a crash, or it is not a journal"
            )
        meta = {str(k): str(v) for k, v in db.execute("SELECT key, value FROM meta")}
    except READ_ERRORS as exc:
        raise JournalDamaged(f"{path}: damaged journal ({damage(exc)})") from None
    version = meta.get("format_version", "")
    if not (version.isdigit() and int(version) in READ_FORMATS):
        newer = version.isdigit() and int(version) > FORMAT_VERSION
        remedy = (
            "upgrade tradeloom to read it"
            if newer
            else "start a new run in another folder, or read it with the tradeloom that wrote it"
        )
        raise JournalVersionError(
            f"{path}: a journal of format {_shown(version) or '(none)'}; this tradeloom "
            f"({__version__}) reads format {FORMAT_VERSION}: {remedy}"
        )
    return meta


def open_journal(path: Path, identity: RunIdentity, *, flush_every: int = 1000) -> SqliteJournal:
    """Create the journal at ``path``, or reopen it to append (a restart).

    Raises:
        JournalError: An existing file that is not a journal of ``identity``'s strategy
            and mode, is of another format, or is damaged.
    """
    return SqliteJournal(path, identity, flush_every=flush_every)


class SqliteJournal:
    """A run's journal in a SQLite file (`tradeloom.journal.store.JournalStore`).

    Args:
        path: The file; created with every table if missing.
        identity: The run; an existing file must belong to its strategy and mode.
        flush_every: Commit by itself after this many buffered events.
        accept_cut: Open a journal its tail record says was cut (`TailCut`): a live
            restart that asks its venue what was sent; the next commit records the
            new end.

    Raises:
        JournalError: See `open_journal`.
    """

    def __init__(
        self,
        path: Path,
        identity: RunIdentity,
        *,
        flush_every: int = 1000,
        accept_cut: bool = False,
    ) -> None:
        self.path = path
        self._identity = identity
        self._flush_every = max(1, flush_every)
        if path.exists():
            self._db, meta = connect(path, readonly=False)
            try:
                _check_owner(path, meta, identity)
                self._configure()
                _add_kinds(path, self._db)
                self._seq, self._head = last_row(path, self._db, meta)
                last = self._seq, f"{self._head:016x}"
                try:
                    check_tail(path, meta, self._seq, lambda n: last[1] if n == last[0] else None)
                except TailCut:
                    if not accept_cut:
                        raise
            except BaseException:
                self._db.close()
                raise
        else:
            self._db = _create(path, identity)
            meta = dict(_meta_entries(identity))
            self._seq, self._head = 0, chain_seed(meta)
        self._meta = meta
        self._blocks = int(meta["format_version"]) >= 3
        if self._seq == 0:
            self._write_tail()
        self._buffer: dict[Schema, list[list[Any]]] = {}
        self._buffered = 0
        self._unchained: list[list[Any]] = []
        """The rows buffered, in sequence order, their chain value not computed yet."""
        self._words: list[bytes] = []
        """Their hash words (`Schema.words`)."""
        self._full = True
        """Whether the connection commits with ``synchronous=FULL`` now."""
        self._unsynced = False
        """Commits were made without fsync since the last durable one."""

    @property
    def identity(self) -> RunIdentity:
        """Whose journal it is."""
        return self._identity

    @property
    def last_seq(self) -> int:
        """The sequence number of the last event appended (0: none)."""
        return self._seq

    def _write_tail(self) -> None:
        """Record where the committed journal ends (`tradeloom.journal.tail`)."""
        write_tail(self.path, tail_of(self._meta, self._seq, self._head))

    def _configure(self) -> None:
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB.get(self._identity.mode, 32768)}")

    def append(self, event: Event) -> int:
        """Append ``event`` (committed by `flush`); return its sequence number.

        Raises:
            JournalValueError: A field value its column cannot hold.
        """
        schema = schema_of(event.KIND)  # cached
        seq = self._seq + 1
        # its chain value (the row's last, None) is hashed with the others at the commit
        row, words = schema.stored(event, seq)
        self._words.append(words)
        self._seq = seq
        self._buffer.setdefault(schema, []).append(row)
        self._unchained.append(row)
        self._buffered += 1
        if self._buffered >= self._flush_every:
            self.flush()
        return seq

    def flush(self, *, durable: bool = True) -> None:
        """Commit every buffered event.

        Args:
            durable: fsync the commit, and every commit before it made without, and
                write the tail record (a machine's crash keeps it); False: commit
                without fsync (a process's crash keeps it, a machine's may not).
        """
        if not self._buffered:
            if durable and self._unsynced:
                self._sync()
            return
        self._chain()
        db = self._db
        if self._full != durable:  # (asked here: most commits of a run keep it)
            self._synchronous(full=durable)
        try:
            if self._buffered == 1 and db.isolation_level is None:
                # one row (a quiet tick's bar): its INSERT is a transaction of its own
                # (the connection autocommits), the same commit without BEGIN and COMMIT
                ((schema, rows),) = self._buffer.items()
                db.execute(schema.insert_one, rows[0])
            else:
                db.execute("BEGIN")
                for schema, rows in self._buffer.items():
                    if rows:
                        db.executemany(schema.insert_one, rows)
                db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise
        self._buffer.clear()
        self._buffered = 0
        if durable:
            # FULL fsyncs the whole write-ahead log: the commits made without are in it
            self._unsynced = False
            self._write_tail()
        else:
            self._unsynced = True

    def _chain(self) -> None:
        """Hash the rows appended since the last commit into the chain, in one call."""
        rows = self._unchained
        if not rows:
            return
        ends, end = [], 0
        for row_words in self._words:
            end += len(row_words) >> 3
            ends.append(end)
        words = np.frombuffer(b"".join(self._words), dtype=np.uint64)
        chained = np.empty(len(rows), np.uint64)
        head = chain_rows(words, np.array(ends, np.int64), np.uint64(self._head), chained)
        self._head = int(head)
        for row, value in zip(rows, chained.view(np.int64).tolist(), strict=True):
            row[-1] = value
        rows.clear()
        self._words.clear()

    def _synchronous(self, *, full: bool) -> None:
        if self._full != full:
            self._db.execute(f"PRAGMA synchronous={'FULL' if full else 'NORMAL'}")
            self._full = full

    def _sync(self) -> None:
        """Make the commits made without fsync durable, then record the tail.

        Their frames are in the write-ahead log (``<journal>-wal``), or, after a
        checkpoint (which fsyncs the log before copying it), in the journal file
        itself: both are fsync'd, through the descriptors this process holds on them
        (`tradeloom.journal.files`: opening and closing another would drop SQLite's
        locks, and a reader's close would then delete the log under this writer).
        """
        held = self._db.held
        assert held is not None, "a journal's connection holds its file"
        held.sync()
        self._unsynced = False
        self._write_tail()

    def write_columns(self, batches: Sequence[ColumnBatch], *, durable: bool = True) -> None:
        """Append the rows of ``batches`` in their positions' order, hashed, and commit.

        Events appended before and not flushed are committed first (they come first),
        without fsync: this commit's, or the next durable one's, makes them durable.

        Args:
            batches: The rows, a batch per kind.
            durable: Commit as `flush` does (False: without fsync and tail record; a
                backtest's close commits durably after it).

        Raises:
            JournalValueError: Positions that are not ``0 .. rows - 1`` each once, a
                missing column, or values of the wrong type or length.
        """
        self.flush(durable=False)
        first = self._seq + 1
        sql = not self._blocks
        prepared = [prepare(schema_of(b.kind.KIND), b, first, sql=sql) for b in batches]
        chained, head = chain_batches(prepared, self._head)
        total = len(chained)
        if total == 0:
            self.flush(durable=durable)  # the events before: durable if asked
            return
        hashes = chained.view(np.int64)
        db = self._db
        self._synchronous(full=durable)
        db.execute("BEGIN")
        try:
            for batch in prepared:
                if self._blocks:
                    _insert_blocks(db, batch, first, chained)
                else:
                    _insert(db, batch, first, hashes)
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise
        self._seq += total
        self._head = head
        if durable:
            # FULL fsyncs the whole write-ahead log: the commits made without are in it
            self._unsynced = False
            self._write_tail()
        else:
            self._unsynced = True

    def close(self) -> None:
        """Commit and close."""
        try:
            self.flush()
        finally:
            self._db.close()


def _insert_blocks(
    db: sqlite3.Connection, batch: PreparedBatch, first: int, chained: npt.NDArray[np.uint64]
) -> None:
    """Insert ``batch`` as blocks (`tradeloom.journal.blocks`), each with its digest and
    the chain value after its last row."""
    names = ",".join(batch.schema.names)
    seq = batch.positions + first
    for start, stop in chunks(len(seq)):
        last = int(batch.positions[stop - 1])
        db.execute(
            'INSERT INTO "segment" ("kind", "first_seq", "last_seq", "rows", "columns", '
            '"data", "digest", "hash") VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
            (
                batch.schema.kind,
                int(seq[start]),
                int(seq[stop - 1]),
                stop - start,
                names,
                pack(encode_block(batch, seq, start, stop)),
                signed(block_digest(batch.digests[start:stop])),
                signed(int(chained[last])),
            ),
        )


def _insert(
    db: sqlite3.Connection, batch: PreparedBatch, first: int, hashes: npt.NDArray[np.int64]
) -> None:
    schema = batch.schema
    n = len(batch.positions)
    repeated = (False, *(batch.repeated or [False] * len(batch.values)), False)
    columns = [(batch.positions + first).tolist(), *batch.values, hashes[batch.positions].tolist()]
    once = [column[0] for column, same in zip(columns, repeated, strict=True) if same]
    varying = [column for column, same in zip(columns, repeated, strict=True) if not same]
    width = len(varying)
    flat: list[Any] = [None] * (n * width)
    for j, column in enumerate(varying):
        flat[j::width] = column
    step = INSERT_ROWS * width
    whole = n // INSERT_ROWS
    if whole:
        sql = _insert_sql(schema, INSERT_ROWS, repeated)
        for i in range(whole):
            db.execute(sql, once + flat[i * step : (i + 1) * step])
    rest = n - whole * INSERT_ROWS
    if rest:
        db.execute(_insert_sql(schema, rest, repeated), once + flat[whole * step :])


@lru_cache(maxsize=256)
def _insert_sql(schema: Schema, rows: int, repeated: tuple[bool, ...]) -> str:
    """Return an INSERT of ``rows`` rows whose ``repeated`` columns share one parameter each.

    The shared parameters come first (``?1``...), then each row's own, row by row.
    """
    if not any(repeated):
        return schema.insert_sql(rows)
    shared = {j: k for k, j in enumerate(j for j, same in enumerate(repeated) if same)}
    number = len(shared)
    tuples = []
    for _ in range(rows):
        cells = []
        for j in range(len(repeated)):
            if j in shared:
                cells.append(f"?{shared[j] + 1}")
            else:
                number += 1
                cells.append(f"?{number}")
        tuples.append("(" + ",".join(cells) + ")")
    return f"INSERT INTO {schema.into} VALUES " + ",".join(tuples)


def _shown(text: str) -> str:
    """``text`` as it can stand in a one-line message (a damaged one as its repr)."""
    return text if text.isprintable() else repr(text)


def _meta_entries(identity: RunIdentity) -> list[tuple[str, str]]:
    values = (str(FORMAT_VERSION), identity.strategy, identity.run_id, identity.mode)
    entries = list(zip(_META_KEYS, values, strict=True))
    if identity.strategy_sha256:
        entries.append(("strategy_sha256", identity.strategy_sha256))
    entries.append(("tail", "1"))
    if identity.folder_key:
        entries.append(("folder_key", identity.folder_key))
    return entries


PAGE_SIZES = {"paper": 4096, "live": 4096}
"""The page size of a new journal by its run's mode (else 16384). A backtest writes its
rows once, in blocks: large pages hold them in fewer. A paper or live run commits a few
rows each bar, and a commit writes each page it touched whole to the write-ahead log: a
bar's commit took 52 us with 16 KiB pages, 25 us with 4 KiB (bench_live_tick)."""

CACHE_KIB = {"paper": 2048, "live": 2048}
"""The page cache of a journal's connection by its run's mode, in KiB (else 32768). A
backtest writes its rows in blocks, read back soon after by its report. A paper or live
run appends a few rows each bar to the pages at the end of its tables, for as long as
it runs: its cache filled with every page the journal grew by, up to the cap (a
40-symbol universe: ~6 KB a bar of the resident set, 32 MiB after some 5,000 bars),
though a commit touches only the last pages of each table."""


@lru_cache(maxsize=2)
def _create_script(segments: str) -> str:
    """Return the script that makes a new journal's tables, in one transaction, with
    ``segments`` (`SEGMENT_SQL`; a test of format 2 makes a file without).

    Built once per process: the kinds do not change while it runs, and building it
    (every kind's table and triggers) cost ~1.5 ms of each backtest's journal opening.
    """
    script = [
        "BEGIN;",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;",
        "CREATE TRIGGER meta_no_update BEFORE UPDATE ON meta "
        "BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;",
        "CREATE TRIGGER meta_no_delete BEFORE DELETE ON meta "
        "BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;",
    ]
    schemas = [schema_of(kind) for kind in KINDS]
    script += [schema.create_sql() for schema in schemas]
    script.append(segments)
    script.append(_events_sql(schemas))
    return "\n".join(script)


def _events_sql(schemas: list[Schema]) -> str:
    """The ``events`` view over the tables of ``schemas`` (each table must be there)."""
    header = '"seq", "bar", "timestamp", "symbol", "correlation_id"'
    union = " UNION ALL ".join(
        f"SELECT {header}, '{s.kind}' AS kind FROM \"{s.table}\"" for s in schemas
    )
    return f"CREATE VIEW events AS {union} ORDER BY seq;"


def _create(path: Path, identity: RunIdentity) -> files.JournalConnection:
    uri = sqlite_uri(path, "rwc")  # a plain name starting with file: would be a URI
    # made empty (a new database to SQLite) before any connection is open, then held
    # (`files`) before SQLite opens it
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
    db = files.connect(uri, files.hold(path))
    try:
        db.execute(f"PRAGMA page_size={PAGE_SIZES.get(identity.mode, 16384)}")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(f"PRAGMA cache_size=-{CACHE_KIB.get(identity.mode, 32768)}")
        db.executescript(_create_script(SEGMENT_SQL))
        entries = [*_meta_entries(identity), ("tradeloom", __version__)]
        db.executemany("INSERT INTO meta VALUES (?, ?)", entries)
        db.execute("COMMIT")
    except BaseException:
        db.close()
        raise
    return db


def stored_columns(db: sqlite3.Connection, schema: Schema) -> frozenset[str]:
    """Return the columns ``schema``'s table has in the file ``db``."""
    rows = db.execute(f'PRAGMA table_info("{schema.table}")')
    # names as texts even when the reader takes texts as stored (bytes)
    return frozenset(n.decode() if isinstance(n, bytes) else str(n) for _, n, *_ in rows)


def _add_kinds(path: Path, db: sqlite3.Connection) -> None:
    """Make the tables of kinds, and the columns of fields, added since the file was made.

    A kind may be added to a format (its rows are new; no row of an older kind
    changes): a journal reopened to append gets its table, and the ``events`` view is
    made anew over every kind; readers read a table that is not there as empty. A field
    may be added (`tradeloom.journal.schema`): the table gets its column, which its older
    rows read as ''.
    """
    try:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        missing = [schema_of(kind) for kind in KINDS if schema_of(kind).table not in tables]
        script = [s.create_sql() for s in missing]
        if missing:  # the view covers the kinds the file was made with: now every one
            script += ["DROP VIEW IF EXISTS events;", _events_sql(list(map(schema_of, KINDS)))]
        for kind in KINDS:
            s = schema_of(kind)
            if s.added and s.table in tables:
                script += [f"{sql};\n" for sql in s.added_sql(stored_columns(db, s))]
        if script:
            db.executescript("BEGIN;\n" + "".join(script) + "COMMIT;")
    except READ_ERRORS as exc:
        _rollback(db)
        raise JournalDamaged(f"{path}: damaged journal ({damage(exc)})") from None


def _check_owner(path: Path, meta: dict[str, str], identity: RunIdentity) -> None:
    strategy, mode = meta.get("strategy", ""), meta.get("mode", "")
    if (strategy, mode) != (identity.strategy, identity.mode):
        run_id = _shown(meta.get("run_id", ""))
        raise JournalOwnerError(
            f"{path}: the journal of a {_shown(mode)} run of '{_shown(strategy)}' (run {run_id}); "
            f"it cannot continue as a {identity.mode} run of '{identity.strategy}': use "
            "another folder"
        )


def last_row(path: Path, db: sqlite3.Connection, meta: dict[str, str]) -> tuple[int, int]:
    """Return the last row's sequence number and chain value (0 and the seed: none)."""
    seq, head = 0, chain_seed(meta)
    try:
        for kind in KINDS:
            table = schema_of(kind).table
            row = db.execute(
                f'SELECT seq, hash FROM "{table}" ORDER BY seq DESC LIMIT 1'
            ).fetchone()
            if row is not None and row[0] > seq:
                seq, head = int(row[0]), _unsigned(int(row[1]))
        if has_segments(db):
            row = db.execute(
                'SELECT last_seq, hash FROM "segment" ORDER BY last_seq DESC LIMIT 1'
            ).fetchone()
            if row is not None and row[0] > seq:
                seq, head = int(row[0]), _unsigned(int(row[1]))
    except READ_ERRORS as exc:
        raise JournalDamaged(f"{path}: damaged journal ({damage(exc)})") from None
    return seq, head


def has_segments(db: sqlite3.Connection) -> bool:
    """Whether the file has the table of blocks (format 3)."""
    found = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'segment'").fetchone()
    return found is not None


def _rollback(db: sqlite3.Connection) -> None:
    """Undo the open transaction; SQLite has undone it itself after a full disk.

    A ROLLBACK with none open would raise "no transaction is active" and hide the
    error that matters (`environment_fault` names a full disk).
    """
    if db.in_transaction:
        db.execute("ROLLBACK")
