"""A journal to read, whichever store holds it: a SQLite file, or a run in PostgreSQL.

`open_source` takes the path a reader is given: ``journal.sqlite`` (or any journal
file), or a run directory's ``journal.json``, which names a run of a PostgreSQL
database (`tradeloom.journal.location`). Both give the same rows: ``seq``, the
columns of the kind's table, ``hash``. A SQLite file's bulk rows live in blocks
(`tradeloom.journal.blocks`): `Source.rows` gives them among the others (their
``hash`` None: the block holds it), `Source.blocks` as decoded blocks.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from tradeloom.journal.blocks import Block, BlockDamaged, decode_block
from tradeloom.journal.errors import JournalDamaged
from tradeloom.journal.events.base import KINDS
from tradeloom.journal.location import POINTER_FILE, read_pointer
from tradeloom.journal.schema import Schema, schema_of
from tradeloom.journal.sqlite import READ_ERRORS, connect, damage, stored_columns
from tradeloom.journal.tail import TailRecord

__all__ = ["Source", "open_source"]


class Source(Protocol):
    """An open journal, read-only."""

    path: Path
    meta: dict[str, str]

    def rows(self, schema: Schema, after: int = 0) -> Iterator[tuple[Any, ...]]:
        """Yield the rows of one kind in sequence order (``seq`` first, ``hash`` last;
        None for a row of a block), those after sequence ``after`` only.

        Raises:
            JournalDamaged: The table or a block cannot be read.
        """
        ...

    def table_rows(self, schema: Schema, after: int = 0) -> Iterator[tuple[Any, ...]]:
        """Yield the rows of one kind's table (not its blocks) in sequence order, those
        after sequence ``after`` only.

        Raises:
            JournalDamaged: The table cannot be read.
        """
        ...

    def blocks(self, schema: Schema, after: int = 0) -> Iterator[Block]:
        """Yield the blocks of one kind in sequence order (none in PostgreSQL), those
        that end after sequence ``after`` only (whole: rows up to it included).

        Raises:
            JournalDamaged: A block cannot be read or decoded (one line naming it).
        """
        ...

    def last_seq(self) -> int:
        """Return the sequence number of the last committed row (0: none).

        One indexed look-up per kind, however many rows there are: the journal numbers
        its rows 1, 2, ... across kinds without a gap, so this is also how many it has.

        Raises:
            JournalDamaged: A table cannot be read.
        """
        ...

    def snapshot(self) -> None:
        """Read every later row as of one moment (one read transaction)."""
        ...

    def end_snapshot(self) -> None:
        """End the read transaction `snapshot` began (later reads see later commits)."""
        ...

    def stored_texts(self) -> None:
        """Read texts as stored (SQLite: bytes, even those that are not UTF-8)."""
        ...

    def stored_tail(self) -> TailRecord | None:
        """Return the tail record the store keeps with the rows (PostgreSQL's ``tails``).

        None: none there (a SQLite journal keeps its record in a file beside it, read
        by `tradeloom.journal.tail.check_tail`; a PostgreSQL run from before records).
        """
        ...

    def close(self) -> None:
        """Close it."""
        ...


def open_source(path: Path) -> Source:
    """Open the journal at ``path`` (a journal file, or a run directory's ``journal.json``).

    Raises:
        JournalError: Not a readable journal of this format (one line: what is wrong).
    """
    if path.name == POINTER_FILE and path.is_file():
        return _PgSource(path)
    return _SqliteSource(path)


class _SqliteSource:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.db, self.meta = connect(path)
        try:
            self.tables = {row[0] for row in self.db.execute("SELECT name FROM sqlite_master")}
        except READ_ERRORS as exc:
            self.db.close()
            raise JournalDamaged(f"{path}: damaged journal ({damage(exc)})") from None
        self.as_bytes = False

    def rows(self, schema: Schema, after: int = 0) -> Iterator[tuple[Any, ...]]:
        blocks = []
        for block in self.blocks(schema, after):
            try:
                rows = block.sql_rows(as_bytes=self.as_bytes)
            except BlockDamaged as exc:
                raise JournalDamaged(f"{self.path}: {exc} (damaged)") from None
            blocks.append([r for r in rows if r[0] > after] if after else rows)
        if not blocks:
            yield from self.table_rows(schema, after)
            return
        streams = [self.table_rows(schema, after), *map(iter, blocks)]
        yield from heapq.merge(*streams, key=_seq_key)

    def blocks(self, schema: Schema, after: int = 0) -> Iterator[Block]:
        if "segment" not in self.tables:
            return
        try:
            found = self.db.execute(
                'SELECT "first_seq", "last_seq", "rows", "columns", "data", "digest", "hash" '
                'FROM "segment" WHERE "kind" = ? AND "last_seq" > ? ORDER BY "first_seq"',
                (schema.kind, after),
            ).fetchall()
        except READ_ERRORS as exc:
            raise JournalDamaged(
                f"{self.path}: the segment table cannot be read ({damage(exc)})"
            ) from None
        for first, last, rows, names, data, digest, chained in found:
            if isinstance(names, bytes):
                names = names.decode("utf-8", "replace")
            try:
                if not all(isinstance(v, int) for v in (first, last, digest, chained)):
                    raise BlockDamaged(
                        f"the {schema.kind} block of sequences {first}..{last}: "
                        "its row holds a value of the wrong type"
                    )
                yield decode_block(schema, first, last, rows, names, data, digest, chained)
            except BlockDamaged as exc:
                raise JournalDamaged(f"{self.path}: {exc} (damaged)") from None

    def table_rows(self, schema: Schema, after: int = 0) -> Iterator[tuple[Any, ...]]:
        if schema.table not in self.tables:
            return  # a kind added to the format after the file was made: none
        # a loop, not ``yield from``: closing this generator must not close the cursor
        # of a database closed already
        try:
            stored = stored_columns(self.db, schema) if schema.added else None
            sql = _after(schema.select_sql(stored), '"seq" > ?', "WHERE")
            for row in self.db.execute(sql, (after,)):  # noqa: UP028
                yield row
        except READ_ERRORS as exc:
            raise JournalDamaged(
                f"{self.path}: the {schema.table} table cannot be read ({damage(exc)})"
            ) from None

    def last_seq(self) -> int:
        # one statement: the tables' ends as of one moment; max(seq) of an INTEGER
        # PRIMARY KEY is one look-up in its b-tree; the blocks are few (one per kind and
        # bulk write, up to BLOCK_ROWS rows each), not rows
        tables = [schema_of(kind).table for kind in KINDS]
        ends = [f'SELECT max("seq") AS "end" FROM "{t}"' for t in tables if t in self.tables]
        if "segment" in self.tables:
            ends.append('SELECT max("last_seq") FROM "segment"')
        if not ends:
            return 0
        try:
            sql = f'SELECT max("end") FROM ({" UNION ALL ".join(ends)})'
            last = self.db.execute(sql).fetchone()[0]
        except READ_ERRORS as exc:
            raise JournalDamaged(f"{self.path}: damaged journal ({damage(exc)})") from None
        return last if isinstance(last, int) else 0

    def snapshot(self) -> None:
        self.db.execute("BEGIN")

    def end_snapshot(self) -> None:
        if self.db.in_transaction:
            self.db.execute("COMMIT")

    def stored_texts(self) -> None:
        self.db.text_factory = bytes
        self.as_bytes = True

    def stored_tail(self) -> TailRecord | None:
        return None

    def close(self) -> None:
        self.db.close()


class _PgSource:
    def __init__(self, path: Path) -> None:
        from tradeloom.runtime.extras import require

        require("psycopg", f"{path} (a journal in PostgreSQL)")
        import psycopg

        from tradeloom.journal.postgres import connect_pg, read_run

        self.path = path
        self.target, self.run_id = read_pointer(path)
        self._error = psycopg.Error
        self.db = connect_pg(self.target, what=f"{path} cannot be read")
        try:
            self.db.read_only = True
            meta = read_run(self.db, self.target, self.run_id)
        except BaseException:
            self.db.close()
            raise
        if meta is None:
            self.db.close()
            raise JournalDamaged(
                f"{path}: {self.target.where} holds no run {self.run_id} (its rows were removed)"
            )
        self.meta = meta
        self._tables: set[str] = set()
        """The kinds' tables found in the schema (one made before a kind was added lacks
        that kind's table until a run reopens it to write)."""

    def table_rows(self, schema: Schema, after: int = 0) -> Iterator[tuple[Any, ...]]:
        return self.rows(schema, after)

    def blocks(self, schema: Schema, after: int = 0) -> Iterator[Block]:
        return iter(())  # PostgreSQL stores bulk writes as rows

    def rows(self, schema: Schema, after: int = 0) -> Iterator[tuple[Any, ...]]:
        from tradeloom.journal.postgres import has_table, select_sql, stored_columns

        try:
            where = self.target.schema
            if schema.table not in self._tables:
                if not has_table(self.db, where, schema.table):
                    return  # a kind added to the format after the schema was made: none
                self._tables.add(schema.table)  # there: no need to ask again
            stored = stored_columns(self.db, where, schema) if schema.added else None
            sql = _after(select_sql(where, schema, stored), '"seq" > %s', "AND")
            with self.db.cursor() as cursor:
                cursor.execute(sql, (self.run_id, after))
                for row in cursor:  # noqa: UP028 (as above)
                    yield row
        except self._error as exc:
            first = " ".join(str(exc).split())
            raise JournalDamaged(
                f"{self.path}: the {schema.table} table of {self.target.where} cannot be read "
                f"({first})"
            ) from None

    def snapshot(self) -> None:
        import psycopg

        self.db.rollback()
        self.db.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ

    def end_snapshot(self) -> None:
        self.db.rollback()  # read-only: ending the transaction is all

    def stored_texts(self) -> None:
        return None  # PostgreSQL holds valid UTF-8 only: texts read back as written

    def stored_tail(self) -> TailRecord | None:
        from tradeloom.journal.postgres import read_tail_row

        try:
            found = read_tail_row(self.db, self.target.schema, self.run_id)
        except self._error as exc:
            first = " ".join(str(exc).split())
            raise JournalDamaged(
                f"{self.path}: the tails table of {self.target.where} cannot be read ({first})"
            ) from None
        if found is None:
            if self.meta.get("tail") == "1" and self.last_seq() > 0:
                raise JournalDamaged(
                    f"{self.path}: run {self.run_id}'s tail records in {self.target.where} are "
                    "missing (the run was written with them): rows may have been cut with them"
                )
            return None
        meta = self.meta
        return TailRecord(meta["run_id"], meta["strategy"], meta["mode"], *found)

    def last_seq(self) -> int:
        """Return the run's last sequence number (0: no rows)."""
        from tradeloom.journal.postgres import last_row

        found = last_row(self.db, self.target.schema, self.run_id)
        return 0 if found is None else found[0]

    def close(self) -> None:
        self.db.close()


def _after(select: str, condition: str, joiner: str) -> str:
    """Return ``select`` (a SELECT ending ``ORDER BY "seq"``) with ``condition`` added."""
    head, order = select.rsplit(" ORDER BY ", 1)
    return f"{head} {joiner} {condition} ORDER BY {order}"


def _seq_key(row: tuple[Any, ...]) -> int:
    # a damaged row without a sequence number sorts first; the readers refuse it
    return row[0] if isinstance(row[0], int) else -1
