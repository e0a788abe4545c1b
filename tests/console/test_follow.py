"""A run page follows its run's journal by its new rows: the answer after the journal
grew is the one a fresh read gives; a journal replaced under a followed run is read
again from its first row, and the run's answer says so."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from tradeloom.console.runs import RunIndex
from tradeloom.engine.status import RunFollower, read_run
from tradeloom.journal import (
    ChainBroken,
    FillEvent,
    LiveBar,
    journal_path,
    open_journal,
    read_info,
    verify,
)
from tradeloom.journal.schema import schema_of

pytestmark = pytest.mark.xdist_group("console_runs")  # the run folders, made once

NOW = pd.Timestamp("2030-01-01T00:00:00Z")


@pytest.fixture
def paper(runs_root: Path, tmp_path: Path) -> Path:
    """A copy of the paper run (its own journal to write to)."""
    return Path(shutil.copytree(runs_root / "one-paper-simulated", tmp_path / "runs" / "paper"))


def _grow(run: Path, bars: int) -> None:
    """Journal ``bars`` more bars, each with a fill, as the run would have."""
    path = journal_path(run)
    journal = open_journal(path, read_info(path).identity)
    last = read_run(run, now=NOW).status
    assert last.last_bar is not None and last.last_bar_time is not None
    for i in range(1, bars + 1):
        bar, stamp = last.last_bar + i, pd.Timestamp(last.last_bar_time) + pd.Timedelta(hours=i)
        close = 100.0 + 7.0 * i
        journal.append(
            LiveBar(bar=bar, timestamp=stamp, symbol="BTC/USDT", open=close, high=close,
                    low=close, close=close, volume=1.0, probability=0.6, anomalous=False,
                    anomaly_score=0.0, wall_time=stamp)
        )  # fmt: skip
        journal.append(
            FillEvent(bar=bar, timestamp=stamp, symbol="BTC/USDT", correlation_id=bar,
                      order_id=f"grow-{i}", side=1 if i % 2 else -1, quantity=0.5 * i,
                      price=close, fee=0.1, slippage=0.0)
        )  # fmt: skip
    journal.flush()
    journal.close()


def test_a_followed_run_reads_as_a_fresh_read_after_its_journal_grew(paper: Path) -> None:
    follower = RunFollower(paper)
    before = follower.read(now=NOW)
    _grow(paper, 3)
    after = follower.read(now=NOW)
    fresh = read_run(paper, now=NOW)
    assert after.restarted is None
    assert after.status.bars == before.status.bars + 3 == fresh.status.bars
    assert after.status == fresh.status
    pd.testing.assert_frame_equal(after.curve, fresh.curve)
    for kind, frame in fresh.frames.items():
        pd.testing.assert_frame_equal(after.frames[kind], frame, check_dtype=False)


def test_a_journal_replaced_under_a_followed_run_is_read_again_and_said(paper: Path) -> None:
    index = RunIndex([paper.parent])
    ref = index.resolve("0/paper")
    first = index.detail(ref)
    assert first["notice"] is None
    journal = journal_path(paper)
    shutil.copyfile(journal, paper / "copy.sqlite")
    os.replace(paper / "copy.sqlite", journal)  # another file: as a rotation leaves it
    _grow(paper, 1)
    again = index.detail(ref)
    assert again["status"]["bars"] == first["status"]["bars"] + 1
    notice = again["notice"]
    assert notice is not None and str(paper) not in notice
    assert notice.endswith(
        ": 0/paper/journal.sqlite: its file was replaced (rotated, copied or restored): "
        "read again from its first row"
    )


def test_the_rows_a_followed_run_appended_since_its_first_read_are_checked(paper: Path) -> None:
    """Each read checks the chain of the rows committed since the last (`verify_again`),
    not the first read alone: a row appended with a bad hash is refused in `verify`'s
    line, at this read and the next."""
    follower = RunFollower(paper)
    follower.read(now=NOW)
    _grow(paper, 2)
    path = journal_path(paper)
    table = schema_of("fill").table
    with sqlite3.connect(path, isolation_level=None) as db:
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
            db.execute(f'DROP TRIGGER "{name}"')
        db.execute(
            f'UPDATE "{table}" SET price = price + 1 WHERE seq = (SELECT MAX(seq) FROM "{table}")'
        )
    with pytest.raises(ChainBroken) as whole:
        verify(path)
    for _ in range(2):
        with pytest.raises(ChainBroken) as caught:
            follower.read(now=NOW)
        assert str(caught.value) == str(whole.value)


def test_a_row_committed_while_a_follower_reads_is_checked_before_it_is_shown(
    paper: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rows a read shows are among those its check chained: a bad row committed
    between the check and the read (a run appending as the page reads) is refused."""
    follower = RunFollower(paper)
    follower.read(now=NOW)
    path = journal_path(paper)
    table = schema_of("fill").table
    frames = follower._frames
    read = frames.read

    def committed_meanwhile() -> None:
        _grow(paper, 1)
        with sqlite3.connect(path, isolation_level=None) as db:
            for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
                db.execute(f'DROP TRIGGER "{name}"')
            last = f'(SELECT MAX(seq) FROM "{table}")'
            db.execute(f'UPDATE "{table}" SET price = price + 1 WHERE seq = {last}')
        monkeypatch.setattr(frames, "read", read)
        read()

    monkeypatch.setattr(frames, "read", committed_meanwhile)
    with pytest.raises(ChainBroken):
        follower.read(now=NOW)


def test_a_row_committed_while_read_status_reads_is_checked_before_it_is_shown(
    paper: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(review) `read_status` (the console's and the agent door's status) checked the
    journal, then opened its read: a bad row committed between the two was shown, as the
    follower's was before it checked after reading."""
    from tradeloom.engine import status_rows

    path = journal_path(paper)
    table = schema_of("fill").table
    check = status_rows.verify_again

    def then_committed(journal: Path) -> object:
        found = check(journal)
        if journal == path:
            monkeypatch.setattr(status_rows, "verify_again", check)
            _grow(paper, 1)
            with sqlite3.connect(path, isolation_level=None) as db:
                triggers = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
                for (name,) in db.execute(triggers).fetchall():
                    db.execute(f'DROP TRIGGER "{name}"')
                last = f'(SELECT MAX(seq) FROM "{table}")'
                db.execute(f'UPDATE "{table}" SET price = price + 1 WHERE seq = {last}')
        return found

    status_rows.read_status(paper, now=NOW)  # the first check: the whole journal
    monkeypatch.setattr(status_rows, "verify_again", then_committed)
    with pytest.raises(ChainBroken):
        status_rows.read_status(paper, now=NOW)
