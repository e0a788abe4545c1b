"""A batched variant's figures from one compiled call are the metrics functions' figures.

`run_batch` measured each variant with `values_performance` (returns written into a
buffer, then copied into the result's row) and `drawdown_duration`; it now makes the
same kernels' calls in one (`variant_figures`) over buffers the batch keeps. The old
path is kept below as the reference: every metric's bits and every returns row must be
the same, on the benchmark's variants and on variants with take-profits, fills at the
next open, shorts, slippage, drawdown halts and holding limits.
"""

from __future__ import annotations

import math
import struct
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tests.reporting.test_curve_moments import _curve, _days
from tradeloom.core.codes import CodeTable
from tradeloom.core.kernels.specs import SizingKernel, ThresholdKernel, VenueKernel
from tradeloom.core.layout import EV_WIDTH
from tradeloom.core.params import CoreSpec
from tradeloom.core.records import TRADE
from tradeloom.core.state import BarInputs
from tradeloom.domain import OHLCV
from tradeloom.reporting import curve_moments, trade_sums
from tradeloom.reporting.curve_moments import NO_DAYS
from tradeloom.reporting.metrics import day_ends, values_performance
from tradeloom.reporting.statistics import buy_and_hold_return, calmar, drawdown_duration
from tradeloom.sweep.batch import METRIC_KEYS, run_batch
from tradeloom.sweep.batch_figures import FigureBuffers, variant_figures
from tradeloom.sweep.batch_kernel import (
    COUNTS,
    MAX_CODE,
    TRADE_WIDTH,
    VariantBatch,
    run_variants,
)
from tradeloom.sweep.batch_start import BatchStart
from tradeloom.sweep.stages import Series, StageHashes


def _bits(value: Any) -> Any:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else struct.pack("<d", value).hex()
    if isinstance(value, dict):
        return {k: _bits(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_bits(float(v)) for v in value]
    return value


def _series(n: int, seed: int) -> Series:
    """``n`` one-minute random-walk bars and a probability per bar (benchmarks/bench_sweep.py's
    market)."""
    rng = np.random.default_rng(seed)
    close = 30_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0008, n)))
    open_ = np.r_[close[0], close[:-1]] * np.exp(rng.normal(0.0, 0.0002, n))
    wick = np.abs(rng.normal(0.0, 0.0004, (2, n)))
    index = pd.date_range("2020-01-01", periods=n, freq="1min", tz="UTC", name="timestamp")
    bars = {
        "open": open_,
        "high": np.maximum(open_, close) * (1 + wick[0]),
        "low": np.minimum(open_, close) * (1 - wick[1]),
        "close": close,
        "volume": rng.uniform(1.0, 10.0, n),
    }
    p = np.clip(0.5 + rng.normal(0.0, 0.04, n), 0.01, 0.99)
    return Series(
        inputs=BarInputs.of([bars[k] for k in OHLCV], p, index.as_unit("ns").asi8),
        index=index,
        timeframe_seconds=60,
        periods_per_year=525_600.0,
        calendar_year=None,
        sizing_year=525_600.0,
        model_trainings=0,
        model_folds_skipped=0,
        hashes=StageHashes("t", "t", "t", "t"),
    )


def _grid() -> list[CoreSpec]:
    """The benchmark's grid (10 thresholds x 10 Kelly fractions x 10 stop-losses)."""
    venue = VenueKernel(
        fill_at_close=True,
        slippage=0.0,
        fee_rate=0.001,
        allow_short=False,
        initial_cash=100_000.0,
        max_volume_fraction=None,
    )
    return [
        CoreSpec(
            signal=ThresholdKernel(float(t), 1),
            sizing=SizingKernel("kelly", float(f), 1.0, 0.5),
            venue=venue,
            initial_cash=100_000.0,
            stop_loss=float(s),
            timeframe_ns=60 * 10**9,
        )
        for t in np.round(np.linspace(0.06, 0.24, 10), 6)
        for f in np.round(np.linspace(0.1, 1.0, 10), 6)
        for s in np.round(np.linspace(0.005, 0.05, 10), 6)
    ]


def _old_metrics(
    series: Series, spec: CoreSpec, returns_dtype: type[np.floating[Any]]
) -> tuple[dict[str, Any], np.ndarray]:
    """The batch's old path, verbatim but for its loop: the core's call, then
    `values_performance` into a buffer, `drawdown_duration`, the buffer copied."""
    inputs = series.inputs
    n = len(inputs)
    start = BatchStart(spec)
    begin = start.variant(spec)
    equity = np.empty((1, n))
    counts = np.zeros((1, COUNTS))
    rejections = np.zeros((1, MAX_CODE), np.int64)
    batch = VariantBatch(inputs, begin, start.sym, start.port, equity, counts, rejections)
    trade_buffer, n_trades, _ = run_variants(
        batch, np.empty((8192, EV_WIDTH)), np.empty((64, TRADE_WIDTH))
    )
    own = trade_buffer[:n_trades, 1:]
    pnl = own[:, TRADE.place("pnl")]
    size = own[:, TRADE.place("quantity")] * own[:, TRADE.place("entry_price")]
    bar_returns = np.empty(n)
    perf = values_performance(
        equity[0],
        float(counts[0, 6] / len(equity[0])),
        day_ends(series.index),
        initial_cash=spec.initial_cash,
        timeframe_seconds=series.timeframe_seconds,
        pnl=pnl,
        trade_returns=pnl / size,
        fees=float(counts[0, 3]),
        periods_per_year=series.calendar_year,
        returns_out=bar_returns,
    )
    bars, duration = drawdown_duration(equity[0], spec.initial_cash, inputs.time_ns)
    table = CodeTable()
    codes = np.flatnonzero(rejections[0])
    halt_code, halt_bar = int(counts[0, 4]), int(counts[0, 5])
    metrics = {
        **{k: perf[k] for k in METRIC_KEYS if k in perf},
        "buy_and_hold_return": buy_and_hold_return(series.close.to_numpy(np.float64)),
        "calmar": calmar(perf["cagr"], perf["max_drawdown"]),
        "max_drawdown_duration_bars": bars,
        "max_drawdown_duration_days": duration.total_seconds() / 86_400.0,
        "signals": int(counts[0, 0]),
        "orders": int(counts[0, 1]),
        "fills": int(counts[0, 2]),
        "rejections": dict(sorted((table.name(int(c)), int(rejections[0, c])) for c in codes)),
        "halt": f"{table.name(halt_code)} at {series.index[halt_bar]:%Y-%m-%d %H:%M}"
        if halt_code
        else None,
        "model_trainings": series.model_trainings,
        "model_folds_skipped": series.model_folds_skipped,
        "bars": len(series.index),
        "periods_per_year": series.periods_per_year,
    }
    returns = np.empty((1, n), returns_dtype)
    returns[0] = bar_returns
    return metrics, returns[0]


def _variants() -> list[CoreSpec]:
    """Every 50th of the benchmark's grid, and each of those with other features."""
    grid = _grid()[::50]
    more = []
    for k, spec in enumerate(grid):
        assert spec.venue is not None
        short = k % 2 == 0
        venue = replace(
            spec.venue,
            fill_at_close=k % 3 != 0,  # else at the next open
            allow_short=short,
            slippage=0.0005 if k % 4 == 0 else 0.0,
        )
        more.append(
            replace(
                spec,
                venue=venue,
                allow_short=short,
                take_profit=[None, 0.01, 0.03][k % 3],
                stop_loss=None if k % 5 == 0 else spec.stop_loss,
                drawdown_limits=(0.02,) if k % 7 == 0 else (),
                max_holding_bars=50 if k % 6 == 0 else None,
            )
        )
    return grid + more


@pytest.mark.parametrize("bars", [1, 2, 500, 3000])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_run_batch_is_the_old_path_bit_for_bit(bars: int, dtype: type[np.floating[Any]]) -> None:
    series = _series(bars, seed=bars)
    specs = _variants()
    result = run_batch(series, specs, returns_dtype=dtype)
    assert result.returns.dtype == dtype
    traded = 0
    for v, spec in enumerate(specs):
        metrics, returns = _old_metrics(series, spec, dtype)
        assert list(result.metrics[v]) == list(metrics)
        assert _bits(result.metrics[v]) == _bits(metrics), v
        assert result.returns[v].tobytes() == returns.tobytes(), v
        traded += metrics["trades"] > 0
    if bars >= 500:
        assert traded > len(specs) // 2  # the variants trade: their figures say something


@settings(max_examples=examples(300), deadline=None)
@given(
    n=st.integers(1, 400) | st.sampled_from([127, 128, 129, 8193]),
    cash=st.sampled_from([1.0, 1000.0, 100_000.0]),
    specials=st.sampled_from([0, 0, 1, 3]),
    seed=st.integers(0, 2**32 - 1),
    timed=st.booleans(),
    trades=st.integers(0, 12) | st.sampled_from([129, 300]),
    float32=st.booleans(),
)
def test_a_variants_figures_are_the_kernels_the_metrics_call(
    n: int, cash: float, specials: int, seed: int, timed: bool, trades: int, float32: bool
) -> None:
    """On curves with NaN, infinities, zeros, flat stretches, and more trades than the
    buffers first hold: the moments, trade sums and longest drawdown of the reporting
    functions, the returns their `simple_returns` (cast to the result's type)."""
    values = _curve(seed, n, cash, specials)
    rng = np.random.default_rng(seed + 3)
    rows = np.zeros((trades, TRADE_WIDTH))
    rows[:, 1 + TRADE.place("pnl")] = np.where(
        rng.random(trades) < 0.2, 0.0, rng.normal(0.0, 10.0, trades)
    )
    rows[:, 1 + TRADE.place("quantity")] = rng.uniform(0.0, 3.0, trades)
    rows[:, 1 + TRADE.place("entry_price")] = rng.uniform(10.0, 100.0, trades)
    index = pd.date_range("2024-01-01", periods=n, freq="37min", tz="UTC")
    times = index.as_unit("ns").asi8
    ends = _days(n, seed) if timed else NO_DAYS
    buffers = FigureBuffers(n, len(ends))
    out = np.full(n, 9.0, np.float32 if float32 else np.float64)
    returns = buffers.returns if float32 else out
    with np.errstate(all="ignore"):
        moments, sums, bars, longest = variant_figures(
            values, cash, returns, out, float32, ends, times, rows, trades,
            buffers.trades(trades), buffers.daily, buffers.stretches, buffers.highs,
        )  # fmt: skip
        pnl = rows[:, 1 + TRADE.place("pnl")]
        size = rows[:, 1 + TRADE.place("quantity")] * rows[:, 1 + TRADE.place("entry_price")]
        expected_returns = np.empty(n)
        expected_moments = curve_moments.curve_moments(values, cash, expected_returns, True, ends)
        expected_sums = trade_sums.trade_sums(np.ascontiguousarray(pnl), pnl / size)
        expected_numpy = curve_moments._curve_moments_as_python(
            values, cash, np.empty(n), True, ends
        )
        cast = expected_returns.astype(out.dtype)  # a float32's overflow: inf, as the kernel's
    assert _bits(moments) == _bits(expected_moments) == _bits(expected_numpy)
    assert _bits(sums) == _bits(expected_sums)
    assert out.tobytes() == cast.tobytes()
    duration_bars, duration = drawdown_duration(pd.Series(values, index=index), cash)
    assert (bars, pd.Timedelta(np.timedelta64(longest, "ns"))) == (duration_bars, duration)
