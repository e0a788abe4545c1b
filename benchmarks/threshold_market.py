"""The synthetic market and strategy the backtest benchmarks time: a seeded random walk
of 1-minute bars with uniform up-probabilities, traded by a threshold on them.

Imports nothing of tradeloom, so a benchmark can write it for any checkout's layout
(bench_per_bar runs older ones).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

STRATEGY = (
    "name: bench\n"
    "data: {kind: parquet, path: bars.parquet, timeframe: 1m}\n"
    "features: [{kind: log_return}]\n"
    "model: {kind: precomputed, column: p_up}\n"
    "signal: {kind: threshold, threshold: 0.9}\n"
    "risk: {sizing: {kind: fixed_fraction, fraction: 1.0}}\n"
    "execution: {kind: simulated, fee_bps: 10}\n"
)


def write_threshold_market(folder: Path, bars: int) -> tuple[pd.DataFrame, Path]:
    """Write ``bars.parquet`` and ``s.yaml`` into ``folder``; return the bars and the file."""
    rng = np.random.default_rng(7)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, bars)))
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range("2020-01-01", periods=bars, freq="1min", tz="UTC"),
            "open": close,
            "high": close * 1.001,
            "low": close * 0.999,
            "close": close,
            "volume": 1.0,
            "p_up": rng.random(bars),
        }
    )
    frame.to_parquet(folder / "bars.parquet")
    strategy = folder / "s.yaml"
    strategy.write_text(STRATEGY)
    return frame, strategy
