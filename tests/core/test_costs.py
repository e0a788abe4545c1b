"""The venue cost object: the maker fee's fallback and the quantity a notional buys.

Every venue sizes through `VenueCosts.quantity_for`: the compiled bar's formula, so the
live venues, the replay of a restart and the simulated venue size to the same bits as
the core (a live venue's slippage is 0: ``price * (1 + 0)`` is ``price`` exactly).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradeloom.core.costs import VenueCosts
from tradeloom.core.kernels.specs import VenueKernel
from tradeloom.plugins.execution.router import Router, RouterParams
from tradeloom.plugins.execution.simulated import SimulatedVenue, SimulatedVenueParams

RATES = st.floats(0.0, 0.05)
POSITIVE = st.floats(1e-6, 1e9)


def test_a_venue_without_a_maker_fee_charges_its_taker_fee_for_resting_fills() -> None:
    assert VenueCosts.of(0.001) == VenueCosts(0.001, 0.001, 0.0)
    assert VenueCosts.of(0.001, -0.0001, 0.0002) == VenueCosts(0.001, -0.0001, 0.0002)
    assert VenueCosts.from_bps(10.0) == VenueCosts(0.001, 0.001, 0.0)
    assert VenueCosts.from_bps(10.0, 0.0, 5.0) == VenueCosts(0.001, 0.0, 0.0005)


def test_the_kernel_spec_and_the_simulated_venue_fall_back_the_same_way() -> None:
    kernel = VenueKernel(True, 0.0, 0.002, False, 1000.0, None)
    assert kernel.maker_fee == 0.002
    assert VenueKernel(True, 0.0, 0.002, False, 1000.0, None, maker_fee_rate=0.0).maker_fee == 0.0
    venue = SimulatedVenue(SimulatedVenueParams(fee_bps=20.0, slippage_bps=3.0))
    assert venue.costs == VenueCosts(0.002, 0.002, 0.0003)
    assert venue.kernel_spec().costs == venue.costs
    rebate = SimulatedVenue(SimulatedVenueParams(fee_bps=20.0, maker_fee_bps=-1.0))
    assert rebate.kernel_spec().maker_fee == rebate.costs.maker == -0.0001


def test_a_router_venue_without_a_maker_fee_routes_resting_orders_at_its_taker_fee() -> None:
    params = RouterParams.model_validate(
        {
            "venues": [
                {"name": "a", "kind": "simulated", "fee_bps": 10.0},
                {"name": "b", "kind": "simulated", "fee_bps": 8.0, "maker_fee_bps": 1.0},
            ]
        }
    )
    venues = {
        e.name: SimulatedVenue(SimulatedVenueParams(fee_bps=e.fee_bps)) for e in params.venues
    }
    terms = Router(params, venues).venue_terms()
    assert [(t.taker_fee, t.maker_fee) for t in terms] == [(0.001, 0.001), (0.0008, 0.0001)]


@given(notional=POSITIVE, price=POSITIVE, fee=RATES)
def test_a_live_venue_sizes_as_the_venues_did_before_the_cost_object(
    notional: float, price: float, fee: float
) -> None:
    # the formula the four live venues wrote, bit for bit
    assert VenueCosts.of(fee).quantity_for(notional, price) == notional / (price * (1.0 + fee))


@given(notional=POSITIVE, price=POSITIVE, fee=RATES, slippage=RATES)
def test_the_simulated_venue_sizes_with_slippage_then_fee(
    notional: float, price: float, fee: float, slippage: float
) -> None:
    expected = notional / (price * (1.0 + slippage) * (1.0 + fee))
    assert VenueCosts.of(fee, None, slippage).quantity_for(notional, price) == expected


def test_a_buy_costs_its_notional_with_the_fee() -> None:
    quantity = VenueCosts.of(0.001).quantity_for(1000.0, 50.0)
    assert quantity * 50.0 * 1.001 == pytest.approx(1000.0, rel=1e-15)
