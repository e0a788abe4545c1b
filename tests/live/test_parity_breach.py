"""``live.parity.on_breach`` (issue 81): a diverged parity check acts through the kill
switch's mailbox, journaled as a ``control_request`` by parity, restart-safe as the kill
switch: a process killed after the breach was journaled and before the halt was taken
halts when it restarts, once; a flatten closes the position the breach found, once.

The checks here are stand-ins that say ``diverged`` when told to (what makes a real
check diverge, and its alert: tests/live/test_parity_monitor.py): these tests are about
what a breach does."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.live.live_emulated import (
    STRATEGY,
    EmulatedRun,
    crash,
    emulated_run,
    parity_monitor,
    rows,
    tick_until,
    trained_registry,
)
from tests.live.test_canary import canaried
from tests.live.test_canary import rows as canary_rows
from tests.live.test_challengers import play
from tradeloom.diagnostics import live_parity
from tradeloom.engine.control import CONTROL_DIR, request_promote
from tradeloom.journal import ParityChecked
from tradeloom.live.lifecycle.parity_monitor import ParityMonitor
from tradeloom.live.tick.runner import LiveRunner, Mode
from tradeloom.schemas.live import ParitySection

MESSAGE = "bars {0}..{1}: unexplained P&L -12.50 beyond 1 (first: bar {1} BTC/USDT fill.price: " \
    "unexplained); run tradeloom parity RUN_DIR for the table"  # fmt: skip


class _Verdicts:
    """A check that says ``ok`` until `breach` is set, then ``diverged``."""

    def __init__(self) -> None:
        self.breach = threading.Event()

    def __call__(self, run_dir: Path, until: int, window: int, limit: float) -> dict[str, Any]:
        bad = self.breach.is_set()
        first = until - window + 1
        return {
            "first_bar": first,
            "last_bar": until,
            "equity_gap": -12.5 if bad else 0.0,
            "window_gap": -12.5 if bad else 0.0,
            "unexplained_pnl": -12.5 if bad else 0.0,
            "max_unexplained": limit,
            "first_divergence": f"bar {until} BTC/USDT fill.price: unexplained" if bad else "",
            "verdict": "diverged" if bad else "ok",
            "message": MESSAGE.format(first, until) if bad else f"bars {first}..{until}: ok",
        }


class _Recorder:
    """A recorder that notes which requests were on disk when each row was journaled."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.rows: list[tuple[ParityChecked, list[str]]] = []

    def at(self, bar: int) -> dict[str, int]:
        return {"bar": bar, "correlation_id": bar}

    def record(self, event: ParityChecked) -> None:
        self.rows.append((event, _requests(self.run_dir)))


def _requests(run_dir: Path) -> list[str]:
    """The actions of the requests waiting in the run's mailbox, in the order it reads them."""
    folder = run_dir / CONTROL_DIR
    names = sorted(p.name for p in folder.glob("*.json")) if folder.is_dir() else []
    return [n.split("-", 1)[1].removesuffix(".json") for n in names]


CANARY = "a canary is in progress"


@pytest.mark.parametrize(
    ("on_breach", "stage", "killed", "asked"),
    [
        ("alert", CANARY, False, []),
        ("rollback", None, False, []),
        ("rollback", CANARY, True, ["rollback"]),
        ("halt", None, False, ["kill"]),
        ("halt", None, True, []),  # halted already (by this breach's window, or a kill)
        ("halt", CANARY, False, ["kill", "rollback"]),
        ("flatten", "the watch after a promotion is in progress", False, ["flatten", "rollback"]),
        ("flatten", CANARY, True, ["rollback"]),
    ],
)
def test_a_breach_asks_what_on_breach_says_before_its_row_is_journaled(
    tmp_path: Path, on_breach: str, stage: str | None, killed: bool, asked: list[str]
) -> None:
    verdicts, woken = _Verdicts(), []
    params = ParitySection(every_bars=1, window_bars=3, on_breach=on_breach)  # type: ignore[arg-type]
    monitor = ParityMonitor(
        tmp_path,
        params,
        check=verdicts,
        wake=lambda: woken.append(1),
        in_progress=lambda: stage,
        killed=lambda: killed,
    )
    recorder = _Recorder(tmp_path)
    monitor.after_tick(1, 10, recorder)  # type: ignore[arg-type]
    monitor.wait()
    verdicts.breach.set()
    monitor.after_tick(1, 11, recorder)  # type: ignore[arg-type]  # journals 10's: ok
    monitor.wait()
    assert _requests(tmp_path) == [] and woken == []
    assert monitor.close(recorder)  # type: ignore[arg-type]  # journals 11's: diverged

    (ok, before_ok), (diverged, before_row) = recorder.rows
    assert (ok.verdict, before_ok, diverged.verdict) == ("ok", [], "diverged")
    assert before_row == asked  # on disk before the row: a crash between leaves them asked
    assert woken == ([1] if asked else [])
    for path in sorted((tmp_path / CONTROL_DIR).glob("*.json")):
        request = json.loads(path.read_text())
        assert (request["by"], request["reason"]) == (
            "parity",
            f"parity diverged: {MESSAGE.format(9, 11)}",
        )


def test_a_breach_while_the_last_ones_requests_wait_asks_nothing_more(tmp_path: Path) -> None:
    verdicts = _Verdicts()
    verdicts.breach.set()
    params = ParitySection(every_bars=1, window_bars=3, on_breach="halt")
    monitor = ParityMonitor(tmp_path, params, check=verdicts, killed=lambda: False)
    recorder = _Recorder(tmp_path)
    for bar in range(10, 13):  # three diverged checks, the runner's mailbox never read
        monitor.after_tick(1, bar, recorder)  # type: ignore[arg-type]
        monitor.wait()
    assert monitor.close(recorder)  # type: ignore[arg-type]
    assert [r.verdict for r, _ in recorder.rows] == ["diverged"] * 3
    assert _requests(tmp_path) == ["kill"]  # asked once
    for path in (tmp_path / CONTROL_DIR).glob("*.json"):  # carried out: moved to done/
        path.rename(tmp_path / path.name)
    monitor.after_tick(1, 13, recorder)  # type: ignore[arg-type]
    monitor.wait()
    assert monitor.close(recorder)  # type: ignore[arg-type]
    assert _requests(tmp_path) == ["kill"]  # a new breach, the run not halted: asked again


STRATEGY_ON_BREACH = STRATEGY.replace(
    "  stale_after_bars: null\n",
    "  stale_after_bars: null\n  parity: {every_bars: 1, window_bars: 5, on_breach: ON_BREACH}\n",
)


def _runner(run: EmulatedRun, run_dir: Path, mode: Mode, verdicts: _Verdicts) -> LiveRunner:
    runner = run.runner(run_dir, mode=mode)
    parity_monitor(runner).check = verdicts
    runner.start()
    return runner


def _tick_checked(run: EmulatedRun, runner: LiveRunner) -> None:
    """Close one bar and tick; wait for the check it started (a run never waits for one)."""
    tick_until(run, runner, run.emulator.exchange.position + 1)
    parity_monitor(runner).wait()


def _position(runner: LiveRunner) -> float:
    return float(runner.session_or_fail.engine.portfolio.position)


def _asked_by_parity(journal: Path) -> list[dict[str, Any]]:
    return [r for r in rows(journal, "control_request") if r["by"] == "parity"]


@pytest.mark.slow
@pytest.mark.parametrize(("on_breach", "mode"), [("halt", "paper"), ("flatten", "live")])
def test_a_breach_acts_once_across_a_kill_9_before_it_was_carried_out(
    on_breach: str, mode: Mode, ram_tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ram_tmp_path)
    run_dir = ram_tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    verdicts = _Verdicts()
    text = STRATEGY_ON_BREACH.replace("ON_BREACH", on_breach)
    with emulated_run(ram_tmp_path, monkeypatch, text=text) as run:
        runner = _runner(run, run_dir, mode, verdicts)
        try:
            while _position(runner) == 0.0:  # a position for the breach to find
                _tick_checked(run, runner)
            held = _position(runner)
            verdicts.breach.set()
            _tick_checked(run, runner)  # journals an ok check, starts the diverged one
            _tick_checked(run, runner)  # journals the breach, asks; the next tick acts
        except BaseException:
            runner.stop("test failed")
            raise
        (breach,) = [r for r in rows(journal, "parity_checked") if r["verdict"] == "diverged"]
        assert _requests(run_dir) == ["kill" if on_breach == "halt" else "flatten"]
        assert not runner.session_or_fail.killed and _asked_by_parity(journal) == []
        assert _position(runner) == held
        crash(runner)  # kill -9: the breach journaled, the halt not taken

        runner = _runner(run, run_dir, mode, verdicts)
        try:
            assert not runner.session_or_fail.killed  # the journal holds no kill yet
            _tick_checked(run, runner)  # the mailbox first, then the bar: halted before it
            assert runner.session_or_fail.killed
            for _ in range(3):  # the flatten's exit at the next open; later breaches alert
                _tick_checked(run, runner)
        finally:
            runner.stop("test over")
        (asked,) = _asked_by_parity(journal)
        assert (asked["action"], asked["reason"]) == (
            "kill" if on_breach == "halt" else on_breach,
            f"parity diverged: {breach['message']}",
        )
        assert _requests(run_dir) == []  # done
        states = rows(journal, "trading_state")
        assert (states[-1]["state"], states[-1]["code"]) == ("HALTED", "KILL_SWITCH")
        said = f"parity diverged: {breach['message']} (by parity)"
        assert states[-1]["message"] == (said if on_breach == "halt" else f"flatten: {said}")
        flattened = [o for o in rows(journal, "order") if o["reason"] == "EXIT_FLATTEN"]
        if on_breach == "halt":
            assert flattened == [] and _position(runner) == held  # halted, still held
        else:
            assert [o["quantity"] for o in flattened] == [pytest.approx(abs(held))]
            # closed but the dust below the market's lot (0.00001 BTC), which no order sells
            assert 0.0 <= _position(runner) < 1e-5

        # a third start carries out nothing again: the journal answered the request
        runner = _runner(run, run_dir, mode, verdicts)
        try:
            _tick_checked(run, runner)
            assert runner.session_or_fail.killed
        finally:
            runner.stop("test over")
    assert _asked_by_parity(journal) == [asked]


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    """A backtest's run directory whose folds were saved: the canary's champion and
    challenger (as tests/live/test_canary.py's)."""
    (tmp_path / "registry").mkdir()
    return trained_registry(tmp_path / "registry")


@pytest.mark.slow
def test_a_breach_in_a_canary_halts_and_rolls_it_back(
    registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A canary promoted by hand, then a breach: the kill, then the canary's rollback (the
    champion's model back), at one bar, both by parity."""
    verdicts = _Verdicts()
    monkeypatch.setattr(live_parity, "check_apart", verdicts)  # the command line's check
    document = canaried(registry)
    document["challengers"][0]["promote_when"] = {  # only an operator promotes
        "min_bars": 200,
        "canary": {"fraction": 0.25, "bars": 100},
    }
    document["live"] = {"parity": {"every_bars": 1, "window_bars": 2, "on_breach": "halt"}}
    assert play(tmp_path, document, 3)[0] == 0
    request_promote(tmp_path / "run", "next", "try it")
    verdicts.breach.set()  # the checks of the restart diverge
    assert play(tmp_path, document, 4)[0] == 0  # the canary starts at its first tick
    # carried out at once, or, a breach journaled as the run stopped, at the next start
    code, run = play(tmp_path, document, 2)
    assert code == 0
    [started] = canary_rows(run, "canary_started")
    breach = next(r for r in canary_rows(run, "parity_checked") if r["verdict"] == "diverged")
    assert breach["bar"] > started["bar"]
    [asked] = _asked_by_parity(run / "journal.sqlite")  # once: then the run is halted
    [back] = canary_rows(run, "canary_rolled_back")  # once: then no canary is in progress
    assert asked["action"] == "kill" and asked["bar"] == back["bar"] >= breach["bar"]
    assert asked["reason"] == back["reason"] == f"parity diverged: {breach['message']}"
    assert back["by"] == "parity" and back["rule"] == ""
    swapped = canary_rows(run, "model_swapped")
    assert swapped[-1]["sha256"] == started["champion_sha256"]  # the champion's model back
    assert canary_rows(run, "model_swap_refused") == []  # no second rollback
    states = canary_rows(run, "trading_state")
    assert (states[-1]["state"], states[-1]["code"]) == ("HALTED", "KILL_SWITCH")
    assert _requests(run) == []
