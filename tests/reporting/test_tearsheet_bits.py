"""The tearsheet's summaries and its figures against the market are the bits of the
library computations they stand for: pandas' median of the known values (its -0.0
included), numpy's var, std and corrcoef."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.reporting.tearsheet import _summary, _versus

VALUES = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, 1e-300, -1e300, np.inf, -np.inf, np.nan]


def _bits(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return value if value is None else "nan"
    return float(value).hex(), math.copysign(1.0, value)


def _pandas_summary(values: npt.NDArray[np.float64]) -> dict[str, float | None]:
    known = values[~np.isnan(values)]
    if not len(known):
        return {"last": None, "min": None, "median": None, "max": None}
    return {
        "last": float(known[-1]),
        "min": float(known.min()),
        "median": float(pd.Series(known).median()),
        "max": float(known.max()),
    }


def _numpy_versus(
    r: npt.NDArray[np.float64], m: npt.NDArray[np.float64], periods: float
) -> dict[str, Any]:
    spread = np.var(m) if len(r) >= 2 else 0.0
    if float(spread) == 0.0:
        return {"alpha": None, "beta": None, "correlation": None}
    moved = r - r.mean()
    moved *= m - m.mean()
    beta = float(np.mean(moved) / spread)
    alpha = float((1.0 + np.mean(r - m * beta)) ** periods - 1.0)
    correlation = float(np.corrcoef(r, m)[0, 1]) if float(np.std(r)) > 0 else None
    return {"alpha": alpha, "beta": beta, "correlation": correlation}


@st.composite
def _series(draw: st.DrawFn, special: bool = True) -> npt.NDArray[np.float64]:
    """Values with ties, zeros of both signs and (``special``) infinities and NaN."""
    scale = draw(st.sampled_from([1e-300, 1e-3, 1.0, 1e200]))
    pool = VALUES if special else VALUES[:7]
    values = draw(
        st.lists(
            st.one_of(st.sampled_from(pool), st.floats(-1.0, 1.0).map(lambda v: v * scale)),
            min_size=0,
            max_size=80,
        )
    )
    return np.array(values, dtype=np.float64)


@settings(max_examples=examples(400), deadline=None)
@given(values=_series())
def test_the_summary_is_pandas_dropna_figures_to_the_bit(values: npt.NDArray[np.float64]) -> None:
    want = _pandas_summary(values)
    got = _summary(values.copy())
    assert list(got) == list(want)
    assert {k: _bits(v) for k, v in got.items()} == {k: _bits(v) for k, v in want.items()}


def test_a_zero_median_has_the_sign_pandas_gives_it() -> None:
    # a partition leaves a 0.0 in the middle where bottleneck's selection leaves a -0.0
    values = np.array([0.0, -0.0, 0.0, -0.0, -1.0, 1.0, -0.0, -1.0, 1.0, -1.0, 0.0])
    assert math.copysign(1.0, pd.Series(values).median()) == -1.0
    median = _summary(values.copy())["median"]
    assert median is not None and math.copysign(1.0, median) == -1.0


def test_a_long_summary_of_many_zeros_and_ties_is_pandas() -> None:
    rng = np.random.default_rng(3)
    for zeros in (0.0, 0.3, 0.5, 0.7):
        values = np.round(rng.normal(0.0, 1.0, 200_001), 1)
        values[rng.random(len(values)) < zeros] = -0.0
        values[:719] = np.nan
        for part in (values, values[:-1]):
            want, got = _pandas_summary(part), _summary(part.copy())
            assert {k: _bits(v) for k, v in got.items()} == {k: _bits(v) for k, v in want.items()}


@settings(max_examples=examples(400), deadline=None)
@given(pair=st.integers(0, 80).flatmap(lambda n: st.tuples(_pairs(n), _pairs(n))))
def test_alpha_beta_and_correlation_are_numpys_to_the_bit(
    pair: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]],
) -> None:
    r, m = pair
    index = pd.date_range("2024-01-01", periods=len(r), freq="h", tz="UTC")
    # the market's values whose changes are m: aligned, no NaN
    market = pd.Series(np.cumprod(1.0 + m), index=index)
    changes = market.pct_change().fillna(0.0).to_numpy()
    got = _versus(r, index, market, 8760.0)
    want = _numpy_versus(r, changes, 8760.0)
    assert {k: _bits(v) for k, v in got.items()} == {k: _bits(v) for k, v in want.items()}


def _pairs(n: int) -> st.SearchStrategy[npt.NDArray[np.float64]]:
    values = st.one_of(
        st.sampled_from([0.0, -0.0, 0.01, -0.01, 1e-9]), st.floats(-0.5, 0.5, width=64)
    )
    return st.lists(values, min_size=n, max_size=n).map(lambda v: np.array(v, dtype=np.float64))
