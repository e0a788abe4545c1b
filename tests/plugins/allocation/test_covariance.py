"""The numpy covariance estimators equal skfolio's of the same name."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.plugins.allocation.conftest import SP500_WINDOW, WINDOW, skfolio_covariance
from tradeloom.plugins.allocation.covariance import (
    CovarianceParams,
    covariance,
    covariance_diagonal,
    needs_more_bars_than_symbols,
)


@pytest.mark.parametrize(
    ("kind", "halflife"), [("sample", None), ("ledoit_wolf", None), ("exponential", 30.0)]
)
def test_each_estimator_equals_skfolio(
    market_returns: np.ndarray, kind: str, halflife: float | None
) -> None:
    window = market_returns[-WINDOW:]
    ours = covariance(window, kind, halflife)  # type: ignore[arg-type]
    theirs = skfolio_covariance(kind, halflife).fit(window).covariance_
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=0)


@pytest.mark.parametrize(
    ("kind", "halflife"), [("sample", None), ("ledoit_wolf", None), ("exponential", 60.0)]
)
def test_each_estimator_equals_skfolio_on_real_prices(
    sp500_windows: list[np.ndarray], kind: str, halflife: float | None
) -> None:
    window = sp500_windows[2][-SP500_WINDOW:]
    ours = covariance(window, kind, halflife)  # type: ignore[arg-type]
    theirs = skfolio_covariance(kind, halflife).fit(window).covariance_
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=0)


def test_exponential_weighs_the_newest_bars_most(market_returns: np.ndarray) -> None:
    window = market_returns[-WINDOW:].copy()
    calm = covariance(window, "exponential", 10.0)
    window[-1] *= 10  # one large last bar moves a short halflife's estimate
    assert covariance(window, "exponential", 10.0)[0, 0] > 5 * calm[0, 0]


def test_halflife_comes_with_exponential_only() -> None:
    with pytest.raises(ValidationError, match="covariance: exponential needs halflife: BARS"):
        CovarianceParams(covariance="exponential")
    with pytest.raises(ValidationError, match="halflife applies to covariance: exponential only"):
        CovarianceParams(halflife=20)


def test_only_shrinkage_is_well_conditioned_with_few_bars(market_returns: np.ndarray) -> None:
    few = market_returns[:4]  # 4 bars, 6 symbols: rank 3
    assert np.linalg.matrix_rank(covariance(few, "sample")) == 3
    assert np.all(np.linalg.eigvalsh(covariance(few, "ledoit_wolf")) > 0)
    assert needs_more_bars_than_symbols("sample")
    assert needs_more_bars_than_symbols("exponential")
    assert not needs_more_bars_than_symbols("ledoit_wolf")


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 80),
    bars=st.integers(2, 300),
    seed=st.integers(0, 2**32 - 1),
    scale=st.sampled_from([1e-4, 0.01, 1.0]),
)
def test_ledoit_wolf_is_scikit_learn_s_bit_for_bit_and_its_diagonal_alone_agrees(
    n: int, bars: int, seed: int, scale: float
) -> None:
    from sklearn.covariance import ledoit_wolf

    rng = np.random.default_rng(seed)
    window = scale * (rng.normal(size=(bars, 1)) + rng.normal(size=(bars, n)))
    ours = covariance(window, "ledoit_wolf")
    np.testing.assert_array_equal(ours, ledoit_wolf(window)[0])
    for kind, halflife in (("ledoit_wolf", None), ("sample", None), ("exponential", 20.0)):
        full = np.diag(covariance(window, kind, halflife))  # type: ignore[arg-type]
        alone = covariance_diagonal(window, kind, halflife)  # type: ignore[arg-type]
        np.testing.assert_allclose(alone, full, rtol=1e-8, atol=0)
