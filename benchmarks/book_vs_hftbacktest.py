"""tradeloom's book backtest against hftbacktest's on the same L2 stream and strategies.

    python benchmarks/book_vs_hftbacktest.py [--events 1000000] [--python PATH] [--repeat 3]

The stream is `book_stream.make_stream` (deterministic; no recorded L2 file with trades
ships with tradeloom). Two strategies, written once for each engine with the same
decisions (`tradeloom.core.kernels.book_strategies` and their twins below): a quoter
(post-only orders at each best, requoted every 100 ms, one lot, position within 10 lots)
and a taker (a market order of one lot every second the mid moved, position within 10
lots), each under the risk-averse queue and the power-3 probabilistic queue, with 5 ms
order and report latency, a 0.5 bps maker rebate and a 7 bps taker fee.

hftbacktest runs in its own interpreter: ``--python`` names one that has
``hftbacktest`` installed; without it the script makes (once) and reuses a venv under
``~/.cache/tradeloom-bench/hftbacktest-2.4.4`` with hftbacktest 2.4.4 from PyPI. The
project's environment is never touched.

It prints, per strategy and queue model, both engines' fill counts, positions and P&L
(balance + position x last mid - fees) and their differences, then the best-of-``repeat``
time of each engine's strategy loop (warm: compiling is excluded and printed apart) and
the ratio, with the machine's load. It exits 1 when the fill counts differ or the P&L
differs by more than ``--tolerance`` (1e-9 by default).

hftbacktest's exchange here is its ``no_partial_fill_exchange``: its
``partial_fill_exchange`` (2.4.4) stops the quoter with ``InvalidOrderStatus`` (code
14) after a queue fill of exactly an order's rest (the filled order stays in its book),
and for one-lot orders on whole-lot data the two fill the same (a one-lot order cannot
fill in part; a one-lot market order never needs a second level).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from book_stream import LOT, TICK, make_stream, tradeloom_columns  # noqa: E402
from smoke import add_smoke, parse_args  # noqa: E402

HFTBACKTEST = "hftbacktest==2.4.4"
VENV = Path.home() / ".cache" / "tradeloom-bench" / "hftbacktest-2.4.4"
LATENCY_MS = 5.0
MAKER, TAKER = -0.00005, 0.0007
QUOTE_EVERY, TAKE_EVERY = 100_000_000, 1_000_000_000
MAX_POSITION = 10 * LOT
CASES = [("quoter", 0), ("quoter", 1), ("taker", 0), ("taker", 1)]
QUEUES = {0: "risk-averse", 1: "power(3)"}

HBT_SCRIPT = r"""
import json, sys, time
import numpy as np
from numba import njit
from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest, GTX, GTC, LIMIT, MARKET

INVALID_MIN, INVALID_MAX = -9223372036854775808, 9223372036854775807


@njit
def quoter(hbt, interval, qty, max_position):
    bid = -1
    ask = -1
    next_id = 1
    steps = 0
    while hbt.elapse(interval) == 0:
        steps += 1
        hbt.clear_inactive_orders(0)
        depth = hbt.depth(0)
        bb = depth.best_bid_tick
        ba = depth.best_ask_tick
        if bb == INVALID_MIN or ba == INVALID_MAX:
            continue
        position = hbt.position(0)
        orders = hbt.orders(0)
        if bid >= 0:
            o = orders.get(bid)
            if o is None:
                bid = -1
            elif o.price_tick != bb and o.cancellable:
                hbt.cancel(0, bid, False)
        if ask >= 0:
            o = orders.get(ask)
            if o is None:
                ask = -1
            elif o.price_tick != ba and o.cancellable:
                hbt.cancel(0, ask, False)
        if bid < 0 and position < max_position:
            bid = next_id
            next_id += 1
            hbt.submit_buy_order(0, bid, bb * depth.tick_size, qty, GTX, LIMIT, False)
        if ask < 0 and position > -max_position:
            ask = next_id
            next_id += 1
            hbt.submit_sell_order(0, ask, ba * depth.tick_size, qty, GTX, LIMIT, False)
    return steps


@njit
def taker(hbt, interval, qty, max_position):
    steps = 0
    next_id = 1
    last = np.nan
    while hbt.elapse(interval) == 0:
        steps += 1
        hbt.clear_inactive_orders(0)
        depth = hbt.depth(0)
        if depth.best_bid_tick == INVALID_MIN or depth.best_ask_tick == INVALID_MAX:
            continue
        now = (depth.best_bid_tick + depth.best_ask_tick) * depth.tick_size / 2.0
        position = hbt.position(0)
        if not np.isnan(last):
            if now > last and position < max_position:
                hbt.submit_buy_order(0, next_id, now, qty, GTC, MARKET, False)
                next_id += 1
            elif now < last and position > -max_position:
                hbt.submit_sell_order(0, next_id, now, qty, GTC, MARKET, False)
                next_id += 1
        last = now
    return steps


def backtest(events, queue, cfg):
    asset = (
        BacktestAsset()
        .data(events)
        .linear_asset(1.0)
        .constant_order_latency(cfg["latency_ns"], cfg["latency_ns"])
        .trading_value_fee_model(cfg["maker"], cfg["taker"])
        .tick_size(cfg["tick"])
        .lot_size(cfg["lot"])
        .no_partial_fill_exchange()
    )
    asset = asset.risk_adverse_queue_model() if queue == 0 else asset.power_prob_queue_model(3.0)
    return HashMapMarketDepthBacktest([asset])


def main():
    cfg = json.loads(sys.argv[2])
    events = np.load(sys.argv[1])
    out = {}
    t = time.perf_counter()
    for name, fn in (("quoter", quoter), ("taker", taker)):  # compile on a slice
        hbt = backtest(events[:2_000], 0, cfg)
        fn(hbt, cfg[name + "_every"], cfg["lot"], cfg["max_position"])
        hbt.close()
    out["compile_s"] = time.perf_counter() - t
    for name, queue in cfg["cases"]:
        fn = quoter if name == "quoter" else taker
        best = float("inf")
        for _ in range(cfg["repeat"]):
            hbt = backtest(events, queue, cfg)
            t = time.perf_counter()
            steps = fn(hbt, cfg[name + "_every"], cfg["lot"], cfg["max_position"])
            best = min(best, time.perf_counter() - t)
            sv = hbt.state_values(0)
            depth = hbt.depth(0)
            mid = (depth.best_bid_tick + depth.best_ask_tick) * depth.tick_size / 2.0
            result = dict(steps=steps, fills=int(sv.num_trades), position=sv.position,
                          balance=sv.balance, fee=sv.fee, mid=mid)
            hbt.close()
        result["seconds"] = best
        out[f"{name}/{queue}"] = result
    print(json.dumps(out))


main()
"""


def hftbacktest_python(given: str | None, make: bool = True) -> str | None:
    """Return an interpreter with hftbacktest: ``given``, or the benchmark's own venv
    (made when missing and ``make``; else None)."""
    if given:
        return given
    python = VENV / "bin" / "python"
    probe = [str(python), "-c", "import hftbacktest"]
    if not python.exists() or subprocess.run(probe, capture_output=True).returncode:
        if not make:
            return None
        print(f"making {VENV} with {HFTBACKTEST} (once)", file=sys.stderr)
        venv.create(VENV, with_pip=True, clear=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", HFTBACKTEST], check=True)
    return str(python)


def run_tradeloom(events: np.ndarray, repeat: int) -> dict[str, dict[str, float]]:
    """Run the cases on tradeloom's book kernel (compiled; compiling timed apart)."""
    from tradeloom.core.kernels import book as B
    from tradeloom.core.kernels.book_strategies import quote_touch, take_momentum
    from tradeloom.core.kernels.latency import LAT_FIXED

    leg = (LAT_FIXED, LATENCY_MS, 0.0)

    def state(ev: np.ndarray, queue: int) -> B.BookState:
        return B.new_state(
            *tradeloom_columns(ev),
            tick_size=TICK,
            lot_size=LOT,
            maker_fee=MAKER,
            taker_fee=TAKER,
            queue=queue,
            queue_n=3.0,
            send=leg,
            cancel=leg,
            report=leg,
            max_orders=len(ev) // 2 + 16,
            max_fills=len(ev) // 2 + 16,
        )

    strategies = {"quoter": (quote_touch, QUOTE_EVERY), "taker": (take_momentum, TAKE_EVERY)}
    out: dict[str, dict[str, float]] = {}
    t = time.perf_counter()
    for fn, every in strategies.values():
        fn(state(events[:2_000], 0), every, LOT, MAX_POSITION)
    out["compile"] = {"seconds": time.perf_counter() - t}
    for name, queue in CASES:
        fn, every = strategies[name]
        best = float("inf")
        for _ in range(repeat):
            st = state(events, queue)
            t = time.perf_counter()
            steps = fn(st, every, LOT, MAX_POSITION)
            best = min(best, time.perf_counter() - t)
        if st.s[B.S_FULL]:
            raise SystemExit(f"{name}: the book state filled up (orders or fills)")
        a = st.acct
        out[f"{name}/{queue}"] = {
            "steps": steps,
            "fills": int(st.s[B.S_FILLS]),
            "position": a[B.A_LOCAL + B.A_POSITION],
            "balance": a[B.A_LOCAL + B.A_BALANCE],
            "fee": a[B.A_LOCAL + B.A_FEE],
            "mid": B.mid(st, B.S_LOCAL),
            "seconds": best,
        }
    return out


def pnl(r: dict[str, float]) -> float:
    """Balance + position x last mid - fees."""
    return r["balance"] + r["position"] * r["mid"] - r["fee"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the stream")
    parser.add_argument("--python", help="an interpreter with hftbacktest installed")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (best taken)")
    parser.add_argument("--tolerance", type=float, default=1e-9, help="P&L difference allowed")
    parser.add_argument("--seed", type=int, default=87)
    add_smoke(parser, events=3_000, repeat=1)
    args = parse_args(parser, argv)

    # --smoke runs hftbacktest only when --python names it (never installs it): its
    # strategies compile at every process, as numba cannot cache them (ctypes pointers)
    python = args.python if args.smoke else hftbacktest_python(args.python)
    t = time.perf_counter()
    events = make_stream(args.events, args.seed)
    made = time.perf_counter() - t
    span = (events["exch_ts"][-1] - events["exch_ts"][0]) / 1e9
    print(f"stream: {len(events):,} events, {span / 60:.1f} min (seed {args.seed}, {made:.1f} s)")
    if python is None:
        print(
            "--smoke: hftbacktest not run (its compile at every process, which numba cannot "
            "cache: about 9 s of CPU; --smoke --python PATH runs it)"
        )
        mine = run_tradeloom(events, args.repeat)
        for name, queue in CASES:
            r = mine[f"{name}/{queue}"]
            print(f"{name} {QUEUES[queue]}: {r['fills']} fills, P&L {pnl(r):.9f}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.npy"
        np.save(path, events)
        cfg = {
            "latency_ns": round(LATENCY_MS * 1e6), "maker": MAKER, "taker": TAKER, "tick": TICK,
            "lot": LOT, "max_position": MAX_POSITION, "quoter_every": QUOTE_EVERY,
            "taker_every": TAKE_EVERY, "cases": CASES, "repeat": args.repeat,
        }  # fmt: skip
        script = Path(tmp) / "hbt.py"
        script.write_text(HBT_SCRIPT)
        env = {**os.environ, "PYTHONPATH": ""}
        answer = subprocess.run(
            [python, str(script), str(path), json.dumps(cfg)],
            capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
    if answer.returncode:
        print(answer.stderr, file=sys.stderr)
        return 2
    hbt = json.loads(answer.stdout.strip().splitlines()[-1])
    mine = run_tradeloom(events, args.repeat)

    ok = True
    print(f"{'case':<22}{'engine':<13}{'fills':>8}{'position':>10}{'P&L':>14}{'loop s':>9}")
    for name, queue in CASES:
        key = f"{name}/{queue}"
        for engine, r in (("hftbacktest", hbt[key]), ("tradeloom", mine[key])):
            print(
                f"{name + ' ' + QUEUES[queue]:<22}{engine:<13}{r['fills']:>8,}"
                f"{r['position']:>10.3f}{pnl(r):>14.9f}{r['seconds']:>9.4f}"
            )
        d_fills = mine[key]["fills"] - hbt[key]["fills"]
        d_pnl = pnl(mine[key]) - pnl(hbt[key])
        good = d_fills == 0 and abs(d_pnl) <= args.tolerance
        ok &= good
        verdict = "ok" if good else "DIFFERS"
        print(f"{'':<22}{'difference':<13}{d_fills:>8}{'':>10}{d_pnl:>14.2e}  {verdict}")
    total_h = sum(hbt[f"{n}/{q}"]["seconds"] for n, q in CASES)
    total_t = sum(mine[f"{n}/{q}"]["seconds"] for n, q in CASES)
    print(
        f"loops, best of {args.repeat}: hftbacktest {total_h:.3f} s, tradeloom {total_t:.3f} s: "
        f"tradeloom {total_h / total_t:.2f}x hftbacktest's speed "
        f"({len(events) * len(CASES) / total_t / 1e6:.1f} M events/s)"
    )
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(
        f"compile (excluded): hftbacktest {hbt['compile_s']:.1f} s, "
        f"tradeloom {mine['compile']['seconds']:.1f} s; load {load}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
