"""Kelly, fixed-fraction, volatility-target and risk-per-trade sizing, and the drawdown halt.

The sizes volatility_target and risk_per_trade give are tested in the compiled core
(tests/core/test_sizing.py); here: their keys, and what the loader asks of them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from tradeloom.core.kernels.specs import SizingKernel
from tradeloom.domain import Bar, OrderIntent, PortfolioView, Rejection, Signal
from tradeloom.errors import ConfigError
from tradeloom.plugins.protocols import RiskContext
from tradeloom.plugins.risk.drawdown_halt import DrawdownHalt, DrawdownHaltParams
from tradeloom.plugins.risk.fixed_fraction import FixedFractionParams, FixedFractionSizer
from tradeloom.plugins.risk.kelly import KellyParams, KellySizer
from tradeloom.plugins.risk.risk_per_trade import RiskPerTradeParams, RiskPerTradeSizer
from tradeloom.plugins.risk.volatility_target import (
    VolatilityTargetParams,
    VolatilityTargetSizer,
)
from tradeloom.schemas import load_strategy

BTC_RF = Path(__file__).resolve().parents[3] / "strategies" / "btc_rf.yaml"

T = pd.Timestamp("2024-01-01", tz="UTC")
BAR = Bar(7, T, 100.0, 101.0, 99.0, 100.0, 10.0)


def ctx(equity: float = 1000.0, peak: float = 1000.0) -> RiskContext:
    view = PortfolioView(cash=equity, position=0.0, equity=equity, peak_equity=peak, price=100.0)
    return RiskContext(BAR, view, {}, 0.5)


def signal(p: float, direction: int) -> Signal:
    return Signal(7, T, direction, abs(p - 0.5) * 2, p)


def test_kelly_example() -> None:
    sizer = KellySizer(KellyParams(fraction=0.25, avg_win=0.02, avg_loss=0.01, max_position=1.0))
    # b = 2, p = 0.6: f* = 0.6 - 0.4 / 2 = 0.4; a quarter of it is 0.1
    assert sizer.size(signal(0.6, 1), ctx()) == pytest.approx(0.1)
    # a short takes the probability of a fall: p_win = 1 - 0.3 = 0.7
    assert sizer.size(signal(0.3, -1), ctx()) == pytest.approx(0.25 * (0.7 - 0.3 / 2))


def test_kelly_no_edge_is_rejected_with_values() -> None:
    sizer = KellySizer(KellyParams(fraction=0.5, avg_win=0.01, avg_loss=0.02))
    out = sizer.size(signal(0.6, 1), ctx())
    assert isinstance(out, Rejection)
    assert str(out) == "KELLY_NO_EDGE: kelly=-0.2000 <= 0 (p_win=0.6000, payoff=0.5000)"
    assert out.values == {"kelly": pytest.approx(-0.2), "p_win": 0.6, "payoff": 0.5}


@given(
    p=st.floats(0.0, 1.0),
    direction=st.sampled_from([-1, 1]),
    fraction=st.floats(0.01, 1.0),
    win=st.floats(0.001, 0.5),
    loss=st.floats(0.001, 0.5),
    cap=st.floats(0.01, 1.0),
)
def test_kelly_size_is_within_the_cap_and_grows_with_the_edge(
    p, direction, fraction, win, loss, cap
) -> None:
    sizer = KellySizer(KellyParams(fraction=fraction, avg_win=win, avg_loss=loss, max_position=cap))
    out = sizer.size(signal(p, direction), ctx())
    p_win = p if direction > 0 else 1 - p
    full = p_win - (1 - p_win) / (win / loss)
    if full <= 0:
        assert isinstance(out, Rejection) and out.code == "KELLY_NO_EDGE"
    else:
        assert isinstance(out, float)
        assert 0 < out <= cap
        assert out == pytest.approx(min(fraction * full, cap))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"fraction": 1.5, "avg_win": 0.01, "avg_loss": 0.01}, "less than or equal to 1"),
        ({"fraction": 0.5, "avg_win": -0.01, "avg_loss": 0.01}, "greater than 0"),
        ({"fraction": 0.5, "avg_win": 0.01, "avg_loss": 1.5}, "avg_loss is a return"),
    ],
)
def test_kelly_params_refused(params, message) -> None:
    with pytest.raises(ValidationError, match=message):
        KellyParams(**params)


def test_fixed_fraction() -> None:
    assert FixedFractionSizer(FixedFractionParams(fraction=0.05)).size(
        signal(0.51, 1), ctx()
    ) == pytest.approx(0.05)


def test_drawdown_halt_at_the_limit() -> None:
    rule = DrawdownHalt(DrawdownHaltParams(max_drawdown=0.15))
    assert rule.on_bar(ctx(equity=851.0, peak=1000.0)) is None
    halt = rule.on_bar(ctx(equity=847.0, peak=1000.0))
    assert halt is not None
    assert (halt.code, halt.message) == ("MAX_DRAWDOWN_HALT", "drawdown=0.1530, limit=0.15")
    assert halt.values["drawdown"] == pytest.approx(0.153)
    intent = OrderIntent(7, T, 1, 0.1, "ENTRY", True)
    assert rule.check(intent, ctx()) is None


def test_volatility_target_and_risk_per_trade_hand_the_core_their_keys() -> None:
    vol = VolatilityTargetSizer(VolatilityTargetParams(target=0.2, window=30))
    assert vol.kernel_spec() == SizingKernel("volatility_target", 0.2, window=30)
    daily = VolatilityTargetParams(target=0.1, periods_per_year=252, max_position=0.5)
    assert VolatilityTargetSizer(daily).kernel_spec() == SizingKernel(
        "volatility_target", 0.1, max_position=0.5, window=20, periods_per_year=252.0
    )
    risk = RiskPerTradeSizer(RiskPerTradeParams(risk=0.01, max_position=0.4))
    assert risk.kernel_spec() == SizingKernel("risk_per_trade", 0.01, max_position=0.4)
    with pytest.raises(RuntimeError, match=r"^sizing kind risk_per_trade runs in the compiled"):
        risk.size(signal(0.9, 1), ctx())


@pytest.mark.parametrize(
    ("model", "params", "message"),
    [
        (VolatilityTargetParams, {"target": 0}, "greater than 0"),
        (VolatilityTargetParams, {"target": 0.2, "window": 1}, "greater than or equal to 2"),
        (VolatilityTargetParams, {"target": 0.2, "periods_per_year": 0}, "greater than 0"),
        (RiskPerTradeParams, {"risk": 1.0}, "less than 1"),
        (RiskPerTradeParams, {"risk": 0.01, "max_position": 2}, "less than or equal to 1"),
    ],
)
def test_volatility_and_risk_params_refused(model, params, message) -> None:
    with pytest.raises(ValidationError, match=message):
        model(**params)


def test_risk_per_trade_needs_a_stop() -> None:
    sizing = "risk.sizing={kind: risk_per_trade, risk: 0.01}"
    with pytest.raises(ConfigError) as caught:
        load_strategy(BTC_RF, [sizing])
    assert caught.value.lines() == [
        "--set risk.sizing.kind: risk_per_trade sizes by the distance to the stop: set "
        "risk.stop_loss or risk.trailing_stop"
    ]
    config, _ = load_strategy(BTC_RF, [sizing, "risk.trailing_stop={atr: 14, multiple: 2}"])
    assert config.sizing.kind == "risk_per_trade"
