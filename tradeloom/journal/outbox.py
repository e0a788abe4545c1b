"""The journal as an outbox: where each events publisher has got to in it.

A paper or live run's events publishers (`tradeloom.live.outputs.events`) follow the
journal after commit and send its rows to brokers. Each keeps the last row its broker
acknowledged in ``events/<name>.position`` beside the journal (JSON: the journal's run id
and the sequence; written to a temporary file, fsync'd and renamed; not the hash-chained
journal, which only the run writes). `publisher_lag` reads them for ``tradeloom status``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tradeloom.journal.durable import read_record, replace_durably

__all__ = [
    "POSITIONS_DIR",
    "Position",
    "position_path",
    "publisher_lag",
    "read_position",
    "write_position",
]

POSITIONS_DIR = "events"
"""The run folder's directory of the publishers' acknowledged positions."""


@dataclass(frozen=True)
class Position:
    """A publisher's acknowledged position: the journal's run and its last row acked."""

    run_id: str
    seq: int


def position_path(run_dir: Path, name: str) -> Path:
    """Return the file of the acknowledged position of the ``live.events`` entry ``name``."""
    return run_dir / POSITIONS_DIR / f"{name}.position"


def read_position(path: Path) -> Position | None:
    """Return the position recorded at ``path`` (None: none yet).

    Raises:
        JournalDamaged: A file that is not a regular file or does not parse.
    """
    return read_record(
        path,
        "the events publisher's position",
        lambda v: Position(str(v["run_id"]), int(v["seq"])),
    )


def write_position(path: Path, position: Position) -> None:
    """Record ``position`` at ``path`` durably (temporary file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_durably(path, json.dumps({"run_id": position.run_id, "seq": position.seq}).encode())


def publisher_lag(run_dir: Path) -> list[tuple[str, int, int]]:
    """Return each publisher's name, last acknowledged row and committed rows not yet
    acknowledged, from the positions in ``run_dir`` (``tradeloom status`` prints them).

    The journal numbers its rows 1, 2, ... across kinds without a gap (`verify` refuses
    a gap), so the rows after a position are the last row's number less the position's:
    one look-up per kind, however far a publisher has fallen behind.

    Raises:
        JournalError: The journal cannot be read.
    """
    from tradeloom.journal.location import journal_path
    from tradeloom.journal.source import open_source

    folder = run_dir / POSITIONS_DIR
    if not folder.is_dir():
        return []
    source = open_source(journal_path(run_dir))
    try:
        run_id, last = source.meta.get("run_id", ""), source.last_seq()
    finally:
        source.close()
    found = []
    for path in sorted(folder.glob("*.position")):
        recorded = read_position(path)
        acked = recorded.seq if recorded is not None and recorded.run_id == run_id else 0
        found.append((path.stem, acked, max(0, last - max(0, acked))))
    return found
