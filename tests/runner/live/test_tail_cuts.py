"""A journal that lost its tail after ``kill -9`` never sends a client id twice.

A live run is killed (SIGKILL) after it sent orders; its write-ahead log is then cut
at 50 seeded random points, one restart through the command line each. The journal
of every cut has forgotten some commits, orders among them; a restart trusting it
would send those client ids again. Each refuses in one line (exit 2), named by the
tail record (`tradeloom.journal.tail`) or the sent-id mark
(`tradeloom.runner.live.sent_mark`), before any request. The uncut journal then
restarts and trades on: the exchange's request log holds every client id once.
"""

from __future__ import annotations

import random
import shutil
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import live_child
import pytest
from test_crash import CrashRig, _rig, check_sent_once_and_reconciled, crash_at, finish

from tradeloom.journal import RunIdentity, open_journal
from tradeloom.journal.tail import read_tail
from tradeloom.runner.live.sent_mark import MARK_FILE
from tradeloom.testing import DEFAULT_API_KEY, DEFAULT_SECRET

CUTS = 50


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[CrashRig]:
    yield from _rig(tmp_path, recv_window=10_000)


def _restart(rig: CrashRig, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``tradeloom run --mode live`` on the rig's run directory, in this process."""
    capsys.readouterr()
    code = live_child.main([rig.emulator.url, str(rig.strategy), str(rig.run_dir)])
    return code, capsys.readouterr().err


def test_a_cut_journal_tail_is_refused_and_no_client_id_is_posted_twice(
    rig: CrashRig, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMU_API_KEY", DEFAULT_API_KEY)
    monkeypatch.setenv("EMU_API_SECRET", DEFAULT_SECRET)
    monkeypatch.chdir(rig.tmp)
    crash_at(rig, "order:5")  # four orders sent, the fifth journaled: SIGKILL
    assert rig.exit_codes == [-signal.SIGKILL]
    wal = rig.run_dir / "journal.sqlite-wal"
    assert wal.stat().st_size > CUTS  # the kill left the log uncheckpointed
    intact = rig.tmp / "intact"
    shutil.copytree(rig.run_dir, intact)
    sent = Counter(rig.posted())
    assert len(sent) == 4 and set(sent.values()) == {1}
    record = read_tail(rig.journal)
    assert record is not None
    size = wal.stat().st_size
    refusals: Counter[str] = Counter()
    for cut in sorted(random.Random(25).sample(range(size), CUTS)):
        shutil.rmtree(rig.run_dir)
        shutil.copytree(intact, rig.run_dir)
        with wal.open("r+b") as handle:
            handle.truncate(cut)
        code, err = _restart(rig, capsys)
        assert code == 2, err
        assert err.count("\n") == 1 and err.endswith("; refusing to restart: nothing was sent\n")
        if "its tail was cut" in err:
            refusals["tail"] += 1
        elif "behind the sent-id mark" in err:
            refusals["mark"] += 1
        else:
            refusals[err.split(": ", 1)[1][:40]] += 1
        assert Counter(rig.posted()) == sent, f"a restart sent at cut {cut}"
    assert refusals["tail"] >= CUTS // 2, refusals
    # the uncut journal restarts: the orders it holds are looked up, none is sent again
    shutil.rmtree(rig.run_dir)
    shutil.copytree(intact, rig.run_dir)
    rig.launch()
    finish(rig)
    check_sent_once_and_reconciled(rig)
    assert max(Counter(rig.posted()).values()) == 1


def test_a_journal_behind_the_sent_id_mark_refuses_to_open_for_trading(tmp_path: Path) -> None:
    """The mark names both numbers; a journal one ahead (crash before the mark) passes."""
    from tradeloom.journal import JournalDamaged
    from tradeloom.runner.live.sent_mark import SentMark, check_sent_mark

    run = tmp_path / "run"
    run.mkdir()
    open_journal(run / "journal.sqlite", RunIdentity("s", "run", "live")).close()
    mark = SentMark(run)
    for i in range(1, 4):
        mark.advance(f"s-k-{i:06d}")
    assert SentMark(run).sent == 3
    check_sent_mark(run, run / "journal.sqlite", 3)
    check_sent_mark(run, run / "journal.sqlite", 4)
    with pytest.raises(JournalDamaged) as caught:
        check_sent_mark(run, run / "journal.sqlite", 2)
    assert str(caught.value) == (
        f"{run / 'journal.sqlite'}: the journal is behind the sent-id mark: it holds 2 sent "
        f"orders, {run / MARK_FILE} says 3 were sent (the last s-k-000003); its tail was lost"
    )
