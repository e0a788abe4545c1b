"""The hostile-input corpus: seeded mutations of every shipped strategy file.

Each case takes a file of ``strategies/`` or ``examples/``, applies one or two seeded
mutations (``tests/hostile/mutations.py``: byte flips, control characters, truncation,
deep nesting, alias and merge-key bombs, odd tags, huge and non-finite numbers, wrong
types, text that is not UTF-8) and validates it through the CLI: ``main()`` in this
process for most cases, the installed ``tradeloom`` command in a subprocess for a sample.
Every answer must be exit 0 or 2, never 1, with no traceback, within a bound. The same
seeds give the same cases on every run; a failure names its seed and mutation.

Validate is the whole truth: every case (in the suite, every `RUN_STRIDE`-th round over
the files), beside its data, is also run as a backtest, which refuses exactly what
validate refuses, with the same lines, and runs what it accepts
(`test_run_refuses_what_validate_refuses_and_runs_what_it_accepts`).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli.test_cli import _model_overrides
from tests.hunting import HUNT
from tradeloom.cli.main import main

sys.path.insert(0, str(Path(__file__).parent))
from tests.hostile.mutations import mutate

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted((ROOT / "strategies").glob("*.yaml")) + sorted((ROOT / "examples").glob("*.yaml"))
CASES = 520
"""Mutations validated in this process (at least 500 per run, the issue's floor)."""
RUN_STRIDE = 1 if HUNT else 4
"""Of the rounds over the files (a case a file each), every this many again as backtests
beside their validate (a quarter in the suite, whose budget a whole run of each case
exceeds; all in a hunt, ``scripts/hunt.sh tests/hostile/test_corpus.py``)."""
SUBPROCESS_CASES = 12
"""Of which this many again through the installed command, in a subprocess."""
BOUND_SECONDS = 60.0
"""Longest a case may take: a guard against a bomb that is expanded, not a benchmark. The
slowest take about 2 s on an idle core; a loaded CI machine once took 24 s for one."""


def _case(seed: int) -> tuple[Path, str, bytes]:
    source = FILES[seed % len(FILES)]
    name, data = mutate(source.read_bytes(), seed)
    return source, name, data


def test_the_corpus_covers_every_shipped_file() -> None:
    assert len(FILES) >= 5
    assert {_case(seed)[0] for seed in range(CASES)} == set(FILES)


@pytest.mark.slow
def test_mutations_answer_0_or_2_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRADELOOM_CACHE", str(tmp_path / "cache"))
    codes = {0: 0, 2: 0}
    slowest = 0.0
    for seed in range(CASES):
        source, name, data = _case(seed)
        path = tmp_path / source.name
        path.write_bytes(data)
        started = time.perf_counter()
        code = main(["validate", str(path)])
        elapsed = time.perf_counter() - started
        out, err = capsys.readouterr()
        where = f"seed {seed} ({name} of {source.name})"
        assert code in codes, f"{where}: exit {code}\n{err[-3000:]}"
        assert "Traceback" not in out + err, f"{where}\n{err[-3000:]}"
        assert elapsed < BOUND_SECONDS, f"{where}: {elapsed:.1f} s"
        if code == 2:
            assert out == "" and err.strip(), where
        codes[code] += 1
        slowest = max(slowest, elapsed)
    # the corpus is hostile, but not only: some mutants are still valid strategies
    assert codes[2] > CASES // 2 and codes[0] > 0, codes


@pytest.mark.slow
def test_a_sample_answers_the_same_through_the_installed_command(tmp_path: Path) -> None:
    command = Path(sys.executable).with_name("tradeloom")
    step = CASES // SUBPROCESS_CASES
    for seed in range(0, step * SUBPROCESS_CASES, step):
        source, name, data = _case(seed)
        path = tmp_path / source.name
        path.write_bytes(data)
        proc = subprocess.run(
            [str(command), "validate", str(path)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
            check=False,
        )
        where = f"seed {seed} ({name} of {source.name})"
        assert proc.returncode in (0, 2), f"{where}: exit {proc.returncode}\n{proc.stderr}"
        assert "Traceback" not in proc.stdout + proc.stderr, where


@pytest.mark.slow
def test_run_refuses_what_validate_refuses_and_runs_what_it_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # each case in a copy of the shipped folders, beside the data and the strategy files
    # it names; a synthetic market shortened (`_short`) for validate and run alike
    tree = tmp_path / "tree"
    for folder in ("strategies", "examples"):
        ignore = shutil.ignore_patterns("tradeloom-example-plugin", "grafana", "prometheus")
        shutil.copytree(ROOT / folder, tree / folder, ignore=ignore)
    monkeypatch.chdir(tree)
    monkeypatch.setenv("TRADELOOM_CACHE", str(tmp_path / "cache"))
    answers = {"refused": 0, "ran": 0, "as shipped": 0}
    # every RUN_STRIDE-th round over the files: each shipped file's mutants, however many
    seeds = [s for s in range(CASES) if (s // len(FILES)) % RUN_STRIDE == 0]
    assert {_case(seed)[0] for seed in seeds} == set(FILES)
    # then the other rounds' cases until one mutant validate accepts has run (which of
    # them the rounds above draw moves with every shipped file added)
    later = [s for s in range(CASES) if s not in set(seeds)]
    for seed in seeds + later:
        if seed in later and answers["ran"] > 0:
            break
        source, name, data = _case(seed)
        rel = source.relative_to(ROOT)
        shipped = _document(source.read_bytes())
        sets = [f"--set={s}" for s in _short(shipped)]
        where = f"seed {seed} ({name} of {rel})"
        (tree / rel).write_bytes(data)
        try:
            code, _, err = _command(capsys, "validate", str(rel), *sets)
            assert code in (0, 2), f"{where}: exit {code}\n{err[-3000:]}"
            if code == 0 and _as_shipped(_document(data), shipped):
                answers["as shipped"] += 1  # `tests/cli/test_cli.py` runs the shipped file
                continue
            if code == 0 and shipped.get("data", {}).get("kind") == "ccxt":
                continue  # its bars are an exchange's (`tests/cli/test_cli.py`: emulated)
            out_dir = tmp_path / "runs" / str(seed)
            ran, ran_out, said = _command(capsys, "run", str(rel), "--out", str(out_dir), *sets)
            shutil.rmtree(out_dir, ignore_errors=True)
        finally:
            (tree / rel).write_bytes(source.read_bytes())
        if code == 2:
            assert (ran, ran_out, said) == (2, "", err), f"{where}: run said\n{said[-3000:]}"
            answers["refused"] += 1
        else:
            assert ran == 0, f"{where}: validate accepted it, run exited {ran}\n{said[-3000:]}"
            answers["ran"] += 1
    # a hostile corpus, but not only: some mutants are valid strategies, and run
    assert answers["refused"] > len(seeds) // 2 and answers["ran"] > 0, answers


SHORT_BARS = 600
"""A synthetic market's bars in `test_run_refuses_what_validate_refuses_and_runs_what_it_accepts`
(a model trains on a third of them)."""


def _short(shipped: dict[str, Any]) -> list[str]:
    """``--set`` values that shorten a shipped file's synthetic market to `SHORT_BARS`."""
    data = shipped.get("data")
    if not isinstance(data, dict) or data.get("kind") != "synthetic":
        return []
    return [f"data.bars={SHORT_BARS}", *_model_overrides(shipped, SHORT_BARS // 3)]


def _command(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, err[-3000:]
    return code, out, err


def _document(data: bytes) -> dict[str, Any]:
    """The file as YAML reads it (a case validate accepted: no bomb, no odd tag)."""
    loaded = yaml.safe_load(data)
    return loaded if isinstance(loaded, dict) else {}


def _as_shipped(mutant: dict[str, Any], shipped: dict[str, Any]) -> bool:
    """Whether a mutant reads as its shipped file does, its description aside (a comment
    or a blank line changed): its run is the shipped file's."""
    return {**mutant, "description": None} == {**shipped, "description": None}
