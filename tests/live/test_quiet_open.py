"""A live tick does not ask its venue for an open that has nothing for it (`QuietAtOpen`).

Every order finished and reported, nothing queued or awaiting a send: asking the
account's venue for the open's fills would find none and change nothing, and the engine
skips the ask. The journal of a run that skips it is the journal of one that asks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.live.live_emulated import emulated_run
from tradeloom.domain import Bar
from tradeloom.journal import read_rows
from tradeloom.live.orders.exchange_venue import ExchangeVenue

START = 155
"""Bars closed when the run starts: its model trains at once, and it orders by bar 183."""


_WALL_CLOCK = {"wall_time", "sent_at"}
"""The fields that hold the wall clock's time (the emulator's clock is the market's)."""


def _journal(tmp: Path) -> list[tuple[Any, ...]]:
    """Every row, but the wall clock's times, with the run's folder and key (which its
    client order ids carry) named alike."""
    rows = list(read_rows(tmp / "run" / "journal.sqlite"))
    key = rows[0].values["run_key"]
    kept = []
    for row in rows:
        values = {k: v for k, v in row.values.items() if k not in _WALL_CLOCK}
        text = json.dumps(values, sort_keys=True).replace(str(tmp), "TMP").replace(key, "KEY")
        kept.append((row.seq, row.kind, row.bar, row.timestamp, row.correlation_id, text))
    return kept


def _live(tmp: Path, monkeypatch: pytest.MonkeyPatch, asks: list[str]) -> list[tuple[Any, ...]]:
    """Trade 30 bars live; ``asks`` is told the phase of each ask of the venue."""
    match = ExchangeVenue.match

    def counted(self: ExchangeVenue, bar: Bar, phase: str) -> Any:
        asks.append(phase)
        return match(self, bar, phase)

    monkeypatch.setattr(ExchangeVenue, "match", counted)
    tmp.mkdir()
    monkeypatch.chdir(tmp)
    with emulated_run(tmp, monkeypatch, history=START) as run:
        runner = run.runner(tmp / "run")
        runner.start()
        try:
            for _ in range(30):
                run.emulator.advance()
                runner.tick()
        finally:
            runner.stop("done")
        assert run.emulator.errors == []
    return _journal(tmp)


def test_a_run_that_skips_the_quiet_opens_journals_what_asking_journals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    skipping: list[str] = []
    with monkeypatch.context() as patch:
        skipped = _live(tmp_path / "skips", patch, skipping)
    asking: list[str] = []
    with monkeypatch.context() as patch:
        patch.setattr(ExchangeVenue, "quiet_at_open", lambda self: False)
        asked = _live(tmp_path / "asks", patch, asking)
    assert skipped == asked
    kinds = {row[1] for row in asked}
    assert {"order", "fill", "venue_fill"} <= kinds  # it traded: some opens had fills
    # every bar's open asked (the history's too); skipping, only those with an order
    assert asking.count("open") == START + 30
    assert 0 < skipping.count("open") <= 10
