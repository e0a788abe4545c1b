"""Open a run's journal store where the strategy file says: the one way every mode opens it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tradeloom.files.reading import UnreadableFile, read_json
from tradeloom.journal.errors import JournalOwnerError
from tradeloom.journal.location import (
    POINTER_FILE,
    SQLITE_FILE,
    PgTarget,
    read_pointer,
    write_pointer,
)
from tradeloom.journal.owner import new_folder_key, write_folder_key
from tradeloom.journal.sqlite import SqliteJournal
from tradeloom.journal.store import JournalStore, RunIdentity

__all__ = ["open_store"]


def open_store(
    run_dir: Path,
    identity: RunIdentity,
    target: PgTarget | None = None,
    *,
    flush_every: int = 1000,
    accept_cut: bool = False,
) -> JournalStore:
    """Create the journal of ``identity`` (run ``run_dir``), or reopen it to append.

    A new journal gets a new run folder key, ``run_dir/folder.key``, bound into its
    first record (`tradeloom.journal.owner`): written before a SQLite journal is
    created, and once the database has accepted a PostgreSQL run.

    Args:
        run_dir: The run directory; it must exist. Its journal is ``journal.sqlite``
            there, or, with ``target``, run ``identity.run_id`` of that PostgreSQL
            database, which ``journal.json`` then names (written once the database has
            accepted the run).
        identity: The run.
        target: A PostgreSQL database (None: SQLite).
        flush_every: Commit by itself after this many buffered events.
        accept_cut: Open a SQLite journal its tail record says was cut (a live restart
            that asks its venue what was sent, `SqliteJournal`).

    Raises:
        JournalError: The journal belongs to another strategy or mode, is of another
            format, is damaged, cannot be reached, or the run directory's journal is in
            the other store than the strategy file names; nothing is written then.
    """
    pointer = run_dir / POINTER_FILE
    sqlite = run_dir / SQLITE_FILE
    if target is None:
        if pointer.exists():
            recorded, _ = _recorded(pointer)
            raise JournalOwnerError(
                f"{run_dir}: its journal is in {recorded}; the strategy file has no "
                "journal.url: give the same journal section, or another run directory"
            )
        if not (sqlite.exists() or sqlite.is_symlink()):
            identity = replace(identity, folder_key=new_folder_key())
            write_folder_key(run_dir, identity.folder_key)  # before the journal names it
        return SqliteJournal(sqlite, identity, flush_every=flush_every, accept_cut=accept_cut)
    if sqlite.exists():
        raise JournalOwnerError(
            f"{run_dir}: its journal is {SQLITE_FILE}; the strategy file names "
            f"{target.where}: remove the journal section, or give another run directory"
        )
    if pointer.exists():
        recorded, run_id = _recorded(pointer)
        if recorded != target.where or run_id != identity.run_id:
            raise JournalOwnerError(
                f"{run_dir}: its journal is run {run_id} in {recorded}; the strategy file "
                f"names {target.where}: give the same journal section, or another run directory"
            )
    from tradeloom.journal.postgres import PostgresJournal

    new = not pointer.exists()
    if new:
        identity = replace(identity, folder_key=new_folder_key())
    store = PostgresJournal(target, identity, flush_every=flush_every, new=new)
    try:
        if new:  # once the database has accepted the run, before the folder points at it
            write_folder_key(run_dir, identity.folder_key)
        write_pointer(run_dir, target, identity.run_id)
    except BaseException:
        store.close()
        raise
    return store


def _recorded(pointer: Path) -> tuple[str, str]:
    """Where ``journal.json`` says the journal is, without reading the environment."""
    try:
        data = read_json(pointer, "a journal pointer", limit=1 << 20)
        return f"PostgreSQL {data['url']} schema {data['schema']}", str(data["run_id"])
    except (UnreadableFile, KeyError, TypeError):
        read_pointer(pointer)  # says what is wrong with it
        raise
