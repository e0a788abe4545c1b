"""Run many variants over one series through the compiled core, and measure each one.

`run_batch` packs the variants' parameters (`tradeloom.core.params.CoreSpec.vector`)
into one matrix, runs them in one compiled call (`tradeloom.sweep.batch_kernel`) and
computes each variant's metrics with the very functions ``tradeloom run`` uses
(`tradeloom.reporting.metrics.curve_performance`, `tradeloom.reporting.statistics`), on the
same equity curve and trades: each number equals the one in that variant's
``metrics.json``, bit for bit (`METRIC_KEYS` lists them; the tests compare them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradeloom.core import layout as L
from tradeloom.core.codes import CodeTable
from tradeloom.core.params import CoreSpec
from tradeloom.core.state import CoreState
from tradeloom.reporting.metrics import curve_performance
from tradeloom.reporting.statistics import drawdown_duration, headline_statistics
from tradeloom.sweep.batch_kernel import MAX_CODE, run_variants
from tradeloom.sweep.stages import Series

__all__ = ["METRIC_KEYS", "BatchResult", "run_batch"]

METRIC_KEYS = (
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "max_drawdown_duration_bars",
    "max_drawdown_duration_days",
    "volatility",
    "trades",
    "win_rate",
    "avg_trade_return",
    "profit_factor",
    "exposure",
    "fees",
    "final_equity",
    "buy_and_hold_return",
    "signals",
    "orders",
    "fills",
    "rejections",
    "halt",
    "model_trainings",
    "model_folds_skipped",
    "bars",
    "periods_per_year",
)
"""The metrics a sweep keeps of each variant (``metrics.json``'s keys of the same name)."""

_ROWS = 8192


@dataclass(frozen=True)
class BatchResult:
    """Each variant's metrics and bar returns.

    Attributes:
        metrics: One mapping per variant, in the specs' order (`METRIC_KEYS`).
        returns: ``[variants, bars]``: each bar's return of the equity (the first bar's
            against the starting cash), as the Sharpe ratio reads them.
    """

    metrics: list[dict[str, Any]]
    returns: npt.NDArray[np.float64]


def run_batch(series: Series, specs: Sequence[CoreSpec]) -> BatchResult:
    """Run every spec over ``series`` in one compiled call and measure each.

    Every spec must be `CoreSpec.compiled` (no layer in Python).
    """
    count = len(specs)
    inputs = series.inputs
    n = len(inputs)
    states = [CoreState(spec) for spec in specs]
    prm = np.stack([s.prm for s in states]) if states else np.empty((0, L.PRM_SIZE))
    acct0 = np.stack([s.acct for s in states]) if states else np.empty((0, L.ACCT_SIZE))
    sym0 = states[0].sym.copy() if states else np.zeros((1, L.SYM_SIZE))
    port0 = states[0].port.copy() if states else np.zeros((L.PORT_ROWS, 1))
    for state in states:
        if state.port.shape != port0.shape or not np.array_equal(state.sym, sym0, equal_nan=True):
            raise ValueError("the batched variants must share the symbol's starting state")
    limits = np.concatenate([s.limits for s in states]) if states else np.empty(0)
    limits_at = np.cumsum([0, *(len(s.limits) for s in states)]).astype(np.int64)
    sent_at = np.cumsum([0, *(len(s.sent) for s in states)]).astype(np.int64)
    equity = np.empty((count, n))
    held = np.empty((count, n), np.uint8)
    counts = np.zeros((count, 6))
    rejections = np.zeros((count, MAX_CODE), np.int64)
    trades, n_trades = run_variants(
        inputs.px, inputs.flags, inputs.score, inputs.time_ns, inputs.trainings,
        prm, acct0, sym0, port0, limits, limits_at, sent_at,
        equity, held, counts, rejections, _ROWS,
    )  # fmt: skip
    if count and (counts[:, 0] < 0).any():
        raise RuntimeError("a batched variant asked the core for Python; run it as a backtest")
    trades = trades[:n_trades]
    starts = np.searchsorted(trades[:, 0], np.arange(count + 1)) if n_trades else None
    table = CodeTable()
    metrics = []
    returns = np.empty((count, n))
    for v, spec in enumerate(specs):
        own = trades[starts[v] : starts[v + 1], 1:] if starts is not None else np.empty((0, 8))
        metrics.append(
            _metrics(series, spec, equity[v], held[v], counts[v], rejections[v], own, table)
        )
        values = equity[v]
        previous = np.concatenate(([spec.initial_cash], values[:-1]))
        returns[v] = values / previous - 1.0
    return BatchResult(metrics, returns)


def _metrics(
    series: Series,
    spec: CoreSpec,
    equity_values: npt.NDArray[np.float64],
    held: npt.NDArray[np.uint8],
    counts: npt.NDArray[np.float64],
    rejections: npt.NDArray[np.int64],
    trade_rows: npt.NDArray[np.float64],
    table: CodeTable,
) -> dict[str, Any]:
    """Return one variant's metrics as ``tradeloom.backtest.run`` computes them."""
    index = series.index
    equity = pd.Series(equity_values, index=index)
    pnl = trade_rows[:, 7]
    initial_cash = spec.initial_cash
    perf = curve_performance(
        equity,
        pd.Series(held, index=index),
        initial_cash=initial_cash,
        timeframe_seconds=series.timeframe_seconds,
        # `Trade.from_kernel`'s pnl and `Trade.return_pct`, on the core's trade fields
        pnl=pnl,
        trade_returns=pnl / (trade_rows[:, 3] * trade_rows[:, 4]),
        fees=float(counts[3]),
        periods_per_year=series.calendar_year,
    )
    bars, duration = drawdown_duration(equity, initial_cash)
    headline = headline_statistics(
        series.close, cagr=perf["cagr"], max_drawdown=perf["max_drawdown"]
    )
    codes = np.flatnonzero(rejections)
    halt_code, halt_bar = int(counts[4]), int(counts[5])
    return {
        **{k: perf[k] for k in METRIC_KEYS if k in perf},
        **headline,
        "max_drawdown_duration_bars": bars,
        "max_drawdown_duration_days": duration.total_seconds() / 86_400.0,
        "signals": int(counts[0]),
        "orders": int(counts[1]),
        "fills": int(counts[2]),
        "rejections": dict(sorted((table.name(int(c)), int(rejections[c])) for c in codes)),
        "halt": f"{table.name(halt_code)} at {index[halt_bar]:%Y-%m-%d %H:%M}"
        if halt_code
        else None,
        "model_trainings": series.model_trainings,
        "model_folds_skipped": series.model_folds_skipped,
        "bars": len(index),
        "periods_per_year": series.periods_per_year,
    }
