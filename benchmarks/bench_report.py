"""How long report.html takes for a 1,000,000-bar run, and how large it is.

Backtests the default strategy over 1,000,000 one-minute bars (a walk-forward with few,
small folds, so that the run itself is quick), then times `write_report` on its run
directory: what `tradeloom report RUN_DIR` does, reading every file from disk. The
reference, timed in the same process on the same machine, is pandas writing the run's
equity curve (1,000,000 rows) to CSV. The targets (issue 13): under 5 s and under 15 MB,
every trade marker kept.

    python benchmarks/bench_report.py [--bars 1000000] [--runs 3] [--keep DIR] [--smoke]

``--keep DIR`` leaves the run directory in DIR (made once: a later call with the same
DIR times the report of the run already there), to profile the report without running
the backtest again.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
from machine import describe
from smoke import add_smoke, parse_args

from tradeloom.cli.main import main
from tradeloom.reporting.report import write_report

ROOT = Path(__file__).resolve().parents[1]


def make_run(out: Path, bars: int) -> None:
    overrides = {
        "data.bars": bars,
        "data.timeframe": "1m",
        "model.params.n_estimators": 20,
        "model.params.n_jobs": 1,
        "model.walk_forward.train_window": min(20_000, bars // 2),
        "model.walk_forward.retrain_every": bars // 10,
        "risk.max_holding_bars": 240,
    }
    args = ["--log-level", "error", "--quiet", "run", str(ROOT / "strategies" / "btc_rf.yaml")]
    args += ["--out", str(out)]
    for key, value in overrides.items():
        args += ["--set", f"{key}={value}"]
    with contextlib.redirect_stdout(io.StringIO()):
        if main(args) != 0:
            raise SystemExit("the backtest failed")


def timed(fn: object, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR")
    add_smoke(parser, bars=1_000, runs=1)
    args = parse_args(parser)
    print(describe("tradeloom", "plotly", "pandas", "numpy"))
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = (args.keep or Path(tmp)) / "run"
        if not (run_dir / "metrics.json").is_file():
            start = time.perf_counter()
            make_run(run_dir, args.bars)
            print(f"backtest of {args.bars:,} bars: {time.perf_counter() - start:.1f} s")
        metrics = json.loads((run_dir / "metrics.json").read_text())
        report = timed(lambda: write_report(run_dir), args.runs)
        size = (run_dir / "report.html").stat().st_size
        equity = pd.read_csv(run_dir / "equity.csv")
        reference = timed(lambda: equity.to_csv(Path(tmp) / "ref.csv", index=False), args.runs)
        text = (run_dir / "report.html").read_text(encoding="utf-8")
    print(f"trades: {metrics['trades']:,} (each drawn: entry and exit markers)")
    print(f"report.html: {report:.2f} s (median of {args.runs}), {size / 1e6:.1f} MB")
    print(f"reference, pandas to_csv of the {len(equity):,}-row equity curve: {reference:.2f} s")
    print(f"ratio report / reference: {report / reference:.2f}")
    ok = report < 5.0 and size < 15e6 and "Plotly.newPlot" in text
    print(f"targets (< 5 s, < 15 MB): {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    main_bench()
