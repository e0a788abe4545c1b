"""What a universe backtest costs as a whole process, beside a vectorbt script doing the same.

The universe of ``bench_run.py --symbols``: ``--symbols`` one-minute random-walk markets
of ``--bars`` bars each in one long Parquet file, the SMA(10)/SMA(50) cross of each as
precomputed probabilities, 1% of equity per entry, long-only, 0.1% fees, fills at the
close, 100,000 of cash shared by every symbol (issue 67: 500 x 10,000).

Two commands, each a process of its own, alternated ``--runs`` times (the order
reversed every other round, so a shared machine's slow minute falls on both):

  a. ``tradeloom run UNIVERSE.yaml --out DIR -q``: imports, the strategy file, the data,
     every output the strategy file leaves on (the run folder a user gets);
  b. a vectorbt script (`VECTORBT_SCRIPT`): reads the same Parquet file, pivots it to
     ``[bars, symbols]``, ``Portfolio.from_signals`` with shared cash (``group_by=True,
     cash_sharing=True``, 1% of the cash left per entry: its closest sizing), then
     ``stats()``, and writes what a user keeps: the equity curve, the orders and the
     trades as Parquet and the stats as JSON. It pays its own kernels' compile in
     every process, as a script does.

For each: wall seconds, peak RSS (the child's ``ru_maxrss``), exit code, and the
folder's size, file by file (the largest first). Medians of ``--runs`` are compared.

    python benchmarks/bench_universe_run.py [--symbols 500] [--bars 10000] [--runs 1]
        [--skip-peer] [--keep DIR] [--smoke]

Targets (issue 67): peak RSS <= 1.2 GiB, folder <= 60 MB, wall <= vectorbt's; run
heavy sizes at ``nice -n 5`` on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench_run import RSS_OF_CHILD, write_universe
from machine import describe
from smoke import VECTORBT_SKIPPED, add_smoke, parse_args

VECTORBT_SCRIPT = """\
import json, sys, warnings
from pathlib import Path
import numpy as np, pandas as pd
import vectorbt as vbt
warnings.simplefilter("ignore")
data, out = Path(sys.argv[1]), Path(sys.argv[2])
frame = pd.read_parquet(data, columns=["timestamp", "symbol", "close", "p_up"])
close = frame.pivot(index="timestamp", columns="symbol", values="close")
p_up = frame.pivot(index="timestamp", columns="symbol", values="p_up")
close.index = close.index.tz_localize(None)
p_up.index = close.index
portfolio = vbt.Portfolio.from_signals(
    close, p_up == 1.0, p_up == 0.0, size=0.01, size_type="percent", fees=0.001,
    init_cash=100_000.0, group_by=True, cash_sharing=True, min_size=0.0, freq="1min",
)
stats = portfolio.stats()
out.mkdir()
portfolio.value().to_frame("equity").to_parquet(out / "equity.parquet")
portfolio.orders.records_readable.to_parquet(out / "orders.parquet")
portfolio.trades.records_readable.to_parquet(out / "trades.parquet")
(out / "stats.json").write_text(json.dumps({k: str(v) for k, v in stats.items()}, indent=2))
"""
"""The vectorbt script (b.): ``python -c VECTORBT_SCRIPT DATA.parquet OUT_DIR``."""


@dataclass
class Sample:
    """One run of a command: wall seconds, exit code, peak RSS (KiB), the folder's files."""

    seconds: float
    code: int
    rss: int
    files: dict[str, int] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(self.files.values())


def folder_files(folder: Path) -> dict[str, int]:
    """Return each file's bytes under ``folder`` by its relative path."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


def timed(command: list[str], out: Path) -> Sample:
    """Run ``command`` (which writes ``out``) in a process of its own; measure it."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", RSS_OF_CHILD, sys.executable, *command],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    seconds = time.perf_counter() - start
    code, rss = (int(x) for x in proc.stdout.split()[-2:])
    sample = Sample(seconds, code, rss, folder_files(out))
    shutil.rmtree(out, ignore_errors=True)
    return sample


def describe_sample(name: str, sample: Sample, largest: int = 12) -> None:
    print(
        f"  {name}: {sample.seconds:7.2f} s, exit {sample.code}, peak RSS "
        f"{sample.rss / 1024:,.0f} MiB, folder {sample.size / 1e6:,.1f} MB "
        f"({len(sample.files)} files)"
    )
    ranked = sorted(sample.files.items(), key=lambda kv: -kv[1])
    for path, size in ranked[:largest]:
        print(f"      {size / 1e6:9.2f} MB  {path}")
    if len(ranked) > largest:
        rest = sum(size for _, size in ranked[largest:])
        print(f"      {rest / 1e6:9.2f} MB  ({len(ranked) - largest} more files)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--bars", type=int, default=10_000, help="bars of each symbol")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--skip-peer", action="store_true", help="tradeloom alone")
    parser.add_argument("--keep", type=Path, help="keep the data and strategy file here")
    add_smoke(parser, symbols=3, bars=300, runs=1, skip_peer=True)
    args = parse_args(parser)
    print(describe("numpy", "pandas", "pyarrow", "numba", "vectorbt"))
    print("load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    if args.skip_peer and args.smoke:
        print(VECTORBT_SKIPPED)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = args.keep or Path(tmp)
        scratch.mkdir(parents=True, exist_ok=True)
        strategy = write_universe(scratch, args.symbols, args.bars, monitor=False)
        data = scratch / "universe.parquet"
        print(
            f"{args.symbols} symbols x {args.bars:,} one-minute bars "
            f"({data.stat().st_size / 1e6:.1f} MB of Parquet data), {args.runs} run(s) each"
        )
        engines = {
            "tradeloom run": lambda k: timed(
                [
                    "-m",
                    "tradeloom.cli",
                    "run",
                    str(strategy),
                    "-q",
                    "--out",
                    str(scratch / f"tl-{k}"),
                ],
                scratch / f"tl-{k}",
            ),
        }
        if not args.skip_peer:
            engines["vectorbt script"] = lambda k: timed(
                ["-c", VECTORBT_SCRIPT, str(data), str(scratch / f"vbt-{k}")],
                scratch / f"vbt-{k}",
            )
        samples: dict[str, list[Sample]] = {name: [] for name in engines}
        for k in range(args.runs):
            order = list(engines) if k % 2 == 0 else list(reversed(engines))
            for name in order:
                sample = engines[name](k)
                samples[name].append(sample)
                describe_sample(f"round {k + 1}, {name}", sample)
        print("medians:")
        medians = {}
        for name, done in samples.items():
            medians[name] = statistics.median(s.seconds for s in done)
            rss = max(s.rss for s in done) / 1024
            size = done[-1].size / 1e6
            print(f"  {name:<16} wall {medians[name]:7.2f} s  peak RSS {rss:7,.0f} MiB  "
                  f"folder {size:7.1f} MB  exits {[s.code for s in done]}")  # fmt: skip
        if "vectorbt script" in medians:
            ratio = medians["vectorbt script"] / medians["tradeloom run"]
            print(f"  tradeloom's wall is {ratio:.2f}x vectorbt's speed (>= 1: as fast or faster)")
    print("load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
