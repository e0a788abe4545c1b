"""Any folder a user can name works, and nothing is made beside it.

In a folder named with ``#``, ``?``, ``%``, spaces, quotes, letters of any script or a
leading dash: a backtest, ``status``, ``journal verify``, ``report``, `open_run`, the
console's run page and API, and the kill switch of a paper run (killed through the
command line, restarted halted, asked again, resumed through the API). The folders'
parent lists the same before and after every command that reads a run.

Each name costs a backtest, a paper restart and a dozen commands (~5 s): the suite runs
the two names written here and one drawn; ``scripts/hunt.sh`` draws 40
(``TRADELOOM_HUNT=1 python -m pytest tests/cli/test_folder_names.py``).
"""

from __future__ import annotations

import html
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests import forkserver
from tests.builders import LONG_ONLY, REPORTED, strategy_text
from tests.hunting import examples
from tradeloom import open_run
from tradeloom.files.addresses import url_path
from tradeloom.journal import JournalError, read_rows

pytest.importorskip("starlette")

from tests.console.served import served
from tradeloom.console.app import create_app
from tradeloom.console.tokens import Sessions, Tokens

pytestmark = pytest.mark.slow  # a backtest, a paper restart and a dozen commands a name

ROOT = Path(__file__).resolve().parents[2]
TOKENS = Tokens("read-token-0123456789abcdef", "write-token-0123456789abcdef", "the test")
READ = {"Authorization": f"Bearer {TOKENS.read}"}
WRITE = {"Authorization": f"Bearer {TOKENS.write}"}
PAPER = ("--mode", "paper", "--clock", "simulated", "--speed", "max", "-q")
SHARED = {".tradeloom-owned"}
"""Beside a backtest's folder, besides plotly.js: the mark that tradeloom wrote it."""


def cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return forkserver.tradeloom(*args, cwd=cwd, pythonpath=ROOT)


def ok(*args: str | Path, cwd: Path, logs: bool = False) -> str:
    """Run a command that must succeed, silent on stderr unless it ``logs`` (a paper run
    logs its kill switch there)."""
    done = cli(*args, cwd=cwd)
    assert done.returncode == 0, done.stderr
    assert logs or done.stderr == "", done.stderr
    return done.stdout


def listing(folder: Path) -> set[str]:
    return set(os.listdir(folder))


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the strategy ``s.yaml`` and ``paper-template``: a paper run of two
    bars, copied into each name (one paper run, made once)."""
    work = tmp_path_factory.mktemp("names")
    # a user's outputs: its report and plotly file beside the runs are read in each name
    (work / "s.yaml").write_text(strategy_text(REPORTED, LONG_ONLY, name="named"), encoding="utf-8")
    ok("run", "s.yaml", *PAPER, "--max-bars", "2", "--out", "paper-template", cwd=work)
    return work


def folder_names() -> st.SearchStrategy[str]:
    """Names a folder can have, rich in what an address reads: not hidden (the console
    serves no hidden folder), no control character (a one-line message stays one)."""
    tricky = st.sampled_from("#?%&=;:'\" -~+@!$()[]{}*,\\\u00e9\u00df\u6f22\u0627\U0001f600")
    other = st.characters(exclude_categories=("Cc", "Cs"), exclude_characters="/")
    return (
        st.text(tricky | other, min_size=1, max_size=16)
        .filter(lambda name: not name.startswith("."))
        .filter(lambda name: len(name.encode()) <= 100)
    )


@settings(
    max_examples=examples(40, suite=1),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(name=folder_names())
@example(name="r#1")
@example(name="-a?mode=rwc&b=%41 'q' \"d\" caf\u00e9 \u6f22\u5b57 \U0001f600 %23")
def test_any_folder_name_works(work: Path, name: str) -> None:
    case = Path(tempfile.mkdtemp(dir=work, prefix="case-"))
    _backtest_and_read(work, case / "runs", name)
    _kill_and_resume(work, case / "papers", name)


def _backtest_and_read(work: Path, runs: Path, name: str) -> None:
    runs.mkdir()
    run = runs / name
    shown = f"runs/{name}"
    ok("run", work / "s.yaml", "-q", "--out", shown, cwd=runs.parent)
    made = listing(runs) - {name}
    assert {n for n in made if not n.startswith("plotly-")} == SHARED, made
    before = listing(runs)

    status = ok("status", shown, cwd=runs.parent)
    assert status.startswith(f"run        {shown}\n           backtest run of 'named'"), status
    assert "process    finished" in status
    verified = ok("journal", "verify", shown, cwd=runs.parent)
    assert verified.startswith(f"{shown}/journal.sqlite: ") and "hash chain intact" in verified
    assert ok("report", shown, cwd=runs.parent) == f"{shown}/report.html\n"
    opened = open_run(run)
    fills = opened.journal("fill")
    assert len(fills) == len(opened.fills) > 0

    run_id = f"0/{name}"
    with served(create_app([runs], TOKENS, Sessions()), READ) as console:
        listed = {r["id"]: r for r in console.get("/api/v1/runs").json()["runs"]}
        assert listed[run_id]["error"] is None and listed[run_id]["mode"] == "backtest"
        page = console.get(url_path("/run", run_id))
        assert page.status == 200
        assert f"data-run='{html.escape(run_id)}'" in page.text
        detail = console.get(url_path("/api/v1/runs", run_id)).json()
        assert (detail["id"], detail["status"]["run_dir"]) == (run_id, run_id)
        assert detail["status"]["equity"] == pytest.approx(opened.equity["equity"].iloc[-1])
        kind, event = console.first_event(url_path("/api/v1/events", run_id))
        assert (kind, event["id"], "error" in event) == ("run", run_id, False)
        report = console.get(url_path("/report", run_id, "report.html"))
        assert report.status == 200 and "<html" in report.text[:200].lower()
    assert listing(runs) == before  # no reader made a file beside the run folder


def _kill_and_resume(work: Path, papers: Path, name: str) -> None:
    papers.mkdir()
    run = papers / name
    shutil.copytree(work / "paper-template", run)
    shown = f"papers/{name}"
    killed = ok("kill", shown, "--reason", "named", cwd=papers.parent)
    assert killed == f"no process is running in {shown}: the kill is latched when it next starts\n"
    # the next start reads the request, journals it and halts
    ok(
        "run",
        work / "s.yaml",
        *PAPER,
        "--max-bars",
        "1",
        "--out",
        shown,
        cwd=papers.parent,
        logs=True,
    )
    journal = run / "journal.sqlite"
    states = [(r.values["state"], r.values["code"]) for r in read_rows(journal, ["trading_state"])]
    assert states == [("HALTED", "KILL_SWITCH")]
    before = listing(papers)
    again = ok("kill", shown, cwd=papers.parent)
    assert again.startswith("already halted at ") and again.endswith(
        f"by the kill switch (named (by cli)); no process is running in {shown}: the request "
        "is journaled when it next starts\n"
    ), again
    for asked in (run / "control").glob("*-kill.json"):
        asked.unlink()  # not asked twice here
    status = ok("status", shown, cwd=papers.parent)
    assert "state      HALTED (KILL_SWITCH: named (by cli))" in status, status

    run_id = f"0/{name}"
    with served(create_app([papers], TOKENS, Sessions()), WRITE) as console:
        answer = console.post(url_path("/api/v1/actions/resume", run_id), {"reason": "clear"})
    assert answer.status == 200, answer.text
    assert answer.json() == {
        "action": "resume",
        "run": run_id,
        "message": f"no process is running in {run_id}: the resume is applied when it next starts",
        "running": False,
        "already": False,
    }
    (asked,) = [p for p in (run / "control").iterdir() if p.is_file()]
    assert json.loads(asked.read_text())["by"] == "api"
    assert listing(papers) == before


# --- r#1, with a paper run trading in it --------------------------------------------------


@pytest.fixture
def trading(tmp_path: Path) -> Iterator[tuple[Path, forkserver.Process | subprocess.Popen[str]]]:
    """A paper run trading in ``runs/r#1`` on the simulated clock (an hourly bar every
    second), stopped after the test."""
    # a user's outputs: the report's plotly file and manifest beside the runs are listed
    (tmp_path / "s.yaml").write_text(
        strategy_text(REPORTED, LONG_ONLY, name="named"), encoding="utf-8"
    )
    (tmp_path / "runs").mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = forkserver.popen(
        [sys.executable, "-m", "tradeloom.cli.main", "run", "s.yaml", "--mode", "paper",
         "--clock", "simulated", "--speed", "3600x", "-q", "--out", "runs/r#1"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        yield tmp_path, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _until(check: object, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.1)


def test_r1_folder_backtest_status_and_kill_of_a_running_paper_run(
    trading: tuple[Path, subprocess.Popen[str]],
) -> None:
    work, process = trading
    run = work / "runs" / "r#1"
    journal = run / "journal.sqlite"

    def bars() -> int:
        try:
            return sum(1 for _ in read_rows(journal, ["live_bar"]))
        except JournalError:  # not there yet, or being made
            return 0

    _until(lambda: bars() >= 2 or process.poll() is not None, "two live bars")
    assert process.poll() is None, process.communicate()
    status = ok("status", "runs/r#1", cwd=work)
    assert status.startswith("run        runs/r#1\n           paper run of 'named'"), status
    assert f"process    running (pid {process.pid})" in status
    killed = ok("kill", "runs/r#1", cwd=work)
    assert killed == (
        f"kill requested; the running process (pid {process.pid}) will cancel its orders and halt\n"
    )

    def halted() -> list[tuple[str, str]]:
        rows = read_rows(journal, ["trading_state"])
        return [(r.values["state"], r.values["code"]) for r in rows]

    _until(lambda: halted() == [("HALTED", "KILL_SWITCH")], "the kill switch's halt")
    again = ok("kill", "--flatten", "runs/r#1", cwd=work)  # a flatten is no repeat
    assert again.startswith("kill and flatten requested; the running process"), again
    _until(lambda: not (run / "control").exists() or not any(
        p.is_file() for p in (run / "control").iterdir()), "the flatten carried out")  # fmt: skip
    third = ok("kill", "runs/r#1", cwd=work)
    assert third.startswith("already halted at ") and third.endswith(
        f"by the kill switch (requested from the command line (by cli)); the running process "
        f"(pid {process.pid}) journals the request; nothing else changes\n"
    ), third
    _until(lambda: len(list(read_rows(journal, ["control_request"]))) == 3, "three requests")
    asked = [(r.values["action"], r.values["by"]) for r in read_rows(journal, ["control_request"])]
    assert asked == [("kill", "cli"), ("flatten", "cli"), ("kill", "cli")]
    assert halted() == [("HALTED", "KILL_SWITCH")]
    status = ok("status", "runs/r#1", cwd=work)
    assert "state      HALTED (KILL_SWITCH: requested from the command line (by cli))" in status

    # and a backtest beside it, read back
    ok("run", "s.yaml", "-q", "--out", "runs/r#1-bt", cwd=work)
    assert ok("status", "runs/r#1-bt", cwd=work).startswith("run        runs/r#1-bt\n")
    assert {n for n in listing(work / "runs") if not n.startswith("plotly-")} == {
        "r#1", "r#1-bt", *SHARED
    }  # fmt: skip


def test_a_name_that_is_not_utf8_is_refused_in_one_line(work: Path, tmp_path: Path) -> None:
    name = os.fsdecode(b"caf\xe9")  # latin-1, as an old tool may name it
    for mode in (("--mode", "backtest"), PAPER):
        done = cli("run", work / "s.yaml", "-q", *mode, "--out", name, cwd=tmp_path)
        assert (done.returncode, done.stdout, done.stderr) == (
            2,
            "",
            "--out caf\\xe9: the name is not UTF-8; tradeloom keeps the names of the folders "
            "it writes as text: give a UTF-8 name\n",
        )
    assert os.listdir(tmp_path) == []
