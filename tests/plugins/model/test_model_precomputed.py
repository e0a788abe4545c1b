"""The ``precomputed`` model: probabilities from a column of the data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from tradeloom.domain import Bars
from tradeloom.errors import DataError
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.model import PrecomputedParams, build_precomputed_model

CTX = BuildContext(strategy_name="t", strategy_dir=Path("."), seed=1)


def _bars(**extra: Any) -> Bars:
    n = 12
    index = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC", name="timestamp")
    close = np.linspace(100.0, 111.0, n)
    frame = pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close, "volume": 1.0, **extra},
        index=index,
    )
    return Bars(frame=frame, symbol="TEST/USDT", timeframe="1h", timeframe_seconds=3600)


def _model(column: str = "prob_up", horizon: int = 1) -> Any:
    return build_precomputed_model(PrecomputedParams(column=column, horizon=horizon), CTX)


def test_reads_the_column_as_probabilities() -> None:
    values = np.array([np.nan, 0.0, 0.2, 0.5, 1.0, 0.7, np.nan, 0.4, 0.6, 0.9, 0.1, 0.3])
    bars = _bars(prob_up=values, other=np.arange(12.0))
    model = _model(horizon=4)
    output = model.fit_predict(bars, pd.DataFrame(index=bars.frame.index))
    np.testing.assert_array_equal(output.probability.to_numpy(), values)
    assert output.probability.index.equals(bars.frame.index)
    assert output.probability.name == "probability_up"
    assert output.trainings == ()
    assert model.horizon == 4


def test_missing_column_names_the_available_ones() -> None:
    bars = _bars(prob_up=np.full(12, 0.5))
    with pytest.raises(DataError) as caught:
        _model("p_up").fit_predict(bars, pd.DataFrame(index=bars.frame.index))
    assert str(caught.value) == (
        "precomputed model: column 'p_up' is not in the data (did you mean 'prob_up'?); "
        "available columns: open, high, low, close, volume, prob_up"
    )


def test_missing_column_without_a_near_miss() -> None:
    bars = _bars()
    with pytest.raises(DataError) as caught:
        _model("signal").fit_predict(bars, pd.DataFrame(index=bars.frame.index))
    assert str(caught.value) == (
        "precomputed model: column 'signal' is not in the data; "
        "available columns: open, high, low, close, volume"
    )


def test_values_outside_unit_interval_name_the_first_rows() -> None:
    values = np.full(12, 0.5)
    values[[2, 7, 9, 11]] = [1.5, -0.2, np.inf, 2.0]
    values[4] = np.nan  # NaN is no prediction, not an error
    bars = _bars(prob_up=values)
    with pytest.raises(DataError) as caught:
        _model().fit_predict(bars, pd.DataFrame(index=bars.frame.index))
    assert str(caught.value) == (
        "precomputed model: column 'prob_up' must hold probabilities in [0, 1] or NaN; "
        "4 values outside, first at bar 2 (2024-01-01T02:00Z) = 1.5, "
        "bar 7 (2024-01-01T07:00Z) = -0.2, bar 9 (2024-01-01T09:00Z) = inf, ..."
    )


def test_one_value_outside() -> None:
    values = np.full(12, 0.5)
    values[3] = 100.0
    bars = _bars(prob_up=values)
    with pytest.raises(DataError) as caught:
        _model().fit_predict(bars, pd.DataFrame(index=bars.frame.index))
    assert str(caught.value) == (
        "precomputed model: column 'prob_up' must hold probabilities in [0, 1] or NaN; "
        "1 value outside, first at bar 3 (2024-01-01T03:00Z) = 100"
    )


def test_non_numeric_column() -> None:
    bars = _bars(prob_up=["high"] * 12)
    with pytest.raises(
        DataError, match=r"^precomputed model: column 'prob_up' must be numeric, is "
    ):
        _model().fit_predict(bars, pd.DataFrame(index=bars.frame.index))


@pytest.mark.parametrize(
    ("document", "loc"),
    [
        ({}, ("column",)),
        ({"column": ""}, ("column",)),
        ({"column": "p", "horizon": 0}, ("horizon",)),
        ({"column": "p", "colum": "q"}, ("colum",)),
    ],
)
def test_params_reject(document: dict[str, Any], loc: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as caught:
        PrecomputedParams.model_validate(document)
    assert caught.value.errors()[0]["loc"] == loc


def test_params_default_horizon() -> None:
    assert PrecomputedParams(column="p").horizon == 1
