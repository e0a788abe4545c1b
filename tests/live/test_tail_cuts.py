"""A journal that lost its tail after ``kill -9`` never sends a client id twice.

A live run is killed (SIGKILL) after it sent and filled orders; its write-ahead log is
then cut at 10 seeded random points in CI (``TRADELOOM_TAIL_CUTS=200`` for a long run),
one restart through the command line each. The
journal of every cut has forgotten some commits, orders' intents among them; a restart
trusting it would send those client ids again when it replays the bars it lost. Each
restart asks the venue about every id beyond its journal
(`tradeloom.live.recovery.sent_lookup`): the orders it has are adopted, never sent again, their
fills booked by the engine, so the position the run books is the venue's; the bars
the journal lost are decided again without sending anything (``LOST_BAR``). The uncut
journal then restarts and trades on: the exchange's request log holds every client id
once.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live import live_child
from tests.live.live_emulated import broken_links, illegal_moves
from tests.live.test_crash import (
    CrashRig,
    _rig,
    check_sent_once_and_reconciled,
    crash_at,
    finish,
)
from tradeloom.journal import RunIdentity, open_journal
from tradeloom.journal.tail import read_tail
from tradeloom.live.orders import ccxt_venue
from tradeloom.live.orders.sent_mark import MARK_FILE, SentMark
from tradeloom.runtime.retrying import RetryPolicy
from tradeloom.testing import DEFAULT_API_KEY, DEFAULT_SECRET, ServerError

CUTS = int(os.environ.get("TRADELOOM_TAIL_CUTS", "10"))


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CrashRig]:
    """A rig whose restarts (in this process) wait out a 2.5 s window for the ids the
    venue lacks (a 2 s recvWindow, 0.5 s of clock skew), not 15 s: the first restart
    slept ~13.5 s of the test's ~32 s for it. Every id beyond the journal is one the
    venue has (adopted) or one never sent, whatever the window."""
    monkeypatch.setattr(ccxt_venue, "_SKEW_SECONDS", 0.5)
    yield from _rig(tmp_path, recv_window=2_000)


def _started_in_log(journal: Path, scratch: Path) -> int:
    """Return the byte of ``journal``'s write-ahead log after the commit that first holds
    the run's ``run_started`` row (SQLite's WAL: a 32-byte header, then frames of a 24-byte
    header and a page; a commit's frame names the database's size in its bytes 4..8)."""
    log = Path(f"{journal}-wal").read_bytes()
    page = int.from_bytes(log[8:12], "big")
    frame = 24 + page
    scratch.mkdir()
    for end in range(32 + frame, len(log) + 1, frame):
        if not int.from_bytes(log[end - frame + 4 : end - frame + 8], "big"):
            continue  # not a commit's last frame
        copy = scratch / f"at-{end}.sqlite"
        shutil.copyfile(journal, copy)
        Path(f"{copy}-wal").write_bytes(log[:end])
        with contextlib.closing(sqlite3.connect(copy)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            if (
                "run_started" in tables
                and db.execute("SELECT count(*) FROM run_started").fetchone()[0]
            ):
                return end
    raise AssertionError(f"{journal}: no commit of its log holds run_started")


def _restart(rig: CrashRig, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``tradeloom run --mode live`` on the rig's run directory, in this process."""
    capsys.readouterr()
    code = live_child.main([rig.emulator.url, str(rig.strategy), str(rig.run_dir), *args])
    return code, capsys.readouterr().err


@pytest.mark.slow
def test_a_cut_journal_tail_is_looked_up_at_the_venue_and_no_client_id_is_posted_twice(
    rig: CrashRig, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMU_API_KEY", DEFAULT_API_KEY)
    monkeypatch.setenv("EMU_API_SECRET", DEFAULT_SECRET)
    monkeypatch.chdir(rig.tmp)
    # five orders POSTed and filled; killed as the fifth's fill is applied (not committed)
    crash_at(rig, "fill:5")
    assert rig.exit_codes == [-signal.SIGKILL]
    wal = rig.run_dir / "journal.sqlite-wal"
    assert wal.stat().st_size > CUTS  # the kill left the log uncheckpointed
    intact = rig.tmp / "intact"
    shutil.copytree(rig.run_dir, intact)
    sent = Counter(rig.posted())
    assert len(sent) == 5 and set(sent.values()) == {1}
    assert SentMark(rig.run_dir).sent == 5
    assert read_tail(rig.journal) is not None
    size = wal.stat().st_size
    started = _started_in_log(intact / "journal.sqlite", rig.tmp / "probe")
    # most cuts after the run's start was committed (a restart's cases), two before it
    # (refused): the log's first part is the tables' schema, which grows with the kinds
    draw = random.Random(25)
    cuts = draw.sample(range(started, size), CUTS - 2) + draw.sample(range(started), 2)
    outcomes: Counter[str] = Counter()
    for cut in sorted(cuts):
        shutil.rmtree(rig.run_dir)
        shutil.copytree(intact, rig.run_dir)
        with wal.open("r+b") as handle:
            handle.truncate(cut)
        # the restart replays its journal, looks the ids beyond it up, then runs the bars
        # the journal lost (the orders it decides there are the adopted ones) and stops
        code, err = _restart(rig, capsys, "--max-bars", "1")
        assert Counter(rig.posted()) == sent, f"a restart sent at cut {cut}"
        if code == 2:  # a cut before the run's first start was committed
            assert err.count("\n") == 1 and "refusing to" in err, err
            outcomes["refused"] += 1
            continue
        assert code == 0 and "Traceback" not in err, err
        adopted = {r["client_id"] for r in rig.rows("order_state") if r["state"] == "adopted"}
        lost = sorted(set(sent) - {r["id"] for r in rig.rows("order_sent")} - adopted)
        assert lost == [], f"cut {cut}: ids the venue has, neither journaled nor adopted"
        # an adopted order's rows go on from its ``adopted`` row: one chain per order
        assert broken_links(rig.journal) == [], f"cut {cut}"
        assert illegal_moves(rig.journal) == [], f"cut {cut}"
        # the adopted orders' fills are the engine's again: the journal's position is the
        # venue's, as the restart compared it
        reconciled = rig.rows("reconciled")[-1]
        difference = reconciled["venue_position"] - reconciled["position"]
        assert abs(difference) <= reconciled["tolerance"], (cut, reconciled)
        booked = {r["order_id"] for r in rig.rows("fill")}
        for client_id in adopted:  # the engine booked each adopted order's fills
            assert client_id in booked, (cut, client_id)
        # the bars the journal lost were traded before the kill: decided again, not sent
        lost = [r for r in rig.rows("order_cancelled") if r["reason"] == "LOST_BAR"]
        assert {r["order_id"] for r in lost} <= {r["id"] for r in rig.rows("order")}
        assert SentMark(rig.run_dir).sent == 5
        outcomes["adopted" if adopted else "reconciled"] += 1
    with capsys.disabled():
        print(f"restarts after {CUTS} cuts: {dict(outcomes)}")
    assert outcomes["adopted"] >= CUTS // 2, outcomes
    # a venue that cannot be asked: the restart refuses in one line, nothing sent
    shutil.rmtree(rig.run_dir)
    shutil.copytree(intact, rig.run_dir)
    with wal.open("r+b") as handle:
        handle.truncate((started + size) // 2)
    rig.emulator.faults.always("GET /api/v3/order", ServerError(503))
    # every attempt fails whatever the backoff: 10 ms, not the ~6 s of 0.5 s doubling
    monkeypatch.setattr(ccxt_venue, "_READ_RETRY", RetryPolicy(5, 0.01, 0.02))
    code, err = _restart(rig, capsys, "--max-bars", "1")
    rig.emulator.faults.clear()
    (line,) = [x for x in err.splitlines() if not x.startswith("{")]  # the retries' logs
    assert code == 2, err
    assert "could not ask the venue about order " in line
    assert line.endswith("; refusing to restart: nothing was sent")
    assert Counter(rig.posted()) == sent
    # the uncut journal restarts and trades on: every id POSTed once, the positions agree
    shutil.rmtree(rig.run_dir)
    shutil.copytree(intact, rig.run_dir)
    rig.launch()
    finish(rig)
    check_sent_once_and_reconciled(rig)
    assert max(Counter(rig.posted()).values()) == 1


def test_a_journal_behind_the_sent_id_mark_refuses_to_open_for_trading(tmp_path: Path) -> None:
    """The mark names both numbers; a journal one ahead (crash before the mark) passes."""
    from tradeloom.journal import JournalDamaged
    from tradeloom.live.orders.sent_mark import check_sent_mark

    run = tmp_path / "run"
    run.mkdir()
    open_journal(run / "journal.sqlite", RunIdentity("s", "run", "live")).close()
    mark = SentMark(run)
    for i in range(1, 4):
        mark.advance(f"s-k-{i:06d}")
    assert SentMark(run).sent == 3
    check_sent_mark(SentMark(run), run / "journal.sqlite", 3)
    check_sent_mark(SentMark(run), run / "journal.sqlite", 4)
    with pytest.raises(JournalDamaged) as caught:
        check_sent_mark(SentMark(run), run / "journal.sqlite", 2)
    assert str(caught.value) == (
        f"{run / 'journal.sqlite'}: the journal is behind the sent-id mark: it holds 2 sent "
        f"orders, {run / MARK_FILE} says 3 were sent (the last s-k-000003); its tail was lost"
    )
