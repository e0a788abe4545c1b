"""The journal: an append-only SQLite log of everything a run decided and did.

One table, ``events``: a sequence number, the bar, its timestamp, the event type,
a correlation id shared by every event of one decision, and a JSON payload
(keys sorted, floats written exactly, NaN as null). Triggers refuse UPDATE and
DELETE, so rows once written stay as written. WAL mode with ``synchronous=FULL``:
a committed row survives a crash of the process or the machine.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradeloom.redaction import redact_text

__all__ = ["Journal", "JournalRow", "journal_digest", "read_journal"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    bar INTEGER,
    ts TEXT,
    type TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
"""

JournalRow = tuple[int, int | None, str | None, str, str, str]
"""``(seq, bar, ts, type, correlation_id, payload)`` as stored."""


class Journal:
    """Append events to a run's journal.

    Args:
        path: The SQLite file (created if missing).
        flush_every: Commit after this many buffered events (1: every event).
    """

    def __init__(self, path: Path, *, flush_every: int = 1000) -> None:
        self.path = path
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
        self._seq = int(row[0])
        self._buffer: list[JournalRow] = []
        self._flush_every = max(1, flush_every)

    def append(
        self,
        kind: str,
        payload: Mapping[str, Any] | object,
        *,
        bar: int | None = None,
        timestamp: pd.Timestamp | None = None,
        correlation_id: str = "",
    ) -> int:
        """Append one event and return its sequence number.

        Args:
            kind: The event type (``signal``, ``order``, ``fill``...).
            payload: A mapping or a dataclass; written as sorted JSON.
            bar: The bar index the event belongs to.
            timestamp: The bar's timestamp.
            correlation_id: Shared by the events of one decision.
        """
        self._seq += 1
        if dataclasses.is_dataclass(payload) and not isinstance(payload, type):
            data: object = dataclasses.asdict(payload)
        else:
            data = payload
        # Defense in depth: a secret that reached a payload (an exchange's error text)
        # is written as ***.
        text = redact_text(json.dumps(_jsonable(data), sort_keys=True, separators=(",", ":")))
        ts = None if timestamp is None else _iso(timestamp)
        self._buffer.append((self._seq, bar, ts, kind, correlation_id, text))
        if len(self._buffer) >= self._flush_every:
            self.flush()
        return self._seq

    def flush(self) -> None:
        """Commit the buffered events."""
        if not self._buffer:
            return
        with self._db:
            self._db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)", self._buffer)
        self._buffer.clear()

    def rows(self) -> list[JournalRow]:
        """Commit, then return every row in sequence order."""
        self.flush()
        return list(
            self._db.execute(
                "SELECT seq, bar, ts, type, correlation_id, payload FROM events ORDER BY seq"
            )
        )

    def close(self) -> None:
        """Commit and close."""
        self.flush()
        self._db.close()


def read_journal(path: Path) -> Iterator[JournalRow]:
    """Yield the rows of a journal in sequence order."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        yield from db.execute(
            "SELECT seq, bar, ts, type, correlation_id, payload FROM events ORDER BY seq"
        )
    finally:
        db.close()


def journal_digest(path: Path, *, exclude_types: tuple[str, ...] = ("run",)) -> str:
    """Return a SHA-256 over the journal's rows, leaving out ``exclude_types``.

    Rows of type ``run`` carry wall-clock times; without them two runs of the same
    strategy over the same bars have the same digest.
    """
    digest = hashlib.sha256()
    for row in read_journal(path):
        if row[3] in exclude_types:
            continue
        digest.update(json.dumps(row[1:]).encode())
    return digest.hexdigest()


def _iso(timestamp: pd.Timestamp) -> str:
    return timestamp.isoformat()


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(value, pd.Timestamp):
        return _iso(value)
    if value is None or isinstance(value, str):
        return value
    return str(value)
