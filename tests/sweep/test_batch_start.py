"""A batch's directly built starting arrays are `CoreState`'s, bit for bit, for every
kind of variant a sweep batches: a change to `CoreState` that `BatchStart` does not
follow fails here, not as a sweep whose numbers drift from its backtests'."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.core.harness import make_spec
from tests.core.test_ladder import strategies
from tests.hunting import examples
from tradeloom.core.kernels.specs import MarginKernel, OrdersKernel, SizingKernel
from tradeloom.core.params import CoreSpec, ExitRules, Limits, PortfolioLimits, Scaling
from tradeloom.core.state import BarInputs, CoreState
from tradeloom.sweep.batch_start import BatchStart


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


_CHANGES = {
    "sizing": st.builds(
        SizingKernel,
        st.sampled_from(["fixed_fraction", "kelly", "volatility_target", "risk_per_trade"]),
        st.sampled_from([0.05, 0.5, 1.0]),
        payoff=st.sampled_from([1.0, 1.7]),
        max_position=st.sampled_from([0.3, 1.0]),
        window=st.sampled_from([0, 20]),
        periods_per_year=st.sampled_from([0.0, 8760.0]),
    ),
    "initial_cash": st.sampled_from([1_000.0, 100_000.0, 2_500_000.5]),
    "stop_loss": st.sampled_from([None, 0.01, 0.2]),
    "take_profit": st.sampled_from([None, 0.04]),
    "max_holding_bars": st.sampled_from([None, 5]),
    "drawdown_limits": st.sampled_from([(), (0.1,), (0.1, 0.25)]),
    "exits": st.builds(
        ExitRules,
        trailing_stop=st.sampled_from([None, 0.02]),
        trailing_atr=st.sampled_from([None, 14]),
        trailing_multiple=st.sampled_from([0.0, 2.5]),
        break_even=st.sampled_from([None, 0.01]),
        cooldown_bars=st.sampled_from([None, 3]),
        exit_time_ns=st.sampled_from([None, 15 * 3600 * 10**9]),
    ),
    "limits": st.builds(
        Limits,
        max_order_notional=st.sampled_from([None, 5_000.0]),
        max_position_quantity=st.sampled_from([None, 10.0]),
        max_orders_per_minute=st.sampled_from([None, 1, 7]),
        price_collar=st.sampled_from([None, 0.05]),
        daily_loss_limit=st.sampled_from([None, 0.03]),
    ),
    "margin": st.sampled_from([None, MarginKernel(0.5, 0.25, 2.0, 0.005)]),
    "scaling": st.builds(
        Scaling,
        take_profit_levels=st.sampled_from([(), ((0.02, 0.5),), ((0.01, 0.3), (0.03, 0.5))]),
        kind=st.sampled_from(["none", "pyramid", "dca"]),
        step=st.sampled_from([0.0, 0.01]),
        max_adds=st.sampled_from([0, 2]),
        max_position=st.sampled_from([0.0, 0.9]),
    ),
    "orders": st.builds(
        OrdersKernel,
        order_type=st.sampled_from(["market", "limit", "auto"]),
        limit_offset=st.sampled_from([0.0, 0.001]),
        post_only=st.booleans(),
        time_in_force=st.sampled_from(["GTC", "IOC", "FOK"]),
        fallback_after_bars=st.sampled_from([0, 2]),
        expire_after_bars=st.sampled_from([0, 4]),
        auto_urgent_confidence=st.sampled_from([None, 0.8]),
        slicing=st.sampled_from(["none", "twap"]),
        slice_children=st.sampled_from([0, 3]),
    ),
    "periods_per_year": st.sampled_from([0.0, 252.0]),
    "regime_filter": st.sampled_from([0, 5]),
    "journal_regime": st.booleans(),
    "min_notional": st.sampled_from([0.0, 10.0]),
    "portfolio": st.sampled_from([PortfolioLimits(), PortfolioLimits(max_weight=0.5, top_k=1)]),
}
"""What a sweep's axes change of a batched (one symbol, compiled) variant's spec."""


@st.composite
def variants(draw: st.DrawFn, base: CoreSpec) -> CoreSpec:
    keys = draw(st.lists(st.sampled_from(sorted(_CHANGES)), unique=True, max_size=6))
    return replace(base, **{key: draw(_CHANGES[key], label=key) for key in keys})


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(strategy=strategies(), data=st.data())
def test_each_variant_starts_as_its_core_state(
    strategy: tuple[CoreSpec, BarInputs], data: st.DataObject
) -> None:
    base, _ = strategy
    specs = [base, *data.draw(st.lists(variants(base), min_size=1, max_size=4), label="variants")]
    start = BatchStart(specs[data.draw(st.integers(0, len(specs) - 1), label="first")])
    for spec in specs:
        state = CoreState(spec, capacity=0)
        own = start.variant(spec)
        assert _same(own.prm[0], state.prm)
        assert _same(own.acct[0], state.acct)
        assert _same(own.limits, state.limits)
        assert own.limits_at.tolist() == [0, len(state.limits)]
        assert own.sent_at.tolist() == [0, len(state.sent)]
        assert _same(start.sym, state.sym)
        assert _same(start.port, state.port)


@pytest.mark.parametrize(
    "change",
    [
        {"dust": 0.5},
        {"min_costs": (5.0,)},
        {"portfolio": PortfolioLimits(max_correlation=0.8, correlation_window=10)},
    ],
)
def test_a_variant_whose_symbol_starts_otherwise_is_refused(change: dict[str, object]) -> None:
    base = make_spec()
    start = BatchStart(base)
    with pytest.raises(
        ValueError, match=r"^the batched variants must share the symbol's starting state$"
    ):
        start.variant(replace(base, **change))  # type: ignore[arg-type]


def test_a_symbol_that_starts_alike_by_other_settings_is_batched() -> None:
    base = make_spec()
    start = BatchStart(base)
    same = replace(base, portfolio=PortfolioLimits(groups=(-1,)), dusts=(base.dust,))
    assert _same(start.variant(same).prm[0], CoreState(same).prm)
