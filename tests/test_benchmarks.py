"""Every script in benchmarks/ runs, at its smallest size, so that none can rot unseen.

A script is a file of benchmarks/ with a ``__main__`` block; each runs here as
``python benchmarks/SCRIPT --smoke`` from the checkout (`benchmarks/smoke.py`: every
section once at its smallest size) and must exit 0. Forked from the test process's
server (`tests.forkserver`), a script pays its own work, not a new interpreter's
imports. The other files are helper modules the scripts import by name (``from machine
import describe``): a helper runs nothing of its own, and one that no script imports
is dead.

What a script prints under ``--smoke`` is not checked: its figures mean nothing at that
size. Speed is the scripts' business, never this test's.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import sys
from pathlib import Path

import pytest

from tests import forkserver

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
_MAIN = re.compile(r"^if __name__ == [\"']__main__[\"']:", re.M)


def _is_script(path: Path) -> bool:
    return bool(_MAIN.search(path.read_text(encoding="utf-8")))


SCRIPTS = sorted(p.name for p in BENCHMARKS.glob("*.py") if _is_script(p))
HELPERS = sorted(p.stem for p in BENCHMARKS.glob("*.py") if not _is_script(p))


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_the_benchmark_runs_at_its_smallest_size(script: str) -> None:
    done = forkserver.run(
        [sys.executable, str(BENCHMARKS / script), "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "unrecognized arguments: --smoke" not in done.stderr, (
        f"benchmarks/{script} does not accept --smoke: give it its smallest size "
        "(benchmarks/smoke.py)"
    )
    assert done.returncode == 0, f"benchmarks/{script} --smoke failed:\n{done.stderr[-4000:]}"
    assert done.stdout.startswith("--smoke: "), done.stdout[:500]


def test_every_helper_module_is_one_some_script_imports() -> None:
    sources = {name: (BENCHMARKS / name).read_text(encoding="utf-8") for name in SCRIPTS}
    for helper in HELPERS:
        imported = re.compile(rf"^\s*(from {helper} import|import {helper}\b)", re.M)
        users = [name for name, text in sources.items() if imported.search(text)]
        assert users, f"benchmarks/{helper}.py is neither a script nor imported by one"


def test_the_scripts_and_helpers_are_told_apart() -> None:
    assert "bench_run.py" in SCRIPTS
    assert {"machine", "smoke"} <= set(HELPERS)


def _journal(path: Path, tables: dict[str, list[tuple[int, float]]]) -> Path:
    connection = sqlite3.connect(path)
    with connection:
        for table, rows in tables.items():
            connection.execute(f'CREATE TABLE "{table}" (seq INTEGER, value REAL, wall_time REAL)')
            connection.executemany(f'INSERT INTO "{table}" VALUES (?, ?, 0.5)', rows)
    connection.close()
    return path


def test_compare_runs_reads_a_kind_added_since_as_no_difference_and_still_compares_rows(
    tmp_path: Path,
) -> None:
    # A journal kind added between two checkouts gives the later journals an (empty)
    # table the earlier have not: compare_runs once stopped there ("tables [...]"), so no
    # row of any other table was compared, and a number that moved went unseen.
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from compare_runs import same_journal
    finally:
        sys.path.remove(str(BENCHMARKS))
    folders = (tmp_path, tmp_path)
    fill = [(1, 0.20043960326471516), (2, 1.5)]
    before = _journal(tmp_path / "before.sqlite", {"fill": fill})
    same = _journal(tmp_path / "same.sqlite", {"fill": fill, "document_unscored": []})
    assert same_journal(before, same, folders) is None
    assert same_journal(same, before, folders) is None
    moved = _journal(
        tmp_path / "moved.sqlite",
        {"fill": [(1, 0.20043960326471522), (2, 1.5)], "document_unscored": []},
    )
    assert same_journal(before, moved, folders) == (
        "table fill: 3 vs 3 rows, first differing row 1"
    )
    written = _journal(tmp_path / "written.sqlite", {"fill": fill, "document_unscored": [(3, 1.0)]})
    assert same_journal(before, written, folders) == "table document_unscored: only after, 1 rows"
    assert same_journal(written, before, folders) == "table document_unscored: only before, 1 rows"


def test_compare_runs_reads_a_field_added_since_and_left_empty_as_no_difference(
    tmp_path: Path,
) -> None:
    # a field added to a kind (model_swapped's signal) gives the later journals a column
    # the earlier have not; the journal reads it '' in older rows, and so does compare_runs
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from compare_runs import same_journal
    finally:
        sys.path.remove(str(BENCHMARKS))
    folders = (tmp_path, tmp_path)

    def journal(name: str, rows: list[tuple[object, ...]], added: bool) -> Path:
        path = tmp_path / name
        connection = sqlite3.connect(path)
        with connection:
            columns = "seq INTEGER, model TEXT" + (", signal TEXT" if added else "")
            connection.execute(f"CREATE TABLE model_swapped ({columns})")
            marks = ", ".join("?" * (3 if added else 2))
            connection.executemany(f"INSERT INTO model_swapped VALUES ({marks})", rows)
        connection.close()
        return path

    before = journal("before.sqlite", [(1, "m")], added=False)
    empty = journal("empty.sqlite", [(1, "m", "")], added=True)
    assert same_journal(before, empty, folders) is None
    assert same_journal(empty, before, folders) is None
    assert (
        same_journal(journal("none.sqlite", [], False), journal("no.sqlite", [], True), folders)
        is None
    )
    held = journal("held.sqlite", [(1, "m", '{"kind": "threshold"}')], added=True)
    assert same_journal(before, held, folders) == (
        "table model_swapped: 2 vs 2 rows, first differing row 0"
    )


def test_compare_runs_names_a_run_only_after_has(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # compare_runs walked BEFORE's runs only: a run only AFTER had was never mentioned, and
    # "0 file(s) differ" read as if every run had been compared.
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from compare_runs import compare
    finally:
        sys.path.remove(str(BENCHMARKS))
    before, after = tmp_path / "before", tmp_path / "after"
    for side in (before, after):
        (side / "shared").mkdir(parents=True)
        (side / "shared" / "summary.txt").write_text("equity 1\n")
    (after / "added").mkdir()
    args = argparse.Namespace(before=before, after=after, roots=None, quiet=True)
    assert compare(args) == 0
    out = capsys.readouterr().out
    assert "added: NEW (no such run before: not compared)" in out
    assert out.rstrip().endswith("0 file(s) differ; 1 run(s) only after")
