"""The ``max_parity_gap`` rule on a universe whose journal is on the PostgreSQL server:
the replay of the run is read from the server's rows (the run folder holds only
``journal.json``), at the canary's start and again after a kill -9 in its middle, and
books what the paper run books, bar for bar, on every symbol: a gap of exactly 0."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from tests.live.test_canary import CANARY_BARS, canaried, die
from tests.live.test_canary_parity_gap import TINY, gaps_read
from tests.live.test_challengers import play, universe
from tests.pg_server import PG_ENV, PgSchema
from tradeloom.journal import journal_path, read_rows
from tradeloom.live.lifecycle.promotion_stage import PromotionStage

pytestmark = pytest.mark.slow

BARS = 50
"""Bars each run trades: the universe's gate promotes later than one market's."""


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.live.live_emulated import trained_registry

    return trained_registry(tmp_path_factory.mktemp("registry"))


def _on_the_server(registry: Path, schema: PgSchema) -> dict[str, Any]:
    document = universe(canaried(registry, {"max_parity_gap": TINY}))
    return {**document, "journal": {"url": f"${{{PG_ENV}}}", "schema": schema.name}}


def _rows(run: Path, kind: str) -> list[dict[str, Any]]:
    return [
        {"bar": r.bar, "symbol": r.symbol, **r.values} for r in read_rows(journal_path(run), [kind])
    ]


def test_a_universe_journaling_to_postgresql_reads_its_replay_from_the_server(
    registry: Path, pg_schema: PgSchema, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = _on_the_server(registry, pg_schema)
    with gaps_read(monkeypatch) as gaps:
        code, run = play(tmp_path, document, BARS)
    assert code == 0
    assert journal_path(run).name == "journal.json"
    assert not (run / "journal.sqlite").exists()
    assert {r["symbol"] for r in _rows(run, "live_bar")} == {"BTC/USDT", "ETH/USDT"}
    [started] = _rows(run, "canary_started")
    [ended] = _rows(run, "canary_passed")
    assert ended["bar"] == started["bar"] + CANARY_BARS
    assert _rows(run, "canary_rolled_back") == []
    traded = {r["symbol"] for r in _rows(run, "fill") if r["bar"] > started["bar"]}
    assert traded, "no fill during the canary: the gap would compare nothing"
    assert gaps == [0.0] * CANARY_BARS


def test_a_kill_in_a_universes_canary_rebuilds_the_replay_from_the_server(
    registry: Path, pg_schema: PgSchema, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = _on_the_server(registry, pg_schema)
    after_bar = PromotionStage.after_bar

    def dying(self: PromotionStage, session: Any) -> None:
        after_bar(self, session)
        canary = self.canary
        if canary is not None and len(session.history) - 1 - canary.started.bar == 3:
            die(self.books.journal)  # kill -9 three bars into the canary

    with monkeypatch.context() as patched:
        patched.setattr(PromotionStage, "after_bar", dying)
        died, run = play(tmp_path, document, BARS)
    assert died != 0
    assert _rows(run, "canary_passed") == _rows(run, "canary_rolled_back") == []
    played = len({r["bar"] for r in _rows(run, "live_bar")})
    with gaps_read(monkeypatch) as gaps:
        code, run = play(tmp_path, document, BARS - played)
    assert code == 0
    assert len(_rows(run, "restarted")) == 1
    [started] = _rows(run, "canary_started")
    [ended] = _rows(run, "canary_passed")
    assert ended["bar"] == started["bar"] + CANARY_BARS
    # the restart read its last bar again, then the canary's remaining bars: all 0
    assert gaps == [0.0] * (CANARY_BARS - 3 + 1)


def test_the_kill_switch_in_a_canary_is_journaled_once_and_the_gap_is_read_no_more(
    registry: Path, pg_schema: PgSchema, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The replay knows nothing of the kill switch: with the run halted it would book
    what the run does not. The rule says so in one row and reads no gap (NaN: it never
    fires) from the next close; kill -9 later in the canary, the restart reads the row
    and neither replays nor journals it again."""
    document = _on_the_server(registry, pg_schema)
    after_bar = PromotionStage.after_bar
    killed_at: list[int] = []

    def killing(self: PromotionStage, session: Any) -> None:
        after_bar(self, session)
        canary = self.canary
        into = -1 if canary is None else len(session.history) - 1 - canary.started.bar
        if into == 2:
            session.kill("halted by the test")
            killed_at.append(len(session.history) - 1)
        elif into == 4:
            die(self.books.journal)  # kill -9, that bar's rows not committed

    with monkeypatch.context() as patched, gaps_read(patched) as gaps:
        patched.setattr(PromotionStage, "after_bar", killing)
        died, run = play(tmp_path, document, BARS)
    assert died != 0
    [lost] = _rows(run, "parity_gap_lost")
    assert (lost["bar"], lost["challenger"], lost["cause"]) == (killed_at[0] + 1, "next", "kill")
    assert lost["message"] == (
        f"the kill switch holds the run at bar {lost['bar']}, its replay knows nothing of "
        "it; max_parity_gap reads no gap until the stage ends"
    )
    assert gaps[:2] == [0.0, 0.0] and len(gaps) == 4 and all(math.isnan(g) for g in gaps[2:])
    played = len({r["bar"] for r in _rows(run, "live_bar")})
    with gaps_read(monkeypatch) as again:
        code, run = play(tmp_path, document, BARS - played)
    assert code == 0
    assert len(_rows(run, "parity_gap_lost")) == 1
    [started] = _rows(run, "canary_started")
    [ended] = _rows(run, "canary_passed")
    assert ended["bar"] == started["bar"] + CANARY_BARS
    assert len(again) == CANARY_BARS - 4 + 1 and all(math.isnan(g) for g in again)
