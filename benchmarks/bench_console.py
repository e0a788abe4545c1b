"""What the console answers in: the runs page over 50 runs, and a run page's update
after a bar is journaled.

Builds, in a temporary folder, one backtest and one paper run on the simulated clock
through the command line, then copies of them up to ``--runs`` folders (a copy reads as
its original: its journal and files are the run's). The console is served by uvicorn in
this process (a thread), and asked over HTTP as a browser asks it:

  a. the runs page: ``GET /`` then ``GET /api/v1/runs`` (the page draws what the API
     answers): the first time (every journal read) and ``--repeat`` times after
     (median, max: the runs whose journals did not change are kept);
  b. a run page's update: a paper run plays ``--bars`` bars on the simulated clock at
     one bar per ``--every`` seconds, beside the ``--runs`` others, while a client
     follows its run page's event stream; each event's latency is the time from the
     journal's last write (its files' mtime) to the event's arrival, for the events
     that carry a new bar;
  c. what one update costs as the journal grows: a paper run of ``--long`` bars, whose
     journal gets one more bar (a live bar and a fill, appended as the run appends
     them) ``--repeat`` times; after each, the run page's answer is computed by the
     console's follower (the new rows only) and, for reference, as before it followed
     (a fresh reader: the whole journal verified and read). Medians and their ratio.

Targets: (a) under 300 ms, (b) under 100 ms. The machine's load average is printed
before and after (a slow shared machine shows in it).

    python benchmarks/bench_console.py [--runs 50] [--repeat 20] [--bars 12] [--every 1.5]
        [--long 1200] [--history 2000] [--smoke]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx2
import pandas as pd
import structlog
import uvicorn
from machine import describe
from smoke import add_smoke, parse_args

from tradeloom.console.app import create_app
from tradeloom.console.runs import RunIndex
from tradeloom.console.tokens import Sessions, Tokens
from tradeloom.engine.status import read_run
from tradeloom.journal import FillEvent, LiveBar, journal_path, open_journal, read_info

ROOT = Path(__file__).resolve().parents[1]
TOKENS = Tokens("bench-read-token-0123456789", "bench-write-token-0123456789", "bench")
STRATEGY = """\
name: bench
seed: 1
data: {kind: synthetic, symbol: BTC/USDT, timeframe: 1h, bars: 2000, start: "2024-01-01T00:00:00Z"}
features:
  - {kind: log_return, period: 1}
  - {kind: rsi, window: 14}
model:
  kind: sklearn
  estimator: sklearn.ensemble.RandomForestClassifier
  params: {n_estimators: 5, max_depth: 3, n_jobs: 1}
  label: {horizon: 2}
  walk_forward: {train_window: 300, retrain_every: 200}
signal: {kind: threshold, threshold: 0.02, min_interval: 1}
risk:
  sizing: {kind: fixed_fraction, fraction: 0.5}
execution: {kind: simulated, fee_bps: 10, initial_cash: 10000, allow_short: true}
"""


def tradeloom(*args: str, cwd: Path, wait: bool = True) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tradeloom.cli.main", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if wait:
        _, err = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"tradeloom {' '.join(args)} failed: {err}")
    return proc


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def serve(runs: Path) -> tuple[str, uvicorn.Server]:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app([runs], TOKENS, Sessions()), log_config=None, access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return f"http://127.0.0.1:{port}", server


def journal_written(run: Path) -> float:
    """The last write of the run's journal (its files' newest mtime), in seconds."""
    times = []
    for name in ("journal.sqlite", "journal.sqlite-wal"):
        with contextlib.suppress(FileNotFoundError):
            times.append(os.stat(run / name).st_mtime_ns)
    return max(times) / 1e9


def grow(run: Path, bars: int, start: int) -> None:
    """Append ``bars`` bars to the run's journal (a live bar and a fill each), as it would."""
    path = journal_path(run)
    journal = open_journal(path, read_info(path).identity)
    last = read_run(run).status
    assert last.last_bar is not None and last.last_bar_time is not None
    for i in range(start, start + bars):
        bar = last.last_bar + 1 + i - start
        stamp = pd.Timestamp(last.last_bar_time) + pd.Timedelta(hours=1 + i - start)
        close = 40000.0 + (i % 7) * 10.0
        journal.append(
            LiveBar(bar=bar, timestamp=stamp, symbol="BTC/USDT", open=close, high=close,
                    low=close, close=close, volume=1.0, probability=0.5, anomalous=False,
                    anomaly_score=0.0, wall_time=stamp)
        )  # fmt: skip
        journal.append(
            FillEvent(bar=bar, timestamp=stamp, symbol="BTC/USDT", correlation_id=bar,
                      order_id=f"bench-{i}", side=1 if i % 2 else -1, quantity=0.01,
                      price=close, fee=0.1, slippage=0.0)
        )  # fmt: skip
        journal.flush()
    journal.close()


def update_cost(run: Path, repeat: int) -> None:
    """(c): one more bar, then the run page's answer: followed, and read afresh."""
    index = RunIndex([run.parent])
    ref = index.resolve(f"0/{run.name}")
    bars = index.detail(ref)["status"]["bars"]
    followed, fresh = [], []
    for i in range(repeat):
        grow(run, 1, i)
        start = time.perf_counter()
        answer = index.detail(ref)
        followed.append(time.perf_counter() - start)
        start = time.perf_counter()
        again = RunIndex([run.parent]).detail(ref)
        fresh.append(time.perf_counter() - start)
        assert answer["status"]["equity"] == again["status"]["equity"]
        assert answer["status"]["bars"] == again["status"]["bars"] == bars + i + 1
    one, other = statistics.median(followed), statistics.median(fresh)
    print(
        f"one update of a run page, journal of {bars}..{bars + repeat} bars: followed "
        f"(new rows) median {one * 1000:.1f} ms, max {max(followed) * 1000:.1f} ms; read "
        f"afresh (verify + every row, the reference) median {other * 1000:.1f} ms: "
        f"{other / one:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--bars", type=int, default=12)
    parser.add_argument("--every", type=float, default=1.5, help="seconds per played bar")
    parser.add_argument("--long", type=int, default=1200, help="bars of (c)'s paper run")
    parser.add_argument("--history", type=int, default=2000, help="the strategy's bars")
    add_smoke(parser, runs=3, repeat=1, bars=2, every=0.05, history=400)
    args = parse_args(parser)
    # the console's access log (one line per request) is not what is measured
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    print(describe("starlette", "uvicorn", "pandas"))
    print(load())
    with tempfile.TemporaryDirectory(prefix="bench-console-") as folder:
        work = Path(folder)
        (work / "s.yaml").write_text(STRATEGY.replace("bars: 2000", f"bars: {args.history}"))
        runs = work / "runs"
        tradeloom("run", "s.yaml", "--out", "runs/bench-bt", cwd=work)
        tradeloom(
            "run", "s.yaml", "--mode", "paper", "--clock", "simulated", "--speed", "max",
            "--max-bars", "20", "-q", "--out", "runs/bench-paper", cwd=work,
        )  # fmt: skip
        if args.smoke:  # (c) grows a copy of the paper run: the same command, one process fewer
            shutil.copytree(runs / "bench-paper", work / "long" / "bench-long")
        else:
            tradeloom(
                "run", "s.yaml", "--mode", "paper", "--clock", "simulated", "--speed", "max",
                "--max-bars", str(args.long), "-q", "--out", "long/bench-long", cwd=work,
            )  # fmt: skip
        print(load())
        originals = [runs / "bench-bt", runs / "bench-paper"]
        for i in range(args.runs - 2):  # and the live paper run of (b): one more
            shutil.copytree(originals[i % 2], runs / f"copy-{i:03d}-{originals[i % 2].name}")
        base, server = serve(runs)
        headers = {"Authorization": f"Bearer {TOKENS.read}"}
        with httpx2.Client(base_url=base, headers=headers, timeout=60) as client:
            # a. the runs page
            timings = []
            for _ in range(args.repeat + 1):
                start = time.perf_counter()
                client.get("/").raise_for_status()
                answer = client.get("/api/v1/runs")
                answer.raise_for_status()
                timings.append(time.perf_counter() - start)
            count = len(answer.json()["runs"])
            first, rest = timings[0], timings[1:]
            print(
                f"runs page, {count} runs: first {first * 1000:.0f} ms (every journal read), "
                f"then median {statistics.median(rest) * 1000:.1f} ms, max "
                f"{max(rest) * 1000:.1f} ms over {len(rest)} (target < 300 ms)"
            )
            # b. a run page's update while a paper run plays
            speed = f"{3600 / args.every:g}x"
            live = runs / "bench-live"
            player = tradeloom(
                "run", "s.yaml", "--mode", "paper", "--clock", "simulated", "--speed", speed,
                "--max-bars", str(args.bars), "-q", "--out", "runs/bench-live", cwd=work,
                wait=False,
            )  # fmt: skip
            while not (live / "journal.sqlite").exists():
                if player.poll() is not None:  # ended before its journal: say why
                    raise SystemExit(f"the paper run failed: {player.communicate()[1][-2000:]}")
                time.sleep(0.05)
            latencies: list[float] = []
            bars_seen: set[int] = set()
            with client.stream("GET", "/api/v1/events/0/bench-live") as stream:
                for line in stream.iter_lines():
                    if not line.startswith("data: "):  # a keepalive: is the run over?
                        if player.poll() is not None:
                            break
                        continue
                    arrived = time.time()
                    data = json.loads(line[6:])
                    bar = (data.get("status") or {}).get("last_bar")
                    if bar is not None and bar not in bars_seen:
                        bars_seen.add(bar)
                        latencies.append(arrived - journal_written(live))
                    if player.poll() is not None or len(bars_seen) >= args.bars:
                        break
            player.wait()
            server.should_exit = True
        if latencies:
            latencies = latencies[1:] or latencies  # the first: the page's opening read
            print(
                f"run page update after a bar is journaled, {len(latencies)} bars: median "
                f"{statistics.median(latencies) * 1000:.1f} ms, max "
                f"{max(latencies) * 1000:.1f} ms (target < 100 ms)"
            )
        print(load())
        update_cost(work / "long" / "bench-long", args.repeat)
    print(load())


if __name__ == "__main__":
    main()
