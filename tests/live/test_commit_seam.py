"""What a tick's rows rest on is made durable before every commit of the tick
(`tradeloom.live.tick.services.JournalLink.prepare_commit`), not only before a bar's.

A hot reload's rows (and the challengers it adds, trained over the history) are
committed by the tick's own commit when no bar closed, and a promotion commits at a
close after the challengers stepped: neither was preceded by the stages'
``before_commit``, so what a stage read since the bar's commit (a text feature's
answers) could be lost to a power loss under committed rows.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from tests.live.live_emulated import emulated_run
from tradeloom.live.lifecycle.challenger_stages import MemberChallengers, Promotions
from tradeloom.live.lifecycle.member_challengers import MemberShadows


def test_a_tick_without_a_bar_prepares_its_commit_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    said: list[str] = []
    with emulated_run(tmp_path, monkeypatch) as run:
        runner = run.runner(tmp_path / "run", "paper")
        runner.start()
        try:
            runner.link.before_commit = lambda: said.append("prepare")
            journal = runner.link.journal_or_fail
            real_flush = journal.flush

            def flush(*, durable: bool = True) -> None:
                said.append("commit")
                real_flush(durable=durable)

            monkeypatch.setattr(journal, "flush", flush)
            assert runner.tick() == 0  # no bar closed: the tick's own commit only
            assert said == ["prepare", "commit"]
        finally:
            runner.stop("test over")


def test_a_promotion_at_a_close_commits_after_what_the_challengers_read() -> None:
    said: list[str] = []
    link = SimpleNamespace(prepare_commit=lambda: said.append("prepare"))
    promotions = SimpleNamespace(after_bar=lambda session: said.append("promote"))
    shared = SimpleNamespace(books=object(), promotions=promotions)
    markets = SimpleNamespace(session_or_fail=object())
    stage = Promotions(None, link, markets, shared)  # type: ignore[arg-type]
    stage.at_close(pd.Timestamp("2024-01-01", tz="UTC"), None)
    assert said == ["prepare", "promote"]


def test_a_portfolios_promotions_commit_after_what_its_challengers_read() -> None:
    said: list[str] = []
    shadows = MemberShadows.__new__(MemberShadows)
    shadows.session = SimpleNamespace(history=[0, 1])  # type: ignore[assignment]
    shadows.shadow = lambda time, prices, bar: said.append("shadow")  # type: ignore[method-assign]
    member = SimpleNamespace(
        stage=SimpleNamespace(after_bar=lambda session: said.append("promote")), session=None
    )
    shadows.members = [member]  # type: ignore[list-item]
    link = SimpleNamespace(prepare_commit=lambda: said.append("prepare"))
    stage = MemberChallengers(None, link, None)  # type: ignore[arg-type]
    stage.shadows = shadows
    stage.at_close(pd.Timestamp("2024-01-01", tz="UTC"), None)
    assert said == ["shadow", "prepare", "promote"]
