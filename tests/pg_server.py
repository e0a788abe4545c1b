"""The PostgreSQL server the journal's tests talk to: the real one, never a stand-in.

`.ci/run` starts it (127.0.0.1:5432, trust authentication, database ``test``). A test
that needs it and cannot reach it fails, saying how to start it: it never skips.
Each test journals into a schema of its own (the tests run in parallel), dropped after.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from tradeloom.journal import PgTarget

__all__ = ["PG_ENV", "PG_URL", "PgSchema", "pg_schema_of"]

PG_URL = os.environ.get("TRADELOOM_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
"""The test server (``TRADELOOM_TEST_PG_URL`` overrides it)."""

PG_ENV = "TRADELOOM_TEST_JOURNAL_URL"
"""The variable the tests' strategy files name (``journal.url``), set to `PG_URL`."""


@dataclass(frozen=True)
class PgSchema:
    """A schema of the test server, for one test.

    Attributes:
        name: The schema.
        target: The journal database, as a strategy file naming it gives it.
    """

    name: str
    target: PgTarget

    def yaml(self) -> str:
        """Return the strategy file's ``journal:`` section for it."""
        return f"journal:\n  url: ${{{PG_ENV}}}\n  schema: {self.name}\n"

    def connect(self) -> psycopg.Connection[tuple[object, ...]]:
        """Return an autocommit connection as the ``postgres`` superuser."""
        return psycopg.connect(PG_URL, autocommit=True)


def pg_schema_of(monkeypatch: pytest.MonkeyPatch) -> Iterator[PgSchema]:
    """Yield a new schema (its name unique), ``${TRADELOOM_TEST_JOURNAL_URL}`` set; drop it after.

    Fails the test, with how to start the server, when it cannot be reached.
    """
    try:
        with psycopg.connect(PG_URL, connect_timeout=5) as db:
            db.execute("SELECT 1")
    except psycopg.Error as exc:
        pytest.fail(
            f"the PostgreSQL server of the journal's tests is not reachable at {PG_URL} "
            f"({' '.join(str(exc).split())}); start it: pg_ctlcluster "
            "--skip-systemctl-redirect $(ls /etc/postgresql) main start",
            pytrace=False,
        )
    name = f"t_{uuid.uuid4().hex[:16]}"
    monkeypatch.setenv(PG_ENV, PG_URL)
    try:
        yield PgSchema(name, PgTarget(PG_URL, f"${{{PG_ENV}}}", name))
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as db:
            db.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')  # type: ignore[arg-type]
