"""A PostgreSQL journal written and read by a trading role that is not the schema's owner
(the how-to's: USAGE on the schema and its sequences, SELECT and INSERT on its tables),
against the real server."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pandas as pd

from tests.pg_server import PG_URL, PgSchema
from tradeloom.journal import (
    PgTarget,
    RunIdentity,
    SignalEvent,
    journal_path,
    open_store,
    verify,
    verify_again,
)

TS = pd.Timestamp("2024-01-01", tz="UTC")
IDENTITY = RunIdentity("s", "run-1", "paper")


def _signal(bar: int) -> SignalEvent:
    return SignalEvent(bar=bar, timestamp=TS, direction=1, confidence=0.5, probability=0.5)


def test_a_trading_role_that_may_only_select_and_insert_opens_writes_and_reads_a_run(
    tmp_path: Path, pg_schema: PgSchema
) -> None:
    # every open ran ALTER TABLE runs ADD COLUMN IF NOT EXISTS, which needs the table's
    # owner even when the column is there: such a role could open no run at all
    run = tmp_path / "run"
    run.mkdir()
    store = open_store(run, IDENTITY, pg_schema.target)  # the owner makes the schema
    store.append(_signal(0))
    store.close()
    role = f"trader_{uuid.uuid4().hex[:12]}"
    s = pg_schema.name
    with pg_schema.connect() as db:
        db.execute(f'CREATE ROLE "{role}" LOGIN')  # type: ignore[arg-type]
        db.execute(f'GRANT USAGE ON SCHEMA "{s}" TO "{role}"')  # type: ignore[arg-type]
        db.execute(f'GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA "{s}" TO "{role}"')  # type: ignore[arg-type]
        db.execute(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA "{s}" TO "{role}"')  # type: ignore[arg-type]
    try:
        parts = urlsplit(PG_URL)
        host = parts.netloc.rsplit("@", 1)[-1]
        url = urlunsplit(parts._replace(netloc=f"{role}@{host}"))
        store = open_store(run, IDENTITY, PgTarget(url, pg_schema.target.reference, s))
        store.append(_signal(1))
        store.close()
    finally:
        with pg_schema.connect() as db:
            db.execute(f'DROP OWNED BY "{role}"')  # type: ignore[arg-type]
            db.execute(f'DROP ROLE "{role}"')  # type: ignore[arg-type]
    path = journal_path(run)
    assert verify_again(path) == verify(path)
    assert verify(path).rows == 2
