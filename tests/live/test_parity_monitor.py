"""The live parity monitor (``live.parity``, issue 69 item 3): parity over the last
window, checked off the bar's path, journaled, alerted and shown in status."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from starlette.testclient import TestClient

from tests.console.console_runs import TOKENS
from tests.console.served import served
from tests.live.live_emulated import (
    STRATEGY,
    EmulatedRun,
    emulated_run,
    parity_monitor,
    tick_until,
)
from tests.live.test_live_alerts import Inbox
from tests.reporting.browser import Tab, chromium, drive
from tradeloom.console.app import create_app
from tradeloom.console.tokens import Sessions
from tradeloom.diagnostics.live_parity import LIVE_FILE, check_apart, window_parity
from tradeloom.domain import RunInfo
from tradeloom.engine.status_rows import read_status
from tradeloom.engine.status_text import format_status
from tradeloom.engine.wiring import build_pipeline
from tradeloom.errors import UserError
from tradeloom.journal import ParityChecked, read_rows
from tradeloom.live.lifecycle.parity_monitor import ParityMonitor
from tradeloom.live.outputs.alerts import _alert_of
from tradeloom.live.tick.runner import LiveRunner
from tradeloom.schemas import load_strategy
from tradeloom.schemas.live import ParitySection

READ = {"Authorization": f"Bearer {TOKENS.read}"}

pytestmark = pytest.mark.slow  # a paper run and its replays

MONITORED = STRATEGY.replace(
    "  stale_after_bars: null\n",
    "  stale_after_bars: null\n  parity: {every_bars: 30, window_bars: 20}\n",
)


def _tick_checked(run: EmulatedRun, runner: LiveRunner, until: int) -> None:
    """`tick_until`, each check waited for before the next bar: the checks fall on the
    same bars whatever the machine's speed (a run never waits for one)."""
    while run.emulator.exchange.position < until:
        tick_until(run, runner, run.emulator.exchange.position + 1)
        parity_monitor(runner).wait()


def test_a_paper_run_with_the_monitor_shows_no_unexplained_divergence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert MONITORED != STRATEGY
    monkeypatch.chdir(tmp_path)
    with emulated_run(tmp_path, monkeypatch, text=MONITORED) as run:
        runner = run.runner(tmp_path / "paper", mode="paper")
        parity_monitor(runner).check = window_parity  # in this process: the same comparison
        runner.start()
        try:
            _tick_checked(run, runner, 160)
        finally:
            runner.stop("test over")
    run_dir = tmp_path / "paper"
    rows = [
        r.values | {"bar": r.bar} for r in read_rows(run_dir / "journal.sqlite", ["parity_checked"])
    ]
    assert [r["last_bar"] for r in rows] == [129, 159]
    assert all(r["verdict"] == "ok" for r in rows), rows
    last = rows[-1]
    assert last["last_bar"] - last["first_bar"] == 19
    assert last["unexplained_pnl"] == 0.0 and last["equity_gap"] == 0.0
    written = json.loads((run_dir / LIVE_FILE).read_text())
    assert written["verdict"] == "ok" and written["last_bar"] == last["last_bar"]
    status = read_status(run_dir)
    assert status.parity is not None and status.parity["checks"] == len(rows)
    assert status.parity["verdict"] == "ok"
    assert "no unexplained divergence" in status.parity["message"]
    assert status.to_json()["parity"]["verdict"] == "ok"
    assert "parity     ok at bar" in format_status(status)
    # what a run does by default: the same check in a process of its own
    assert check_apart(run_dir, 159, 20, 0.0) == {k: v for k, v in last.items() if k != "bar"}
    # whose process prints its result alone: the replay's per-bar log lines are nobody's
    words = [sys.executable, "-m", "tradeloom.diagnostics.live_parity", str(run_dir), "159"]
    done = subprocess.run([*words, "20", "0.0"], capture_output=True, text=True, check=True)
    printed = [json.loads(line) for line in done.stdout.splitlines()]
    assert printed == [{k: v for k, v in last.items() if k != "bar"}]


def test_an_unjournaled_change_in_a_live_run_alerts_and_shows_in_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live run against the emulator whose sizing changes at bar 125 with no journaled
    reason (no reload, no control request): the window's orders and fills depart from
    the replay's with nothing to explain them."""
    text = MONITORED.replace(
        "every_bars: 30, window_bars: 20}", "every_bars: 20, window_bars: 20, max_unexplained: 1.0}"
    )
    text = text.replace(
        "live:\n", 'live:\n  alerts:\n    targets: [{kind: webhook, url: "${PARITY_HOOK}"}]\n'
    )
    changed = tmp_path / "changed.yaml"
    changed.write_text(text.replace("fraction: 0.5}", "fraction: 0.9}"))
    monkeypatch.chdir(tmp_path)
    with Inbox() as inbox, emulated_run(tmp_path, monkeypatch, text=text) as run:
        monkeypatch.setenv("PARITY_HOOK", f"{inbox.url}/hook")
        with ExitStack() as stack:
            runner = run.runner(tmp_path / "live", mode="live")
            parity_monitor(runner).check = window_parity
            runner.attach_observers(stack)
            runner.start()
            try:
                _tick_checked(run, runner, 125)
                config, _ = load_strategy(changed, ())
                runner.session_or_fail.engine.reconfigure(build_pipeline(config))
                _tick_checked(run, runner, 160)
            finally:
                runner.stop("test over")
            posts = inbox.wait_for(2)
    run_dir = tmp_path / "live"
    rows = [r.values for r in read_rows(run_dir / "journal.sqlite", ["parity_checked"])]
    assert [r["last_bar"] for r in rows] == [119, 139, 159]
    verdicts = [r["verdict"] for r in rows]
    # the window before the change agrees; the one holding it diverges, from its order
    assert verdicts[:2] == ["ok", "diverged"] and verdicts[-1] == "diverged", rows
    diverged = rows[1]
    assert abs(diverged["unexplained_pnl"]) > 1.0
    assert diverged["first_divergence"] == "bar 137 BTC/USDT order: unexplained"
    bodies = [body for path, body in posts if path == "/hook"]
    assert [b["event"] for b in bodies] == ["parity", "parity"]
    assert bodies[0]["values"]["unexplained_pnl"] == pytest.approx(diverged["unexplained_pnl"])
    assert bodies[0]["text"] == diverged["message"]
    status = read_status(run_dir)
    assert status.parity is not None and status.parity["verdict"] == "diverged"
    assert status.parity["checks"] == 3 and status.parity["bar"] == 159
    # the console's run page reads the same status
    client = TestClient(create_app([tmp_path], TOKENS, Sessions()))
    shown = client.get("/api/v1/runs/0/live", headers=READ).json()["status"]["parity"]
    assert shown == status.to_json()["parity"]
    _parity_tile(tmp_path, "parity at bar 159", "diverged", tmp_path / "page.png")
    assert "parity     DIVERGED at bar" in format_status(status)


def test_a_diverged_check_alerts_and_an_ok_one_does_not() -> None:
    run = RunInfo("r1", "live_rf", "live", "/tmp/r1")
    fields = {
        "first_bar": 160,
        "last_bar": 199,
        "equity_gap": -12.5,
        "window_gap": -12.5,
        "unexplained_pnl": -12.5,
        "max_unexplained": 1.0,
        "first_divergence": "bar 171 fill.fee: unexplained",
        "message": "bars 160..199: unexplained P&L -12.50 beyond 1",
    }
    at = {"bar": 199, "timestamp": pd.Timestamp("2024-01-09T07:00Z")}
    alert = _alert_of(run, ParityChecked(**at, **fields, verdict="diverged"))
    assert alert is not None and alert.event == "parity" and alert.severity == "warning"
    assert alert.key == "160..199" and alert.values["unexplained_pnl"] == -12.5
    assert alert.text == fields["message"]
    assert _alert_of(run, ParityChecked(**at, **fields, verdict="ok")) is None


def _parity_tile(root: Path, label: str, verdict: str, screenshot: Path) -> None:
    """The console's run page shows the last check as a tile, in a real browser."""
    if chromium() is None:
        return  # the API answer above is the page's data; the browser draws it
    sessions = Sessions()
    login = f"/login?code={sessions.login_code('read')}"
    with served(create_app([root], TOKENS, sessions), {}) as console:
        base = f"http://127.0.0.1:{console.port}"

        async def steps(tab: Tab) -> list[list[str]]:
            await tab.navigate(base + login)
            await tab.navigate(f"{base}/run/0/live")
            await tab.wait_for("document.getElementById('equity-value') !== null", 60)
            tiles: list[list[str]] = await tab.evaluate(
                "[...document.querySelectorAll('#tiles .tile')].map("
                "t => [t.children[0].innerText, t.children[1].innerText, t.children[1].className])"
            )
            await tab.screenshot(screenshot)
            return tiles

        tiles, visit = drive(steps, timeout=120)
    assert visit.errors == []
    assert [label, verdict, "CRITICAL"] in tiles, tiles


class _Recorder:
    """What the monitor asks of a run's recorder: a row's header, and the row."""

    def __init__(self) -> None:
        self.rows: list[ParityChecked] = []

    def at(self, bar: int) -> dict[str, int]:
        return {"bar": bar, "correlation_id": bar}

    def record(self, event: ParityChecked) -> None:
        self.rows.append(event)


def test_checks_are_never_doubled_and_a_failed_one_is_journaled(tmp_path: Path) -> None:
    asked: list[int] = []
    release = threading.Event()

    def check(run_dir: Path, until: int, window: int, limit: float) -> dict[str, Any]:
        asked.append(until)
        release.wait(30)
        raise UserError(f"{run_dir}: a portfolio file's run")

    params = ParitySection(every_bars=3, window_bars=2)
    monitor = ParityMonitor(tmp_path, params, check=check)
    recorder = _Recorder()
    for bar in range(10, 17):  # one bar a tick; the first check runs until released
        assert not monitor.after_tick(1, bar, recorder)  # type: ignore[arg-type]
    assert asked == [12]  # due again at 15, not started while the first runs
    release.set()
    monitor.wait()
    assert monitor.after_tick(1, 17, recorder)  # type: ignore[arg-type]
    assert asked == [12, 17]  # the one that came due, at the first tick after
    assert monitor.close(recorder)  # type: ignore[arg-type]
    assert [(r.bar, r.verdict) for r in recorder.rows] == [(12, "failed"), (17, "failed")]
    assert recorder.rows[0].message == f"UserError: {tmp_path}: a portfolio file's run"
    assert not monitor.close(recorder)  # type: ignore[arg-type]  # nothing due, nothing run
    assert asked == [12, 17]
