"""What a tool call of ``tradeloom mcp`` costs over the same call of the Python API.

Serves a temporary workspace (one strategy over ``--bars`` synthetic hourly bars) with
``tradeloom mcp serve`` over stdio, and drives it with the MCP SDK's own client, as an
agent does. Each call is made ``--repeat`` times after one warm-up (the kernels' first
compile is not the door's cost), and the same work is done in this process through the
Python API (``tradeloom.load``, ``Strategy.backtest``, ``Run.save``), in the same
workspace, in turns with the tool's (so both meet the same load of the machine):

  a. ``gate``: no work at all: the round trip, the arguments' check and the audit line
     (flushed and fsync'd);
  b. ``validate``: a strategy file checked, against ``tradeloom.load(FILE)``;
  c. ``backtest``: a backtest held in memory and saved as a run folder, against
     ``tradeloom.load(FILE).backtest().save(DIR)`` and the saved run's metrics and trades
     (what the tool answers with).

Each line prints both medians and the overhead (the tool's median minus the API's).
Target: an overhead of at most 50 ms. The machine's load average is printed before and
after (a slow shared machine shows in it).

    python benchmarks/bench_mcp.py [--bars 2000] [--repeat 20] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from machine import describe
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from smoke import add_smoke, parse_args

import tradeloom
from tradeloom.runtime.threads import apply_native_threads, native_threads

ROOT = Path(__file__).resolve().parents[1]
STRATEGY = """\
name: bench
seed: 1
data:
  {{kind: synthetic, symbol: BTC/USDT, timeframe: 1h, bars: {bars}, start: "2024-01-01T00:00:00Z"}}
features:
  - {{kind: log_return, period: 1}}
  - {{kind: rsi, window: 14}}
model:
  kind: sklearn
  estimator: sklearn.ensemble.RandomForestClassifier
  params: {{n_estimators: 5, max_depth: 3, n_jobs: 1}}
  label: {{horizon: 2}}
  walk_forward: {{train_window: 300, retrain_every: 200}}
signal: {{kind: threshold, threshold: 0.02, min_interval: 1}}
risk:
  sizing: {{kind: fixed_fraction, fraction: 0.5}}
execution: {{kind: simulated, fee_bps: 10, initial_cash: 10000}}
"""
FILE = "strategies/bench.yaml"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def in_process(folder: Path) -> dict[str, Callable[[], Any]]:
    runs = iter(range(10**9))

    def backtest() -> None:  # what the tool answers: the saved run's metrics and trades
        run = tradeloom.load(FILE).backtest(quiet=True).save(folder / "api-runs" / str(next(runs)))
        assert run.metrics and run.trades is not None

    return {"gate": lambda: None, "validate": lambda: tradeloom.load(FILE), "backtest": backtest}


async def medians(folder: Path, repeat: int) -> dict[str, tuple[float, float]]:
    """Return each call's median over MCP and in this process, in ms, taken in turns (a
    tool call, then the API's) so that both meet the same machine."""
    command = [sys.executable, "-m", "tradeloom.cli.main", "mcp", "serve", str(folder)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = StdioServerParameters(command=command[0], args=command[1:], env=env)
    calls = {"gate": {}, "validate": {"path": FILE}, "backtest": {"path": FILE}}
    api = in_process(folder)
    found = {}
    async with Client(server) as client:
        for name, arguments in calls.items():
            await client.call_tool(name, arguments)  # warm-up: compiles, the tool's imports
            api[name]()
            tool_times, api_times = [], []
            for _ in range(repeat):
                start = time.perf_counter()
                result = await client.call_tool(name, arguments)
                tool_times.append(time.perf_counter() - start)
                if result.is_error:
                    raise SystemExit(f"{name} failed: {result.content[0].text}")
                start = time.perf_counter()
                api[name]()
                api_times.append(time.perf_counter() - start)
            found[name] = (
                statistics.median(tool_times) * 1000,
                statistics.median(api_times) * 1000,
            )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=20)
    add_smoke(parser, bars=400, repeat=1)
    args = parse_args(parser)
    print(describe("mcp", "numba", "scikit-learn"))
    print(load())
    with tempfile.TemporaryDirectory(prefix="bench-mcp-") as name:
        folder = Path(name)
        (folder / "strategies").mkdir()
        (folder / FILE).write_text(STRATEGY.format(bars=args.bars), encoding="utf-8")
        os.chdir(folder)  # the server works in the workspace; so does the API here
        apply_native_threads(native_threads())  # as the command does: the same threads
        found = anyio.run(medians, folder, args.repeat)
    print(f"{args.repeat} calls each after a warm-up, tool and API in turns; {args.bars} bars")
    for name, (tool, api) in found.items():
        over = tool - api
        print(
            f"  {name:<9} tool {tool:8.1f} ms   API {api:8.1f} ms   "
            f"overhead {over:6.1f} ms (target <= 50 ms: {'met' if over <= 50 else 'MISSED'})"
        )
    print(load())


if __name__ == "__main__":
    main()
