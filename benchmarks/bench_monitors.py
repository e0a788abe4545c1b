"""What a challenger's promotion gate with health rules costs per bar, at bar 1,000 and at
bar 100,000 (issue 85: within 1.2x).

Times `ShadowBooks._read_gate`, the method a paper or live run calls at each bar's close
for a challenger with a gate (after its shadow session stepped and its book's rows were
built; neither is timed): the book's equity and the champion's appended, the health
figures of its probabilities (`HealthBook`), the paired t-test's verdict (`GateTally`)
and, where the verdict changed, the whole `read_gate` and its ``challenger_gate`` row.
The book is fed bar by bar from the first bar, as a run feeds it; the medians of the
``--window`` readings after bar 1,000 and after bar 100,000 are compared. Beside them,
what the whole recomputation (`read_gate` and `prediction_health` over the whole book,
what each reading cost before) takes at the same bars, on a sample of its readings. The
verdicts are checked against the whole recomputation at every ``--check``-th bar, and
every journaled row against the whole `read_gate` at its bar.

Then a canary's or a watch's drawdown rule (`Drawdown.read`, what `Watched.figures` calls
at each close of the stage, started at bar 0 here), against `universe_curve` over the
whole run (what it read before), equal to the bit at every ``--check``-th bar.

The gate is timed on one market and on a universe (``--symbols 1 3``: a universe's
calibration error is judged from the running bins, `HealthBook.judged`). The live parity
monitor's cost per check is measured over a paper run by bench_parity_follow.py.

    python benchmarks/bench_monitors.py [--bars 100000] [--window 2000] [--symbols 1 3]
"""

from __future__ import annotations

import argparse
import math
import os
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
from machine import describe
from smoke import add_smoke, parse_args

from tradeloom.core.curves import universe_curve
from tradeloom.journal import ChallengerBar, ChallengerGate
from tradeloom.live.lifecycle.challengers import ShadowBooks, _Shadow
from tradeloom.live.lifecycle.prediction_health import prediction_health
from tradeloom.live.lifecycle.promotion_gate import read_gate
from tradeloom.live.lifecycle.stage_drawdown import Drawdown
from tradeloom.schemas.strategy import PromoteWhen

_HORIZON = 1  # horizon_of a model without a label horizon


class _History:
    def __init__(self, closes: np.ndarray) -> None:
        self.all = closes
        self.n = 0

    def closes(self) -> np.ndarray:
        return self.all[: self.n]  # a view, as the live history's


class _Journal(list[Any]):
    def append(self, row: Any) -> None:
        super().append(row)


def _market(n: int, symbols: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n, symbols)), axis=0))
    up = np.zeros((n, symbols))
    up[:-1] = closes[1:] > closes[:-1]
    probabilities = np.clip(0.5 + 0.08 * (2 * up - 1) + rng.normal(0, 0.15, up.shape), 0, 1)
    probabilities[rng.random(up.shape) < 0.02] = np.nan  # a bar the model gave no answer
    ours = 1e4 * np.cumprod(1 + rng.normal(-2e-5, 1e-3, n))  # a challenger a bit worse
    theirs = 1e4 * np.cumprod(1 + rng.normal(0.0, 1e-3, n))
    return closes, probabilities, np.stack([ours, theirs])


def _whole(gate: PromoteWhen, asked: dict[int, Any], closes: np.ndarray, books: np.ndarray) -> Any:
    t = len(closes)
    health = prediction_health(asked, closes, _HORIZON, gate.min_samples)
    return read_gate(gate, list(books[0, :t]), list(books[1, :t]), 0, health)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=100_000, help="the later reading's bar")
    parser.add_argument("--early", type=int, default=1_000, help="the earlier reading's bar")
    parser.add_argument("--window", type=int, default=2_000, help="readings timed at each")
    parser.add_argument("--whole", type=int, default=50, help="whole recomputations timed")
    parser.add_argument("--check", type=int, default=5_000, help="bars between checks")
    parser.add_argument("--symbols", type=int, nargs="+", default=[1, 3])
    add_smoke(parser, bars=400, early=100, window=50, whole=3, check=100)
    args = parse_args(parser)
    print("machine:", describe("numpy", "scipy", "tradeloom"))
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    mismatches = 0
    for symbols in args.symbols:
        mismatches += _gate(args, symbols)
    n = args.bars + args.window
    closes = _market(n, max(args.symbols), 7)[0]
    mismatches += _drawdown(args, closes, n, max(args.symbols))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if mismatches:
        raise SystemExit("the kept verdicts differ from the whole recomputation")


def _gate(args: argparse.Namespace, symbols: int) -> int:
    n = args.bars + args.window
    closes, probabilities, books = _market(n, symbols, 7)
    gate = PromoteWhen(
        min_bars=30, alpha=0.05, min_auc=0.52, max_calibration_error=0.3, min_samples=50
    )
    history = _History(closes)
    session = SimpleNamespace(history=history, p=SimpleNamespace(model=None))
    journal = _Journal()
    shadows = ShadowBooks(journal, [])  # type: ignore[arg-type]
    shadow = _Shadow("challenger", session, None, gate=gate)  # type: ignore[arg-type]
    start = pd.Timestamp("2020-01-01", tz="UTC")
    ns = np.empty(n)
    asked: dict[int, Any] = {}
    mismatches = checked = 0
    for t in range(n):
        history.n = t + 1
        row = ChallengerBar(
            bar=t,
            timestamp=start + pd.Timedelta(minutes=t),
            correlation_id=t,
            challenger="challenger",
            probabilities=probabilities[t].tolist(),
            signals=0,
            positions=[0.0] * symbols,
            cash=0.0,
            equity=float(books[0, t]),
            traded=0.0,
            champion_equity=float(books[1, t]),
        )
        asked[t] = row.probabilities
        began = time.perf_counter_ns()
        shadows._read_gate(shadow, gate, shadow.book, [row], t, row.timestamp)
        ns[t] = time.perf_counter_ns() - began
        if t % args.check == 0 or t in (args.early + args.window - 1, n - 1):
            checked += 1
            mismatches += _whole(gate, asked, closes[: t + 1], books).verdict != shadow.book.verdict
    rows = [r for r in journal if isinstance(r, ChallengerGate)]
    for r in rows:  # each journaled row: the whole reading's figures at its bar, to the bit
        got = (r.verdict, r.bars, r.mean_difference.hex(), r.t.hex(), r.p.hex())
        part = {k: v for k, v in asked.items() if k <= r.bar}
        whole = _whole(gate, part, closes[: r.bar + 1], books)
        want = (
            whole.verdict,
            whole.bars,
            *(x.hex() for x in (whole.mean_difference, whole.t, whole.p)),
        )
        mismatches += got != want
    print(
        f"gate with health rules, {symbols} symbol(s): {checked} verdicts and "
        f"{len(rows)} journaled rows checked against the whole recomputation, "
        f"{mismatches} differ"
    )
    medians = {}
    for at in (args.early, args.bars):
        us = ns[at : at + args.window] / 1e3
        p50, p99 = np.percentile(us, [50, 99])
        medians[at] = p50
        sample = np.linspace(at, at + args.window - 1, args.whole).astype(int)
        whole_us = []
        for t in sample:
            part = {k: asked[k] for k in range(t + 1)}
            began = time.perf_counter_ns()
            _whole(gate, part, closes[: t + 1], books)
            whole_us.append((time.perf_counter_ns() - began) / 1e3)
        print(
            f"  bar {at:>7,}: _read_gate p50 {p50:8.1f} us  p99 {p99:8.1f} us   "
            f"(whole recomputation p50 {float(np.median(whole_us)):10.1f} us)"
        )
    ratio = medians[args.bars] / medians[args.early]
    said = f"bar {args.bars:,} / bar {args.early:,}: {ratio:.2f}x"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"  ratio of medians, {said} (target <= 1.2x); load average {load}")
    assert not math.isnan(ratio)
    return mismatches


def _drawdown(args: argparse.Namespace, closes: np.ndarray, n: int, symbols: int) -> int:
    rng = np.random.default_rng(11)
    fills = np.flatnonzero(rng.random(n) < 0.05)  # a fill every 20 bars
    marks = np.column_stack(
        [
            fills,
            rng.choice([-1.0, 0.0, 1.0], len(fills)),
            1e4 + rng.normal(0, 10, len(fills)),
            rng.integers(0, symbols, len(fills)),
        ]
    ).astype(np.float64)
    book = Drawdown(0, 1e4)
    ns = np.empty(n)
    mismatches = 0
    for t in range(n):
        booked = marks[: int(np.searchsorted(fills, t, side="right"))]
        began = time.perf_counter_ns()
        got = book.read(booked, closes[: t + 1])
        ns[t] = time.perf_counter_ns() - began
        if t % args.check == 0 or t == n - 1:
            equity = universe_curve(booked, closes[: t + 1], 1e4)[2]
            peak = float(np.max(equity))
            want = 0.0 if peak <= 0.0 else max(0.0, 1.0 - float(equity[-1]) / peak)
            mismatches += got.hex() != want.hex()
    print(f"stage drawdown, {symbols} symbol(s): {mismatches} readings differ")
    medians = []
    for at in (args.early, args.bars):
        us = ns[at : at + args.window] / 1e3
        p50, p99 = np.percentile(us, [50, 99])
        medians.append(p50)
        booked = marks[: int(np.searchsorted(fills, at, side="right"))]
        began = time.perf_counter_ns()
        universe_curve(booked, closes[: at + 1], 1e4)
        whole = (time.perf_counter_ns() - began) / 1e3
        print(
            f"  bar {at:>7,}: Drawdown.read p50 {p50:8.1f} us  p99 {p99:8.1f} us   "
            f"(whole curve {whole:10.1f} us)"
        )
    print(f"  ratio of medians: {medians[1] / medians[0]:.2f}x")
    return mismatches


if __name__ == "__main__":
    main()
