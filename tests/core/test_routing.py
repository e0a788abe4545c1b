"""The routing policy: cost after fees, depth, balances, lots, health, and its properties."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.core.routing import Candidate, RouteOrder, route

BUY = RouteOrder(1, 1.0, 100.0)


def venue(name: str, **keys: object) -> Candidate:
    defaults: dict[str, object] = {"taker_fee": 0.001, "maker_fee": 0.0005, "last_price": 100.0}
    return Candidate(name, **{**defaults, **keys})  # type: ignore[arg-type]


def test_a_lower_price_with_a_higher_fee_loses_to_the_cheaper_after_fees() -> None:
    # a: 100.00 * 1.003 = 100.30; b: 100.05 * 1.001 = 100.15
    a = venue("a", taker_fee=0.003, asks=((100.0, 5.0),))
    b = venue("b", taker_fee=0.001, asks=((100.05, 5.0),))
    decided = route(BUY, [a, b])
    assert [(x.venue, x.quantity) for x in decided.allocations] == [("b", 1.0)]
    costs = {q.venue: q.cost_bps for q in decided.quotes}
    assert costs["a"] == pytest.approx(30.0)
    assert costs["b"] == pytest.approx((100.05 * 1.001 / 100 - 1) * 1e4)


def test_a_sell_goes_where_it_receives_most_after_fees() -> None:
    a = venue("a", taker_fee=0.0, bids=((99.9, 5.0),))
    b = venue("b", taker_fee=0.002, bids=((100.0, 5.0),))
    decided = route(RouteOrder(-1, 2.0, 100.0), [a, b])
    assert [x.venue for x in decided.allocations] == ["a"]


def test_short_depth_at_the_limit_splits_the_order_best_first() -> None:
    a = venue("a", asks=((100.0, 0.4), (100.2, 1.0)))
    b = venue("b", asks=((100.1, 3.0),))
    decided = route(RouteOrder(1, 1.0, 100.0, limit_price=100.1), [a, b])
    # a takes its 0.4 within the limit; the rest goes to b, which rests nothing
    assert [(x.venue, x.quantity) for x in decided.allocations] == [
        ("a", 0.4),
        ("b", pytest.approx(0.6)),
    ]
    assert decided.unfilled == pytest.approx(0.0)


def test_a_market_order_larger_than_every_book_leaves_the_rest_unfilled() -> None:
    a = venue("a", asks=((100.0, 0.4),))
    b = venue("b", asks=((100.1, 0.5),))
    decided = route(RouteOrder(1, 2.0, 100.0), [a, b])
    assert [(x.venue, x.quantity) for x in decided.allocations] == [("a", 0.4), ("b", 0.5)]
    assert decided.unfilled == pytest.approx(1.1)


def test_a_venue_without_balance_or_marked_down_is_skipped_with_why() -> None:
    a = venue("a", taker_fee=0.0, free_quote=0.0)
    b = venue("b", taker_fee=0.0, down=True)
    c = venue("c", taker_fee=0.005)
    decided = route(BUY, [a, b, c])
    assert [x.venue for x in decided.allocations] == ["c"]
    assert [q.excluded for q in decided.quotes] == ["no free quote", "marked down", ""]
    sell = route(RouteOrder(-1, 1.0, 100.0), [venue("a", free_base=0.0), c])
    assert sell.quotes[0].excluded == "no free base"


def test_the_balance_bounds_a_venue_and_the_rest_moves_on() -> None:
    a = venue("a", taker_fee=0.0, free_quote=50.0)
    b = venue("b", taker_fee=0.001)
    decided = route(BUY, [a, b])
    assert [(x.venue, x.quantity) for x in decided.allocations] == [
        ("a", pytest.approx(0.5)),
        ("b", pytest.approx(0.5)),
    ]


def test_lots_round_down_and_no_dust_child_is_sent() -> None:
    a = venue("a", taker_fee=0.0, asks=((100.0, 0.95),), lot=0.1)
    b = venue("b", taker_fee=0.001, lot=0.01, min_notional=10.0)
    decided = route(BUY, [a, b])
    # a takes 0.9 (its lot); the 0.1 left is worth 10: b takes it
    assert [(x.venue, round(x.quantity, 9)) for x in decided.allocations] == [
        ("a", 0.9),
        ("b", 0.1),
    ]
    tiny = route(RouteOrder(1, 0.05, 100.0), [venue("a", min_notional=10.0)])
    assert tiny.allocations == ()
    assert tiny.quotes[0].excluded == "below the minimum order"


def test_a_limit_order_no_level_reaches_rests_at_the_lowest_maker_fee() -> None:
    a = venue("a", maker_fee=0.001, asks=((101.0, 5.0),))
    b = venue("b", maker_fee=-0.0001, asks=((101.0, 5.0),))
    decided = route(RouteOrder(1, 1.0, 100.0, limit_price=100.0), [a, b])
    assert [(x.venue, x.quantity, x.expected_price) for x in decided.allocations] == [
        ("b", 1.0, 100.0)
    ]
    assert decided.allocations[0].cost_bps == pytest.approx(-1.0)


def test_equal_costs_go_to_the_first_venue_in_file_order() -> None:
    decided = route(BUY, [venue("x"), venue("y")])
    assert [x.venue for x in decided.allocations] == ["x"]
    decided = route(BUY, [venue("y"), venue("x")])
    assert [x.venue for x in decided.allocations] == ["y"]


def test_an_impossible_order_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^quantity must be > 0, was 0.0$"):
        route(RouteOrder(1, 0.0, 100.0), [venue("a")])
    with pytest.raises(ValueError, match=r"^side must be \+1 or -1, was 0$"):
        route(RouteOrder(0, 1.0, 100.0), [venue("a")])


# --- properties ------------------------------------------------------------------------

_prices = st.floats(90.0, 110.0, allow_nan=False)
_sizes = st.floats(0.01, 5.0, allow_nan=False)


@st.composite
def candidates(draw: st.DrawFn, side: int) -> Candidate:
    start = draw(_prices)
    gaps = draw(st.lists(st.floats(0.0, 1.0), min_size=0, max_size=6))
    levels = []
    price = start
    for gap in gaps:
        levels.append((round(price, 2), draw(_sizes)))
        price += gap * side
    book = tuple(levels)
    return Candidate(
        "v",
        taker_fee=draw(st.floats(0.0, 0.005)),
        maker_fee=draw(st.floats(-0.0001, 0.003)),
        last_price=start,
        slippage=draw(st.floats(0.0, 0.002)),
        asks=book if side > 0 else (),
        bids=book if side < 0 else (),
        free_quote=draw(st.one_of(st.just(math.inf), st.floats(0.0, 2_000.0))),
        free_base=draw(st.one_of(st.just(math.inf), st.floats(0.0, 20.0))),
        lot=draw(st.sampled_from([0.0, 0.001, 0.01])),
        down=draw(st.booleans()),
    )


@st.composite
def problems(draw: st.DrawFn) -> tuple[RouteOrder, list[Candidate]]:
    side = draw(st.sampled_from([1, -1]))
    limit = draw(st.one_of(st.just(math.nan), _prices))
    order = RouteOrder(side, draw(st.floats(0.01, 20.0)), 100.0, limit_price=limit)
    drawn = draw(st.lists(candidates(side), min_size=1, max_size=5))
    return order, [replace(c, name=f"v{i}") for i, c in enumerate(drawn)]


def _within(quantity: float, bound: float) -> bool:
    return quantity <= bound * (1 + 1e-9) + 1e-12


@settings(max_examples=examples(150), deadline=None)
@given(problems())
def test_allocations_sum_to_the_order_or_what_is_fillable(
    problem: tuple[RouteOrder, list[Candidate]],
) -> None:
    order, venues = problem
    decided = route(order, venues)
    total = sum(x.quantity for x in decided.allocations)
    assert total + decided.unfilled == pytest.approx(order.quantity, rel=1e-9)
    assert all(x.quantity > 0 for x in decided.allocations)
    if not order.is_limit:
        assert _within(total, sum(q.capacity for q in decided.quotes))
    assert len({x.venue for x in decided.allocations}) == len(decided.allocations)


@settings(max_examples=examples(150), deadline=None)
@given(problems())
def test_no_venue_gets_more_than_its_balance_or_depth(
    problem: tuple[RouteOrder, list[Candidate]],
) -> None:
    order, venues = problem
    decided = route(order, venues)
    for allocation in decided.allocations:
        candidate, quote = next(
            (c, q)
            for c, q in zip(venues, decided.quotes, strict=True)
            if c.name == allocation.venue
        )
        assert not candidate.down
        assert not quote.excluded
        if not order.is_limit:
            assert _within(allocation.quantity, quote.capacity)
        if order.side < 0:
            assert _within(allocation.quantity, candidate.free_base)
        else:
            assert _within(allocation.quantity * allocation.expected_price, candidate.free_quote)
        levels = candidate.asks if order.side > 0 else candidate.bids
        if levels and not order.is_limit:
            assert _within(allocation.quantity, sum(q for _, q in levels))


@example(  # two venues alike but for the lot: their costs differ in the last bits
    (
        RouteOrder(1, 5.28125, 100.0, limit_price=98.0625),
        [
            Candidate("v0", 0.0, 0.0, 99.0, 0.0, (), (), math.inf, math.inf, 0.0),
            Candidate("v1", 0.0, 0.0, 99.0, 0.0, (), (), math.inf, math.inf, 0.01),
        ],
    )
)
@settings(max_examples=examples(150), deadline=None)
@given(problems())
def test_the_first_venue_costs_no_more_than_any_other_eligible_one(
    problem: tuple[RouteOrder, list[Candidate]],
) -> None:
    order, venues = problem
    decided = route(order, venues)
    if not decided.allocations:
        return
    chosen = next(q for q in decided.quotes if q.venue == decided.allocations[0].venue)
    # a venue that can take now is preferred to resting; among those alike, the cheapest
    eligible = [q for q in decided.quotes if not q.excluded and q.rests == chosen.rests]
    # venues alike quote costs that differ by float noise (a lot-rounded quantity's
    # notional divided back by it): a hair of 1e-9 relative is a tie, not a cost
    assert all(chosen.cost_bps <= q.cost_bps + 1e-9 * max(1.0, abs(q.cost_bps)) for q in eligible)
    if chosen.rests:
        assert all(q.rests for q in decided.quotes if not q.excluded)
