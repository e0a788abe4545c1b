"""One small allocating run for the tests of what a user sees of allocation (the
report, status, the console): four random walks under risk parity, one of them still
for a while, so that some rebalances keep the last weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tradeloom.cli.main import main

SYMBOLS = ["AAA/USDT", "BBB/USDT", "CCC/USDT", "DDD/USDT"]
BARS = 300
WINDOW = 40
STRATEGY = """\
name: allocated
data: {{kind: parquet, path: universe.parquet, symbol_column: symbol, symbols: [{symbols}]}}
features: [{{kind: log_return, period: 1}}]
model: {{kind: precomputed, column: p_up, horizon: 4}}
signal: {{kind: threshold, threshold: 0.2}}
allocation:
  kind: risk_parity
  covariance: sample
  window: {window}
  constraints: {{net_exposure: 0.95}}
  rebalance: {{every: 30}}
risk: {{sizing: {{kind: fixed_fraction, fraction: 0.1}}}}
execution: {{kind: simulated, initial_cash: 100000, slippage_bps: 5, fee_bps: 10}}
"""


def make_allocated_run(folder: Path) -> Path:
    """Run the strategy in ``folder`` through the CLI; return its run directory
    (``folder/run``). CCC's price stands still for a while, so that some rebalances have
    no covariance to solve and keep the last weights."""
    rng = np.random.default_rng(11)
    times = pd.date_range("2024-01-01", periods=BARS, freq="h", tz="UTC", name="timestamp")
    parts = []
    for k, symbol in enumerate(SYMBOLS):
        close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.004 + 0.003 * k, BARS)))
        if symbol == "CCC/USDT":
            close[90:170] = close[90]
        parts.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "open": close,
                    "high": close * 1.003,
                    "low": close * 0.997,
                    "close": close,
                    "volume": 1e6,
                    "p_up": rng.uniform(0.2, 0.8, BARS),
                },
                index=times,
            )
        )
    pd.concat(parts).reset_index().to_parquet(folder / "universe.parquet")
    listed = ", ".join(f'"{s}"' for s in SYMBOLS)
    text = STRATEGY.format(symbols=listed, window=WINDOW)
    (folder / "allocated.yaml").write_text(text, encoding="utf-8")
    out = folder / "run"
    if main(["run", str(folder / "allocated.yaml"), "--out", str(out), "--quiet"]) != 0:
        raise AssertionError("the allocating run failed")
    return out
