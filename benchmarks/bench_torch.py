"""The torch model: training a fold on 20,000 bars against a plain PyTorch script, and the
latency of one bar's prediction for each built-in network.

Training: a random walk of --bars hourly bars and --features features; the torch model
(an LSTM of --hidden units over a --window-row window, --epochs epochs, early stopping
on its last fifth) trains one fold on every row but the last --segment and predicts
those; a plain PyTorch script does the same work written by hand (windows stacked with
numpy, scaled, the same network, Adam, shuffled batches, early stopping) and predicts
the same bars. Both on one thread. Prints each one's seconds (the median over --runs),
the ratio plain / tradeloom (1.0 or more: tradeloom is at least as fast), and the
largest difference between their probabilities (the same seed and network: float32's
rounding; at most 1e-6, else the script exits 1).

Latency: each built-in network at its default sizes (window 32, --features features),
its fold trained for one epoch; ``predict_window`` of one bar's window (what a paper or
live run calls at each bar), --calls calls after a warm-up on one thread. Prints the
median and p99 in milliseconds, whether the median is within 1 ms, and the largest
difference from the batch's numbers of the same bars (at most 1e-6, else exit 1).

    python benchmarks/bench_torch.py [--bars 20000] [--runs 3] [--calls 2000] [--smoke]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from machine import describe
from smoke import add_smoke, parse_args
from torch import nn

from tradeloom.domain import Bars
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.model.torch_model import TorchModel, TorchParams, build_torch_model
from tradeloom.plugins.model.torch_networks import BUILT_IN

SEED = 7
HORIZON = 4


def market(bars: int, features: int, seed: int = 3) -> tuple[Bars, pd.DataFrame]:
    """A random walk's bars and ``features`` columns: returns over 1, 2, 3, ... bars."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, bars)))
    index = pd.date_range("2024-01-01", periods=bars, freq="h", tz="UTC", name="timestamp")
    frame = pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close, "volume": 1.0}, index=index
    )
    log = pd.Series(np.log(close), index=index)
    columns = {f"ret_{k}": log.diff(k) for k in range(1, features + 1)}
    return Bars(frame, "BENCH/USDT", "1h", 3600), pd.DataFrame(columns)


def model(network: str, params: dict[str, Any], window: int, epochs: int, rows: int, segment: int,
          columns: int) -> TorchModel:  # fmt: skip
    """The torch model as a strategy file declares it: one fold of ``rows`` rows."""
    document = {
        "network": network,
        "params": params,
        "window": window,
        "training": {"epochs": epochs, "batch_size": 128, "validation": 0.2, "patience": 3},
        "label": {"horizon": HORIZON},
        "walk_forward": {"train_window": rows, "retrain_every": segment},
    }
    ctx = BuildContext(
        "bench", Path("."), SEED, feature_columns=tuple(f"c{i}" for i in range(columns))
    )
    return build_torch_model(TorchParams.model_validate(document), ctx)


class PlainLSTM(nn.Module):
    def __init__(self, n_features: int, hidden: int) -> None:
        super().__init__()
        self.rnn = nn.LSTM(n_features, hidden, 1, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0][:, -1]).reshape(-1)


def plain(close: np.ndarray, x: np.ndarray, first: int, window: int, hidden: int, epochs: int,
          rows: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The fold as a plain PyTorch script trains it: the bars it predicts and their
    probabilities."""
    n = len(close)
    y_all = np.r_[(close[HORIZON:] > close[:-HORIZON]).astype(float), np.full(HORIZON, np.nan)]
    train = np.arange(first, first + rows)
    held = int(rows * 0.2)
    stop, fit = train[-held:], train[:-held]
    fit = fit[fit + HORIZON < stop[0]]
    segment = np.arange(train[-1] + HORIZON + 1, n)
    mean, std = x[fit].mean(axis=0), x[fit].std(axis=0)

    def windows(at: np.ndarray) -> torch.Tensor:
        block = np.lib.stride_tricks.sliding_window_view(x, window, axis=0)[at - window + 1]
        return torch.tensor((block.transpose(0, 2, 1) - mean) / std, dtype=torch.float32)

    torch.manual_seed(SEED)
    net = PlainLSTM(x.shape[1], hidden)
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_of = nn.BCEWithLogitsLoss()
    order = torch.Generator().manual_seed(SEED)
    xf, yf = windows(fit), torch.tensor(y_all[fit], dtype=torch.float32)
    xs, ys = windows(stop), torch.tensor(y_all[stop], dtype=torch.float32)
    best, best_epoch, state = np.inf, 0, None
    for epoch in range(1, epochs + 1):
        net.train()
        for batch in torch.randperm(len(xf), generator=order).split(128):
            optimiser.zero_grad()
            loss = loss_of(net(xf[batch]), yf[batch])
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimiser.step()
        net.eval()
        with torch.no_grad():
            held_loss = float(loss_of(net(xs), ys))
        if held_loss < best:
            best, best_epoch = held_loss, epoch
            state = {k: v.clone() for k, v in net.state_dict().items()}
        elif epoch - best_epoch >= 3:
            break
    assert state is not None
    net.load_state_dict(state)
    net.eval()
    with torch.no_grad():
        return segment, torch.sigmoid(net(windows(segment))).double().numpy()


def training(args: argparse.Namespace) -> bool:
    bars, features = market(args.bars, args.features)
    x = features.to_numpy()
    first = int(np.flatnonzero(np.isfinite(x).all(axis=1))[0]) + args.window - 1
    rows = args.bars - first - args.segment - HORIZON
    mine_s, plain_s = [], []
    # imports and first calls (torch's deterministic mode loads its compiler's settings,
    # scikit-learn and scipy load for the labels and the link) are paid before timing,
    # by both; the two alternate which goes first (the second finds memory warm)
    small_bars, small_x = market(300, args.features)
    small = model("lstm", {"hidden": 2}, 4, 1, 100, 10, args.features)
    small.fit_predict(small_bars, small_x)
    first_small = int(np.flatnonzero(np.isfinite(small_x.to_numpy()).all(axis=1))[0]) + 3
    plain(small_bars.frame["close"].to_numpy(), small_x.to_numpy(), first_small, 4, 2, 1, 100)
    close = bars.frame["close"].to_numpy()
    for run in range(args.runs):
        built = model("lstm", {"hidden": args.hidden}, args.window, args.epochs, rows,
                      args.segment, args.features)  # fmt: skip
        for turn in (0, 1) if run % 2 == 0 else (1, 0):
            t0 = time.perf_counter()
            if turn == 0:
                output = built.fit_predict(bars, features)
                mine_s.append(time.perf_counter() - t0)
            else:
                segment, expected = plain(close, x, first, args.window, args.hidden,
                                          args.epochs, rows)  # fmt: skip
                plain_s.append(time.perf_counter() - t0)
    (fold,) = output.trainings
    assert fold.predict_start == segment[0], (fold, segment[0])
    got = output.probability.to_numpy()[segment]
    worst = float(np.max(np.abs(got - expected)))
    mine, theirs = statistics.median(mine_s), statistics.median(plain_s)
    print(
        f"training: {args.bars:,} bars, {rows:,} training rows, LSTM {args.hidden} units, "
        f"window {args.window}, {args.epochs} epochs (early stopping), one thread"
    )
    print(
        f"  tradeloom   {mine:8.2f} s   (fit_predict: labels, fold plan, windows, train, predict)"
    )
    print(f"  plain       {theirs:8.2f} s   (a PyTorch script of the same work)")
    print(f"  ratio plain / tradeloom: {theirs / mine:.2f}  (>= 1: tradeloom as fast or faster)")
    print(f"  largest difference of their probabilities: {worst:.2e} (limit 1e-6)")
    return worst <= 1e-6


def latency(args: argparse.Namespace) -> bool:
    bars, features = market(args.latency_bars, args.features)
    x = features.to_numpy()
    good = True
    print(f"latency: one bar's predict_window, {args.features} features, window 32, one thread")
    print(f"  {'network':12s} {'median ms':>10s} {'p99 ms':>8s}  within 1 ms  batch difference")
    for name, (_, params_model) in BUILT_IN.items():
        defaults = params_model().model_dump()
        built = model(
            name, defaults, 32, 1, args.latency_bars // 2, args.latency_bars, args.features
        )
        probability = built.fit_predict(bars, features).probability.to_numpy()
        at = np.flatnonzero(np.isfinite(probability))
        for t in at[:50]:  # warm-up
            built.predict_window(x[t - 31 : t + 1])
        calls = [int(at[i % len(at)]) for i in range(args.calls)]
        took = []
        for t in calls:
            block = x[t - 31 : t + 1]
            t0 = time.perf_counter()
            built.predict_window(block)
            took.append(time.perf_counter() - t0)
        one = np.array([built.predict_window(x[t - 31 : t + 1]) for t in at])
        worst = float(np.max(np.abs(one - probability[at])))
        median = statistics.median(took) * 1e3
        p99 = float(np.percentile(took, 99)) * 1e3
        good &= worst <= 1e-6
        within = "yes" if median <= 1.0 else "NO"
        print(f"  {name:12s} {median:10.3f} {p99:8.3f}  {within:>11s}  {worst:.1e}")
    return good


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=20_000)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--segment", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--calls", type=int, default=2_000)
    parser.add_argument("--latency-bars", type=int, default=1_200)
    add_smoke(parser, bars=700, epochs=1, segment=100, runs=1, calls=20, latency_bars=400)
    args = parse_args(parser)
    torch.set_num_threads(1)
    print(describe("torch", "numpy"))
    ok = training(args)
    ok &= latency(args)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
