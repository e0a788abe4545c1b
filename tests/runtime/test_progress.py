"""Progress bars: shown on a terminal, never under CI, in a pipe or with --quiet."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

from tests import forkserver
from tradeloom.runtime import progress

ROOT = Path(__file__).resolve().parents[2]
SHORT = (
    "--set",
    "data.bars=1500",
    "--set",
    "model.walk_forward.train_window=500",
    "--set",
    "model.walk_forward.retrain_every=250",
    "--set",
    "model.params.n_jobs=1",
    "--set",
    "model.params.n_estimators=10",  # what is shown, not the forest, is under test
)


def run_in(terminal: bool, *args: str, ci: bool = False) -> str:
    """Run tradeloom with stderr on a pseudo-terminal (or a pipe); return what stderr got."""
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(TERM="xterm", COLUMNS="120")
    if ci:
        env["CI"] = "true"
    command = [sys.executable, "-m", "tradeloom.cli.main", *args]
    if not terminal:
        proc = forkserver.run(command, capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr
        return proc.stderr
    leader, follower = pty.openpty()
    proc = forkserver.popen(command, stdout=subprocess.DEVNULL, stderr=follower, env=env, cwd=ROOT)
    os.close(follower)
    seen = bytearray()
    while True:
        ready, _, _ = select.select([leader], [], [], 600)
        if not ready:
            proc.kill()
            raise TimeoutError("no output for 600 s")
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert proc.wait(60) == 0, seen.decode(errors="replace")
    return seen.decode(errors="replace")


def test_bars_only_where_a_person_watches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert progress.wanted() and not progress.wanted(quiet=True)
    monkeypatch.setenv("CI", "true")
    assert not progress.wanted()
    monkeypatch.delenv("CI")
    monkeypatch.setenv("TERM", "dumb")
    assert not progress.wanted()
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert not progress.wanted()


def test_a_task_is_free_when_bars_are_off() -> None:
    assert not progress.active()  # pytest's stderr is captured: never a terminal
    with progress.task("nothing", total=3) as shown:
        shown.advance()
        shown.describe("still nothing")


@pytest.mark.slow
def test_a_run_on_a_terminal_shows_features_and_folds(tmp_path: Path) -> None:
    strategy = str(ROOT / "strategies" / "btc_rf.yaml")
    shown = run_in(True, "run", strategy, "--out", str(tmp_path / "a"), *SHORT)
    assert "features" in shown and "walk-forward folds" in shown
    assert "/4" in shown  # n of N folds
    quiet = run_in(True, "--quiet", "run", strategy, "--out", str(tmp_path / "b"), *SHORT)
    assert "walk-forward folds" not in quiet and "features" not in quiet
    ci = run_in(True, "run", strategy, "--out", str(tmp_path / "c"), *SHORT, ci=True)
    assert "walk-forward folds" not in ci
    piped = run_in(False, "run", strategy, "--out", str(tmp_path / "d"), *SHORT)
    assert "walk-forward folds" not in piped


def test_the_first_compilation_is_announced(monkeypatch: pytest.MonkeyPatch) -> None:
    """numba announces a compilation its cache cannot serve; a spinner says so meanwhile."""
    import io

    import numba
    from numba.core import event
    from rich.console import Console

    monkeypatch.setattr(progress, "_enabled", True)
    from rich.progress import Progress

    made = []

    def recorded() -> object:
        # on a string, and leaving sys.stdout alone: numba may set colorama up meanwhile,
        # and colorama would keep rich's proxy of pytest's captured stdout until exit
        console = Console(file=io.StringIO(), force_terminal=True)
        made.append(Progress(console=console, redirect_stdout=False, redirect_stderr=False))
        return made[-1]

    monkeypatch.setattr(progress, "_new_progress", recorded)
    progress._watch_compilation()
    seen: list[list[str]] = []

    class Spy(event.Listener):  # told after the progress module's listener
        def on_start(self, ev: event.Event) -> None:
            seen.append([t.description for bar in made for t in bar.tasks])

        def on_end(self, ev: event.Event) -> None:
            pass

    @numba.njit(cache=False)
    def fresh(x: float) -> float:
        return x + 1.0

    with event.install_listener("numba:compile", Spy()):
        assert fresh(1.0) == 2.0
    assert seen[0] == ["compiling kernels, first run only: fresh"]
    assert progress._progress is None  # gone once the compilation finished
