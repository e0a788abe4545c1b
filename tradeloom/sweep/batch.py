"""Run many variants over one series through the compiled core, and measure each one.

`run_batch` runs each variant's parameters (`tradeloom.core.params.CoreSpec.vector`)
through the compiled core (`tradeloom.sweep.batch_kernel`), one variant at a time so
that a worker holds one variant's equity curve and events, not the batch's, and
computes each variant's metrics with the very kernels and figures ``tradeloom run``
uses (`tradeloom.reporting.metrics.values_performance`'s, which ``curve_performance``
calls, and `tradeloom.reporting.statistics`'), on the same equity curve and trades: the
kernels' calls in one (`tradeloom.sweep.batch_figures.variant_figures`, over buffers the
batch keeps), then `tradeloom.reporting.metrics.performance_figures`. Each number equals
the one in that variant's ``metrics.json``, bit for bit (`METRIC_KEYS` lists them; the
tests compare them). What depends on the bars alone (the days' last bars, the buy and
hold) is found once for every variant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradeloom.core.codes import CodeTable
from tradeloom.core.layout import EV_WIDTH
from tradeloom.core.params import CoreSpec
from tradeloom.reporting.curve_moments import NO_DAYS
from tradeloom.reporting.metrics import daily_ends, day_ends, performance_figures
from tradeloom.reporting.statistics import buy_and_hold_return, calmar
from tradeloom.sweep.batch_figures import FigureBuffers, Figures, variant_figures
from tradeloom.sweep.batch_kernel import (
    COUNTS,
    MAX_CODE,
    TRADE_WIDTH,
    VariantBatch,
    run_variants,
)
from tradeloom.sweep.batch_start import BatchStart
from tradeloom.sweep.stages import Series

__all__ = ["METRIC_KEYS", "BatchResult", "run_batch"]

METRIC_KEYS = (
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "sharpe_daily",
    "sortino_daily",
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
    returns: npt.NDArray[np.floating[Any]]


def run_batch(
    series: Series,
    specs: Sequence[CoreSpec],
    *,
    returns_dtype: type[np.floating[Any]] = np.float64,
) -> BatchResult:
    """Run every spec over ``series`` and measure each, one variant's state at a time.

    Every spec must be `CoreSpec.compiled` (no layer in Python). Each variant is one
    call of the compiled core (the kernel runs each variant from its own fresh state, so
    one call per variant is the same as one call for all), from the starting arrays
    `BatchStart` builds (the symbol's once); only one variant's equity
    curve, trades and events are held at a time, and its bar returns are kept as
    ``returns_dtype`` (a sweep's parts are float32).
    """
    count = len(specs)
    inputs = series.inputs
    n = len(inputs)
    table = CodeTable()
    metrics: list[dict[str, Any]] = []
    returns = np.empty((count, n), returns_dtype)
    in_place = returns.dtype == np.float64  # each variant's returns written in its row
    equity = np.empty((1, n))
    counts = np.empty((1, COUNTS))
    rejections = np.empty((1, MAX_CODE), np.int64)
    # the event and trade rows' buffers, one variant's at a time, kept between variants
    ev = np.empty((_ROWS, EV_WIDTH))
    trade_buffer = np.empty((64, TRADE_WIDTH))
    start: BatchStart | None = None
    ends = daily_ends(day_ends(series.index), n, series.timeframe_seconds, series.calendar_year)
    shared = _Shared(buy_and_hold_return(series.close.to_numpy(np.float64)), ends)
    buffers = FigureBuffers(n, 0 if ends is None else len(ends))
    for v, spec in enumerate(specs):
        if start is None:
            start = BatchStart(spec)
        begin = start.variant(spec)
        counts[0, 0] = 0.0
        rejections.fill(0)
        batch = VariantBatch(inputs, begin, start.sym, start.port, equity, counts, rejections)
        trade_buffer, n_trades, ev = run_variants(batch, ev, trade_buffer)
        if counts[0, 0] < 0:
            raise RuntimeError("a batched variant asked the core for Python; run it as a backtest")
        row = returns[v]
        figures = variant_figures(
            equity[0], float(spec.initial_cash), row if in_place else buffers.returns, row,
            not in_place, NO_DAYS if ends is None else ends, inputs.time_ns, trade_buffer,
            n_trades, buffers.trades(n_trades), buffers.daily,
            buffers.stretches, buffers.highs,
        )  # fmt: skip
        own = (figures, n_trades, counts[0], rejections[0])
        metrics.append(_metrics(series, shared, spec, equity[0], *own, table))
    return BatchResult(metrics, returns)


@dataclass(frozen=True)
class _Shared:
    """What every variant's metrics read of the bars alone: the buy and hold's return
    and the days' last bars the daily ratios read (`daily_ends`; None: none)."""

    buy_and_hold: float
    ends: npt.NDArray[np.intp] | None


def _metrics(
    series: Series,
    shared: _Shared,
    spec: CoreSpec,
    equity: npt.NDArray[np.float64],
    figures: Figures,
    n_trades: int,
    counts: npt.NDArray[np.float64],
    rejections: npt.NDArray[np.int64],
    table: CodeTable,
) -> dict[str, Any]:
    """Return one variant's metrics as ``tradeloom.backtest.run`` computes them."""
    index = series.index
    moments, sums, bars, longest = figures
    n = len(equity)
    perf = performance_figures(
        float(equity[n - 1]),
        n,
        moments,
        sums,
        # `Trade.from_kernel`'s pnl and `Trade.return_pct`, on the core's trade fields
        n_trades,
        n_trades,
        # `curve_performance`'s np.mean(position != 0): the same division of the same count
        float(counts[6] / n),
        float(counts[3]),
        daily=shared.ends is not None,
        days=0 if shared.ends is None else len(shared.ends),
        initial_cash=spec.initial_cash,
        timeframe_seconds=series.timeframe_seconds,
        periods_per_year=series.calendar_year,
    )
    # `drawdown_duration`'s, from `longest_drawdown`'s bars and nanoseconds
    duration = pd.Timedelta(np.timedelta64(longest, "ns"))
    codes = np.flatnonzero(rejections)
    halt_code, halt_bar = int(counts[4]), int(counts[5])
    return {
        **{k: perf[k] for k in METRIC_KEYS if k in perf},
        # `headline_statistics`' two, in its order
        "buy_and_hold_return": shared.buy_and_hold,
        "calmar": calmar(perf["cagr"], perf["max_drawdown"]),
        "max_drawdown_duration_bars": int(bars),
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
