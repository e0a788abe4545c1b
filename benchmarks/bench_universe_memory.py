"""How a paper universe's memory grows with the bars it has played: the whole command.

A user's ``tradeloom run FILE --mode paper --clock simulated --speed max`` over a
universe of ``--symbols`` synthetic markets (strategies/portfolio_top3.yaml's features,
pooled gradient boosting and top-3 signal, its symbols multiplied) runs as a process
of its own; its per-bar lines are counted as they are printed and its resident set
size (``VmRSS`` in ``/proc/PID/status``, the emulator serving the bars included: it runs
in the same process) is read when the run reaches each checkpoint bar. The report's
redraws run in short-lived processes of their own (`tradeloom.live.outputs.refresh`): their
memory is not the run's and is not counted. The reference,
measured in the same run, is the RSS at the first checkpoint: a run whose memory is
bounded by its windows (features, models, monitors, the report's refresh) stays near
it. Issue 67's targets, both printed in the verdict: at 4 x ``--at`` (bar 4,000)
within 3% of it, and at 20 x ``--at`` (bar 20,000, the longer run ``--bars 20000``)
within 5%.

    python benchmarks/bench_universe_memory.py [--symbols 40] [--bars 4000] [--at 1000] [--smoke]
    python benchmarks/bench_universe_memory.py --bars 20000   # the longer run
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe
from smoke import add_smoke, parse_args

ROOT = Path(__file__).resolve().parent.parent
BAR_LINE = re.compile(r" bar \d+ \|")


def strategy_text(symbols: int, bars: int) -> str:
    """portfolio_top3.yaml over ``symbols`` markets with ``bars`` to play after as many
    bars of history (the simulated clock plays the second half of the data)."""
    text = (ROOT / "strategies" / "portfolio_top3.yaml").read_text()
    names = ", ".join(f"S{k:02d}/USDT" for k in range(symbols))
    text = re.sub(r"symbols: \[[^\]]*\]", f"symbols: [{names}]", text, count=1, flags=re.S)
    text = re.sub(r"bars: \d+", f"bars: {2 * (bars + 10)}", text, count=1)
    # the history before the played bars holds a first fold (1500 bars, at --bars >= 1500)
    text = text.replace("train_window: 1500", f"train_window: {min(1500, bars)}", 1)
    return text.replace("name: portfolio_top3", "name: bench_memory", 1)


def rss_mb(pid: int) -> float:
    """Return the resident set size of process ``pid`` in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def run(symbols: int, bars: int, checkpoints: list[int], folder: Path) -> dict[int, float]:
    """Run the command; return the RSS (MB) at each checkpoint bar (0: the first bar)."""
    strategy = folder / "universe.yaml"
    strategy.write_text(strategy_text(symbols, bars))
    command = [
        sys.executable,
        "-m",
        "tradeloom.cli.main",
        "run",
        str(strategy),
        "--mode",
        "paper",
        "--clock",
        "simulated",
        "--speed",
        "max",
        "--max-bars",
        str(bars),
        "--out",
        str(folder / "run"),
    ]
    seen: dict[int, float] = {}
    played = 0
    started = time.perf_counter()
    with subprocess.Popen(
        command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            if not BAR_LINE.search(line):
                continue
            played += 1
            if played == 1 or played in checkpoints:
                seen[0 if played == 1 else played] = rss_mb(process.pid)
                print(
                    f"  bar {played:>5}: RSS {seen[0 if played == 1 else played]:7.1f} MB "
                    f"({time.perf_counter() - started:6.1f} s)",
                    flush=True,
                )
        code = process.wait()
    if code != 0 or played < bars:
        raise SystemExit(f"the run exited {code} after {played} of {bars} bars")
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=40)
    parser.add_argument("--bars", type=int, default=4000, help="bars to play (default 4000)")
    parser.add_argument("--at", type=int, default=1000, help="the reference bar (default 1000)")
    add_smoke(parser, symbols=3, bars=40, at=20)
    args = parse_args(parser)
    targets = {4 * args.at: 0.03, 20 * args.at: 0.05}  # issue 67: bar 4,000 and 20,000
    checkpoints = sorted({args.at, args.bars, *range(args.at, args.bars, args.at)})
    print(describe("scikit-learn", "numpy", "pandas"))
    print(f"paper universe of {args.symbols} symbols on the simulated clock, {args.bars} bars:")
    with tempfile.TemporaryDirectory() as tmp:
        seen = run(args.symbols, args.bars, checkpoints, Path(tmp))
    first, last = seen[args.at], seen[args.bars]
    growth = (last - first) / (args.bars - args.at) * 1024
    print(
        f"RSS at bar {args.at:,}: {first:.1f} MB; at bar {args.bars:,}: {last:.1f} MB; "
        f"ratio {last / first:.3f} ({growth:+.1f} KB a bar)"
    )
    for bar, limit in targets.items():
        if bar in seen:
            ratio = seen[bar] / first
            verdict = "within" if ratio <= 1 + limit else "OVER"
            print(f"  bar {bar:,} / bar {args.at:,}: {ratio:.3f}, {verdict} {limit:.0%}")
        else:
            print(f"  bar {bar:,} / bar {args.at:,}: not played (--bars {bar} plays it)")


if __name__ == "__main__":
    main()
