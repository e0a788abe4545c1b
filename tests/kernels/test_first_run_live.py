"""A paper or live run's first run: kernels as Python until the background compile has
cached them, then compiled from a bar boundary on; the same run files either way.

The comparison runs the README's strategy (shortened) as a paper run on the simulated
clock three ways: compiled (``TRADELOOM_FIRST_RUN=compile``), as Python from its first bar
to its last (``python``, on an empty kernel cache that it must leave empty), and as Python
until a background compile ends after 80 bar boundaries, then compiled
(first_run_switch.py); and compares every file of the run folders as
tests/kernels/test_first_run.py does for backtests: a number that moved by one bit fails it.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests import forkserver
from tradeloom.kernels import first_run, jit
from tradeloom.kernels.first_run import ENV

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from compare_runs import compare_file, journal_rows, json_diff, neutral, text  # noqa: E402

SWITCH = Path(__file__).with_name("first_run_switch.py")
BARS = 160
"""The paper run's bars: its first position, bought as Python, is sold compiled after the
switch (at bar 80); a second is bought and sold compiled."""
PAPER = [
    "-q", "run", str(ROOT / "strategies" / "btc_rf.yaml"), "--mode", "paper",
    "--clock", "simulated", "--speed", "max", "--max-bars", str(BARS),
    "--set=data.bars=3000", "--set=model.walk_forward.train_window=1000",
    "--set=model.walk_forward.retrain_every=500", "--set=model.params.n_jobs=1",
]  # fmt: skip


def _paper(out: Path, mode: str, *before: str, **env: str) -> Any:
    environment = {**os.environ, ENV: mode, **env}
    argv = [*before, *PAPER, "--out", str(out)]
    return forkserver.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env=environment)  # fmt: skip


def _tradeloom(*words: str) -> list[str]:
    return [sys.executable, "-m", "tradeloom.cli.main", *words]


_WALL = re.compile(r"wall clock [0-9-]{10} [0-9:]{8}")
"""The wall clock a report names its run by."""


def _run_key(folder: Path) -> str:
    """The run's key (its client order ids'): random at each new run
    (`tradeloom.live.tick.start`)."""
    connection = sqlite3.connect(f"file:{folder / 'journal.sqlite'}?mode=ro", uri=True)
    try:
        return str(connection.execute("SELECT run_key FROM run_started").fetchone()[0])
    finally:
        connection.close()


def _same(value: object, folder: Path, key: str) -> str:
    """A journal's or a report's value with what differs between any two runs of one
    command neutralised: its folder (`neutral`), its run key, the wall clock."""
    return _WALL.sub("WALL", neutral(str(value), folder).replace(key, "RUN_KEY"))


def _compare(a: Path, b: Path) -> list[str]:
    """What differs between two paper runs' folders but their folder, run key and wall
    clock (two compiled runs of one command differ by those only)."""
    differ = []
    names = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    keys = _run_key(a), _run_key(b)
    for name in names:
        x, y = a / name, b / name
        if name.name.endswith(("-wal", "-shm")) or name.name == "live.pid":
            continue  # read through the journal
        if name.suffix == ".sqlite":
            u, v = journal_rows(x), journal_rows(y)
            assert set(u) == set(v), name
            for table in sorted(u):
                if [[_same(c, a, keys[0]) for c in r] for r in u[table]] != [
                    [_same(c, b, keys[1]) for c in r] for r in v[table]
                ]:
                    differ.append(f"{name}: table {table} differs")
        elif name.suffix == ".html":
            if _same(x.read_text(), a, keys[0]) != _same(y.read_text(), b, keys[1]):
                differ.append(f"{name}: differs")
        elif name.name == "metrics.json":
            diffs = json_diff(json.loads(text(x, a)), json.loads(text(y, b)))
            differ += [f"{name}: {d}" for d in diffs if not d.startswith(".updated:")]
        else:
            status, detail = compare_file(x, y, (a, b))
            if status not in ("same", "same values"):
                differ.append(f"{name}: {status} {detail}")
    return differ


@pytest.fixture(scope="module")
def compiled_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The paper run with every kernel compiled (and the kernel cache warmed for it)."""
    out = tmp_path_factory.mktemp("paper") / "compile" / "run"
    done = _paper(out, "compile", *_tradeloom())
    assert done.returncode == 0, done.stderr[-3000:]
    assert "cash 100000.00" not in done.stdout, done.stdout  # it traded
    return out


@pytest.mark.slow
def test_a_paper_run_on_python_kernels_writes_the_compiled_runs_files(
    compiled_run: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "kernels"
    out = tmp_path / "python" / "run"
    done = _paper(out, "python", *_tradeloom(), TRADELOOM_KERNEL_CACHE=str(cache))
    assert done.returncode == 0, done.stderr[-3000:]
    # nothing compiled in the run (it would have cached it), nothing said of compiling
    assert not cache.exists() or not any(cache.rglob("*.nb*")), sorted(cache.rglob("*"))
    assert "compil" not in done.stderr, done.stderr
    assert _compare(out, compiled_run) == []


@pytest.mark.slow
def test_a_paper_run_switches_to_compiled_kernels_at_a_bar_once_they_are_cached(
    compiled_run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "switch" / "run"
    done = _paper(out, "auto", sys.executable, str(SWITCH), "80")
    assert done.returncode == 0, done.stderr[-3000:]
    said = [line for line in done.stderr.splitlines() if "kernels compil" in line]
    assert said[0] == (
        "kernels compiling in the background (pid 4242); this run uses their Python form, "
        "and their compiled form from the first bar after"
    ), done.stderr
    assert said[1].startswith("kernels compiled in the background: this run uses "), said
    assert said[1].endswith(" of them compiled from its next bar"), said
    assert int(said[1].split(" uses ")[1].split()[0]) >= 10, said
    assert len(said) == 2, said
    assert _compare(out, compiled_run) == []


@dataclass
class _Faked:
    """A lasting plan's world: ``cached`` the kernels the cache holds, ``running`` whether
    a compile holds the lock, ``launched`` the compiles started (``earlier``: the next one
    finds another run's running), ``chosen`` what `jit.interpret` was set to."""

    cached: set[Any] = field(default_factory=set)
    running: bool = False
    earlier: bool = False
    launched: list[int] = field(default_factory=list)
    chosen: list[Any] = field(default_factory=list)


@pytest.fixture
def plan(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Faked]:
    """A lasting (paper or live) plan in ``auto``, its cache, compile and launches faked."""
    state = _Faked()

    def launch(rerun: Any) -> tuple[int, bool]:
        state.launched.append(len(state.launched) + 100)
        state.running = True
        return state.launched[-1], state.earlier

    monkeypatch.setenv(ENV, "auto")
    monkeypatch.setattr(jit, "interpret", state.chosen.append)
    monkeypatch.setattr(first_run, "_compiling", lambda: state.running)
    monkeypatch.setattr(first_run, "_cache_holds", lambda func: func in state.cached)
    monkeypatch.setattr(first_run, "_launch", launch)
    first_run.begin(["strategy.yaml", "--driver", "per-bar"], lasting=True)
    yield state
    first_run.end()


def _one() -> None: ...
def _two() -> None: ...


def test_a_paper_run_is_never_cheaper_as_python_and_compiles_in_the_background(
    plan: _Faked, capsys: pytest.CaptureFixture[str]
) -> None:
    first_run.sized(10, 1)  # a backtest of 10 bars runs every kernel as Python, no compile
    choose = plan.chosen[-1]
    assert choose is not jit.every_kernel and choose(_one) is True  # not cached: Python
    assert plan.launched == [100]
    assert capsys.readouterr().err == (
        "kernels compiling in the background (pid 100); this run uses their Python form, "
        "and their compiled form from the first bar after\n"
    )


def test_the_kernels_switch_at_the_first_bar_boundary_after_the_compile_ends(
    plan: _Faked, capsys: pytest.CaptureFixture[str]
) -> None:
    first_run.sized(1000, 1)
    choose = plan.chosen[-1]
    assert (choose(_one), choose(_two)) == (True, True)
    capsys.readouterr()
    first_run.boundary()  # still compiling: nothing changes
    assert (choose(_one), choose(_two)) == (True, True)
    plan.cached, plan.running = {_one}, False  # ended: it cached one of the two
    first_run.boundary()
    assert capsys.readouterr().err == (
        "kernels compiled in the background: this run uses 1 of them compiled from its next bar\n"
    )
    assert (choose(_one), choose(_two)) == (False, True)  # the other: Python, asked again
    first_run.boundary()  # done: nothing more said, asked or started
    assert capsys.readouterr().err == "" and plan.launched == [100]


def test_after_an_earlier_runs_compile_ends_the_run_compiles_what_it_still_lacks(
    plan: _Faked, capsys: pytest.CaptureFixture[str]
) -> None:
    plan.earlier = True  # another run's compile, of its own command, holds the lock
    first_run.sized(1000, 1)
    choose = plan.chosen[-1]
    assert (choose(_one), choose(_two)) == (True, True) and plan.launched == [100]
    assert "(pid 100, started by an earlier run)" in capsys.readouterr().err
    plan.cached, plan.earlier, plan.running = {_two}, False, False
    first_run.boundary()  # it cached _two, not _one: _one's next call starts this run's
    assert plan.launched == [100]
    assert (choose(_one), choose(_two)) == (True, False)
    assert plan.launched == [100, 101]
    assert "(pid 101); this run uses" in capsys.readouterr().err
    first_run.boundary()  # this run's compile is running
    assert choose(_one) is True
    plan.cached, plan.running = {_one, _two}, False
    first_run.boundary()
    assert choose(_one) is False
    assert capsys.readouterr().err == (
        "kernels compiled in the background: this run uses 1 of them compiled from its next bar\n"
    )


def test_an_earlier_runs_compile_that_cached_all_the_run_calls_starts_no_other(
    plan: _Faked, capsys: pytest.CaptureFixture[str]
) -> None:
    plan.earlier = True
    first_run.sized(1000, 1)
    choose = plan.chosen[-1]
    assert (choose(_one), choose(_two)) == (True, True)
    plan.cached, plan.earlier, plan.running = {_one}, False, False  # _two: inlined in _one
    first_run.boundary()
    assert choose(_one) is False and plan.launched == [100]  # _two is no longer called


def test_a_compile_that_cached_nothing_leaves_the_python_form_and_says_so(
    plan: _Faked, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADELOOM_KERNEL_CACHE", "/nowhere/kernels")
    first_run.sized(1000, 1)
    choose = plan.chosen[-1]
    assert choose(_one) is True
    capsys.readouterr()
    plan.running = False  # it failed: nothing cached
    first_run.boundary()
    assert choose(_one) is True and plan.launched == [100]
    assert capsys.readouterr().err.startswith(
        "the background compile (pid 100) cached none of the kernels this run uses as "
        "Python (see /nowhere/kernels/"
    )
