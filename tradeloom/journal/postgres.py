"""The PostgreSQL journal store: the SQLite journal's tables, shared by many runs.

Layout (in one schema, ``tradeloom`` unless the strategy file names another):

- ``journal_meta(key, value)``: ``format_version`` (`FORMAT_VERSION`) and ``tradeloom``
  (the version that created the tables). A database of another format is refused.
- ``runs(run_id, strategy, mode, format_version, tradeloom, created_at, strategy_sha256,
  tail, folder_key)``: one row per run, its meta (the last three bound into its chain's
  seed where set, `tradeloom.journal.owner`); a run id belongs to one strategy and mode
  for ever;
- ``tails`` and ``sent_marks``: a run's tail records and a live run's sent-id marks
  (`tradeloom.journal.tail`, `tradeloom.live.orders.sent_mark`);
- one table per kind, with the SQLite table's columns after ``run_id``; the primary key
  is ``(run_id, seq)``; the rows of a run are chained across tables in ``seq`` order
  exactly as in SQLite (`tradeloom.journal.chain`, seeded by the run's identity), so a
  run hashes the same whichever store holds it;
- ``events``: a view of every row's header with its run id and kind.

Append-only is enforced by the database: a trigger on every table raises on UPDATE,
DELETE and TRUNCATE, for every role, the superuser too (a role that must not even
drop the triggers should not own the tables: see the docs' how-to).

Writes: `PostgresJournal.append` buffers, `PostgresJournal.flush` commits the buffer in
one transaction (durable: ``synchronous_commit`` as the server has it, ``on`` by default,
so a committed event survives a crash of the server; ``durable=False``, a paper or live
tick that sends nothing: ``synchronous_commit`` off for that transaction, which a crash
of the server may lose with the others since the last durable commit, as the SQLite
store's commits without fsync); `PostgresJournal.write_columns`
writes a backtest's batches with ``COPY`` in one transaction, a row per event (the
SQLite store writes them as typed blocks, `tradeloom.journal.blocks`; here every row
stays queryable in its kind's table, and a server's shared database is not where
backtests' speed matters).

A PostgreSQL text cannot hold the character NUL (U+0000): a text holding one (an
exchange's message, say) is journaled with U+FFFD in its place, hashed as stored. It is
the one way a row can differ from the SQLite journal's.

A lost connection makes `flush` raise `JournalUnavailable`. What it had not committed
is as lost as in a crash: `PostgresJournal.reconnect` connects again and continues
after the run's last committed row (a commit whose answer was lost may have landed:
the database says), and the run rebuilds itself from the journal as a restart does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import numpy as np

from tradeloom.journal.chain import signed
from tradeloom.journal.columns import PreparedBatch, chain_batches, prepare
from tradeloom.journal.errors import JournalOwnerError, JournalUnavailable, JournalVersionError
from tradeloom.journal.events.base import FORMAT_VERSION, KINDS, Event
from tradeloom.journal.location import SCHEMA_PATTERN, PgTarget
from tradeloom.journal.schema import Codec, JournalValueError, Schema, schema_of
from tradeloom.journal.sqlite import chain_seed
from tradeloom.journal.store import ColumnBatch, RunIdentity
from tradeloom.runtime.extras import require
from tradeloom.runtime.lazy import pandas as pd
from tradeloom.runtime.redaction import redact_text
from tradeloom.version import __version__

require("psycopg", "a journal in PostgreSQL")

import psycopg  # noqa: E402 (after `require`, which names its extra)

__all__ = [
    "NUL_STAND_IN",
    "PostgresJournal",
    "connect_pg",
    "create_sql",
    "has_table",
    "last_row",
    "read_run",
    "select_sql",
    "stored_columns",
]

_SQL_TYPES = {
    Codec.INT: "BIGINT NOT NULL",
    Codec.ID: "BIGINT",
    Codec.BOOL: "SMALLINT NOT NULL",
    Codec.FLOAT: "DOUBLE PRECISION",
    Codec.TIME: "BIGINT",
    Codec.TEXT: "TEXT NOT NULL",
    Codec.OPT_TEXT: "TEXT",
    Codec.JSON: "TEXT NOT NULL",
    Codec.FLOAT_MAP: "TEXT NOT NULL",
}
_LOCK = 0x7472_6C6A  # pg_advisory_xact_lock key while the tables are made ("trlj")


def _reason(exc: BaseException) -> str:
    """The first line of a driver error, redacted (libpq's own words)."""
    text = str(exc).strip() or type(exc).__name__
    line = " ".join(text.splitlines()[0].split())
    return redact_text(line.removeprefix("connection failed: "))


def connect_pg(target: PgTarget, *, what: str) -> psycopg.Connection[Any]:
    """Connect to ``target`` (``what``: the sentence's end, after the reason).

    Raises:
        JournalUnavailable: The server cannot be reached or refuses the login.
    """
    try:
        return psycopg.connect(target.url, autocommit=False, connect_timeout=10)
    except psycopg.Error as exc:
        raise JournalUnavailable(
            f"{target.reference}: cannot connect to the PostgreSQL journal ({_reason(exc)}); {what}"
        ) from None
    except Exception as exc:  # a malformed URL: libpq's parser says what
        raise JournalUnavailable(
            f"{target.reference}: not a PostgreSQL URL ({_reason(exc)}); {what}"
        ) from None


def _name(schema: str, table: str) -> str:
    return f'"{schema}"."{table}"'


def _check_schema(name: str) -> None:
    if not re.fullmatch(SCHEMA_PATTERN, name):
        raise JournalValueError(f"journal schema {name!r}: must match {SCHEMA_PATTERN}")


def create_sql(schema: str) -> list[str]:
    """Return the statements that create the journal's tables, view and triggers in ``schema``."""
    _check_schema(schema)
    function = _name(schema, "append_only")
    statements = [
        f'CREATE SCHEMA IF NOT EXISTS "{schema}"',
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION 'the journal is append-only (% on %)', TG_OP, TG_TABLE_NAME "
        "USING ERRCODE = 'insufficient_privilege'; END $$",
        f"CREATE TABLE {_name(schema, 'journal_meta')} (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        f"CREATE TABLE {_name(schema, 'runs')} (run_id TEXT PRIMARY KEY, "
        "strategy TEXT NOT NULL, mode TEXT NOT NULL, format_version INTEGER NOT NULL, "
        "tradeloom TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now(), "
        "strategy_sha256 TEXT NOT NULL DEFAULT '', tail TEXT NOT NULL DEFAULT '', "
        "folder_key TEXT NOT NULL DEFAULT '')",
    ]
    statements += [sql for table in _PROOF_TABLES for sql in _proof_table(schema, table)]
    tables = ["journal_meta", "runs", *_PROOF_TABLES]
    kinds = [schema_of(kind) for kind in KINDS]
    statements += [_kind_table_sql(schema, s) for s in kinds]
    tables += [s.table for s in kinds]
    statements += [sql for table in tables for sql in _trigger_sql(schema, table)]
    statements.append(_events_sql(schema, kinds))
    return statements


def _kind_table_sql(schema: str, s: Schema) -> str:
    """The CREATE TABLE of kind ``s``'s table (its triggers: `_trigger_sql`)."""
    columns = ",\n  ".join(
        f'"{c.name}" {_SQL_TYPES[c.codec]}'
        + (f' CHECK ("{c.name}" IN (0, 1))' if c.codec is Codec.BOOL else "")
        for c in s.columns
    )
    return (
        f"CREATE TABLE {_name(schema, s.table)} (\n  run_id TEXT NOT NULL,\n"
        f'  "seq" BIGINT NOT NULL,\n  {columns},\n  "hash" BIGINT NOT NULL,\n'
        '  PRIMARY KEY (run_id, "seq")\n)'
    )


def _trigger_sql(schema: str, table: str) -> list[str]:
    """The triggers that make ``table`` append-only (UPDATE, DELETE, TRUNCATE raise)."""
    name, function = _name(schema, table), _name(schema, "append_only")
    return [
        f'CREATE TRIGGER "{table}_no_change" BEFORE UPDATE OR DELETE ON {name} '
        f"FOR EACH ROW EXECUTE FUNCTION {function}()",
        f'CREATE TRIGGER "{table}_no_truncate" BEFORE TRUNCATE ON {name} '
        f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
    ]


def _events_sql(schema: str, kinds: Sequence[Schema]) -> str:
    """The ``events`` view over the tables of ``kinds`` (made, or made anew to cover more)."""
    union = " UNION ALL ".join(
        f'SELECT run_id, "seq", "bar", "timestamp", "symbol", "correlation_id", '
        f"'{s.kind}' AS kind FROM {_name(schema, s.table)}"
        for s in kinds
    )
    return f"CREATE OR REPLACE VIEW {_name(schema, 'events')} AS {union}"


def _tables(db: psycopg.Connection[Any], schema: str) -> frozenset[str]:
    """Return the tables ``schema`` holds (whatever the login may read of them)."""
    rows = db.execute(
        "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
        "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind IN ('r', 'p')",
        (schema,),
    ).fetchall()
    return frozenset(str(row[0]) for row in rows)


def has_table(db: psycopg.Connection[Any], schema: str, table: str) -> bool:
    """Whether ``schema`` holds ``table`` (a kind added since it was made may be missing)."""
    found = db.execute("SELECT to_regclass(%s)", (_name(schema, table),)).fetchone()
    return found is not None and found[0] is not None


def _add_kinds(db: psycopg.Connection[Any], schema: str) -> None:
    """Make the tables of kinds added to the format since the schema was made.

    A kind may be added to a format (its rows are new; no row of an older kind
    changes): a schema made by an older tradeloom gets its table, append-only as the
    others, and the ``events`` view covers it. Readers read a table that is not there
    as empty (they never make one: `last_row`, ``tradeloom.journal.source``).
    """
    tables = _tables(db, schema)
    if all(schema_of(k).table in tables for k in KINDS):
        return
    db.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
    tables = _tables(db, schema)  # another run may have added them meanwhile
    missing = [schema_of(k) for k in KINDS if schema_of(k).table not in tables]
    if not missing:
        return
    for s in missing:
        for statement in [_kind_table_sql(schema, s), *_trigger_sql(schema, s.table)]:
            db.execute(statement)  # generated, not user text
    db.execute(_events_sql(schema, [schema_of(k) for k in KINDS]))


_RUN_COLUMNS = ("strategy_sha256", "tail", "folder_key")
"""Columns added to ``runs`` after the format's first release, bound into a run's chain
seed where set (`tradeloom.journal.owner`): the strategy document's hash, that the run
keeps tail records, and its run folder's key."""

_PROOF_TABLES = ("tails", "sent_marks")
"""Tables added after the format's first release (a database made before gets them):
``tails`` (id, run_id, rows, head): a row per commit, in its transaction, saying how many rows
the run holds and the chain's head then (`tradeloom.journal.tail`); ``sent_marks`` (id,
run_id, sent, last, written_at): a live run's sent-id mark, a row per advance, committed
before each order is sent (`tradeloom.live.orders.sent_mark`)."""


def _proof_table(schema: str, table: str) -> list[str]:
    name = _name(schema, table)
    if table == "tails":  # the last record is the run's latest (a live restart may go on
        # from a cut journal its venue vouched for: its records then count fewer rows)
        columns = 'id BIGSERIAL PRIMARY KEY, run_id TEXT NOT NULL, "rows" BIGINT NOT NULL, '
        columns += "head TEXT NOT NULL"
    else:
        columns = "id BIGSERIAL PRIMARY KEY, run_id TEXT NOT NULL, sent BIGINT NOT NULL, "
        columns += "last TEXT NOT NULL, written_at DOUBLE PRECISION NOT NULL"
    return [f"CREATE TABLE {name} ({columns})"]


def _add_proof_tables(db: psycopg.Connection[Any], schema: str) -> None:
    """Give a database made before them the `_PROOF_TABLES`, append-only as the others,
    and ``runs`` its `_RUN_COLUMNS` (its runs read them '')."""
    runs = _name(schema, "runs")
    found = db.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
        "AND table_name = 'runs'",
        (schema,),
    ).fetchall()
    # asked first: ALTER TABLE needs the table's owner even when the column is there,
    # and a trading role that may only SELECT and INSERT (the how-to's) is not
    for column in sorted(set(_RUN_COLUMNS) - {str(row[0]) for row in found}):
        db.execute(f"ALTER TABLE {runs} ADD COLUMN IF NOT EXISTS {column} TEXT NOT NULL DEFAULT ''")
    for table in _PROOF_TABLES:
        name = _name(schema, table)
        if db.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is not None:  # type: ignore[index]
            continue
        db.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
        if db.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is not None:  # type: ignore[index]
            continue  # another run added it meanwhile
        for statement in [*_proof_table(schema, table), *_trigger_sql(schema, table)]:
            db.execute(statement)  # generated, not user text


def read_tail_row(db: psycopg.Connection[Any], schema: str, run_id: str) -> tuple[int, str] | None:
    """Return run ``run_id``'s last ``tails`` row: its row count and head (None: none)."""
    name = _name(schema, "tails")
    if db.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is None:  # type: ignore[index]
        return None
    row = db.execute(
        f'SELECT "rows", head FROM {name} WHERE run_id = %s ORDER BY id DESC LIMIT 1',
        (run_id,),
    ).fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


def _column_list(s: Schema) -> str:
    return ", ".join(['"seq"', *(f'"{c.name}"' for c in s.columns), '"hash"'])


def select_sql(schema: str, s: Schema, stored: frozenset[str] | None = None) -> str:
    """Return the SELECT of one run's rows of a kind (``seq`` first, ``hash`` last).

    ``stored``: the table's columns when it may lack an added one (read as '').
    """
    if stored is None:
        names = _column_list(s)
    else:
        names = ", ".join(['"seq"', *(s.stored_column(c, stored) for c in s.columns), '"hash"'])
    return f'SELECT {names} FROM {_name(schema, s.table)} WHERE run_id = %s ORDER BY "seq"'


def stored_columns(db: psycopg.Connection[Any], schema: str, s: Schema) -> frozenset[str]:
    """Return the columns the table of ``s`` has in ``schema``."""
    rows = db.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s",
        (schema, s.table),
    ).fetchall()
    return frozenset(str(row[0]) for row in rows)


def _add_columns(db: psycopg.Connection[Any], schema: str) -> None:
    """Give tables made before a field was added (`tradeloom.journal.schema`) its column.

    Their rows read it as '', which adds no word to a row's hash: older runs' chains hold.
    """
    for kind in KINDS:
        s = schema_of(kind)
        if not s.added:
            continue
        stored = stored_columns(db, schema, s)
        for column in s.added:
            if stored and column.name not in stored:
                db.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
                db.execute(
                    f"ALTER TABLE {_name(schema, s.table)} ADD COLUMN IF NOT EXISTS "
                    f"\"{column.name}\" TEXT NOT NULL DEFAULT ''"
                )


def _insert_sql(schema: str, s: Schema) -> str:
    marks = ", ".join(["%s"] * (len(s.columns) + 3))
    return f"INSERT INTO {_name(schema, s.table)} (run_id, {_column_list(s)}) VALUES ({marks})"


def _copy_sql(schema: str, s: Schema) -> str:
    return f"COPY {_name(schema, s.table)} (run_id, {_column_list(s)}) FROM STDIN"


def _format_version(db: psycopg.Connection[Any], schema: str) -> str | None:
    """The format of the journal tables in ``schema`` (None: there are none)."""
    found = db.execute("SELECT to_regclass(%s)", (_name(schema, "journal_meta"),)).fetchone()
    if found is None or found[0] is None:
        return None
    row = db.execute(
        f"SELECT value FROM {_name(schema, 'journal_meta')} WHERE key = 'format_version'"
    ).fetchone()
    return "" if row is None else str(row[0])


def _check_version(target: PgTarget, version: str, what: str) -> None:
    if version == str(FORMAT_VERSION):
        return
    newer = version.isdigit() and int(version) > FORMAT_VERSION
    remedy = (
        "upgrade tradeloom to use it"
        if newer
        else "give another journal.schema, or use the tradeloom that wrote it"
    )
    raise JournalVersionError(
        f"{target.where}: a journal database of format {version or '(none)'}; this tradeloom "
        f"({__version__}) uses format {FORMAT_VERSION}: {remedy}; {what}"
    )


def read_run(db: psycopg.Connection[Any], target: PgTarget, run_id: str) -> dict[str, str] | None:
    """Return the meta of run ``run_id`` (the SQLite meta table's keys), None if unknown.

    Raises:
        JournalVersionError: The tables are of another format.
    """
    version = _format_version(db, target.schema)
    if version is None:
        return None
    _check_version(target, version, "nothing was read")
    runs = _name(target.schema, "runs")
    found = db.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
        "AND table_name = 'runs'",
        (target.schema,),
    ).fetchall()
    columns = {str(c[0]) for c in found}
    extra = "".join(f", {c}" if c in columns else ", ''" for c in _RUN_COLUMNS)
    row = db.execute(
        f"SELECT strategy, mode, format_version, tradeloom{extra} FROM {runs} WHERE run_id = %s",
        (run_id,),
    ).fetchone()
    if row is None:
        return None
    strategy, mode, fmt, made_by, digest, tail, folder_key = row
    meta = {
        "format_version": str(fmt),
        "strategy": strategy,
        "run_id": run_id,
        "mode": mode,
        "tradeloom": made_by,
    }
    # bound into the chain's seed where the run has them, as in a SQLite journal's meta
    if digest:
        meta["strategy_sha256"] = digest
    if tail:
        meta["tail"] = tail
    if folder_key:
        meta["folder_key"] = folder_key
    return meta


def last_row(db: psycopg.Connection[Any], schema: str, run_id: str) -> tuple[int, int] | None:
    """Return ``(seq, hash)`` of run ``run_id``'s last row (None: no rows), hash unsigned.

    A kind's table that is not there (a schema made before the kind was added, read
    before a run reopened it: `_add_kinds`) holds none of its rows.
    """
    tables = _tables(db, schema)
    parts = [
        f'(SELECT "seq", "hash" FROM {_name(schema, s.table)} '
        'WHERE run_id = %(run)s ORDER BY "seq" DESC LIMIT 1)'
        for s in map(schema_of, KINDS)
        if s.table in tables
    ]
    if not parts:
        return None
    row = db.execute(
        "SELECT seq, hash FROM (" + " UNION ALL ".join(parts) + ") AS last ORDER BY seq DESC "
        "LIMIT 1",
        {"run": run_id},
    ).fetchone()
    if row is None:
        return None
    return int(row[0]), int(row[1]) % (1 << 64)


NUL_STAND_IN = "\ufffd"
"""What stands for a NUL character in a text (PostgreSQL's texts cannot hold one)."""


def _has_nul(batch: PreparedBatch) -> bool:
    for column, values in zip(batch.schema.columns, batch.values, strict=True):
        if not column.codec.fixed and any(type(v) is str and "\0" in v for v in values):
            return True
    return False


def _without_nul(batch: ColumnBatch) -> ColumnBatch:
    """``batch`` with every NUL of its texts replaced (`NUL_STAND_IN`)."""

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace("\0", NUL_STAND_IN)
        if isinstance(value, pd.Categorical):
            return value.rename_categories([clean(c) for c in value.categories])
        if isinstance(value, np.ndarray) and value.dtype.kind != "O":
            return value
        if isinstance(value, Sequence | np.ndarray):
            return [clean(v) if isinstance(v, str) else v for v in value]
        return value

    columns = {name: clean(value) for name, value in batch.columns.items()}
    return ColumnBatch(batch.kind, batch.positions, columns)


def _sql_column(codec: Codec, values: list[Any]) -> list[Any]:
    """A bulk write's column as `append` stores it: a float NaN is NULL, -0.0 is 0.0."""
    if codec is Codec.FLOAT:
        return [None if v is None or v != v else v + 0.0 for v in values]
    return values


class PostgresJournal:
    """A run's journal in a PostgreSQL database (`tradeloom.journal.store.JournalStore`).

    Args:
        target: The database and schema; the tables are made if the schema has none.
        identity: The run; its run id must be new, or belong to its strategy and mode.
        flush_every: Commit by itself after this many buffered events.
        new: The run directory has no journal yet: the run id must be new too (a run
            id already there is another folder's or machine's run).

    Raises:
        JournalUnavailable: The server cannot be reached.
        JournalVersionError: The schema holds tables of another journal format.
        JournalOwnerError: The run id belongs to another strategy or mode, or, for a
            ``new`` run, exists already.
    """

    def __init__(
        self,
        target: PgTarget,
        identity: RunIdentity,
        *,
        flush_every: int = 1000,
        new: bool = False,
    ) -> None:
        _check_schema(target.schema)
        self.target = target
        self._identity = identity
        self._flush_every = max(1, flush_every)
        self._db = connect_pg(target, what="nothing was written")
        try:
            meta = self._claim(new)
            found = last_row(self._db, target.schema, identity.run_id)
            self._db.commit()
        except (psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.InsufficientPrivilege) as exc:
            self._db.close()
            # the database's settings or the login's rights: the operator's to change
            raise JournalUnavailable(
                f"{target.reference}: the PostgreSQL journal cannot be written in schema "
                f"{target.schema} ({_reason(exc)}); give a writable database and a login that "
                "may create the schema and insert into it; nothing was written"
            ) from None
        except BaseException:
            self._db.close()
            raise
        self._seed = chain_seed(meta)
        self._seq, self._head = found or (0, self._seed)
        self._committed = self._seq
        self._unsynced = False
        """Commits were made with ``synchronous_commit`` off since the last durable one."""
        self._buffer: list[tuple[Schema, list[Any]]] = []
        self._inserts: dict[Schema, str] = {}

    @property
    def identity(self) -> RunIdentity:
        """Whose journal it is."""
        return self._identity

    @property
    def last_seq(self) -> int:
        """The sequence number of the last event appended (0: none)."""
        return self._seq

    @property
    def pending(self) -> int:
        """How many appended events are not committed yet."""
        return self._seq - self._committed

    def _claim(self, new: bool) -> dict[str, str]:
        """Make the tables if need be and claim the run id; return the run's meta."""
        db, target, identity = self._db, self.target, self._identity
        what = "nothing was written"
        version = _format_version(db, target.schema)
        if version is None:
            db.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
            version = _format_version(db, target.schema)  # another run made them meanwhile
            if version is None:
                for statement in create_sql(target.schema):
                    db.execute(statement)  # generated, not user text
                db.execute(
                    f"INSERT INTO {_name(target.schema, 'journal_meta')} VALUES "
                    "('format_version', %s), ('tradeloom', %s)",
                    (str(FORMAT_VERSION), __version__),
                )
                version = str(FORMAT_VERSION)
        _check_version(target, version, what)
        _add_kinds(db, target.schema)
        _add_columns(db, target.schema)
        _add_proof_tables(db, target.schema)
        runs = _name(target.schema, "runs")
        inserted = db.execute(
            f"INSERT INTO {runs} (run_id, strategy, mode, format_version, tradeloom, "
            "strategy_sha256, tail, folder_key) VALUES (%s, %s, %s, %s, %s, %s, '1', %s) "
            "ON CONFLICT (run_id) DO NOTHING",
            (
                identity.run_id,
                identity.strategy,
                identity.mode,
                FORMAT_VERSION,
                __version__,
                identity.strategy_sha256,
                identity.folder_key,
            ),
        ).rowcount
        meta = read_run(db, target, identity.run_id)
        assert meta is not None  # inserted, or there already
        if (meta["strategy"], meta["mode"]) != (identity.strategy, identity.mode):
            db.rollback()
            raise JournalOwnerError(
                f"{target.where}: run id '{identity.run_id}' belongs to a {meta['mode']} run of "
                f"'{meta['strategy']}'; it cannot be a {identity.mode} run of "
                f"'{identity.strategy}': give another run directory (--out); {what}"
            )
        if new and inserted != 1:
            db.rollback()
            raise JournalOwnerError(
                f"{target.where}: run id '{identity.run_id}' exists already (another run "
                "directory or machine journals it): give another run directory (--out); "
                f"{what}"
            )
        return meta

    def append(self, event: Event) -> int:
        """Append ``event`` (committed by `flush`); return its sequence number.

        Raises:
            JournalValueError: A field value its column cannot hold.
        """
        schema = schema_of(event.KIND)  # cached
        row = schema.to_sql(event)
        if any(type(v) is str and "\0" in v for v in row):
            row = [v.replace("\0", NUL_STAND_IN) if type(v) is str else v for v in row]
        seq = self._seq + 1
        head = schema.chain_value(seq, row, self._head)
        self._buffer.append((schema, [self._identity.run_id, seq, *row, signed(head)]))
        self._seq, self._head = seq, head
        if len(self._buffer) >= self._flush_every:
            self.flush()
        return seq

    def flush(self, *, durable: bool = True) -> None:
        """Commit every buffered event, and the run's tail, in one transaction.

        Args:
            durable: Commit with the server's ``synchronous_commit`` (``on``: the
                commit, and every one before it, is on the server's disk when this
                returns); False: with ``synchronous_commit`` off for this transaction
                (a crash of the server may lose it and the commits since the last
                durable one, never part of one: the tail is in the same transaction).

        Raises:
            JournalUnavailable: The connection is lost (see `reconnect`).
        """
        if not self._buffer:
            if durable and self._unsynced:
                try:  # a durable commit writes the log up to it: the lazy ones are before
                    with self._transaction() as cursor:
                        self._record_tail(cursor, self._seq, self._head)
                except psycopg.OperationalError as exc:
                    raise self._lost(exc) from None
                self._unsynced = False
            return
        by_schema: dict[Schema, list[list[Any]]] = {}
        for schema, row in self._buffer:
            by_schema.setdefault(schema, []).append(row)
        try:
            with self._transaction() as cursor:
                if not durable:
                    cursor.execute("SET LOCAL synchronous_commit TO off")
                for schema, rows in by_schema.items():
                    cursor.executemany(self._insert(schema), rows)
                self._record_tail(cursor, self._seq, self._head)
        except psycopg.OperationalError as exc:
            raise self._lost(exc) from None
        self._buffer.clear()
        self._committed = self._seq
        self._unsynced = not durable

    def _record_tail(self, cursor: psycopg.Cursor[Any], rows: int, head: int) -> None:
        """Record the run's end in the commit's own transaction (`tradeloom.journal.tail`)."""
        cursor.execute(
            f'INSERT INTO {_name(self.target.schema, "tails")} (run_id, "rows", head) '
            "VALUES (%s, %s, %s)",
            (self._identity.run_id, rows, f"{head:016x}"),
        )

    def read_mark(self) -> tuple[int, str, float | None]:
        """Return the run's sent-id mark: orders sent, the last id, when (0, '', None: none)."""
        row = self._db.execute(
            f"SELECT sent, last, written_at FROM {_name(self.target.schema, 'sent_marks')} "
            "WHERE run_id = %s ORDER BY id DESC LIMIT 1",
            (self._identity.run_id,),
        ).fetchone()
        self._db.commit()
        return (0, "", None) if row is None else (int(row[0]), str(row[1]), float(row[2]))

    def write_mark(self, sent: int, last: str, written_at: float) -> None:
        """Commit a new sent-id mark of the run (its own transaction, before an order leaves).

        Raises:
            JournalUnavailable: The connection is lost (the order must not be sent).
        """
        try:
            with self._transaction() as cursor:
                cursor.execute(
                    f"INSERT INTO {_name(self.target.schema, 'sent_marks')} "
                    "(run_id, sent, last, written_at) VALUES (%s, %s, %s, %s)",
                    (self._identity.run_id, sent, last, written_at),
                )
        except psycopg.OperationalError as exc:
            raise self._lost(exc) from None

    def _insert(self, schema: Schema) -> str:
        sql = self._inserts.get(schema)
        if sql is None:
            sql = self._inserts[schema] = _insert_sql(self.target.schema, schema)
        return sql

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Cursor[Any]]:
        db = self._db
        try:
            with db.cursor() as cursor:
                yield cursor
            db.commit()
        except BaseException:
            if not db.closed:
                with suppress(psycopg.Error):  # a broken connection: nothing to undo
                    db.rollback()
            raise

    def _lost(self, exc: BaseException) -> JournalUnavailable:
        return JournalUnavailable(
            f"{self.target.where}: the connection to the journal is lost ({_reason(exc)}); "
            f"{self.pending} events are not committed"
        )

    @property
    def connected(self) -> bool:
        """Whether the connection is open (it may still fail at the next write)."""
        return not self._db.closed and not self._db.broken

    def reconnect(self) -> tuple[int, int]:
        """Connect again after a lost connection; continue after the last committed row.

        The events appended and not committed are dropped, as a crash drops them (a
        commit whose answer was lost may have landed: the database's last row of the
        run says which). The caller rebuilds its state from the journal.

        Returns:
            The last committed sequence number, and how many appended events were
            dropped.

        Raises:
            JournalUnavailable: The server still cannot be reached.
        """
        db = connect_pg(self.target, what="the journal is still unavailable")
        try:
            found = last_row(db, self.target.schema, self._identity.run_id)
            db.commit()
        except psycopg.Error as exc:
            db.close()
            raise self._lost(exc) from None
        if not self._db.closed:
            self._db.close()
        self._db = db
        seq, head = found or (0, self._seed)
        dropped = self._seq - seq
        self._seq, self._head, self._committed = seq, head, seq
        self._buffer.clear()
        self._unsynced = False  # what the server kept is what the run continues from
        return seq, dropped

    def write_columns(self, batches: Sequence[ColumnBatch], *, durable: bool = True) -> None:
        """Append the rows of ``batches`` in their positions' order, hashed; COPY and commit.

        Events appended before and not flushed are committed first (they come first).

        Args:
            batches: The rows, a batch per kind.
            durable: Commit as `flush` does (False: with ``synchronous_commit`` off).

        Raises:
            JournalValueError: Positions that are not ``0 .. rows - 1`` each once, a
                missing column, or values of the wrong type or length.
            JournalUnavailable: The connection is lost (nothing of this write is kept).
        """
        self.flush()
        first = self._seq + 1
        prepared = [prepare(schema_of(b.kind.KIND), b, first) for b in batches]
        prepared = [
            prepare(p.schema, _without_nul(b), first) if _has_nul(p) else p
            for p, b in zip(prepared, batches, strict=True)
        ]
        chained, head = chain_batches(prepared, self._head)
        total = len(chained)
        if total == 0:
            return
        hashes = chained.view(np.int64)
        try:
            with self._transaction() as cursor:
                if not durable:
                    cursor.execute("SET LOCAL synchronous_commit TO off")
                for batch in prepared:
                    self._copy(cursor, batch, first, hashes)
                self._record_tail(cursor, self._seq + total, head)
        except psycopg.OperationalError as exc:
            raise self._lost(exc) from None
        self._seq += total
        self._committed = self._seq
        self._head = head
        self._unsynced = not durable

    def _copy(
        self, cursor: psycopg.Cursor[Any], batch: PreparedBatch, first: int, hashes: np.ndarray
    ) -> None:
        n = len(batch.positions)
        if n == 0:
            return
        repeated = batch.repeated or (False,) * len(batch.values)
        columns: list[Any] = [
            [self._identity.run_id] * n,
            (batch.positions + first).tolist(),
            *(
                _sql_column(column.codec, v) * (n if same else 1)
                for column, v, same in zip(
                    batch.schema.columns, batch.values, repeated, strict=True
                )
            ),
            hashes[batch.positions].tolist(),
        ]
        # write_row per row measured faster than building COPY's text format in Python
        with cursor.copy(_copy_sql(self.target.schema, batch.schema)) as copy:
            for row in zip(*columns, strict=True):
                copy.write_row(row)

    def close(self) -> None:
        """Commit and close (a lost connection closes without committing; logged by the caller).

        Raises:
            JournalUnavailable: The buffered events could not be committed.
        """
        try:
            if self.connected:
                self.flush()
            elif self._buffer:
                raise self._lost(ConnectionError("closed"))
        finally:
            if not self._db.closed:
                self._db.close()
