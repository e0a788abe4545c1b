"""The first run: kernels as Python give the files compiled kernels give, bit for bit;
``TRADELOOM_FIRST_RUN`` chooses; a small run on an empty cache compiles in the background.

The comparison runs each shipped strategy (shortened) through the command twice, with
``TRADELOOM_FIRST_RUN=python`` (every kernel's Python form) and ``compile``, and compares
every file of the two run folders with benchmarks/compare_runs.py: byte for byte, a
journal's rows but for the wall clock and the hash chain over it, a Parquet file's table.
A number that moved by one bit fails it. The runs are made once a session
(tests/shipped_runs.py): tests/cli/test_cli.py checks the compiled ones as a user's runs.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.shipped_runs import SHIPPED_GROUP, STRATEGIES, ShippedRuns, cli_run, shortened
from tradeloom.kernels import first_run, jit
from tradeloom.kernels.first_run import ENV, LOCK, RECORD

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from compare_runs import compare_file  # noqa: E402  (a benchmark's helper, by its folder)

EXACT = {"same", "same values", "same events"}
"""What `compare_file` calls two files that hold the same numbers ("formatting", the same
values in other text, is not accepted: both forms write the same bytes)."""


def _compare(python: Path, compiled: Path) -> list[str]:
    differ = []
    names = sorted(p.relative_to(python) for p in python.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(compiled) for p in compiled.rglob("*") if p.is_file())
    for name in names:
        if name.name.endswith(("-wal", "-shm")) or name.name == "live.pid":
            continue  # read through the journal
        status, detail = compare_file(python / name, compiled / name, (python, compiled))
        if status not in EXACT:
            differ.append(f"{name}: {status} {detail}")
    return differ


@pytest.mark.slow
@pytest.mark.xdist_group(SHIPPED_GROUP)
@pytest.mark.parametrize("path", STRATEGIES, ids=lambda p: p.name)
def test_python_and_compiled_kernels_write_the_same_run(
    path: Path, shipped_runs: ShippedRuns
) -> None:
    runs = {}
    for mode in ("python", "compile"):
        done, out = shipped_runs.run(path, mode)  # the compiled one test_cli.py reads too
        assert done.returncode == 0, done.stderr[-3000:]
        assert "compiled" not in done.stderr or mode == "compile", done.stderr
        runs[mode] = out
    assert _compare(runs["python"], runs["compile"]) == []


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("TRADELOOM_HUNT"),
    reason="a whole background compile at nice 19 (200 s on a loaded 2-core machine) is "
    "past the suite's budget: scripts/hunt.sh tests/kernels/test_first_run.py runs it",
)
def test_a_small_first_run_uses_python_and_compiles_in_the_background(tmp_path: Path) -> None:
    cache = tmp_path / "kernels"
    strategy = ROOT / "strategies" / "btc_rf.yaml"
    small = shortened(strategy)
    runs = [tmp_path / "first" / "run", tmp_path / "second" / "run"]
    first = cli_run(strategy, runs[0], "auto", *small, TRADELOOM_KERNEL_CACHE=str(cache))
    assert first.returncode == 0, first.stderr
    said = [line for line in first.stderr.splitlines() if "background" in line]
    assert len(said) == 1 and said[0].endswith("this run uses their Python form"), first.stderr
    pid = int(said[0].split("(pid ")[1].split(")")[0])
    _wait_for(pid, cache)
    record = json.loads((cache / RECORD).read_text())
    assert record["pid"] == pid and record["exit"] == 0, record
    assert record["kernels"] > 0 and set(record["by_kernel"]) and record["compile_seconds"] > 0
    assert (cache / "background-compile.log").read_text().count(f"pid {pid}: warm") == 1
    # the next run loads every kernel compiled: nothing compiled, no background compile
    second = cli_run(strategy, runs[1], "auto", *small, TRADELOOM_KERNEL_CACHE=str(cache))
    assert second.returncode == 0, second.stderr
    assert "background" not in second.stderr and "compiled" not in second.stderr, second.stderr
    assert _compare(*runs) == []


def _wait_for(pid: int, cache: Path) -> None:
    """Wait until the background compile ``pid`` ends (it is no child of this process)."""
    import fcntl

    with open(cache / LOCK) as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)  # granted once the compile has let go of it
    deadline = time.monotonic() + 60
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)  # the record is written before the lock goes with the process


def test_past_the_small_run_size_the_kernels_compile_and_nothing_starts_in_background(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chosen: list[object] = []
    monkeypatch.setenv(ENV, "auto")
    monkeypatch.setattr(jit, "interpret", chosen.append)
    monkeypatch.setattr(first_run, "_compiling", lambda: False)
    monkeypatch.setattr(first_run, "_launch", lambda rerun: pytest.fail("launched"))
    first_run.begin(["strategy.yaml"])
    assert callable(chosen[-1])  # until its size is known, a kernel not cached is Python
    first_run.sized(first_run.SMALL_RUN + 1)
    assert chosen[-1] is None  # a large run: every kernel compiles, in this process
    first_run.end()


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("TRADELOOM_HUNT"),
    reason="a whole compile from an empty cache (134 s in the suite here) is past the "
    "suite's budget: scripts/hunt.sh tests/kernels/test_first_run.py runs it",
)
def test_a_large_run_compiles_in_process(tmp_path: Path) -> None:
    cache = tmp_path / "kernels"
    strategy = ROOT / "tests" / "sweep" / "small_strategy.yaml"
    done = cli_run(strategy, tmp_path / "run", "auto", "--set=data.bars=200001",
                "--set=outputs.report=false", TRADELOOM_KERNEL_CACHE=str(cache))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "background" not in done.stderr
    assert "kernels in" in done.stderr and "cached for the next runs" in done.stderr
    assert not (cache / RECORD).exists()


def test_an_unknown_mode_is_refused_in_one_line(tmp_path: Path) -> None:
    strategy = ROOT / "strategies" / "btc_rf.yaml"
    done = cli_run(strategy, tmp_path / "run", "fast")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"{ENV}='fast': expected one of auto, compile, python\n"


def test_the_switch_runs_a_kernel_as_python_and_both_forms_agree() -> None:
    from tradeloom.plugins.features import rsi

    kernel: Any = rsi._rsi  # lazy, or numba's dispatcher: both have py_func
    func = kernel.py_func
    fresh = jit.kernel(func)
    seen: list[str] = []

    def python_form(kernel: Any) -> bool:
        seen.append(kernel.__name__)
        return True

    closes = np.linspace(100.0, 120.0, 300) + np.sin(np.arange(300)) * 3
    jit.interpret(python_form)
    try:
        as_python = fresh(closes, 14)
    finally:
        jit.interpret(None)
    assert seen[0] == "_rsi"
    assert as_python.tobytes() == fresh(closes, 14).tobytes()  # compiled now


@given(
    rows=st.integers(1, 40),
    features=st.integers(1, 6),
    depth=st.integers(1, 6),
    trees=st.integers(1, 20),
    seed=st.integers(0, 2**32 - 1),
    cast32=st.booleans(),
    nans=st.booleans(),
    allow_nan=st.booleans(),
)
def test_the_forests_python_form_is_the_kernel_bit_for_bit(
    rows: int,
    features: int,
    depth: int,
    trees: int,
    seed: int,
    cast32: bool,
    nans: bool,
    allow_nan: bool,
) -> None:
    from sklearn.ensemble import RandomForestClassifier

    from tradeloom.plugins.model import compiled_trees as ct

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, features))
    y = (x[:, 0] + rng.normal(scale=0.5, size=200) > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=trees, max_depth=depth, random_state=0)
    forest.fit(x, y)
    nodes, roots, values = ct._pack([ct._sklearn_tree(e.tree_, 2) for e in forest.estimators_])
    batch = rng.normal(size=(rows, features)) * 3
    if nans:
        batch[rng.random(batch.shape) < 0.2] = np.nan
    args = (batch, cast32, allow_nan, False, nodes, roots, values, 0.5, float(trees))
    compiled = np.full((rows, values.shape[1]), -1.0)
    python = np.full((rows, values.shape[1]), -1.0)
    assert ct._predict_rows(*args, compiled) == ct._predict_rows_at_once(*args, python)
    assert compiled.tobytes() == python.tobytes()


_FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(0, 2**64 - 1).map(lambda b: float(np.uint64(b).view(np.float64))),
)


@given(
    floats=st.lists(st.tuples(_FLOATS, _FLOATS), min_size=1, max_size=30),
    integers=st.lists(st.integers(-(2**63), 2**63 - 1), min_size=30, max_size=30),
    seconds=st.lists(st.integers(-30_000_000_000, 253_402_300_799), min_size=30, max_size=30),
    nat=st.integers(0, 29),
    words=st.lists(st.text(alphabet='ab,"é x', max_size=5), min_size=1, max_size=4),
)
def test_the_csv_lines_python_form_writes_the_kernels_bytes(
    floats: list[tuple[float, float]],
    integers: list[int],
    seconds: list[int],
    nat: int,
    words: list[str],
) -> None:
    import pandas as pd

    from tradeloom.reporting import csv_table

    n = len(floats)
    times = np.array(seconds[:n], dtype=np.int64) * 1_000_000_000 + 999_999_999
    times[nat % n] = np.iinfo(np.int64).min
    frame = pd.DataFrame(
        {
            "a": [f for f, _ in floats],
            "t": pd.to_datetime(times, utc=True),
            "i": np.array(integers[:n], dtype=np.int64),
            "b": [g for _, g in floats],
            "w": pd.Categorical([words[k % len(words)] for k in range(n)]),
        }
    )
    compiled = csv_table.csv_bytes(frame, csv_table.ISO_SECONDS)
    assert compiled is not None
    python = b"".join(
        csv_table._write_lines_as_python(*piece).tobytes()
        for piece in _pieces_arguments(csv_table, frame)
    )
    assert python == compiled.tobytes()


def _pieces_arguments(csv_table: Any, frame: Any) -> list[tuple[Any, ...]]:
    """The arguments `csv_table.csv_bytes` gives `_write_lines` for ``frame``, one piece."""
    calls: list[tuple[Any, ...]] = []
    real = csv_table._write_lines

    def noted(*args: Any) -> Any:
        calls.append(args)
        return real(*args)

    csv_table._write_lines = noted
    try:
        csv_table.csv_bytes(frame, csv_table.ISO_SECONDS)
    finally:
        csv_table._write_lines = real
    return calls


@given(
    m=st.integers(1, 30),
    extra=st.integers(0, 20),
    start=st.integers(0, 12),
    seed=st.integers(0, 2**32 - 1),
)
def test_the_windows_python_forms_add_as_the_kernels(
    m: int, extra: int, start: int, seed: int
) -> None:
    from tradeloom.core.kernels import window

    rng = np.random.default_rng(seed)
    x = rng.normal(size=m + extra) * 10.0 ** rng.integers(-5, 6, size=m + extra)
    stop = extra + 1
    start = min(start, stop)
    mean = rng.normal(size=m)
    a, b = np.linspace(0.0, 1.0, m), np.linspace(0.0, 1.0, m)
    window._add_differences(a, x, start, stop)
    window._add_differences_by_rows(b, x, start, stop)
    assert a.tobytes() == b.tobytes()
    window._add_squares(a, x, stop, mean)
    window._add_squares_by_rows(b, x, stop, mean)
    assert a.tobytes() == b.tobytes()


def test_the_cache_is_asked_about_a_kernel_of_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel of any module of the package (a feature's) is looked up in the cache: a
    warm small run loads it compiled rather than running its Python form again."""
    from tradeloom.kernels import cache, first_run
    from tradeloom.plugins.features import rsi

    asked: list[str] = []
    kernel: Any = rsi._rsi
    # numba's dispatcher is made now, with the real cache: a dispatcher made under the
    # patch below would keep the test's cache for every later test of this process
    py_func = kernel.py_func

    class _Held:
        def __init__(self, py_func: Any) -> None:
            asked.append(py_func.__name__)
            self._shipped = None
            self._cache_file = self

        def _load_index(self) -> dict[str, str]:
            return {"entry": "compiled"}

    monkeypatch.setattr(cache, "_cache_class", lambda stamp, package: _Held)
    assert first_run._cache_holds(py_func)
    assert set(asked) == {"_rsi"}


def _bits(values: Any) -> list[int | None]:
    """Each value's bits (a NaN's payload aside: none is written out)."""
    return [None if v != v else int(np.float64(v).view(np.int64)) for v in values.tolist()]


@given(
    rows=st.integers(1, 12),
    k=st.integers(0, 8),
    kind=st.integers(1, 3),
    texts=st.integers(0, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_the_row_digests_python_form_is_the_kernel_bit_for_bit(
    rows: int, k: int, kind: int, texts: int, seed: int
) -> None:
    from tradeloom.journal import chain

    rng = np.random.default_rng(seed)
    fixed = rng.integers(-(2**63), 2**63 - 1, (rows, k), dtype=np.int64, endpoint=True)
    words = rng.integers(0, 2**64 - 1, kind, dtype=np.uint64, endpoint=True)
    blob = rng.integers(0, 255, 200, dtype=np.uint8, endpoint=True)
    choices = np.array([chain.ABSENT_TEXT, -1, 0, 1, 7, 8, 9, 16, 17, 40])
    lengths = rng.choice(choices, (rows, texts)).astype(np.int64)
    starts = rng.integers(0, 150, (rows, texts)).astype(np.int64)
    compiled, python = np.zeros(rows, np.uint64), np.ones(rows, np.uint64)
    chain.row_digests(fixed, words, lengths, starts, blob, compiled)
    chain._row_digests_as_python(fixed, words, lengths, starts, blob, python)
    assert compiled.tolist() == python.tolist()


@given(
    n=st.integers(0, 60),
    cash=st.sampled_from([1.0, 1000.0, 1e6]),
    nans=st.integers(0, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_the_curves_python_forms_are_the_kernels_bit_for_bit(
    n: int, cash: float, nans: int, seed: int
) -> None:
    from tradeloom.engine import frames
    from tradeloom.reporting import drawdowns, rolling_moments

    rng = np.random.default_rng(seed)
    equity = cash * np.exp(np.cumsum(rng.normal(0, 0.05, n)))
    if n:
        equity[rng.integers(0, n, nans)] = np.nan
        equity[rng.integers(0, n, 2)] = cash  # equal to the floor
    compiled, python = np.full(n, 7.0), np.full(n, 8.0)
    drawdowns.write_drawdowns(equity, cash, compiled)
    drawdowns._write_drawdowns_as_python(equity, cash, python)
    assert _bits(compiled) == _bits(python)

    returns = rng.normal(0, 0.01, n)
    window = int(rng.integers(1, 10))
    figures = [np.full(n, 7.0) for _ in range(4)]
    rolling_moments.rolling_sharpe_volatility(returns, window, 3.0, *figures[:2])
    rolling_moments._rolling_as_python(returns, window, 3.0, *figures[2:])
    assert _bits(figures[0]) == _bits(figures[2]) and _bits(figures[1]) == _bits(figures[3])

    closes = rng.normal(100.0, 1.0, (n, 3))
    closes[rng.random(closes.shape) < 0.3] = np.nan
    positions = rng.choice([0.0, 0.0, 1.5, -2.0, np.nan], (n, 3))
    held = np.count_nonzero(positions)
    outs = [[np.empty(held, np.int64), np.empty(held, np.int64), np.empty(held), np.empty(held)]
            for _ in range(2)]  # fmt: skip
    frames._held(closes, positions, *outs[0])
    frames._held_as_python(closes, positions, *outs[1])
    for ours, theirs in zip(*outs, strict=True):
        assert _bits(ours.astype(np.float64)) == _bits(theirs.astype(np.float64))


@given(
    st.integers(0, 60),
    st.integers(1, 4),
    st.integers(0, 12),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_the_spread_marks_python_form_is_the_kernel_bit_for_bit(
    n: int, m: int, fills: int, shuffled: bool, seed: int
) -> None:
    """Each bar's positions, cash and equity from the fills' marks: in bar order (a run's),
    or not (the kernel takes them in order all the same); symbols out of range, positions
    of zero and NaN, closes missing."""
    from tradeloom.core import curves

    rng = np.random.default_rng(seed)
    close = rng.normal(100.0, 1.0, (n, m))
    close[rng.random(close.shape) < 0.3] = np.nan
    bars = np.sort(rng.integers(-1, n + 2, fills)).astype(np.float64)
    if shuffled:
        rng.shuffle(bars)
    marks = np.column_stack(
        [
            bars,
            rng.choice([0.0, -0.0, 1.5, -2.0, np.nan], fills),
            rng.normal(1000.0, 50.0, fills),
            rng.integers(-1, m + 1, fills).astype(np.float64),
        ]
    ).reshape(-1, 4)
    outs = [[np.full((n, m), 7.0), np.full(n, 7.0), np.full(n, 7.0)] for _ in range(2)]
    curves._spread_marks(marks, close, 1000.0, *outs[0])
    curves._spread_marks_as_python(marks, close, 1000.0, *outs[1])
    for ours, theirs in zip(*outs, strict=True):
        assert _bits(ours.ravel()) == _bits(theirs.ravel())


def test_a_run_cheaper_as_python_runs_every_kernel_as_python_and_asks_no_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chosen: list[Any] = []
    monkeypatch.setenv(ENV, "auto")
    monkeypatch.setattr(jit, "interpret", chosen.append)
    monkeypatch.setattr(first_run, "_compiling", lambda: False)
    monkeypatch.setattr(first_run, "_launch", lambda rerun: pytest.fail("launched"))
    monkeypatch.setattr(first_run, "_cache_holds", lambda func: pytest.fail("cache asked"))
    per_cell = first_run.PYTHON_CELL_SECONDS + 3 * first_run.PYTHON_FEATURE_SECONDS
    even = first_run.NUMBA_START_SECONDS / per_cell  # three features
    assert first_run.python_is_cheaper(int(even) - 1, 3)
    assert not first_run.python_is_cheaper(int(even) + 1, 3)
    assert first_run.python_is_cheaper(int(even) + 1, 2)  # a feature fewer: cheaper
    first_run.begin(["strategy.yaml"])
    first_run.sized(int(even) - 1, 3)
    choose = chosen[-1]
    assert choose(np.add) is True  # any kernel, cached or not: Python, no cache asked
    first_run.end()
    first_run.begin(["strategy.yaml"])
    first_run.sized(int(even) + 1, 3)  # past it, the cache is asked (the patch fails the test)
    with pytest.raises(pytest.fail.Exception, match="cache asked"):
        chosen[-1](np.add)
    first_run.end()
    first_run.begin(["portfolio.yaml"])  # two strategies, each cheaper, not both together
    first_run.sized(int(even) // 2 + 1, 3)
    assert chosen[-1](np.add) is True
    first_run.sized(int(even) // 2 + 1, 3)
    with pytest.raises(pytest.fail.Exception, match="cache asked"):
        chosen[-1](np.add)
    first_run.end()


@given(
    n=st.integers(0, 40),
    period=st.integers(1, 6),
    how=st.sampled_from([0, 1]),
    specials=st.lists(st.sampled_from([0.0, -0.0, -3.0, np.nan, np.inf]), max_size=4),
    seed=st.integers(0, 2**32 - 1),
)
def test_the_returns_python_form_is_the_kernel_bit_for_bit(
    n: int, period: int, how: int, specials: list[float], seed: int
) -> None:
    """The log and simple returns' whole-array form: the step's numbers, with the
    compiled kernel's answers at a zero, negative, NaN or infinite close."""
    from tradeloom.plugins.features import returns

    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    for value in specials:
        if n:
            close[int(rng.integers(0, n))] = value
    compiled = returns._returns(close, period, how)
    python = returns._returns_as_python(close, period, how)
    assert _bits(compiled) == _bits(python)


@given(
    n=st.integers(0, 50),
    cuts=st.lists(st.integers(0, 50), max_size=6),
    nans=st.integers(0, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_the_compounded_periods_python_form_is_the_kernel_bit_for_bit(
    n: int, cuts: list[int], nans: int, seed: int
) -> None:
    from tradeloom.reporting import tearsheet

    rng = np.random.default_rng(seed)
    returns = rng.normal(0, 0.02, n)
    if n:
        returns[rng.integers(0, n, nans)] = np.nan
    edges = sorted({0, n, *(min(c, n) for c in cuts)})
    bounds = np.array(list(itertools.pairwise(edges)), np.int64).reshape(-1, 2)
    outer = np.cumsum(rng.integers(0, 2, len(bounds))) if len(bounds) else np.zeros(0, np.int64)
    outer = (outer - outer[:1].sum()).astype(np.int64)  # from 0, a step of 0 or 1
    compiled = tearsheet._compounded(returns, bounds, outer)
    python = tearsheet._compounded_as_python(returns, bounds, outer)
    assert [_bits(part) for part in compiled] == [_bits(part) for part in python]
