"""The live parity check that follows the run with its replay (`ParityFollower`): at
every check of a paper run on the simulated clock, its row's fields are the whole
replay's, to the bit; it answers without the whole replay while the run agrees with
its replay, and a planted divergence is flagged by both at the same check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.live.live_emulated import crash, emulated_run, parity_monitor, tick_until
from tests.live.test_parity_monitor import MONITORED
from tradeloom.diagnostics.live_parity import LIVE_FILE, window_parity
from tradeloom.engine.control import latch_request
from tradeloom.engine.wiring import build_pipeline
from tradeloom.journal import read_rows
from tradeloom.live.lifecycle.parity_follow import ParityFollower
from tradeloom.live.lifecycle.parity_stage import ParityStage
from tradeloom.live.tick.runner import LiveRunner
from tradeloom.schemas import load_strategy

pytestmark = pytest.mark.slow  # a paper run and its replays

Seen = list[tuple[int, dict[str, Any], dict[str, Any], bool]]


def _bits(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v.hex() if isinstance(v, float) else v for k, v in fields.items()}


def _both(runner: LiveRunner) -> tuple[ParityFollower, Seen]:
    """Answer each check by the follower, the whole replay beside it (in this process:
    the same comparison `check_apart` runs in its own)."""
    stage = runner.stage(ParityStage)
    assert stage is not None
    follower = stage.follower
    follower.whole = window_parity
    seen: Seen = []

    def check(run_dir: Path, until: int, window: int, limit: float) -> dict[str, Any]:
        followed = follower.followed
        got = follower.check(run_dir, until, window, limit)
        assert json.loads((run_dir / LIVE_FILE).read_text()) == got  # its file, as written
        seen.append(
            (until, got, window_parity(run_dir, until, window, limit), followed < follower.followed)
        )
        return got

    parity_monitor(runner).check = check
    return follower, seen


def _tick_checked(run: Any, runner: LiveRunner, until: int) -> None:
    while run.emulator.exchange.position < until:
        tick_until(run, runner, run.emulator.exchange.position + 1)
        parity_monitor(runner).wait()


def _journaled(run_dir: Path) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in r.values.items()}
        for r in read_rows(run_dir / "journal.sqlite", ["parity_checked"])
    ]


def test_a_paper_runs_checks_are_the_whole_replays_and_follow_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = MONITORED.replace("every_bars: 30, window_bars: 20}", "every_bars: 10, window_bars: 15}")
    monkeypatch.chdir(tmp_path)
    with emulated_run(tmp_path, monkeypatch, text=text) as run:
        runner = run.runner(tmp_path / "paper", mode="paper")
        follower, seen = _both(runner)
        runner.start()
        try:
            _tick_checked(run, runner, 170)
        finally:
            runner.stop("test over")
    assert len(seen) >= 5
    for until, got, want, _ in seen:
        assert _bits(got) == _bits(want), until
    assert all(followed for *_, followed in seen), follower.lost  # never the whole replay
    assert follower.lost == ""
    rows = _journaled(tmp_path / "paper")
    assert [_bits({**r, "bar": None}) for r in rows] == [
        _bits({**want, "bar": None}) for _, _, want, _ in seen
    ]


def test_a_planted_divergence_is_flagged_by_both_at_the_same_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The paper run's sizing changes at bar 125 with no journaled reason: the follower
    leaves the run at the first bar whose rows differ, and from there every check is the
    whole replay's."""
    text = MONITORED.replace(
        "every_bars: 30, window_bars: 20}", "every_bars: 10, window_bars: 10, max_unexplained: 1.0}"
    )
    changed = tmp_path / "changed.yaml"
    changed.write_text(text.replace("fraction: 0.5}", "fraction: 0.9}"))
    monkeypatch.chdir(tmp_path)
    with emulated_run(tmp_path, monkeypatch, text=text) as run:
        runner = run.runner(tmp_path / "paper", mode="paper")
        follower, seen = _both(runner)
        runner.start()
        try:
            _tick_checked(run, runner, 125)
            config, _ = load_strategy(changed, ())
            runner.session_or_fail.engine.reconfigure(build_pipeline(config))
            _tick_checked(run, runner, 170)
        finally:
            runner.stop("test over")
    for until, got, want, _ in seen:
        assert _bits(got) == _bits(want), until
    verdicts = [(until, want["verdict"]) for until, _, want, _ in seen]
    first = next(i for i, (_, verdict) in enumerate(verdicts) if verdict == "diverged")
    assert all(followed for *_, followed in seen[:first]), verdicts  # followed until then
    assert not any(followed for *_, followed in seen[first:])  # the whole replay from then
    assert follower.lost.startswith("bar "), follower.lost
    assert [r["verdict"] for r in _journaled(tmp_path / "paper")] == [v for _, v in verdicts]


def test_a_restart_replays_every_live_bar_once_and_follows_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed at bar 125 and started again: the new process's first check replays the
    run's live bars from the first (the journal's), then follows; every check is the
    whole replay's."""
    text = MONITORED.replace("every_bars: 30, window_bars: 20}", "every_bars: 10, window_bars: 15}")
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "paper"
    with emulated_run(tmp_path, monkeypatch, text=text) as run:
        runner = run.runner(run_dir, mode="paper")
        _, before = _both(runner)
        runner.start()
        _tick_checked(run, runner, 125)
        crash(runner)
        run.emulator.advance()
        again = run.runner(run_dir, mode="paper")
        follower, after = _both(again)
        again.start()
        try:
            _tick_checked(run, again, 170)
        finally:
            again.stop("test over")
    assert before and len(after) >= 3
    for until, got, want, _ in before + after:
        assert _bits(got) == _bits(want), until
    assert all(followed for *_, followed in before + after), follower.lost
    assert after[0][0] > 125  # checked after the restart, its first check a full replay


def test_a_kill_hands_every_later_check_to_the_whole_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kill switch thrown at bar 125 (a ``control_request`` row the replay does not
    follow): the checks before it are followed, those after are the whole replay's, and
    every one is the whole replay's fields."""
    text = MONITORED.replace("every_bars: 30, window_bars: 20}", "every_bars: 10, window_bars: 15}")
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "paper"
    with emulated_run(tmp_path, monkeypatch, text=text) as run:
        runner = run.runner(run_dir, mode="paper")
        follower, seen = _both(runner)
        runner.start()
        try:
            _tick_checked(run, runner, 125)
            latch_request(run_dir, "kill", "operator: stop", by="test")
            _tick_checked(run, runner, 160)
        finally:
            runner.stop("test over")
    for until, got, want, _ in seen:
        assert _bits(got) == _bits(want), until
    followed = [f for *_, f in seen]
    assert followed[:2] == [True, True] and not any(followed[-3:]), followed
    assert "control_request" in follower.lost, follower.lost
