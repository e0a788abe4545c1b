"""volatility_target and risk_per_trade in the compiled bar, against plain Python.

Each property runs generated bars through the core (`tests.core.harness`) and
recomputes, bar by bar in plain Python, the documented formula of
`tradeloom.core.sizing`: every accepted entry's target and every NO_RISK_ESTIMATE
must be the one the formula gives at its bar. The longer hunt:
``PYTHONPATH=. python scripts/hunt_sizing.py --examples 500`` (or
``TRADELOOM_SIZING_EXAMPLES=500`` for this module).
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeloom.core import codes
from tradeloom.core.kernels.sizing import no_estimate_message, stop_distance
from tradeloom.core.kernels.specs import MarginKernel, SizingKernel
from tradeloom.core.params import ExitRules

from .harness import bars, decoded, make_spec, rows, run

NAN = math.nan
EXAMPLES = int(os.environ.get("TRADELOOM_SIZING_EXAMPLES", "25"))


def ewma_variance(closes: list[float], window: int) -> list[float]:
    """The documented estimator, plainly: each bar's variance (NaN while warming up)."""
    out = [NAN] * len(closes)
    total = 0.0
    variance = NAN
    for k in range(1, len(closes)):
        r = math.log(closes[k] / closes[k - 1])
        if k <= window:
            total += r * r
            if k == window:
                variance = total / window
        else:
            variance += 2.0 / (window + 1.0) * (r * r - variance)
        out[k] = variance
    return out


def wilder_atr(high: list[float], low: list[float], close: list[float], window: int) -> list[float]:
    """TA-Lib's ATR, plainly: NaN for the first ``window`` bars, then Wilder's average."""
    out = [NAN] * len(close)
    total = 0.0
    atr = NAN
    for k in range(1, len(close)):
        tr = max(high[k] - low[k], abs(high[k] - close[k - 1]), abs(low[k] - close[k - 1]))
        if k <= window:
            total += tr
            if k == window:
                atr = total / window
        else:
            atr = atr * ((window - 1) / window) + tr * (1.0 / window)
        out[k] = atr
    return out


def _market(draw_seed: int, n: int) -> tuple[list[float], ...]:
    rng = np.random.default_rng(draw_seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, n)))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0.0, 0.01, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0.0, 0.01, n)))
    p = rng.choice([0.1, 0.5, 0.9], n)
    return (list(open_), list(high), list(low), list(close), list(p))


def _accepted(state) -> dict[int, float]:
    """Bar -> |target| of each accepted entry or reversal."""
    return {
        r.bar: abs(r.values[2])
        for r in rows(state)
        if r.kind == "DECISION" and r.values[0] == codes.ACCEPTED
    }


def _unestimated(state) -> dict[int, tuple[float, ...]]:
    return {
        r.bar: r.values[1:4]
        for r in rows(state)
        if r.kind == "REJECT" and r.values[0] == codes.NO_RISK_ESTIMATE
    }


def _margin(leverage: float) -> MarginKernel | None:
    return None if leverage == 1.0 else MarginKernel(1.0 / leverage, 0.01, leverage, 0.0)


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(5, 80),
    window=st.integers(2, 12),
    target=st.floats(0.01, 2.0),
    cap=st.floats(0.05, 1.0),
    periods=st.sampled_from([252.0, 8760.0, 0.0]),
    leverage=st.sampled_from([1.0, 3.0]),
)
def test_volatility_target_sizes_by_the_documented_formula(
    seed, n, window, target, cap, periods, leverage
) -> None:
    o, h, lo, c, p = _market(seed, n)
    sizing = SizingKernel(
        "volatility_target", target, max_position=cap, window=window, periods_per_year=periods
    )
    spec = make_spec(
        sizing=sizing, allow_short=leverage > 1.0, margin=_margin(leverage), fill_at_close=False
    )
    state = run(spec, bars(c, open_=o, high=h, low=lo, p=p))
    variance = ewma_variance(c, window)
    year = periods or 8760.0  # 0: the hourly timeframe's bars in 365 days
    accepted = _accepted(state)
    for bar, size in accepted.items():
        vol = math.sqrt(variance[bar] * year)
        want = cap if vol == 0.0 else min(target / vol / leverage, cap)
        assert size == pytest.approx(want, rel=1e-12), bar
    refused = _unestimated(state)
    for bar, values in refused.items():
        assert math.isnan(variance[bar])
        assert values == (2.0, float(bar), float(window))
    assert accepted or refused or 0.9 not in p


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(5, 80),
    risk=st.floats(0.001, 0.05),
    cap=st.floats(0.05, 1.0),
    stop_loss=st.sampled_from([None, 0.01, 0.04]),
    trailing=st.sampled_from([None, 0.02]),
    atr=st.sampled_from([None, (3, 1.5), (5, 3.0)]),
    leverage=st.sampled_from([1.0, 2.0]),
)
def test_risk_per_trade_sizes_by_the_tightest_stop(
    seed, n, risk, cap, stop_loss, trailing, atr, leverage
) -> None:
    if stop_loss is None and trailing is None and atr is None:
        stop_loss = 0.02  # the loader refuses risk_per_trade without a stop
    o, h, lo, c, p = _market(seed, n)
    exits = ExitRules(
        trailing_stop=trailing,
        trailing_atr=None if atr is None else atr[0],
        trailing_multiple=0.0 if atr is None else atr[1],
    )
    spec = make_spec(
        sizing=SizingKernel("risk_per_trade", risk, max_position=cap),
        stop_loss=stop_loss,
        exits=exits,
        allow_short=leverage > 1.0,
        margin=_margin(leverage),
        fill_at_close=False,
    )
    state = run(spec, bars(c, open_=o, high=h, low=lo, p=p))
    atrs = [NAN] * n if atr is None else wilder_atr(h, lo, c, atr[0])
    accepted = _accepted(state)
    for bar, size in accepted.items():
        distances = [d for d in (stop_loss, trailing) if d is not None]
        if atr is not None and not math.isnan(atrs[bar]):
            distances.append(atr[1] * atrs[bar] / c[bar])
        assert size == pytest.approx(min(risk / min(distances) / leverage, cap), rel=1e-12)
    for bar in _unestimated(state):
        assert stop_loss is None and trailing is None and math.isnan(atrs[bar])
    assert accepted or _unestimated(state) or 0.9 not in p


def test_a_warming_volatility_refuses_with_its_message() -> None:
    spec = make_spec(sizing=SizingKernel("volatility_target", 0.1, window=3, periods_per_year=1))
    state = run(spec, bars([100.0, 101.0, 100.0, 102.0], p=[0.9, 0.9, NAN, 0.9]))
    refused = [d for d in decoded(state) if d.kind == "rejection"]
    assert [str(d.value) for d in refused] == [
        "NO_RISK_ESTIMATE: volatility_target: the volatility needs 3 returns, has 0 (warming up)",
        "NO_RISK_ESTIMATE: volatility_target: the volatility needs 3 returns, has 1 (warming up)",
    ]
    # bar 3: three returns, the variance their mean square; one unit of yearly variance
    r = [math.log(101 / 100), math.log(100 / 101), math.log(102 / 100)]
    want = min(0.1 / math.sqrt(sum(x * x for x in r) / 3), 1.0)
    assert [abs(x) for x in _accepted(state).values()] == [pytest.approx(want, rel=1e-12)]


def test_an_unwarmed_atr_stop_alone_refuses() -> None:
    assert math.isnan(stop_distance(100.0, NAN, NAN, NAN, 2.0))
    assert stop_distance(100.0, 0.05, NAN, 1.0, 2.0) == pytest.approx(0.02)
    assert no_estimate_message(3, 1, 14) == (
        "risk_per_trade: no stop distance yet: the ATR of 14 bars has 1 true ranges "
        "and there is no other stop (risk.stop_loss)"
    )
