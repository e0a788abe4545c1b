"""The hostile-state corpus: damaged state on disk, answered in one line by every command.

A run directory, a sweep directory or an output folder as a crashing machine or a hostile
user leaves it: a FIFO or ``/dev/zero`` in place of a file, random bytes, JSON nested a
hundred thousand levels deep, a text cell in a numeric column, a directory where a file
goes, a symbolic link out of the folder, a user's file of the name a command writes. Each
case runs the command bounded by a timeout (a hang fails the test, never the suite) and
asserts exit 2 with one line naming the path, no traceback, and that nothing outside the
folder changed. Each failed before the fix (issue 25).

A case that could hang in a system call (a FIFO or ``/dev/zero`` read where a file
goes), a signal at start-up, a paper run and a sweep that runs its variants start the
real command in a subprocess (`tradeloom`); the others call its `main` in this process
(`in_process`: a process start costs a second or two of imports per case), under an
alarm that fails the test at the same timeout.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from tests import forkserver
from tests.pg_server import PG_URL
from tradeloom.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
STRATEGY = ROOT / "tests" / "sweep" / "small_strategy.yaml"
FAST = ["--set", "data.bars=700", "--set", "model.walk_forward.train_window=300"]
TIMEOUT = 120.0
"""Longest a command may take on a damaged state: a guard against a hang, not a benchmark
(a loaded CI machine takes ~5 s to import and answer)."""


_CACHE = tempfile.mkdtemp(prefix="tradeloom-hostile-cache-")
"""The commands' user cache: empty, and never the checkout's."""


@dataclass(frozen=True)
class Answer:
    code: int
    out: str
    err: str


def tradeloom(*args: str | Path, cwd: Path | None = None, timeout: float = TIMEOUT) -> Answer:
    """Run the CLI in a subprocess; a hang past ``timeout`` fails the test."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRADELOOM_CACHE": _CACHE}
    try:
        done = forkserver.run(
            [sys.executable, "-m", "tradeloom.cli.main", "--quiet", *map(str, args)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"tradeloom {' '.join(map(str, args))}: no answer in {timeout:.0f} s (a hang)")
    return Answer(done.returncode, done.stdout, done.stderr)


class _Hang(BaseException):
    """Raised by the alarm in a command run in this process: no answer in time."""


@contextlib.contextmanager
def _alarm(seconds: float, what: str) -> Iterator[None]:
    """Fail the test if the block takes longer than ``seconds`` (SIGALRM; main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def ring(signum: int, frame: FrameType | None) -> None:
        raise _Hang

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except _Hang:
        pytest.fail(f"tradeloom {what}: no answer in {seconds:.0f} s (a hang)")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _cache_env() -> Iterator[None]:
    saved = os.environ.get("TRADELOOM_CACHE")
    os.environ["TRADELOOM_CACHE"] = _CACHE
    try:
        yield
    finally:
        if saved is None:
            del os.environ["TRADELOOM_CACHE"]
        else:
            os.environ["TRADELOOM_CACHE"] = saved


def in_process(*args: str | Path, cwd: Path | None = None, timeout: float = TIMEOUT) -> Answer:
    """Run the CLI's `main` in this process, as `tradeloom` does; a hang past ``timeout``
    fails the test."""
    argv = ["--quiet", *map(str, args)]
    out, err = io.StringIO(), io.StringIO()
    with (
        _alarm(timeout, " ".join(argv[1:])),
        contextlib.chdir(cwd or Path.cwd()),
        _cache_env(),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            code = main(argv)
        except SystemExit as stop:  # argparse's answer to a bad command line
            code = stop.code if isinstance(stop.code, int) else 2
    return Answer(code, out.getvalue(), err.getvalue())


def one_line(answer: Answer, code: int = 2) -> str:
    """Assert exit ``code`` with one line on stderr, no traceback; return the line."""
    assert "Traceback" not in answer.out + answer.err, answer.err[-2000:]
    assert answer.code == code, f"exit {answer.code}: {answer.err[-2000:]}"
    lines = answer.err.strip().splitlines()
    assert len(lines) == 1, answer.err
    return lines[0]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short backtest's run directory, made once; each test damages a copy."""
    out = tmp_path_factory.mktemp("finished") / "run"
    answer = tradeloom("run", STRATEGY, "--out", out, *FAST, timeout=600)
    assert answer.code == 0, answer.err
    return out


@pytest.fixture
def run_copy(finished_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy


# --- the safe reader: journals, pointers, metrics, tables ----------------------------


@pytest.mark.parametrize("command", [["journal", "verify"], ["status"], ["report"], ["kill"]])
def test_a_fifo_in_place_of_the_journal_is_answered_at_once(
    run_copy: Path, command: list[str]
) -> None:
    journal = run_copy / "journal.sqlite"
    journal.unlink()
    os.mkfifo(journal)
    line = one_line(tradeloom(*command, run_copy))
    assert line == (
        f"{journal}: is a FIFO (named pipe), not a regular file (a journal file)"
        + _nothing_latched(command, run_copy)
    )


@pytest.mark.parametrize("command", [["journal", "verify"], ["status"], ["report"], ["kill"]])
def test_random_bytes_as_the_journal_are_one_line(run_copy: Path, command: list[str]) -> None:
    journal = run_copy / "journal.sqlite"
    journal.write_bytes(os.urandom(1) + bytes(range(256)) * 64)
    line = one_line(in_process(*command, run_copy))
    assert line == (
        f"{journal}: not a SQLite database (damaged, or another kind of file)"
        + _nothing_latched(command, run_copy)
    )


def _nothing_latched(command: list[str], run_dir: Path) -> str:
    """What ``kill`` adds to a journal's error: that nothing runs the folder."""
    if command != ["kill"]:
        return ""
    return f"; no process is running in {run_dir}, so nothing trades there: nothing was latched"


def test_status_does_not_hang_on_a_strategy_file_linked_to_dev_zero(run_copy: Path) -> None:
    strategy = run_copy / "strategy.yaml"
    strategy.unlink()
    strategy.symlink_to("/dev/zero")
    answer = tradeloom("status", run_copy)
    # the strategy file only tells the timeframe: the journal says the rest
    assert answer.code == 0, answer.err
    assert "Traceback" not in answer.err and "bars" in answer.out


def test_report_does_not_hang_on_a_strategy_file_that_is_a_fifo(run_copy: Path) -> None:
    strategy = run_copy / "strategy.yaml"
    strategy.unlink()
    os.mkfifo(strategy)
    answer = tradeloom("report", run_copy)
    assert answer.code == 0, answer.err
    assert answer.out.strip() == str(run_copy / "report.html")


@pytest.mark.parametrize("command", [["report"], ["compare"]])
def test_deeply_nested_metrics_are_one_line(run_copy: Path, command: list[str]) -> None:
    (run_copy / "metrics.json").write_text("[" * 100_000 + "]" * 100_000)
    dirs = [run_copy, run_copy] if command == ["compare"] else [run_copy]
    line = one_line(in_process(*command, *dirs, cwd=run_copy.parent))
    assert line == (
        f"{run_copy}/metrics.json: nests more than 64 levels deep; a run's metrics never "
        "does: damaged, or another file"
    )


_LAUGHS = "".join(
    [
        'lol0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n',
        *(f"lol{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10)),
    ]
)
"""A "billion laughs": ten levels of ten aliases, 10^10 strings once expanded (hung each
command at 5 GB before the safe reader capped a document's values, issue 44)."""


@pytest.mark.parametrize("command", [["status"], ["report"], ["compare"]])
def test_a_yaml_bomb_in_the_strategy_file_is_one_line_at_once(
    run_copy: Path, command: list[str]
) -> None:
    strategy = run_copy / "strategy.yaml"
    strategy.write_text(strategy.read_text() + _LAUGHS)
    dirs = [run_copy, run_copy] if command == ["compare"] else [run_copy]
    started = time.monotonic()
    # the bound is a hang's guard on a loaded machine; an idle one answers in 0.1 s
    line = one_line(in_process(*command, *dirs, cwd=run_copy.parent, timeout=20))
    assert time.monotonic() - started < 20
    assert line == (
        f"{strategy}: more than 100,000 values once its aliases are expanded; a run's "
        "strategy file never has so many: damaged, or another file"
    )


def test_an_orders_table_of_random_bytes_is_one_line(run_copy: Path) -> None:
    orders = run_copy / "orders.csv"
    orders.write_bytes(b"id,reason\n" + bytes(range(256)) * 8)
    line = one_line(in_process("report", run_copy))
    assert line.startswith(f"{orders}: not ")
    assert line.endswith("damaged, or not a run's table")


def test_metrics_of_random_bytes_are_one_line(run_copy: Path) -> None:
    (run_copy / "metrics.json").write_bytes(b'{"a": "\xff\xfe\x00"}')
    line = one_line(in_process("report", run_copy))
    assert line == (
        f"{run_copy}/metrics.json: not UTF-8 text (byte 0xff at offset 7): damaged, or not "
        "a run's metrics"
    )


@pytest.mark.parametrize("command", [["journal", "verify"], ["status"]])
def test_a_deeply_nested_journal_pointer_is_one_line(run_copy: Path, command: list[str]) -> None:
    (run_copy / "journal.sqlite").unlink()
    (run_copy / "journal.json").write_text('{"a":' * 100_000 + "1" + "}" * 100_000)
    line = one_line(in_process(*command, run_copy))
    assert line == (
        f"{run_copy}/journal.json: nests more than 64 levels deep; a journal pointer never "
        "does: damaged, or another file"
    )


@pytest.mark.parametrize("command", [["report"], ["status"]])
def test_a_text_cell_in_the_equity_curve_is_one_line(run_copy: Path, command: list[str]) -> None:
    path = run_copy / "equity.csv"
    lines = path.read_text().splitlines()
    cells = lines[5].split(",")
    cells[1] = "hello"
    lines[5] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    line = one_line(in_process(*command, run_copy))
    assert line == (
        f"{path}:6: column close: expected a number, was 'hello'; damaged, or not a run's table"
    )


# --- the safe writer ------------------------------------------------------------------


def test_report_refuses_a_report_html_that_is_a_directory(run_copy: Path) -> None:
    (run_copy / "report.html").unlink()
    (run_copy / "report.html" / "keep").mkdir(parents=True)
    line = one_line(in_process("report", run_copy))
    assert line == f"{run_copy}/report.html: is a directory; refusing to replace it: remove it"
    assert (run_copy / "report.html" / "keep").is_dir()


def test_report_refuses_to_write_through_a_link_out_of_the_run(
    run_copy: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("the user's file\n")
    (run_copy / "report.html").unlink()
    (run_copy / "report.html").symlink_to(outside)
    line = one_line(in_process("report", run_copy))
    assert line.startswith(f"{run_copy}/report.html: is a symbolic link to {outside}, outside ")
    assert outside.read_text() == "the user's file\n"


def test_compare_refuses_to_write_through_a_link_out_of_the_folder(
    finished_run: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("the user's file\n")
    folder = tmp_path / "pages"
    folder.mkdir()
    (folder / "compare.html").symlink_to(outside)
    line = one_line(
        in_process("compare", finished_run, finished_run, "--out", folder / "compare.html")
    )
    assert line == (
        f"{folder}/compare.html: is a symbolic link to {outside}, outside {folder}; refusing "
        "to write through it: remove the link or give another --out"
    )
    assert outside.read_text() == "the user's file\n"


def test_compare_refuses_a_dangling_link(finished_run: Path, tmp_path: Path) -> None:
    (tmp_path / "compare.html").symlink_to(tmp_path / "gone" / "x.html")
    answer = in_process(
        "compare", finished_run, finished_run, "--out", "compare.html", cwd=tmp_path
    )
    line = one_line(answer)
    assert line == (
        f"compare.html: is a symbolic link to {tmp_path}/gone/x.html, which does not exist "
        "in .; refusing "
        "to write through it: remove the link or give another --out"
    )


def test_compare_never_replaces_a_users_file_but_rewrites_its_own(
    finished_run: Path, tmp_path: Path
) -> None:
    mine = tmp_path / "mine.html"
    mine.write_text("the user's page\n")
    line = one_line(in_process("compare", finished_run, finished_run, "--out", mine))
    assert line == (
        f"{mine}: exists and was not written by tradeloom; refusing to replace it: move it "
        "away or give another --out"
    )
    assert mine.read_text() == "the user's page\n"
    ours = tmp_path / "ours.html"
    for _ in range(2):  # the second run replaces the page the first one wrote
        answer = in_process("compare", finished_run, finished_run, "--out", ours)
        assert answer.code == 0, answer.err
    assert (tmp_path / ".tradeloom-owned").read_text() == "ours.html\n"


def test_compare_refuses_an_empty_out(finished_run: Path, tmp_path: Path) -> None:
    line = one_line(in_process("compare", finished_run, finished_run, "--out", "", cwd=tmp_path))
    assert line == "--out: expected a folder or file name, was empty (use . for here)"
    assert list(tmp_path.iterdir()) == []


# --- sweeps ---------------------------------------------------------------------------

SWEEP = ["--grid", "signal.threshold=0.02,0.06", "--objective", "total_return", *FAST]


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-variant sweep's directory, made once; each test damages a copy."""
    out = tmp_path_factory.mktemp("swept") / "sweep"
    answer = tradeloom("sweep", STRATEGY, *SWEEP, "--out", out, timeout=600)
    assert answer.code == 0, answer.err
    return out


@pytest.fixture
def sweep_copy(finished_sweep: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "sweep"
    shutil.copytree(finished_sweep, copy)
    return copy


def _leaderboard(sweep_dir: Path) -> list[tuple[str, float]]:
    import pandas as pd

    frame = pd.read_parquet(sweep_dir / "results.parquet")
    return sorted(zip(frame["key"], frame["total_return"], strict=True))


def test_a_part_with_an_edited_metric_is_run_again_not_used(sweep_copy: Path) -> None:
    before = _leaderboard(sweep_copy)
    part = next((sweep_copy / "parts").glob("*.json"))
    rows = json.loads(part.read_text())
    rows[0]["total_return"] = 99.0  # a flattering edit that would top the leaderboard
    part.write_text(json.dumps(rows))
    answer = tradeloom("sweep", STRATEGY, *SWEEP, "--out", sweep_copy)
    assert answer.code == 0, answer.err
    assert "damaged parts, their variants run again: 1 (" in answer.out
    assert "differ from its digest (damaged or edited)" in answer.out
    assert _leaderboard(sweep_copy) == before


def test_a_part_of_random_bytes_is_run_again(sweep_copy: Path) -> None:
    before = _leaderboard(sweep_copy)
    for part in (sweep_copy / "parts").glob("*.npy"):
        part.write_bytes(os.urandom(300))
    answer = tradeloom("sweep", STRATEGY, *SWEEP, "--out", sweep_copy)
    assert answer.code == 0, answer.err
    assert "damaged parts, their variants run again" in answer.out
    assert _leaderboard(sweep_copy) == before


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (b"\x89\xfe random", "not UTF-8 text (byte 0x89 at offset 0): damaged, or not a sweep's"),
        (b"[" * 50_000, "nests more than 64 levels deep; a sweep's sweep.json never does"),
        (b"[1, 2]", "not a sweep's sweep.json (not an object): damaged"),
    ],
)
def test_a_damaged_sweep_json_is_one_line(sweep_copy: Path, damage: bytes, expected: str) -> None:
    (sweep_copy / "sweep.json").write_bytes(damage)
    line = one_line(in_process("sweep", STRATEGY, *SWEEP, "--out", sweep_copy))
    assert line.startswith(f"{sweep_copy}/sweep.json: {expected}")
    assert line.endswith("; delete the sweep directory and run the sweep again")


@pytest.mark.parametrize("name", ["sweep.html", "results.parquet"])
def test_sweep_never_replaces_a_users_files(tmp_path: Path, name: str) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / name).write_text("the user's file\n")
    line = one_line(in_process("sweep", STRATEGY, *SWEEP, "--out", out))
    assert line == (
        f"{out}/{name}: exists and was not written by tradeloom; refusing to replace it: "
        "move it away or give another --out"
    )
    assert (out / name).read_text() == "the user's file\n"
    assert sorted(p.name for p in out.iterdir()) == [name]


def test_sweep_refuses_an_empty_out(tmp_path: Path) -> None:
    line = one_line(in_process("sweep", STRATEGY, *SWEEP, "--out", "", cwd=tmp_path))
    assert line == "--out: expected a folder or file name, was empty (use . for here)"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option", ["--out", "--cache-dir"])
@pytest.mark.parametrize("given", ["file", "/dev/null", "dangling"])
def test_sweep_folders_that_are_not_folders_are_one_line(
    tmp_path: Path, option: str, given: str
) -> None:
    if given == "file":
        target = tmp_path / "results.txt"
        target.write_text("a file\n")
        kind = "a file"
    elif given == "dangling":
        target = tmp_path / "link"
        target.symlink_to(tmp_path / "gone")
        kind = ""
    else:
        target = Path(given)
        kind = "a character device"
    extra = ["--out", tmp_path / "sweep"] if option == "--cache-dir" else []
    line = one_line(in_process("sweep", STRATEGY, *SWEEP, option, target, *extra))
    if kind:
        assert line == f"{option} {target}: is {kind}, not a folder; give a folder"
    else:
        assert line == (
            f"{option} {target}: is a symbolic link to {tmp_path}/gone, which does not exist; "
            "give a folder"
        )


def test_a_variant_of_another_strategys_sweep_is_refused(
    finished_sweep: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(STRATEGY.read_text().replace("seed: 7", "seed: 8"))
    line = one_line(
        in_process("run", other, "--variant", f"{finished_sweep}:0", "--out", tmp_path / "r")
    )
    swept = hashlib.sha256(STRATEGY.read_bytes()).hexdigest()[:12]
    given = hashlib.sha256(other.read_bytes()).hexdigest()[:12]
    assert line == (
        f"--variant: {finished_sweep} is a sweep of another strategy file (sha256 {swept}), "
        f"not of {other} (sha256 {given}); run the file that was swept"
    )
    assert not (tmp_path / "r").exists()


def test_a_random_draw_from_a_huge_grid_validates_only_what_it_drew() -> None:
    from tradeloom.sweep.space import parse_grid
    from tradeloom.sweep.variants import StrategySource, check_variants

    space = parse_grid(
        ["signal.threshold=0.00001:1:0.00001", "risk.sizing.fraction=0.00001:1:0.00001"]
    )
    assert space.size == 100_000**2  # 1e10 combinations: enumerating them never ends
    source = StrategySource(STRATEGY)
    checked_overrides: list[list[str]] = []
    problems = source.problems

    def counted(overrides: Any) -> Any:
        checked_overrides.append(list(overrides))
        return problems(overrides)

    source.problems = counted  # type: ignore[method-assign]
    started = time.perf_counter()
    variants = space.sample(5, seed=3)
    checked = check_variants(source, space.axes, variants)
    assert time.perf_counter() - started < TIMEOUT
    assert len(checked) == 5
    # the base file once, then each drawn value of each axis alone: 1 + 2 x 5
    assert len(checked_overrides) == 1 + 2 * 5


# --- everything else: alerts, PostgreSQL, plugins, signals ----------------------------


def _strategy_with(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "strategy.yaml"
    path.write_text(STRATEGY.read_text() + extra)
    return path


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "https://", "hook"])
def test_an_alert_url_that_is_not_http_is_refused_at_validation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("HOSTILE_HOOK", url)
    path = _strategy_with(
        tmp_path,
        'live:\n  alerts:\n    targets:\n      - {kind: webhook, url: "${HOSTILE_HOOK}"}\n',
    )
    line = one_line(in_process("validate", path))
    assert line == (
        f"{path}:46:30 live.alerts.targets.0.url: must hold an http:// or https:// URL with a "
        "host; it holds another scheme or no URL (not shown: it may carry a token), was "
        "${HOSTILE_HOOK}"
    )


def test_an_https_alert_url_validates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOSTILE_HOOK", "https://hooks.example.com/T0/B0/x")
    path = _strategy_with(
        tmp_path,
        'live:\n  alerts:\n    targets:\n      - {kind: webhook, url: "${HOSTILE_HOOK}"}\n',
    )
    answer = in_process("validate", path)
    assert answer.code == 0, answer.err


@pytest.mark.parametrize("schema", ["pg_catalog", "pg_toast", "information_schema"])
def test_a_postgresql_system_schema_is_refused_at_validation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, schema: str
) -> None:
    monkeypatch.setenv("HOSTILE_JOURNAL", PG_URL)
    path = _strategy_with(tmp_path, f"journal:\n  url: ${{HOSTILE_JOURNAL}}\n  schema: {schema}\n")
    for command in (["validate"], ["run", "--out", tmp_path / "r"]):
        line = one_line(in_process(command[0], path, *command[1:]))
        assert line == (
            f"{path}:45:11 journal.schema: '{schema}' is a PostgreSQL system schema name (pg_* "
            "and information_schema are reserved); name the journal's own schema, such as "
            f"tradeloom, was '{schema}'"
        )
    assert not (tmp_path / "r").exists()


@pytest.fixture
def scratch_role() -> Iterator[str]:
    """A login of its own on the test server's database, dropped after with what it owns.

    A login, not a database: PostgreSQL 15 checkpoints at every ``DROP DATABASE``, which
    took 24-30 s a test under the suite's journal writes (two tests: the suite's slowest
    teardowns); a role is made and dropped in milliseconds.
    """
    import psycopg

    name = f"hostile_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as db:
        db.execute(f'CREATE ROLE "{name}" LOGIN')  # type: ignore[arg-type]
    try:
        yield name
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as db:
            db.execute(f'DROP OWNED BY "{name}"')  # type: ignore[arg-type]
            db.execute(f'DROP ROLE "{name}"')  # type: ignore[arg-type]


_DATABASE = PG_URL.rsplit("/", 1)[1]


def _url_of(user: str) -> str:
    base = PG_URL.rsplit("/", 1)[0].split("://", 1)[1].split("@", 1)[1]
    return f"postgresql://{user}@{base}/{_DATABASE}"


def test_a_read_only_journal_database_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scratch_role: str
) -> None:
    import psycopg

    # the database is read-only to this login, which may otherwise create the schema
    with psycopg.connect(PG_URL, autocommit=True) as db:
        db.execute(f'GRANT CREATE ON DATABASE "{_DATABASE}" TO "{scratch_role}"')  # type: ignore[arg-type]
        db.execute(
            f'ALTER ROLE "{scratch_role}" IN DATABASE "{_DATABASE}" '  # type: ignore[arg-type]
            "SET default_transaction_read_only = on"
        )
    monkeypatch.setenv("HOSTILE_JOURNAL", _url_of(scratch_role))
    path = _strategy_with(tmp_path, "journal:\n  url: ${HOSTILE_JOURNAL}\n  schema: hostile\n")
    line = one_line(in_process("run", path, "--out", tmp_path / "r", *FAST))
    assert line == (
        "${HOSTILE_JOURNAL}: the PostgreSQL journal cannot be written in schema hostile (cannot "
        "execute CREATE SCHEMA in a read-only transaction); give a writable database and a "
        "login that may create the schema and insert into it; nothing was written"
    )


def test_a_login_without_the_right_to_create_the_schema_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scratch_role: str
) -> None:
    monkeypatch.setenv("HOSTILE_JOURNAL", _url_of(scratch_role))
    path = _strategy_with(tmp_path, "journal:\n  url: ${HOSTILE_JOURNAL}\n  schema: hostile\n")
    line = one_line(in_process("run", path, "--out", tmp_path / "r", *FAST))
    assert line == (
        f"${{HOSTILE_JOURNAL}}: the PostgreSQL journal cannot be written in schema hostile "
        f"(permission denied for database {_DATABASE}); give a writable database and a "
        "login that may create the schema and insert into it; nothing was written"
    )


@pytest.mark.parametrize("code", ["0", "3", "'bye'"])
def test_a_plugin_that_exits_at_import_is_an_error_naming_it(tmp_path: Path, code: str) -> None:
    module = "hostile_exit_" + code.strip("'")
    (tmp_path / f"{module}.py").write_text(f"import sys\nsys.exit({code})\n")
    path = _strategy_with(tmp_path, f"plugins: [{module}]\n")
    line = one_line(in_process("validate", path, cwd=tmp_path))
    assert line == (
        f"{path}:43:11 plugins.0: cannot import plugin module '{module}': it called "
        f"sys.exit({code}) while being imported"
    )


@pytest.mark.parametrize("delay", [0.05, 0.3, 0.8, 1.5, 3.0])
def test_sigterm_at_any_moment_of_start_up_leaves_no_run_without_a_stop(
    tmp_path: Path, delay: float
) -> None:
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tradeloom.cli.main",
            "--quiet",
            "run",
            STRATEGY,
            "--mode",
            "paper",
            "--clock",
            "simulated",
            "--speed",
            "max",
            "--max-bars",
            "3",
            "--out",
            run_dir,
            *FAST,
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(delay)  # a moment of start-up, not a wait for something to happen
    process.send_signal(signal.SIGTERM)
    try:
        out, err = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"no exit {TIMEOUT:.0f} s after SIGTERM (a hang)")
    assert "Traceback" not in out + err, err[-2000:]
    journal = run_dir / "journal.sqlite"
    if not journal.exists():
        # killed before anything was made: nothing to journal, nothing was sent
        assert process.returncode in (0, -signal.SIGTERM, 143), err
        return
    from tradeloom.journal import RunStarted, RunStopped, read_events

    runs = list(read_events(journal, [RunStarted, RunStopped]))
    assert isinstance(runs[-1], RunStopped), runs
    if process.returncode in (-signal.SIGTERM, 143):
        # the 3-bar run had ended and journaled its stop; the signal met the exit
        return
    assert process.returncode == 0, err[-2000:]
    assert out.startswith(f"paper run {run_dir}: ")


@pytest.mark.parametrize(("given", "kind"), [("dangling", ""), ("/dev/null", "a character device")])
def test_run_out_that_is_not_a_folder_is_one_line(tmp_path: Path, given: str, kind: str) -> None:
    target = Path(given)
    if given == "dangling":
        target = tmp_path / "link"
        target.symlink_to(tmp_path / "gone")
    line = one_line(in_process("run", STRATEGY, "--out", target, *FAST))
    if kind:
        assert line == f"--out {target}: is {kind}, not a folder; give a folder"
    else:
        assert line == (
            f"--out {target}: is a symbolic link to {tmp_path}/gone, which does not exist; "
            "give a folder"
        )


@pytest.mark.parametrize("damage", ["fifo", "random bytes"])
def test_a_paper_restart_on_a_damaged_journal_is_one_line(tmp_path: Path, damage: str) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    journal = run_dir / "journal.sqlite"
    if damage == "fifo":
        os.mkfifo(journal)
        expected = f"{journal}: is a FIFO (named pipe), not a regular file (a journal file)"
    else:
        journal.write_bytes(bytes(range(256)) * 200)
        expected = f"{journal}: not a SQLite database (damaged, or another kind of file)"
    paper = ["--mode", "paper", "--clock", "simulated", "--speed", "max", "--max-bars", "2"]
    line = one_line(tradeloom("run", STRATEGY, *paper, "--out", run_dir, *FAST))
    assert line == expected
    assert sorted(p.name for p in run_dir.iterdir()) == ["journal.sqlite"]  # nothing written


def test_a_paper_folder_whose_journal_was_deleted_is_refused_naming_its_tail_record(
    tmp_path: Path,
) -> None:
    # the tail record says a journal ended here: its run may have sent orders that no
    # journal names any more, so the folder is not started afresh (nor called another's)
    run_dir = tmp_path / "run"
    paper = ["--mode", "paper", "--clock", "simulated", "--speed", "max", "--max-bars", "2"]
    first = tradeloom("run", STRATEGY, *paper, "--out", run_dir, *FAST)
    assert first.code == 0, first.err
    for journal in run_dir.glob("journal.sqlite*"):
        if not journal.name.endswith(".tail"):
            journal.unlink()
    before = sorted(p.name for p in run_dir.iterdir())
    line = one_line(tradeloom("run", STRATEGY, *paper, "--out", run_dir, *FAST))
    assert line == (
        f"--out {run_dir}: holds journal.sqlite.tail, the tail record of a journal that is "
        "not there (journal.sqlite was moved or deleted): what its run sent is unknown "
        "without it; put it back, or give a new folder"
    )
    assert sorted(p.name for p in run_dir.iterdir()) == before  # nothing written
