"""The numpy covariance estimators equal skfolio's of the same name."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from tests.plugins.allocation.conftest import SP500_WINDOW, WINDOW, skfolio_covariance
from tradeloom.plugins.allocation.covariance import (
    CovarianceParams,
    covariance,
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
