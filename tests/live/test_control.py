"""The kill switch's mailbox: request files, the pid file, signals, and the commands."""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import structlog
from structlog.testing import capture_logs

from tradeloom.cli.main import main
from tradeloom.engine.control import (
    ControlInbox,
    ControlRequest,
    Delivery,
    KillFileEngaged,
    RunDirBusy,
    request,
    request_kill,
    request_resume,
    request_swap,
)
from tradeloom.engine.control_files import _iso_ns
from tradeloom.errors import UserError
from tradeloom.journal import RunIdentity, RunStarted, TradingStateChanged, open_journal

_KEYS = {"action", "reason", "requested_at", "by", "pid", "user"}
_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from tradeloom.engine.control import ControlInbox

    run_dir = Path(sys.argv[1])
    inbox = ControlInbox(run_dir)
    inbox.install_signal_handlers()
    inbox.claim_pid()
    print("ready", flush=True)
    woke = inbox.wake.wait(60)
    seen = [f"{r.action}:{r.by}:{r.reason}" for r in inbox.pending()]
    (run_dir / "child.txt").write_text(f"{woke} {seen}")
    inbox.release_pid()
    inbox.restore_signal_handlers()
    """
)


def _run_dir(path: Path, mode: str, *changes: tuple[str, str, str]) -> Path:
    """Make a run folder whose journal holds a start and the trading state ``changes``
    (``(state, code, message)`` each, one a minute from 2024-01-02T03:04:05Z)."""
    path.mkdir()
    journal = open_journal(path / "journal.sqlite", RunIdentity("s", path.name, mode))
    journal.append(
        RunStarted(mode=mode, strategy="s", source="s.yaml", tradeloom="0", wall_time=pd.NaT)
    )
    previous = "ACTIVE"
    for minute, (state, code, message) in enumerate(changes):
        at = pd.Timestamp("2024-01-02T03:04:05Z") + pd.Timedelta(minutes=minute)
        journal.append(
            TradingStateChanged(
                bar=minute, previous=previous, state=state, code=code, message=message, at=at
            )
        )
        previous = state
    journal.close()
    return path


def _child(run_dir: Path) -> subprocess.Popen[str]:
    """Start `_CHILD`: a process that runs ``run_dir`` (its pid file locked) until woken."""
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(run_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    ready = child.stdout.readline()
    assert ready == "ready\n", child.communicate(timeout=60)
    return child


def _woken(child: subprocess.Popen[str], run_dir: Path) -> str:
    """Wait for `_child` to end; return what it was asked (``child.txt``)."""
    try:
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == 0, err
    return (run_dir / "child.txt").read_text()


@pytest.fixture
def paper_run(tmp_path: Path) -> Path:
    return _run_dir(tmp_path / "paper", "paper")


@pytest.fixture
def inbox(paper_run: Path) -> Iterator[ControlInbox]:
    box = ControlInbox(paper_run)
    yield box
    box.release_pid()
    box.restore_signal_handlers()


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is not tradeloom and holds no lock."""
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait()


@pytest.fixture
def cli_logging() -> Iterator[None]:
    """Put back the logging configuration an in-process ``main`` call changes globally."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_requests_are_written_whole_and_read_back_in_order(
    paper_run: Path, inbox: ControlInbox
) -> None:
    first = request_kill(paper_run, "first")
    second = request_resume(paper_run, "second")
    third = request_kill(paper_run, "third")
    control = paper_run / "control"
    assert _files(control) == sorted(d.path.name for d in (first, second, third))
    for delivery, action in ((first, "kill"), (second, "resume"), (third, "kill")):
        assert re.fullmatch(rf"\d+-{action}\.json", delivery.path.name)
        assert delivery.path.parent == control
        assert (delivery.pid, delivery.signalled) == (None, False)
        data = json.loads(delivery.path.read_text(encoding="utf-8"))
        assert set(data) == _KEYS
        assert (data["action"], data["by"], data["pid"]) == (action, "cli", os.getpid())
    requests = inbox.pending()
    assert [(r.action, r.reason, r.by, r.path) for r in requests] == [
        ("kill", "first", "cli", first.path),
        ("resume", "second", "cli", second.path),
        ("kill", "third", "cli", third.path),
    ]
    times = [r.requested_at for r in requests]
    assert all(str(t.tz) == "UTC" for t in times)
    assert times == sorted(times)
    assert inbox.pending() == requests  # nothing is consumed before done()


def test_a_temporary_file_being_written_is_not_read(paper_run: Path, inbox: ControlInbox) -> None:
    control = paper_run / "control"
    control.mkdir()
    (control / ".17-kill.json.4242.tmp").write_text('{"action": "ki', encoding="utf-8")
    assert inbox.pending() == []
    assert _files(control) == [".17-kill.json.4242.tmp"]


def test_done_moves_the_file_to_done_and_a_second_done_is_harmless(
    paper_run: Path, inbox: ControlInbox
) -> None:
    kill = request_kill(paper_run, "stop").path
    resume = request_resume(paper_run, "go").path
    first, second = inbox.pending()
    inbox.done(first)
    assert _files(paper_run / "control" / "done") == [kill.name]
    assert inbox.pending() == [second]
    inbox.done(first)
    inbox.done(second)
    assert _files(paper_run / "control" / "done") == sorted([kill.name, resume.name])
    assert inbox.pending() == []


def test_malformed_request_files_are_rejected_with_a_warning(
    paper_run: Path, inbox: ControlInbox
) -> None:
    good = request_kill(paper_run, "valid").path
    control = paper_run / "control"
    bad = {
        "1-kill.json": "{not json",
        "2-kill.json": '["a list"]',
        "3-resume.json": json.dumps(
            {"action": "kill", "reason": "r", "requested_at": "2024-01-01T00:00Z", "by": "cli"}
        ),
        "4-kill.json": json.dumps({"action": "kill", "requested_at": "2024-01-01", "by": "x"}),
        "5-kill.json": json.dumps(
            {"action": "kill", "reason": "r", "requested_at": "yesterday", "by": "cli"}
        ),
        "6-kill.json": json.dumps(  # written by hand, past `request`'s rule
            {"action": "kill", "reason": "a\u001b[2Jb", "requested_at": "2024-01-01", "by": "cli"}
        ),
        "notes.json": "{}",
    }
    for name, text in bad.items():
        (control / name).write_text(text, encoding="utf-8")
    with capture_logs() as logs:
        requests = inbox.pending()
    assert [r.path for r in requests] == [good]
    assert _files(control / "rejected") == sorted(bad)
    assert sorted(Path(e["file"]).name for e in logs) == sorted(bad)
    assert {e["event"] for e in logs} == {"control_request_rejected"}
    assert {e["log_level"] for e in logs} == {"warning"}
    reasons = {Path(e["file"]).name: e["reason"] for e in logs}
    assert reasons["3-resume.json"] == "action: expected 'resume' as the name says, was 'kill'"
    assert reasons["4-kill.json"] == "reason: expected a string, was None"
    assert reasons["6-kill.json"] == (
        "reason: one line without control characters, has U+001B (escape) at character 2"
    )
    name_rule = (
        "the name is not <time_ns>-kill.json, <time_ns>-flatten.json, "
        "<time_ns>-resume.json, <time_ns>-swap.json, <time_ns>-promote.json, "
        "<time_ns>-rollback.json or <time_ns>-refused.json"
    )
    assert reasons["notes.json"] == name_rule
    assert inbox.pending() == requests


def test_a_kill_file_is_a_kill_request_on_every_call_until_removed(
    paper_run: Path, inbox: ControlInbox
) -> None:
    kill_file = paper_run / "KILL"
    kill_file.touch()
    for _ in range(3):
        (request,) = inbox.pending()
        assert (request.action, request.by, request.path) == ("kill", "file", kill_file)
        assert request.reason == f"{kill_file} exists"
        inbox.done(request)  # the operator's switch is not consumed
        assert kill_file.exists()
    kill_file.write_text("flash crash\nmore text\n", encoding="utf-8")
    assert [r.reason for r in inbox.pending()] == ["flash crash"]
    # never refused (the operator's switch): its control characters become escapes
    kill_file.write_text("\x1b[31mred\tline\u202e\rrest\n", encoding="utf-8")
    assert [r.reason for r in inbox.pending()] == ["\\x1b[31mred\\tline\\u202e"]
    kill_file.unlink()
    assert inbox.pending() == []


def test_the_kill_file_comes_after_queued_requests(paper_run: Path, inbox: ControlInbox) -> None:
    queued = request_kill(paper_run, "queued").path
    (paper_run / "KILL").touch()
    assert [(r.by, r.path) for r in inbox.pending()] == [
        ("cli", queued),
        ("file", paper_run / "KILL"),
    ]


def test_resume_is_refused_while_the_kill_file_exists(paper_run: Path, inbox: ControlInbox) -> None:
    queued = request_resume(paper_run, "written before the KILL file").path
    (paper_run / "KILL").touch()
    message = (
        f"resume refused: {paper_run / 'KILL'} exists; delete it first "
        "(the run stays halted while it exists)"
    )
    with pytest.raises(KillFileEngaged, match=f"^{re.escape(message)}$"):
        request_resume(paper_run, "too early")
    with capture_logs() as logs:
        assert [r.by for r in inbox.pending()] == ["file"]
    assert _files(paper_run / "control" / "rejected") == [queued.name]
    assert logs[0]["reason"] == f"resume refused: {paper_run / 'KILL'} exists"


def test_a_swap_request_names_its_model_and_fold(paper_run: Path, inbox: ControlInbox) -> None:
    delivery = request_swap(paper_run, Path("registry/run"), 3, "the challenger")
    assert delivery.describe() == (
        f"no process is running in {paper_run}: the swap is checked and applied when it next starts"
    )
    (asked,) = inbox.pending()
    assert (asked.action, asked.reason, asked.by) == ("swap", "the challenger", "cli")
    assert (asked.model, asked.fold) == (str(Path("registry/run").absolute()), 3)
    assert asked.strategy is None  # the run's one strategy
    with pytest.raises(ValueError, match=r"^a swap names its model: send it with request_swap$"):
        request(paper_run, "swap", "no model")
    inbox.done(asked)
    request_swap(paper_run, Path("registry/run"), None, "one of two", strategy="trend_btc")
    (member,) = inbox.pending()
    assert (member.model, member.fold, member.strategy) == (asked.model, None, "trend_btc")


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({"fold": 1}, "model: expected a string, was None"),
        ({"model": "/r", "fold": -1}, "fold: expected a fold number or null, was -1"),
        ({"model": "/r", "fold": "2"}, "fold: expected a fold number or null, was '2'"),
        ({"model": "/r", "fold": True}, "fold: expected a fold number or null, was True"),
        ({"model": "/r", "strategy": 3}, "strategy: expected a strategy's name or null, was 3"),
    ],
)
def test_a_swap_request_without_a_model_or_with_a_bad_fold_is_rejected(
    paper_run: Path, inbox: ControlInbox, payload: dict[str, object], why: str
) -> None:
    control = paper_run / "control"
    control.mkdir()
    asked = {"action": "swap", "reason": "r", "requested_at": "2024-01-01", "by": "cli"}
    (control / "1-swap.json").write_text(json.dumps(asked | payload), encoding="utf-8")
    with capture_logs() as logs:
        assert inbox.pending() == []
    assert [e["reason"] for e in logs] == [why]
    assert _files(control / "rejected") == ["1-swap.json"]


def test_claim_pid_writes_this_pid_and_release_deletes_it(
    paper_run: Path, inbox: ControlInbox
) -> None:
    inbox.claim_pid()
    assert (paper_run / "live.pid").read_text(encoding="utf-8") == f"{os.getpid()}\n"
    inbox.release_pid()
    assert not (paper_run / "live.pid").exists()
    inbox.release_pid()


@pytest.mark.parametrize("content", ["dead", "not a pid\n", "0\n", "-1\n", ""])
def test_a_stale_pid_file_is_replaced(paper_run: Path, inbox: ControlInbox, content: str) -> None:
    text = f"{_dead_pid()}\n" if content == "dead" else content
    (paper_run / "live.pid").write_text(text, encoding="utf-8")
    inbox.claim_pid()
    assert (paper_run / "live.pid").read_text(encoding="utf-8") == f"{os.getpid()}\n"


def test_a_pid_file_naming_a_live_process_is_refused(
    paper_run: Path, inbox: ControlInbox, sleeper: subprocess.Popen[bytes]
) -> None:
    (paper_run / "live.pid").write_text(f"{sleeper.pid}\n", encoding="utf-8")
    message = (
        f"{paper_run} is in use by a running process (pid {sleeper.pid}): stop it first or "
        f"use another run directory (if no tradeloom process has that pid, delete "
        f"{paper_run / 'live.pid'})"
    )
    with pytest.raises(RunDirBusy, match=f"^{re.escape(message)}$") as caught:
        inbox.claim_pid()
    assert caught.value.pid == sleeper.pid
    assert (paper_run / "live.pid").read_text(encoding="utf-8") == f"{sleeper.pid}\n"


def test_a_second_claim_is_refused(paper_run: Path, inbox: ControlInbox) -> None:
    inbox.claim_pid()
    with pytest.raises(RunDirBusy, match=rf"^{re.escape(str(paper_run))} .*\(pid {os.getpid()}\)"):
        ControlInbox(paper_run).claim_pid()
    assert (paper_run / "live.pid").read_text(encoding="utf-8") == f"{os.getpid()}\n"


def test_a_pid_file_naming_this_process_unlocked_is_stale(
    paper_run: Path, inbox: ControlInbox
) -> None:
    # A restarted container often gets the pid its crashed predecessor had.
    (paper_run / "live.pid").write_text(f"{os.getpid()}\n", encoding="utf-8")
    inbox.claim_pid()
    with pytest.raises(RunDirBusy):
        ControlInbox(paper_run).claim_pid()


def test_a_lock_held_over_a_stale_pid_is_refused(paper_run: Path, inbox: ControlInbox) -> None:
    # Another process has locked the file and not yet written its pid.
    (paper_run / "live.pid").write_text(f"{_dead_pid()}\n", encoding="utf-8")
    fd = os.open(paper_run / "live.pid", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        message = (
            f"{paper_run} is in use by another process (it holds the lock on "
            f"{paper_run / 'live.pid'}): stop it first or use another run directory"
        )
        with pytest.raises(RunDirBusy, match=f"^{re.escape(message)}$"):
            inbox.claim_pid()
    finally:
        os.close(fd)
    inbox.claim_pid()


def test_sigusr2_sets_wake_and_requests_nothing(inbox: ControlInbox) -> None:
    inbox.install_signal_handlers()
    os.kill(os.getpid(), signal.SIGUSR2)
    assert inbox.wake.wait(10)
    assert inbox.pending() == []


def test_sigusr1_is_a_kill_request(paper_run: Path, inbox: ControlInbox) -> None:
    inbox.install_signal_handlers()
    os.kill(os.getpid(), signal.SIGUSR1)
    assert inbox.wake.wait(10)
    (request,) = inbox.pending()
    assert (request.action, request.reason, request.by) == ("kill", "signal SIGUSR1", "signal")
    assert request.path is not None
    assert request.path.parent == paper_run / "control"
    inbox.done(request)
    assert inbox.pending() == []


def test_restore_puts_back_the_previous_handlers(inbox: ControlInbox) -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGUSR1, signal.SIGUSR2)}
    inbox.install_signal_handlers()
    assert signal.getsignal(signal.SIGUSR2) != before[signal.SIGUSR2]
    inbox.restore_signal_handlers()
    assert {s: signal.getsignal(s) for s in before} == before


def test_signal_handlers_need_the_main_thread(inbox: ControlInbox) -> None:
    errors: list[BaseException] = []

    def install() -> None:
        try:
            inbox.install_signal_handlers()
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=install)
    thread.start()
    thread.join()
    assert [str(e) for e in errors] == [
        "ControlInbox.install_signal_handlers: call it from the main thread"
    ]


def test_a_live_process_that_does_not_hold_the_lock_is_not_signalled(
    paper_run: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    # A stale pid file whose pid now belongs to another program: SIGUSR2 would end it.
    (paper_run / "live.pid").write_text(f"{sleeper.pid}\n", encoding="utf-8")
    delivery = request_kill(paper_run, "stale")
    assert (delivery.pid, delivery.signalled) == (None, False)
    assert sleeper.poll() is None


def test_delivery_lines() -> None:
    run_dir = Path("runs/x")
    path = run_dir / "control" / "1-kill.json"
    lines = [
        Delivery("kill", run_dir, path, 7, True).describe(),
        Delivery("resume", run_dir, path, 7, True).describe(),
        Delivery("kill", run_dir, path, None, False).describe(),
        Delivery("resume", run_dir, path, None, False).describe(),
        Delivery("kill", run_dir, path, 7, False).describe(),
    ]
    assert lines == [
        "kill requested; the running process (pid 7) will cancel its orders and halt",
        "resume requested; the running process (pid 7) will resume trading",
        "no process is running in runs/x: the kill is latched when it next starts",
        "no process is running in runs/x: the resume is applied when it next starts",
        "kill requested; the running process (pid 7) could not be signalled (permission "
        "denied): it reads runs/x/control/1-kill.json at its next check",
    ]


def test_control_request_is_frozen() -> None:
    request = ControlRequest("kill", "r", pd.Timestamp("2024-01-01", tz="UTC"), "cli", None)
    with pytest.raises(AttributeError):
        request.reason = "other"  # type: ignore[misc]


@pytest.mark.usefixtures("cli_logging")
def test_cli_kill_on_a_paper_run_writes_a_request(
    paper_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["kill", str(paper_run), "--reason", "fat finger"]) == 0
    out, err = capsys.readouterr()
    assert out == f"no process is running in {paper_run}: the kill is latched when it next starts\n"
    assert err == ""
    (request,) = ControlInbox(paper_run).pending()
    assert (request.action, request.reason, request.by) == ("kill", "fat finger", "cli")


@pytest.mark.usefixtures("cli_logging")
@pytest.mark.parametrize(
    ("command", "reason", "problem"),
    [
        ("kill", "two\rlines", "has U+000D (carriage return) at character 4"),
        ("resume", "ok\x1b[2J", "has U+001B (escape) at character 3"),
        ("kill", "tab\there", "has U+0009 (tab) at character 4"),
        ("kill", "\u2028", "has U+2028 (line separator) at character 1"),
        ("kill", "abc\u202egnp.exe", "has U+202E (a format character) at character 4"),
    ],
)
def test_cli_refuses_a_reason_with_a_control_character(
    paper_run: Path, capsys: pytest.CaptureFixture[str], command: str, reason: str, problem: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, str(paper_run), "--reason", reason])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"tradeloom {command}: error: argument --reason: one line without control "
        f"characters, {problem}"
    )
    assert not (paper_run / "control").exists()
    with pytest.raises(ValueError, match=r"^reason: one line without control characters, "):
        request(paper_run, "kill", reason)  # the Python function holds the same rule
    assert not (paper_run / "control").exists()


@pytest.mark.usefixtures("cli_logging")
def test_cli_resume_on_a_paper_run_writes_a_request(
    paper_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["resume", str(paper_run)]) == 0
    assert capsys.readouterr().out == (
        "already active (the kill switch was never engaged); no process is running in "
        f"{paper_run}: the request is journaled when it next starts\n"
    )
    (request,) = ControlInbox(paper_run).pending()
    assert (request.action, request.reason) == ("resume", "requested from the command line")


@pytest.mark.usefixtures("cli_logging")
def test_cli_resume_while_the_kill_file_exists_exits_2(
    paper_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (paper_run / "KILL").touch()
    assert main(["resume", str(paper_run)]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == (
        "",
        f"resume refused: {paper_run / 'KILL'} exists; delete it first "
        "(the run stays halted while it exists)\n",
    )
    assert not (paper_run / "control").exists()


@pytest.mark.usefixtures("cli_logging")
@pytest.mark.parametrize("command", ["kill", "resume"])
def test_cli_refuses_what_is_not_a_paper_or_live_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    backtest = _run_dir(tmp_path / "bt", "backtest")
    empty = tmp_path / "empty"
    empty.mkdir()
    not_sqlite = tmp_path / "junk"
    not_sqlite.mkdir()
    (not_sqlite / "journal.sqlite").write_text("not a database", encoding="utf-8")
    expected = {
        backtest: f"{backtest} is a backtest run; only paper and live runs have a kill switch",
        tmp_path / "missing": f"{tmp_path / 'missing'}: no such run directory",
        empty: f"{empty}: not a run directory (no journal.sqlite)",
        not_sqlite: f"{not_sqlite / 'journal.sqlite'}: not a SQLite database (damaged, or "
        f"another kind of file); no process is running in {not_sqlite}, so nothing trades "
        "there: nothing was latched",
    }
    for run_dir, line in expected.items():
        assert main([command, str(run_dir)]) == 2
        assert capsys.readouterr() == ("", f"{line}\n")
        assert not (run_dir / "control").exists()


def test_request_functions_validate_the_run_dir(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"no such run directory$"):
        request_kill(tmp_path / "missing", "x")
    assert not (tmp_path / "missing").exists()


@pytest.mark.usefixtures("cli_logging")
def test_cli_kill_wakes_the_running_process(
    paper_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(paper_run)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        ready = child.stdout.readline()
        assert ready == "ready\n", child.communicate(timeout=60)
        assert main(["kill", str(paper_run), "--reason", "halt now"]) == 0
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == 0, err
    assert capsys.readouterr().out == (
        f"kill requested; the running process (pid {child.pid}) will cancel its orders and halt\n"
    )
    assert (paper_run / "child.txt").read_text() == "True ['kill:cli:halt now']"
    assert not (paper_run / "live.pid").exists()


@pytest.mark.usefixtures("cli_logging")
def test_a_running_run_is_killed_when_the_journal_cannot_be_read_here(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # what the operator needs is the run stopped: a damaged journal, one of another
    # format, a PostgreSQL journal whose URL's variable this shell lacks...
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "journal.sqlite").write_text("not a database", encoding="utf-8")
    child = _child(run_dir)
    assert main(["kill", str(run_dir), "--reason", "stop it"]) == 0
    assert _woken(child, run_dir) == "True ['kill:cli:stop it']"
    assert capsys.readouterr() == (
        f"kill requested; the running process (pid {child.pid}) will cancel its orders and "
        f"halt (the journal cannot be read here: {run_dir / 'journal.sqlite'}: not a SQLite "
        "database (damaged, or another kind of file))\n",
        "",
    )


@pytest.mark.usefixtures("cli_logging")
@pytest.mark.parametrize("flatten", [False, True])
def test_a_kill_goes_by_sigusr1_when_control_cannot_be_written(
    paper_run: Path, capsys: pytest.CaptureFixture[str], flatten: bool
) -> None:
    (paper_run / "control").write_text("in the way", encoding="utf-8")
    child = _child(paper_run)
    code = main(["kill", str(paper_run), *(["--flatten"] if flatten else [])])
    assert _woken(child, paper_run) == "True ['kill:signal:signal SIGUSR1']"
    line = (
        f"{'flatten' if flatten else 'kill'} could not be written ({paper_run / 'control'}: "
        f"File exists): sent SIGUSR1, a kill; the running process (pid {child.pid}) will "
        "cancel its orders and halt"
    )
    if flatten:  # halted, not flattened: exit 1
        line += "; it does not flatten: close the positions at the venue"
    assert (code, capsys.readouterr()) == (1 if flatten else 0, (line + "\n", ""))


def test_no_process_and_no_mailbox_is_one_line(paper_run: Path) -> None:
    (paper_run / "control").write_text("in the way", encoding="utf-8")
    with pytest.raises(
        UserError,
        match=r"^(.+)/control: the request cannot be written \(\1/control: File exists\)$",
    ):
        request_kill(paper_run, "x")


@pytest.mark.usefixtures("cli_logging")
def test_a_kill_of_a_run_the_kill_switch_holds_answers_already_halted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = _run_dir(
        tmp_path / "run", "paper", ("HALTED", "KILL_SWITCH", "fat finger (by console)")
    )
    assert main(["kill", str(run_dir), "--reason", "again"]) == 0
    assert capsys.readouterr() == (
        "already halted at 2024-01-02T03:04:05Z by the kill switch (fat finger (by console)); "
        f"no process is running in {run_dir}: the request is journaled when it next starts\n",
        "",
    )
    (waiting,) = ControlInbox(run_dir).pending()  # journaled all the same: who asked
    assert (waiting.action, waiting.reason, waiting.by) == ("kill", "again", "cli")
    # a request waits: what the run will be when this one is read is not known here
    assert request_resume(run_dir, "lift").already is None
    assert request_kill(run_dir, "and again").already is None


def test_a_resume_says_whether_the_run_is_active_already(tmp_path: Path) -> None:
    resumed = _run_dir(
        tmp_path / "resumed",
        "paper",
        ("HALTED", "KILL_SWITCH", "k"),
        ("ACTIVE", "RESUME", "all clear (by api)"),
    )
    delivery = request_resume(resumed, "x")
    assert delivery.already == "active since 2024-01-02T03:05:05Z (RESUME: all clear (by api))"
    killed = _run_dir(tmp_path / "killed", "paper", ("HALTED", "KILL_SWITCH", "k"))
    assert (request_resume(killed, "x").already, request_kill(killed, "x").already) == (
        None,
        None,  # the resume waits: the kill may find the run active
    )
    drawdown = _run_dir(tmp_path / "drawdown", "live", ("HALTED", "MAX_DRAWDOWN_HALT", "dd"))
    delivery = request_resume(drawdown, "x")
    assert delivery.already is None
    assert delivery.describe() == (
        f"no process is running in {drawdown}: the resume is applied when it next starts "
        "(the run is HALTED since 2024-01-02T03:04:05Z by MAX_DRAWDOWN_HALT (dd), which a "
        "resume does not lift)"
    )
    flatten = request(
        _run_dir(tmp_path / "f", "paper", ("HALTED", "KILL_SWITCH", "k")), "flatten", "x"
    )
    assert flatten.already is None  # a flatten closes what is still held


@pytest.mark.parametrize("by", ["cli", "console", "api"])
def test_a_request_names_who_asked(paper_run: Path, inbox: ControlInbox, by: str) -> None:
    request(paper_run, "kill", "r", by=by)  # type: ignore[arg-type]
    (asked,) = inbox.pending()
    assert asked.by == by


def test_a_process_that_takes_no_requests_is_not_signalled(tmp_path: Path) -> None:
    # a backtest holds the pid file too; SIGUSR2 would end it
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "journal.sqlite").write_text("not a database", encoding="utf-8")
    holder = ControlInbox(run_dir)  # this process, no handler for SIGUSR2: made so here,
    # whatever the worker held before (the conftest puts it back after the test)
    previous = signal.signal(signal.SIGUSR2, signal.SIG_DFL)
    holder.claim_pid()
    try:
        with pytest.raises(UserError) as raised:
            request_kill(run_dir, "x")
    finally:
        holder.release_pid()
        signal.signal(signal.SIGUSR2, previous)
    assert str(raised.value) == (
        f"{run_dir / 'journal.sqlite'}: not a SQLite database (damaged, or another kind of "
        f"file); the process running {run_dir} (pid {os.getpid()}) takes no requests (a "
        "backtest?): nothing was sent"
    )
    assert not (run_dir / "control").exists()


@pytest.mark.parametrize(
    "ns",
    [
        0,
        789,
        1_000,
        123_456_000,
        1_764_288_000_000_000_000,  # whole seconds: no fraction
        1_764_288_000_100_000_000,  # whole microseconds: 6 digits
        1_764_288_000_123_456_789,  # 9 digits
        1_764_288_000_000_000_789,
    ],
)
def test_a_request_names_its_time_as_pandas_would(ns: int) -> None:
    """The request file's time is written without pandas, and reads back to its value."""
    text = _iso_ns(ns)
    assert text == pd.Timestamp(ns, tz="UTC").isoformat()
    assert pd.Timestamp(text).value == ns
