"""Challengers added to and removed from a running run by a hot reload of ``challengers:``.

On the exchange emulator, on its clock, in process, on paper: an entry added to the file
starts a challenger at the next bar, its book flat with the run's capital, journaled as
``challenger_added``; a kill -9 after that restarts it at the same bar, its book that of
the uninterrupted run; an entry added while the run was down starts at the restart's
first bar; an entry removed ends its book (``challenger_removed``); and a reload that
would change a running challenger, give a new one a used name, or add one the rules
refuse is refused in one line, the run and its challengers trading on.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml

from tests.live.live_emulated import STRATEGY, crash, emulated_run, rows, tick_bars, tick_until
from tests.live.test_challengers import LOGIT
from tradeloom.engine.status import read_run
from tradeloom.engine.status_text import format_status
from tradeloom.errors import ConfigError
from tradeloom.journal import verify

HISTORY = 300
"""Bars closed when the run starts: the models have folds to predict with."""

ADD_AT = 305
"""The emulator's bar at which the file gains a challenger."""

LAST = 330
"""The last bar the runs trade."""

ENTRY: dict[str, Any] = {
    "name": "logit",
    "model": LOGIT,
    "signal": {"kind": "threshold", "threshold": 0.005},
}


def _with(*entries: dict[str, Any]) -> str:
    """`STRATEGY` with ``entries`` as its ``challengers:``."""
    return STRATEGY + yaml.safe_dump({"challengers": list(entries)}, sort_keys=False)


def _books(journal: Path, name: str = "logit") -> list[tuple[Any, ...]]:
    return [
        (r["bar"], r["positions"], r["cash"], r["equity"], r["traded"])
        for r in rows(journal, "challenger_bar")
        if r["challenger"] == name
    ]


@pytest.fixture(autouse=True)
def cli_logging() -> Iterator[None]:
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def _added_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, kill_after: int | None = None
) -> tuple[Path, int]:
    """Trade on paper to `ADD_AT`, add `ENTRY` to the file, trade to `LAST` (killed
    ``kill_after`` bars after the add, then restarted); return the journal and the bar
    the reload took the file at."""
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    with emulated_run(tmp_path, monkeypatch, history=HISTORY) as run:
        runner = run.runner(run_dir, "paper", watch_file=True)
        runner.start()
        tick_until(run, runner, ADD_AT)
        reload_bar = len(runner.session_or_fail.history) - 1
        run.strategy.write_text(_with(ENTRY), encoding="utf-8")
        assert runner.tick() == 0  # the reload, at the bar boundary
        if kill_after is not None:
            tick_bars(run, runner, kill_after)
            crash(runner)
            runner = run.runner(run_dir, "paper", watch_file=True)
            runner.start()
        tick_until(run, runner, LAST)
        runner.stop("test over")
    return run_dir / "journal.sqlite", reload_bar


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        return _added_run(tmp_path_factory.mktemp("added"), monkeypatch)


def test_a_challenger_added_by_a_hot_reload_starts_flat_at_the_next_bar(
    uninterrupted: tuple[Path, int],
) -> None:
    journal, reload_bar = uninterrupted
    (reloaded,) = rows(journal, "config_reloaded")
    assert reloaded["changed"] == ["challengers"]
    (added,) = rows(journal, "challenger_added")
    assert (added["bar"], added["challenger"], added["first_bar"]) == (
        reload_bar,
        "logit",
        reload_bar + 1,
    )
    book = _books(journal)
    bars = [b[0] for b in book]
    last = max(r["bar"] for r in rows(journal, "live_bar"))
    assert bars == list(range(reload_bar + 1, last + 1))  # every bar from the next, once
    first = book[0]
    assert first[1:4] == ([0.0], 50000.0, 50000.0)  # flat, the run's capital
    assert rows(journal, "challenger_failed") == []
    shadow = [r for r in rows(journal, "challenger_bar")]
    assert all(r["probabilities"][0] is not None for r in shadow)  # it predicts each bar
    assert rows(journal, "challenger_fill"), "the challenger never traded"
    status = read_run(journal.parent).status
    champion, logit = status.books
    assert (champion.first_bar, logit.first_bar) == (HISTORY, reload_bar + 1)
    assert logit.bars == len(book) and champion.bars == last - HISTORY + 1
    lines = format_status(status).splitlines()
    head = next(line for line in lines if line.startswith("books"))
    assert head.split()[-1:] == ["bar"] and "from bar" in head  # a book that started later
    shown = next(line.split() for line in lines if line.split()[:1] == ["logit"])
    assert shown[-1] == str(reload_bar + 1)


def test_an_added_challengers_book_is_a_paper_run_of_its_candidate_from_that_bar(
    uninterrupted: tuple[Path, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal, reload_bar = uninterrupted
    document = yaml.safe_load(STRATEGY)
    alone = yaml.safe_dump({**document, "model": LOGIT, "signal": ENTRY["signal"]})
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "alone"
    with emulated_run(tmp_path, monkeypatch, history=reload_bar + 1, text=alone) as run:
        runner = run.runner(run_dir, "paper")
        runner.start()
        tick_until(run, runner, LAST)
        runner.stop("test over")
    fill = ("bar", "side", "quantity", "price", "fee")
    mine = [tuple(r[k] for k in fill) for r in rows(journal, "challenger_fill")]
    assert mine == [tuple(r[k] for k in fill) for r in rows(run_dir / "journal.sqlite", "fill")]
    assert mine
    probabilities = [r["probability"] for r in rows(run_dir / "journal.sqlite", "live_bar")]
    assert [r["probabilities"][0] for r in rows(journal, "challenger_bar")] == probabilities


def test_a_kill_after_the_add_restarts_the_challenger_at_its_bar(
    uninterrupted: tuple[Path, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal, reload_bar = _added_run(tmp_path, monkeypatch, kill_after=6)
    assert reload_bar == uninterrupted[1]
    assert len(rows(journal, "challenger_added")) == 1
    assert _books(journal) == _books(uninterrupted[0])
    fills = [(r["bar"], r["order_id"]) for r in rows(journal, "challenger_fill")]
    assert len(fills) == len(set(fills))
    assert fills == [(r["bar"], r["order_id"]) for r in rows(uninterrupted[0], "challenger_fill")]


def test_an_entry_added_while_the_run_was_down_starts_at_the_restart(
    uninterrupted: tuple[Path, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with emulated_run(tmp_path, monkeypatch, history=HISTORY) as run:
        runner = run.runner(run_dir, "paper", watch_file=True)
        runner.start()
        tick_until(run, runner, ADD_AT)
        runner.stop("down for an edit")
        run.strategy.write_text(_with(ENTRY), encoding="utf-8")
        again = run.runner(run_dir, "paper", watch_file=True)
        again.start()
        first = len(again.session_or_fail.history)
        tick_until(run, again, LAST)
        again.stop("test over")
    (added,) = rows(journal, "challenger_added")
    assert added["first_bar"] == first
    assert _books(journal)[0][0] == first
    assert first == uninterrupted[1] + 1  # the bar a hot reload took it at: the same book
    assert _books(journal) == _books(uninterrupted[0])


def test_a_restart_refuses_a_running_challengers_entry_changed_while_down_as_a_reload_does(
    uninterrupted: tuple[Path, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The change a reload refuses (`test_reloads_remove_a_challenger_and_refuse_what_cannot_be`)
    refuses the restart in the same line, before anything is journaled; the entry put
    back, the restart trades on and the challenger's book is the uninterrupted run's."""
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    changed = {**ENTRY, "signal": {"kind": "threshold", "threshold": 0.05}}
    with emulated_run(tmp_path, monkeypatch, history=HISTORY) as run:
        runner = run.runner(run_dir, "paper", watch_file=True)
        runner.start()
        tick_until(run, runner, ADD_AT)
        run.strategy.write_text(_with(ENTRY), encoding="utf-8")
        assert runner.tick() == 0  # the reload adds it
        tick_bars(run, runner, 6)
        runner.stop("down for an edit")
        head = verify(journal).head
        run.strategy.write_text(_with(changed), encoding="utf-8")
        path = str(tmp_path / "strategy.yaml")
        refusing = run.runner(run_dir, "paper", watch_file=True)
        with pytest.raises(ConfigError) as refused:
            refusing.start()
        refusing.inbox.release_pid()  # the CLI's process exits (2) here
        [line] = refused.value.lines()
        assert line.startswith(f"{path}:")
        assert line.endswith(
            " challengers.0: challenger 'logit' changed while it runs (its book is one "
            "candidate's): put it back, or remove it and add the new one under another name"
        )
        assert verify(journal).head == head  # nothing journaled
        run.strategy.write_text(_with(ENTRY), encoding="utf-8")
        again = run.runner(run_dir, "paper", watch_file=True)
        again.start()
        tick_until(run, again, LAST)
        again.stop("test over")
    assert rows(journal, "challenger_failed") == []
    assert _books(journal) == _books(uninterrupted[0])


def test_reloads_remove_a_challenger_and_refuse_what_cannot_be(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    changed = {**ENTRY, "signal": {"kind": "threshold", "threshold": 0.01}}
    other_label = {**ENTRY, "name": "late", "model": {**LOGIT, "label": {"horizon": 5}}}
    with emulated_run(tmp_path, monkeypatch, history=HISTORY) as run:
        runner = run.runner(run_dir, "paper", watch_file=True)
        runner.start()
        tick_until(run, runner, ADD_AT)
        run.strategy.write_text(_with(ENTRY), encoding="utf-8")
        tick_bars(run, runner, 2)
        run.strategy.write_text(_with(changed), encoding="utf-8")
        tick_bars(run, runner, 1)
        run.strategy.write_text(_with(ENTRY, other_label), encoding="utf-8")
        tick_bars(run, runner, 1)
        run.strategy.write_text(STRATEGY, encoding="utf-8")
        tick_bars(run, runner, 1)
        removed_at = len(runner.session_or_fail.history) - 2
        run.strategy.write_text(_with(ENTRY), encoding="utf-8")
        tick_bars(run, runner, 2)
        last = len(runner.session_or_fail.history) - 1
        runner.stop("test over")
    refused = [r["errors"] for r in rows(journal, "config_reload_refused")]
    path = str(tmp_path / "strategy.yaml")
    assert len(refused) == 3 and all(len(errors) == 1 for errors in refused)
    assert refused[0][0].startswith(f"{path}:")
    assert refused[0][0].endswith(
        "challengers.0: challenger 'logit' changed while it runs (its book is one "
        "candidate's): put it back, or remove it and add the new one under another name"
    )
    assert "challengers.1.model.label" in refused[1][0]
    assert refused[2][0].endswith(
        "challengers.0.name: 'logit' named a challenger this run had (the journal's rows "
        "of that name are its book): give the new one another name"
    )
    (removed,) = rows(journal, "challenger_removed")
    assert (removed["bar"], removed["challenger"]) == (removed_at, "logit")
    assert _books(journal)[-1][0] == removed_at  # its book ends at the removal
    assert max(r["bar"] for r in rows(journal, "live_bar")) == last  # the run traded on


def test_a_restart_refuses_a_removed_challengers_name_added_while_down_as_a_reload_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name the run gave a challenger it removed, back in the file while the run was
    down: the restart refuses it in the reload's line, before anything is journaled (it
    was dropped as ``challenger_failed`` at the restart, silently for the user); under
    another name, it starts at the restart."""
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with emulated_run(tmp_path, monkeypatch, history=HISTORY) as run:
        runner = run.runner(run_dir, "paper", watch_file=True)
        runner.start()
        tick_until(run, runner, ADD_AT)
        run.strategy.write_text(_with(ENTRY), encoding="utf-8")
        tick_bars(run, runner, 2)  # the reload adds it
        run.strategy.write_text(STRATEGY, encoding="utf-8")
        tick_bars(run, runner, 2)  # and removes it
        runner.stop("down for an edit")
        head = verify(journal).head
        run.strategy.write_text(_with(ENTRY), encoding="utf-8")
        refusing = run.runner(run_dir, "paper", watch_file=True)
        with pytest.raises(ConfigError) as refused:
            refusing.start()
        refusing.inbox.release_pid()  # the CLI's process exits (2) here
        [line] = refused.value.lines()
        assert line.startswith(f"{tmp_path / 'strategy.yaml'}:")
        assert line.endswith(
            " challengers.0.name: 'logit' named a challenger this run had (the journal's rows "
            "of that name are its book): give the new one another name"
        )
        assert verify(journal).head == head  # nothing journaled
        run.strategy.write_text(_with({**ENTRY, "name": "logit2"}), encoding="utf-8")
        again = run.runner(run_dir, "paper", watch_file=True)
        again.start()
        first = len(again.session_or_fail.history)
        tick_bars(run, again, 2)
        again.stop("test over")
    assert rows(journal, "challenger_failed") == []
    assert [(r["challenger"], r["first_bar"]) for r in rows(journal, "challenger_added")][1:] == [
        ("logit2", first)
    ]
    assert _books(journal, "logit2")[0][0] == first
