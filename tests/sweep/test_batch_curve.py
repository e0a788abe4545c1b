"""The batch's reduction of a variant's rows gives the backtest's curve and counts, bit
for bit: bars the symbol has not (its mark held over them), a row at the first and the
last bar, and several variants through one buffer that must grow."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.core.test_ladder import strategies
from tests.hunting import examples
from tradeloom.core import layout as L
from tradeloom.core.curves import fill_marks, universe_curve
from tradeloom.core.params import CoreSpec
from tradeloom.core.state import BarInputs, CoreState
from tradeloom.reporting.tearsheet import simple_returns
from tradeloom.sweep.batch import run_batch
from tradeloom.sweep.stages import Series, StageHashes


def _series(inputs: BarInputs) -> Series:
    index = pd.DatetimeIndex(pd.to_datetime(inputs.time_ns, utc=True), name="timestamp")
    return Series(
        inputs=inputs,
        index=index,
        timeframe_seconds=3600,
        periods_per_year=8760.0,
        calendar_year=None,
        sizing_year=8760.0,
        model_trainings=0,
        model_folds_skipped=0,
        hashes=StageHashes("t", "t", "t", "t"),
    )


def _backtest(spec: CoreSpec, inputs: BarInputs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The backtest's way: the whole run's rows, then its curve from the fills."""
    state = CoreState(spec, capacity=64)
    assert state.run(inputs, len(inputs)) == L.NEED_DONE
    rows = state.rows()
    positions, _, equity = universe_curve(fill_marks(rows), inputs.px[3, :, :], spec.initial_cash)
    return rows, positions, equity


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(strategy=strategies(), data=st.data())
def test_a_batched_variant_has_the_backtest_s_curve(
    strategy: tuple[CoreSpec, BarInputs], data: st.DataObject
) -> None:
    spec, inputs = strategy
    n = len(inputs)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    inputs.trainings[:] = 0
    if data.draw(st.booleans(), label="gaps"):
        gaps = rng.random(n) < data.draw(st.sampled_from([0.3, 0.7]), label="gap share")
        gaps[0] = data.draw(st.booleans(), label="first bar missing")
        inputs.px[3, gaps, 0] = np.nan  # bars the symbol has not
    spec = spec if data.draw(st.booleans(), label="as drawn") else _quiet(spec)
    rows, positions, equity = _backtest(spec, inputs)
    others = data.draw(st.integers(0, 2), label="variants before it")
    result = run_batch(_series(inputs), [spec] * (others + 1))
    for v in range(others + 1):  # each from a fresh state, through the same buffers
        assert np.array_equal(
            result.returns[v], simple_returns(equity, spec.initial_cash), equal_nan=True
        )
        metrics = result.metrics[v]
        kinds = rows[:, L.E_KIND]
        assert metrics["exposure"] == float(np.mean(positions[:, 0] != 0.0))
        assert metrics["signals"] == int(np.sum(kinds == L.EV_SIGNAL))
        assert metrics["fills"] == int(np.sum(kinds == L.EV_FILL))
        assert metrics["trades"] == int(np.sum(kinds == L.EV_TRADE))


def _quiet(spec: CoreSpec) -> CoreSpec:
    """The spec without the features that make every held bar a full one (a stop-loss or
    take-profit alone is checked in the quiet bars)."""
    assert spec.venue is not None
    return replace(
        spec,
        venue=replace(spec.venue, allow_short=False, margin=None),
        allow_short=False,
        margin=None,
        max_holding_bars=None,
    )
