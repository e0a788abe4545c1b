"""Regime labels: the definitions, the warm-up, causality, and per-bar against batch."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.hunting import examples
from tradeloom.engine.regime import (
    HIGH_VOLATILITY,
    LOW_VOLATILITY,
    RANGING,
    REGIME_LABELS,
    TRENDING,
    UNKNOWN,
    RegimeParams,
    RegimeStepper,
    check_regime_label,
    regime_codes,
    regime_mask,
    trend_label,
    volatility_label,
)
from tradeloom.errors import ConfigError
from tradeloom.schemas import load_strategy

# log returns: mostly noise, with runs of zeros (flat prices) and of one sign (trends)
_moves = st.lists(
    st.one_of(
        st.floats(-0.05, 0.05, allow_nan=False),
        st.just(0.0),
        st.sampled_from([0.01, -0.01, 0.03]),
    ),
    min_size=1,
    max_size=120,
)
_params = st.builds(
    RegimeParams,
    trend_window=st.integers(2, 12),
    trend_threshold=st.sampled_from([0.1, 0.3, 0.5, 1.0]),
    volatility_window=st.integers(2, 8),
    volatility_lookback=st.integers(1, 15),
    high_volatility_quantile=st.sampled_from([0.2, 0.5, 0.8, 1.0]),
)
_TOLERANCE = 1e-9
"""How close to a boundary a reference value may be and still be compared: numpy's log
and sums may differ from the kernel's in the last bits, which flips a label only there."""


def _closes(moves: list[float]) -> np.ndarray:
    return 100.0 * np.exp(np.cumsum(np.r_[0.0, moves]))


def _reference(close: np.ndarray, p: RegimeParams) -> tuple[list[str | None], list[str | None]]:
    """Labels from the definitions, in pandas and numpy; None where too near a boundary."""
    w, vw, lookback = p.trend_window, p.volatility_window, p.volatility_lookback
    n = len(close)
    trend: list[str | None] = [UNKNOWN] * n
    for t in range(w, n):
        path = np.abs(np.diff(close[t - w : t + 1])).sum()
        ratio = abs(close[t] - close[t - w]) / path if path > 0 else 0.0
        if abs(ratio - p.trend_threshold) <= _TOLERANCE:
            trend[t] = None
        else:
            trend[t] = "trending" if ratio >= p.trend_threshold else "ranging"
    std = pd.Series(np.log(close)).diff().rolling(vw).std(ddof=1).to_numpy()
    volatility: list[str | None] = [UNKNOWN] * n
    for t in range(vw + lookback, n):
        past = std[t - lookback : t]
        if np.any(np.abs(past - std[t]) <= _TOLERANCE * max(std[t], 1e-6)):
            volatility[t] = None  # a tie within rounding: "strictly below" is undecided
            continue
        rank = float(np.mean(past < std[t]))
        high = rank >= p.high_volatility_quantile
        volatility[t] = "high_volatility" if high else "low_volatility"
    return trend, volatility


@settings(max_examples=examples(200), deadline=None)
@given(moves=_moves, params=_params)
def test_labels_follow_their_definitions(moves: list[float], params: RegimeParams) -> None:
    close = _closes(moves)
    codes = regime_codes(close, params)
    trend, volatility = _reference(close, params)
    for t, code in enumerate(codes):
        if trend[t] is not None:
            assert trend_label(code) == trend[t], f"trend at bar {t}"
        if volatility[t] is not None:
            assert volatility_label(code) == volatility[t], f"volatility at bar {t}"


@settings(max_examples=examples(100), deadline=None)
@given(moves=_moves, params=_params)
def test_stepping_bar_by_bar_gives_the_batch_codes(
    moves: list[float], params: RegimeParams
) -> None:
    close = _closes(moves)
    stepper = RegimeStepper(params)
    stepped = [stepper.step(float(c)) for c in close]
    assert stepped == regime_codes(close, params).tolist()
    assert stepper.code == stepped[-1]


@settings(max_examples=examples(100), deadline=None)
@given(
    moves=_moves,
    future=st.lists(st.floats(-0.2, 0.2, allow_nan=False), min_size=1, max_size=40),
    params=_params,
    data=st.data(),
)
def test_labels_at_t_never_depend_on_later_bars(
    moves: list[float], future: list[float], params: RegimeParams, data: st.DataObject
) -> None:
    close = _closes(moves)
    t = data.draw(st.integers(0, len(close) - 1), label="cut")
    codes = regime_codes(close, params)
    truncated = regime_codes(close[: t + 1], params)
    replaced = regime_codes(np.r_[close[: t + 1], close[t] * np.exp(np.cumsum(future))], params)
    np.testing.assert_array_equal(truncated, codes[: t + 1])
    np.testing.assert_array_equal(replaced[: t + 1], codes[: t + 1])


def test_each_label_is_unknown_until_its_window_has_filled() -> None:
    params = RegimeParams(trend_window=5, volatility_window=4, volatility_lookback=10)
    codes = regime_codes(_closes(list(np.random.default_rng(1).normal(0, 0.01, 60))), params)
    trend = [trend_label(c) for c in codes]
    volatility = [volatility_label(c) for c in codes]
    assert trend[:5] == [UNKNOWN] * 5 and UNKNOWN not in trend[5:]
    assert volatility[:14] == [UNKNOWN] * 14 and UNKNOWN not in volatility[14:]


def test_a_steady_climb_trends_and_flat_prices_range_calmly() -> None:
    params = RegimeParams(trend_window=10, volatility_window=5, volatility_lookback=20)
    # each close doubles the last exactly, so every log return is the same float and the
    # volatility is exactly 0 (1.01 ** n leaves rounding noise, whose rank is arbitrary)
    climb = regime_codes(100.0 * 2.0 ** np.arange(80), params)
    assert set(climb[40:].tolist()) == {TRENDING | LOW_VOLATILITY}
    flat = regime_codes(np.full(80, 100.0), params)
    assert set(flat[40:].tolist()) == {RANGING | LOW_VOLATILITY}


def test_a_volatility_burst_is_high_volatility_until_it_is_the_norm() -> None:
    rng = np.random.default_rng(4)
    burst = 0.03 * rng.choice([-1.0, 1.0], 100) * rng.uniform(0.5, 1.5, 100)
    moves = np.r_[rng.normal(0, 0.002, 100), burst]
    params = RegimeParams(volatility_window=10, volatility_lookback=50)
    labels = [volatility_label(c) for c in regime_codes(_closes(list(moves)), params)]
    assert labels[:60] == [UNKNOWN] * 60  # 10 returns, then 50 previous deviations
    # a window holding a burst return is wider than any calm one before it ...
    assert labels[101:120] == ["high_volatility"] * 19
    # ... until a fifth of the lookback is burst too: then it is the norm it is ranked by
    assert labels[130:155] == ["low_volatility"] * 25


def test_labels_masks_and_their_names() -> None:
    assert REGIME_LABELS == ("trending", "ranging", "high_volatility", "low_volatility")
    assert regime_mask([]) == 0
    assert regime_mask(["trending", "low_volatility"]) == TRENDING | LOW_VOLATILITY
    assert regime_mask(REGIME_LABELS) == TRENDING | RANGING | HIGH_VOLATILITY | LOW_VOLATILITY
    assert (trend_label(0), volatility_label(0)) == (UNKNOWN, UNKNOWN)
    assert (
        trend_label(RANGING | HIGH_VOLATILITY),
        volatility_label(RANGING | HIGH_VOLATILITY),
    ) == (
        "ranging",
        "high_volatility",
    )
    with pytest.raises(KeyError):
        regime_mask([UNKNOWN])


def test_an_unknown_label_is_refused_with_the_closest_one() -> None:
    assert check_regime_label("ranging") == "ranging"
    with pytest.raises(
        ValueError,
        match=r"^expected a regime: trending, ranging, high_volatility or low_volatility, "
        r"was 'high_vol' \(did you mean 'high_volatility'\?\)$",
    ):
        check_regime_label("high_vol")


def test_the_defaults_are_documented_numbers() -> None:
    assert RegimeParams() == RegimeParams(
        trend_window=24,
        trend_threshold=0.3,
        volatility_window=24,
        volatility_lookback=240,
        high_volatility_quantile=0.8,
    )
    with pytest.raises(ValidationError):
        RegimeParams(trend_window=1)
    with pytest.raises(ValidationError):
        RegimeParams(high_volatility_quantile=0.0)


@pytest.mark.parametrize("key", ["trend_window", "volatility_window", "volatility_lookback"])
def test_a_window_of_more_than_a_million_bars_is_refused_before_it_exhausts_memory(
    key: str, tmp_path: Path
) -> None:
    assert getattr(RegimeParams(**{key: 1_000_000}), key) == 1_000_000
    with pytest.raises(ValidationError, match=r"less than or equal to 1000000"):
        RegimeParams(**{key: 1_000_001})
    text = (Path(__file__).parents[2] / "strategies" / "btc_rf.yaml").read_text(encoding="utf-8")
    path = tmp_path / "s.yaml"
    path.write_text(f"{text}regime: {{{key}: 100000000000}}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_strategy(path)
    (line,) = caught.value.lines()
    assert line.endswith(f" regime.{key}: must be <= 1000000, was 100000000000")


def test_a_random_walk_trends_about_as_often_as_the_threshold_implies() -> None:
    # ER of a random walk over w bars is about 1/sqrt(w) = 0.2 for w = 24: the default
    # threshold 0.3 labels a minority of its bars trending, not none and not most
    close = _closes(list(np.random.default_rng(9).normal(0, 0.01, 5000)))
    codes = regime_codes(close, RegimeParams())
    share = float(np.mean([trend_label(c) == "trending" for c in codes[24:]]))
    assert 0.1 < share < 0.45
    high = float(np.mean([volatility_label(c) == "high_volatility" for c in codes[264:]]))
    assert math.isclose(high, 0.2, abs_tol=0.1)  # the top fifth by construction, roughly
