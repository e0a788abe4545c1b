"""The journal's tail record: a small file beside it that proves where it ends and whose it is.

The hash chain links every row to the one before it, so an edit, a deletion or an
insertion inside the journal breaks it; rows cut from the *end* (a lost write-ahead
log, a hand-deleted last row) leave a valid chain, and so does another run's whole
journal copied into the folder. The tail record closes both gaps: after each durable
commit the SQLite store writes ``<journal>.tail`` (JSON: the run id, strategy, mode,
strategy hash and run folder key of the journal's meta, which seed the chain, and the
row count and chain head after the commit), written to a temporary file, fsync'd and
renamed over the old one. A PostgreSQL journal keeps the same record as a ``tails``
row committed in each commit's own transaction (its owner is the run's ``runs`` row).

`check_tail` compares a journal with its record:

- the journal's first record names another strategy file or run folder than the
  folder holds (`tradeloom.journal.owner.check_owner`): another run's journal, even
  copied with its tail record;
- the record names another run, strategy, mode, strategy hash or folder key: a
  foreign journal;
- the journal has fewer rows than the record: its tail was cut;
- the journal has as many rows but another head: its last rows were replaced;
- the journal has more rows: a crash between a commit and the record's write (the
  record is written after the commit), or commits made without fsync since the last
  durable one (a paper or live tick that sends nothing); accepted when the journal's
  chain value at the record's row is the record's head (`verify`, which ``status``,
  ``report`` and a restart run, checks that).

A journal without a record passes when it was written before records existed; one
whose meta says it keeps a record (``tail``) and holds rows is refused: the record was
deleted, as someone who cuts rows would. The record is no signature: whoever rewrites
the journal can rewrite it too; it catches damage and mistakes, as the chain does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tradeloom.journal.durable import read_record, replace_durably
from tradeloom.journal.errors import JournalDamaged
from tradeloom.journal.owner import check_owner

__all__ = [
    "TailCut",
    "TailRecord",
    "check_tail",
    "compare_tail",
    "read_tail",
    "tail_of",
    "tail_path",
    "write_tail",
]

_SUFFIX = ".tail"


class TailCut(JournalDamaged):
    """A journal holding fewer rows than its tail record says were committed.

    A live run's restart may take it when its venue can say what was sent
    (`tradeloom.live.recovery.sent_lookup`); everything else refuses it.
    """


@dataclass(frozen=True)
class TailRecord:
    """Where a journal ends and whose it is.

    Attributes:
        run_id, strategy, mode: The journal's meta (the chain's seed).
        rows: How many rows it held after the last commit.
        head: The chain value of its last row then (hex; the seed's when empty).
        strategy_sha256, folder_key: The journal's meta's, bound into the seed too
            (`tradeloom.journal.owner`); None in a record written before they were.
    """

    run_id: str
    strategy: str
    mode: str
    rows: int
    head: str
    strategy_sha256: str | None = None
    folder_key: str | None = None


def tail_path(journal: Path) -> Path:
    """Return the tail record's file of ``journal``."""
    return journal.with_name(journal.name + _SUFFIX)


def write_tail(journal: Path, record: TailRecord) -> None:
    """Write ``record`` durably: a temporary file, fsync'd, renamed over the old one."""
    path = tail_path(journal)
    data = json.dumps(asdict(record), sort_keys=True).encode()
    replace_durably(path, data)


def read_tail(journal: Path) -> TailRecord | None:
    """Return the tail record of ``journal`` (None: it has none).

    Raises:
        JournalDamaged: A record that is not a regular file or does not parse.
    """
    return read_record(tail_path(journal), "the journal's tail record", _record)


def _record(values: Any) -> TailRecord:
    return TailRecord(
        run_id=str(values["run_id"]),
        strategy=str(values["strategy"]),
        mode=str(values["mode"]),
        rows=int(values["rows"]),
        head=str(values["head"]),
        strategy_sha256=_optional(values, "strategy_sha256"),
        folder_key=_optional(values, "folder_key"),
    )


def _optional(values: Any, key: str) -> str | None:
    value = values.get(key)
    return None if value is None else str(value)


def tail_of(meta: dict[str, str], rows: int, head: int) -> TailRecord:
    """Return the record of a journal of ``meta`` holding ``rows`` rows, its head ``head``."""
    return TailRecord(
        meta.get("run_id", ""),
        meta.get("strategy", ""),
        meta.get("mode", ""),
        rows,
        f"{head:016x}",
        meta.get("strategy_sha256", ""),
        meta.get("folder_key", ""),
    )


def check_tail(
    journal: Path,
    meta: dict[str, str],
    rows: int,
    head_at: Callable[[int], str | None] | None = None,
    *,
    record: TailRecord | None = None,
) -> None:
    """Refuse a journal that its tail record says was cut, replaced or is another run's.

    Args:
        journal: The journal file.
        meta: Its meta (``run_id``, ``strategy``, ``mode``...).
        rows: How many rows it holds.
        head_at: The chain value (hex) after a number of rows, None where not known
            (``verify`` knows every one): the record's head is checked at its row count.
        record: The record, read before the rows were (a journal being written is
            never behind a record read before it); None: read it now.

    Raises:
        JournalDamaged: One line naming the journal, what its record says and what it holds.
    """
    check_owner(journal, meta)
    if record is None:
        record = read_tail(journal)
    if record is None:
        if meta.get("tail") == "1" and rows > 0:
            raise JournalDamaged(
                f"{journal}: its tail record {tail_path(journal).name} is missing (the journal "
                f"was written with one; it holds {rows} rows): rows may have been cut with it; "
                "put the run's own record back"
            )
        return
    compare_tail(journal, meta, record, rows, head_at)


def compare_tail(
    journal: Path | str,
    meta: dict[str, str],
    record: TailRecord,
    rows: int,
    head_at: Callable[[int], str | None] | None = None,
) -> None:
    """Refuse a journal that ``record`` says was cut, replaced or is another run's.

    The comparison of `check_tail`, for a record read from anywhere (a PostgreSQL
    journal keeps its records in its ``tails`` table).

    Raises:
        JournalDamaged: One line naming the journal, what its record says and what it holds.
    """
    owner = (meta.get("run_id", ""), meta.get("strategy", ""), meta.get("mode", ""))
    if owner != (record.run_id, record.strategy, record.mode):
        raise JournalDamaged(
            f"{journal}: another run's journal (run {owner[0]} of '{owner[1]}', {owner[2]}); "
            f"this folder's tail record names run {record.run_id} of '{record.strategy}', "
            f"{record.mode}: put the run's own journal back"
        )
    for key, what in (("strategy_sha256", "strategy sha256"), ("folder_key", "run folder key")):
        recorded = getattr(record, key)
        held = meta.get(key, "")
        if recorded is not None and recorded != held:
            raise JournalDamaged(
                f"{journal}: another run's journal (its first record names {what} "
                f"{held[:12] or '(none)'}); this folder's tail record names {what} "
                f"{recorded[:12] or '(none)'}: put the run's own journal back"
            )
    if rows < record.rows:
        cut = record.rows - rows
        raise TailCut(
            f"{journal}: its tail was cut: it holds {rows} rows, its tail record says "
            f"{record.rows} were committed ({cut} row{'s' if cut != 1 else ''} lost)"
        )
    head = None if head_at is None else head_at(record.rows)
    if head is not None and head != record.head:
        raise JournalDamaged(
            f"{journal}: row {record.rows} does not match its tail record (hash {head}, "
            f"the record says {record.head}): its last rows were replaced"
        )
