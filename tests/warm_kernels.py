"""Compile the kernels the suite uses into numba's on-disk cache, once, before it runs.

On a fresh clone no kernel is cached. Each pytest-xdist worker, and each process a test
starts (the CLI, a sweep's pool, a Dask worker), would then compile the same kernels at
the same time; on two cores that turned a 90 s compile into 8 minutes of the sweep's
tests. `tests/conftest.py` runs this script in the controlling process before any
worker starts, so that every process loads the kernels from the cache. With a warm
cache it costs the start-up of the commands below, a few seconds.

It runs the real CLI on the suite's small strategy: a sweep (the batch kernel, the
batch driver, the features, the order types), the per-bar driver, and a universe (its
model a small forest: `FOREST`). On an
empty cache two kernels are most of the compile: the bar's step (`tradeloom.core.bar.run_bars`)
and the sweep's batch kernel that calls it, 48 of the sweep's 62 s of CPU. So two
processes start at once, one per core, and compile disjoint kernels (`PARTS`): one those
two alone, every other kernel of its commands run as Python; the other every other
kernel of the sweep and of the wide run, those two run as Python. Then the
remaining commands run side by side and load what the two cached. Once
they have run on a stamp of the kernels' sources, a marker in that stamp's cache folder
says so, and the next suite skips them (6 s of wall time, before any worker starts).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SMALL = HERE / "sweep" / "small_strategy.yaml"
LINEAR = "estimator: sklearn.linear_model.LogisticRegression\n"
FOREST = (
    "estimator: sklearn.ensemble.RandomForestClassifier\n"
    "  params: {n_estimators: 5, max_depth: 3}\n"
)
"""The universe's model: a tree ensemble's compiled inference
(`tradeloom.plugins.model.compiled_trees`: ``_predict_rows`` and ``_predict_row``) is
two kernels that no linear model runs, and the suite's strategies with a forest or
gradient boosting (strategies/universe_black_litterman.yaml, portfolio_top3.yaml,
btc_rf.yaml) would otherwise each compile them on a cold cache (1.4 s of CPU, and a
``compiled 2 kernels`` line on a command's stderr). Five shallow trees cost the
warm-up no more than that compile; the other commands keep the linear model."""


def commands(out: Path) -> list[list[str]]:
    """Return the CLI invocations that compile what the suite runs (files go in ``out``)."""
    cli = [sys.executable, "-m", "tradeloom.cli.main", "-q"]
    small = str(SMALL)
    universe = out / "universe.yaml"  # a universe of two, its model a small forest
    text = SMALL.read_text()
    assert LINEAR in text, f"{SMALL} names another model: warm a forest some other way"
    universe.write_text(
        text.replace("symbol: BTC/USDT", "symbols: [BTC/USDT, ETH/USDT]").replace(LINEAR, FOREST)
    )
    wide = out / "wide.yaml"  # every built-in feature and monitor the suite's files name
    wide.write_text(
        SMALL.read_text().replace("features:\n", f"features:\n{WIDE_FEATURES}", 1) + WIDE_MONITORS
    )
    return [
        [*cli, "sweep", small, "--grid", "signal.threshold=0.02,0.06", "--out", str(out / "s"),
         "--keep-top", "1"],
        [*cli, "run", str(wide), "--out", str(out / "w")],
        [*cli, "run", small, "--driver", "per-bar", "--out", str(out / "p")],
        [*cli, "run", small, "--set", "execution.orders.type=limit", "--out", str(out / "l")],
        [*cli, "run", str(universe), "--out", str(out / "u")],
    ]  # fmt: skip


BOOK = [sys.executable, str(HERE.parent / "benchmarks" / "book_vs_hftbacktest.py"), "--smoke"]
"""The order book's kernels (`tradeloom.core.kernels.book` and its strategies), which no
CLI command runs: its benchmark's smoke compiles them all (25 s of CPU on an empty cache,
1 s with them cached), then tests/core/test_book.py and that smoke load them."""


HEAVY = {("tradeloom.sweep.batch_kernel", "_run_variants"), ("tradeloom.core.bar", "run_bars")}
"""The kernels that are most of an empty cache's compile (module, name): the sweep's
batch kernel and the bar's step, which it calls and a run calls (36 of its 48 s)."""

PARTS = ("heavy", "the-rest")
"""The two processes that compile from the start, each running the first two commands
(the sweep, the wide run) in process: ``heavy`` compiles the `HEAVY` kernels (and what
they call, compiled inside them) and runs every other kernel as its Python form;
``the-rest`` runs the `HEAVY` kernels, and every kernel their Python forms call, as
Python and compiles every other kernel. Between them each kernel of the two commands compiles
once; the Python forms give the same numbers (tests/kernels/test_first_run.py)."""


WIDE_FEATURES = """\
  - {kind: sma, window: 20}
  - {kind: ema, period: 12}
  - {kind: returns, period: 1}
  - {kind: volatility, window: 20}
  - {kind: atr, window: 14}
  - {kind: adx, window: 14}
  - {kind: bollinger, window: 20}
  - {kind: bb_width, window: 20}
  - {kind: donchian, window: 20}
  - {kind: macd}
  - {kind: stochastic}
  - {kind: obv}
  - {kind: volume_zscore, window: 20}
  - {kind: vwap}
  - {kind: time_features}
  - {kind: zscore, of: returns_1, window: 20}
  - {kind: lags, of: [returns_1], lags: [1, 2]}
  - {kind: lags, of: [returns_1, sma_20], lags: [3]}
  - {kind: log_return, period: 1, timeframe: 4h}
"""
"""Features beyond the small strategy's, whose kernels a test would otherwise compile
on its own (and print a ``compiled 1 kernel`` line after the line it reads). Two lags:
pandas hands one column over read-only and several writable, two signatures of
``lags._lags`` (strategies/btc_rf.yaml lags two); a feature on a higher timeframe
compiles the resampler (``engine.timeframe.resample``: examples/informative_pair.yaml,
strategies/btc_mtf.yaml)."""

WIDE_MONITORS = """\
monitoring:
  - {kind: rolling_auc, window: 100}
  - {kind: calibration, window: 100}
  - {kind: prediction_rate, window: 100}
  - {kind: feature_drift}
  - {kind: execution_quality}
"""


def _marker() -> Path:
    """Return the file that says these commands ran on the kernels of this checkout: in
    the cache folder of their stamp, named by this script's own digest."""
    sys.path.insert(0, str(HERE.parent))  # the checkout's package, as the commands run it
    from tradeloom.kernels.cache import kernel_cache_root
    from tradeloom.kernels.jit import package_stamp

    script = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    return kernel_cache_root() / package_stamp()[:24] / f"suite-warmed-{script}"


def compile_part(part: str) -> int:
    """Run the sweep and the wide run in this process, compiling only ``part``'s kernels
    (`PARTS`); return the first non-zero exit code."""
    from tradeloom.cli.main import main as tradeloom
    from tradeloom.kernels import jit

    def heavy(func: Callable[..., Any]) -> bool:
        return (func.__module__, func.__qualname__) in HEAVY

    def python_form(func: Callable[..., Any]) -> bool:
        if part == "heavy":
            return not heavy(func)
        # or called by a heavy kernel's Python form: compiled inside it by the other part
        return heavy(func) or jit._depth.python > 0

    os.environ["TRADELOOM_FIRST_RUN"] = "compile"  # no background compile of its own
    jit.interpret(python_form)
    jit.interpret = lambda choose: None  # type: ignore[assignment]  # each command's own choice
    with tempfile.TemporaryDirectory(prefix="tradeloom-warm-") as folder:
        for argv in commands(Path(folder))[:2]:
            code = tradeloom(argv[3:])
            if code:
                return code
    return 0


def main() -> int:
    """Run every command; return the first non-zero exit code (0: all compiled).

    The two `PARTS` run first, side by side: the sweep and the wide run, which compile
    every kernel but a few, split between the two cores. The other commands and `BOOK`
    then run side by side: each compiles what only it uses, or, with a warm cache, only
    loads it.
    """
    marker = _marker()
    if marker.is_file():
        return 0
    # the checkout's package, the one the tests import, whatever pip installed
    path = os.pathsep.join(p for p in (str(HERE.parent), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    with tempfile.TemporaryDirectory(prefix="tradeloom-warm-") as folder:
        parts = [[sys.executable, __file__, "--part", part] for part in PARTS]
        for batch in (parts, [*commands(Path(folder))[2:], BOOK]):
            running = [
                (argv, subprocess.Popen(argv, cwd=folder, env=env, text=True,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
                for argv in batch
            ]  # fmt: skip
            errors = [proc.communicate()[1] for _, proc in running]  # all end before a return
            for (argv, proc), err in zip(running, errors, strict=True):
                if proc.returncode != 0:
                    sys.stderr.write(f"warming the kernel cache failed: {' '.join(argv)}\n")
                    sys.stderr.write(err[-2000:])
                    return proc.returncode
    with contextlib.suppress(OSError):  # a read-only cache: the commands run again next time
        marker.touch()
    return 0


if __name__ == "__main__":
    raise SystemExit(compile_part(sys.argv[2]) if sys.argv[1:2] == ["--part"] else main())
