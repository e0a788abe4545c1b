"""A live run whose PostgreSQL journal goes away: no order until it is back, then the
gap is journaled and the run rebuilds itself from the journal as a restart does.

The outage is the real server's: the run's role is refused new logins and its
connection is terminated from the server side (``pg_terminate_backend``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests.live.live_emulated import STRATEGY_REPORTED, emulated_run, rows, tick_until
from tests.pg_server import PG_ENV, PgSchema
from tradeloom.journal import journal_path, read_rows, verify

pytestmark = pytest.mark.slow


@pytest.fixture
def role(pg_schema: PgSchema, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A login role of its own for the run (the journal's URL names it), dropped after."""
    name = f"{pg_schema.name}_run"
    with pg_schema.connect() as db:
        db.execute(f'CREATE ROLE "{name}" LOGIN')  # type: ignore[arg-type]
        db.execute(f'GRANT CREATE ON DATABASE test TO "{name}"')  # type: ignore[arg-type]
    monkeypatch.setenv(PG_ENV, f"postgresql://{name}@127.0.0.1:5432/test")
    try:
        yield name
    finally:
        with pg_schema.connect() as db:
            db.execute(f'DROP SCHEMA IF EXISTS "{pg_schema.name}" CASCADE')  # type: ignore[arg-type]
            db.execute(f'DROP OWNED BY "{name}"')  # type: ignore[arg-type]
            db.execute(f'DROP ROLE "{name}"')  # type: ignore[arg-type]


def _cut(pg: PgSchema, role: str) -> int:
    """Refuse the role's logins and end its sessions; return how many were ended."""
    with pg.connect() as db:
        db.execute(f'ALTER ROLE "{role}" NOLOGIN')  # type: ignore[arg-type]
        ended = db.execute(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE usename = %s) AS t",
            (role,),
        ).fetchone()
    return 0 if ended is None else int(ended[0])


def _restore(pg: PgSchema, role: str) -> None:
    with pg.connect() as db:
        db.execute(f'ALTER ROLE "{role}" LOGIN')  # type: ignore[arg-type]


def test_a_lost_journal_stops_orders_until_it_is_back_then_the_gap_is_journaled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_schema: PgSchema, role: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with emulated_run(tmp_path, monkeypatch, text=STRATEGY_REPORTED + pg_schema.yaml()) as run:
        runner = run.runner(tmp_path / "run")
        runner.start()
        tick_until(run, runner, 170)
        assert runner.trading_state == "ACTIVE"
        posted = len(run.emulator.requests("POST /api/v3/order"))
        assert posted > 0

        assert runner.outputs is not None
        runner.outputs.wait()  # the files' thread has read the journal: both sessions open
        # the run's own session and the files' thread's (it follows the journal on a
        # connection of its own, which it opens again after the outage: below)
        assert _cut(pg_schema, role) == 2
        lost_from = run.emulator.exchange.position
        for _ in range(6):  # bars close while the journal is away: none is traded
            run.emulator.advance()
            assert runner.tick() == 0
            assert runner.journal_outage is not None
            assert runner.trading_state == "REDUCING"
        assert len(run.emulator.requests("POST /api/v3/order")) == posted

        _restore(pg_schema, role)
        with capture_logs() as logs:
            run.emulator.advance()
            runner.tick()  # back: the run rebuilds itself from the journal, journals the gap
            assert runner.journal_outage is None
            tick_until(run, runner, len(run.bars))
            runner.stop("done")
        # the files' thread follows the rebuilt run's journal on a new connection
        assert [e for e in logs if e["event"] == "outputs_refresh_failed"] == []
        assert run.emulator.errors == []
        client_ids = [o.client_order_id for o in run.emulator.exchange.orders()]

    path = journal_path(tmp_path / "run")
    assert path.name == "journal.json"
    (gap,) = rows(path, "journal_reconnected")
    assert gap["error"].startswith(
        f"PostgreSQL ${{{PG_ENV}}} schema {pg_schema.name}: the connection to the journal is lost ("
    )
    assert gap["events_lost"] >= 1  # the first bar after the cut was never committed
    assert gap["lost_at"] < gap["back_at"]
    kinds = [r.kind for r in read_rows(path)]
    assert kinds.index("journal_reconnected") > kinds.index("restarted")
    # no bar of the outage was journaled before the reconnection; each order sent once
    bars = [r["bar"] for r in rows(path, "live_bar")]
    assert len(bars) == len(set(bars))
    assert min(b for b in bars if b >= lost_from) >= lost_from
    assert len(client_ids) == len(set(client_ids)) == len(rows(path, "order"))
    (reconciled,) = rows(path, "reconciled")
    assert abs(reconciled["venue_position"] - reconciled["position"]) <= reconciled["tolerance"]
    assert verify(path).rows == len(kinds)
    # the files' thread read the journal again after its connection was cut
    quality = json.loads((tmp_path / "run" / "metrics.json").read_text())["execution_quality"]
    assert quality["overall"]["fills"] == len(rows(path, "fill"))
