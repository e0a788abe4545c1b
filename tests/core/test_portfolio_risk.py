"""Signal ranking and the portfolio limits (`tradeloom.core.portfolio`) through `run_bars`.

Each refusal against a bar worked out by hand, on a few symbols with shared cash; then
properties over random universes: the limits hold after the fills, a batch run is the
same run as one bar per call (and as one-row inputs, as live steps), and the ranking
does not depend on the order of the symbols except for ties.

Unless a test says otherwise: 10,000 cash, threshold 0.2 (p = 0.9 is a long with
confidence 0.8), 30% of equity per position, a spot long-only venue filling at the
close without costs, so an entry at 100 buys 30.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.core import codes
from tradeloom.core import layout as L
from tradeloom.core.columns import RowContext, decode
from tradeloom.core.kernels.specs import MarginKernel
from tradeloom.core.params import CoreSpec, PortfolioLimits
from tradeloom.core.portfolio import min_overlap
from tradeloom.core.state import BarInputs, CoreState

from .harness import HOUR, T0, For, Row, assert_rows, make_spec, rows, run

NAN = math.nan
REJECT, DECISION = "REJECT", "DECISION"
ACCEPTED, ENTRY, REVERSE = codes.ACCEPTED, codes.ENTRY, codes.REVERSE


def universe(close: list[list[float]], p: list[list[float]]) -> BarInputs:
    """Return bars of several symbols: ``close[bar][symbol]`` (NaN: no bar), ``p`` likewise."""
    c = np.asarray(close, np.float64)
    n, nsym = c.shape
    px = np.empty((6, n, nsym))
    for k in range(4):
        px[k] = c
    px[4] = np.where(np.isnan(c), NAN, 1e12)
    px[5] = np.asarray(p, np.float64)
    return BarInputs(
        px,
        np.zeros((2, n, nsym), np.uint8),
        np.full((n, nsym), NAN),
        T0 + HOUR * np.arange(n, dtype=np.int64),
        np.zeros(n, np.int64),
    )


def spec_with(portfolio: PortfolioLimits, **other: object) -> CoreSpec:
    return make_spec(fraction=0.3, portfolio=portfolio, **other)


def verdicts(state: CoreState, bar: int) -> list[Row]:
    """Return the bar's decisions and rejections, in the order they were written."""
    return [r for r in rows(state, bar) if r.kind in (DECISION, REJECT)]


def messages(state: CoreState, symbols: tuple[str, ...], groups: tuple[str, ...] = ()) -> list[str]:
    ctx = RowContext(
        times=lambda bar: pd.Timestamp(T0 + bar * HOUR, tz="UTC"),
        order_id=lambda seq: f"o{seq}",
        symbols=symbols,
        groups=groups,
    )
    return [
        f"{e.value.code}: {e.value.message}"
        for e in decode(state.rows(), ctx).events()
        if e.kind == "rejection"
    ]


FLAT3 = [[100.0, 100.0, 100.0]]


# --- ranking -----------------------------------------------------------------------------


def test_candidates_are_ranked_by_confidence_and_top_k_keeps_the_best() -> None:
    state = run(spec_with(PortfolioLimits(top_k=2)), universe(FLAT3, [[0.7, 0.9, 0.8]]), symbols=3)
    assert_rows(
        rows(state, 0),
        [
            ("SIGNAL", 0, 1, 0.4, 0.7),
            ("SIGNAL", 1, 1, 0.8, 0.9),
            ("SIGNAL", 2, 1, 0.6, 0.8),
            (DECISION, 1, ACCEPTED, ENTRY, 0.3),
            (DECISION, 2, ACCEPTED, ENTRY, 0.3),
            (REJECT, 0, codes.RANK, 3, 2),
            ("ORDER", 1, 1, 1, 30, ENTRY, 100, 0, NAN),
            ("ORDER", 2, 2, 1, 30, ENTRY, 100, 0, NAN),
            ("FILL", 1, 1, 1, 30, 100, 0, 0, 0, 30, 7000),
            ("FILL", 2, 2, 1, 30, 100, 0, 0, 0, 30, 4000),
        ],
    )
    assert messages(state, ("A", "B", "C")) == [
        "RANK: rank=3 by confidence among this bar's candidates, signal.top_k=2"
    ]


def test_equal_confidences_go_in_the_symbols_order() -> None:
    state = run(spec_with(PortfolioLimits(top_k=1)), universe(FLAT3, [[0.8, 0.8, 0.8]]), symbols=3)
    assert_rows(
        verdicts(state, 0),
        [
            (DECISION, 0, ACCEPTED, ENTRY, 0.3),
            (REJECT, 1, codes.RANK, 2, 1),
            (REJECT, 2, codes.RANK, 3, 1),
        ],
    )


def test_exits_never_compete() -> None:
    """A long on a long-only venue turned by a short signal exits; top_k does not refuse it."""
    inputs = universe(FLAT3 * 2, [[0.9, NAN, NAN], [0.1, NAN, 0.9]])
    state = run(spec_with(PortfolioLimits(top_k=1)), inputs, symbols=3)
    assert_rows(verdicts(state, 1), [(DECISION, 2, ACCEPTED, ENTRY, 0.3)])
    orders = [r for r in rows(state, 1) if r.kind == "ORDER"]
    assert [(r.symbol, r.values[3]) for r in orders] == [(0, codes.EXIT_SIGNAL), (2, ENTRY)]


# --- the limits, one by one -----------------------------------------------------------------


def test_max_open_positions_counts_held_and_accepted() -> None:
    inputs = universe(FLAT3 * 2, [[0.9, NAN, NAN], [NAN, 0.8, 0.9]])
    state = run(spec_with(PortfolioLimits(max_open_positions=2)), inputs, symbols=3)
    assert_rows(
        verdicts(state, 1),
        [
            (DECISION, 2, ACCEPTED, ENTRY, 0.3),
            (REJECT, 1, codes.MAX_OPEN_POSITIONS, 2, 2, For(ENTRY)),
        ],
    )
    assert messages(state, ("A", "B", "C")) == [
        "MAX_OPEN_POSITIONS: open_positions=2 (held and accepted this bar), limit=2"
    ]


def test_a_position_this_bar_exits_counts_as_gone() -> None:
    """Held one bar, symbol 0 leaves (max_holding_bars: 1): symbol 1 takes its place."""
    inputs = universe(FLAT3 * 2, [[0.9, NAN, NAN], [NAN, 0.9, NAN]])
    state = run(
        spec_with(PortfolioLimits(max_open_positions=1), max_holding_bars=1), inputs, symbols=3
    )
    assert_rows(verdicts(state, 1), [(DECISION, 1, ACCEPTED, ENTRY, 0.3)])
    orders = [(r.symbol, r.values[3]) for r in rows(state, 1) if r.kind == "ORDER"]
    assert orders == [(0, codes.EXIT_MAX_HOLDING), (1, ENTRY)]


def test_max_weight() -> None:
    state = run(
        spec_with(PortfolioLimits(max_weight=0.25)), universe(FLAT3, [[0.9, NAN, NAN]]), symbols=3
    )
    assert_rows(verdicts(state, 0), [(REJECT, 0, codes.MAX_WEIGHT, 0.3, 0.25)])
    assert messages(state, ("A", "B", "C")) == ["MAX_WEIGHT: weight=0.3000 of equity, limit=0.25"]


def test_max_gross_exposure_reads_held_positions_at_their_marks() -> None:
    """Bar 1: 30 of A marked at 150 is 4500 of 7000 + 4500 = 11500, a weight of 0.3913;
    B's 0.3 more makes 0.6913 > 0.65."""
    inputs = universe(
        [[100.0, 100.0, 100.0], [150.0, 100.0, 100.0]], [[0.9, NAN, NAN], [NAN, 0.9, NAN]]
    )
    state = run(spec_with(PortfolioLimits(max_gross_exposure=0.65)), inputs, symbols=3)
    assert_rows(
        verdicts(state, 1),
        [(REJECT, 1, codes.MAX_GROSS_EXPOSURE, 4500 / 11500 + 0.3, 0.65)],
    )


def test_max_net_exposure_lets_a_short_through_after_a_refused_long() -> None:
    """Longs A (0.8), C (0.7) and a short B (0.5): net 0.3, then 0.6 > 0.5, then 0.0."""
    inputs = universe(FLAT3, [[0.9, 0.25, 0.85]])
    state = run(
        spec_with(PortfolioLimits(max_net_exposure=0.5), allow_short=True), inputs, symbols=3
    )
    assert_rows(
        verdicts(state, 0),
        [
            (DECISION, 0, ACCEPTED, ENTRY, 0.3),
            (REJECT, 2, codes.MAX_NET_EXPOSURE, 0.6, 0.5),
            (DECISION, 1, ACCEPTED, ENTRY, -0.3),
        ],
    )


def test_a_leveraged_weight_is_its_notional_over_equity() -> None:
    spec = spec_with(
        PortfolioLimits(max_gross_exposure=0.5),
        allow_short=True,
        margin=MarginKernel(0.5, 0.25, 2.0, 0.0),
    )
    state = run(spec, universe(FLAT3, [[0.9, NAN, NAN]]), symbols=3)
    assert_rows(verdicts(state, 0), [(REJECT, 0, codes.MAX_GROSS_EXPOSURE, 0.6, 0.5)])


def test_group_exposure() -> None:
    portfolio = PortfolioLimits(max_group_exposure=0.5, groups=(0, 0, -1))
    state = run(spec_with(portfolio), universe(FLAT3, [[0.9, 0.8, 0.7]]), symbols=3)
    assert_rows(
        verdicts(state, 0),
        [
            (DECISION, 0, ACCEPTED, ENTRY, 0.3),
            (REJECT, 1, codes.GROUP_EXPOSURE, 0, 0.6, 0.5),
            (DECISION, 2, ACCEPTED, ENTRY, 0.3),
        ],
    )
    assert messages(state, ("BTC", "ETH", "SOL"), ("majors",)) == [
        "GROUP_EXPOSURE: group majors: gross_exposure_after=0.6000 of equity, limit=0.5"
    ]


# --- correlation ------------------------------------------------------------------------------

A = [100.0, 101.0, 99.0, 102.0, 100.0, 103.0]
B = [x / 2 for x in A]  # the same returns
C = [100.0, 99.0, 101.0, 100.0, 102.0, 101.0]  # the opposite moves
ENTER_A_THEN_B_AND_C = [[0.9, NAN, NAN]] + [[NAN] * 3] * 4 + [[NAN, 0.9, 0.9]]


def _returns(close: list[float]) -> np.ndarray:
    c = np.asarray(close)
    return c[1:] / c[:-1] - 1.0


def _corr(x: list[float], y: list[float], window: int) -> float:
    return float(np.corrcoef(_returns(x)[-window:], _returns(y)[-window:])[0, 1])


def test_a_candidate_correlated_with_a_held_position_is_refused() -> None:
    """Window 4 at bar 5: the returns of bars 2 .. 5. B moves as A: refused; C moves
    against A (correlation about -0.98, a long beside a long): accepted."""
    inputs = universe(np.column_stack([A, B, C]).tolist(), ENTER_A_THEN_B_AND_C)
    portfolio = PortfolioLimits(max_correlation=0.8, correlation_window=4)
    state = run(spec_with(portfolio), inputs, symbols=3)
    rho_ab = _corr(A, B, 4)
    assert rho_ab == pytest.approx(1.0) and _corr(A, C, 4) < -0.9
    assert_rows(
        verdicts(state, 5),
        [(REJECT, 1, codes.CORRELATION, 0, rho_ab, 0.8, 4), (DECISION, 2, ACCEPTED, ENTRY, 0.3)],
    )
    assert messages(state, ("BTC", "ETH", "SOL")) == [
        "CORRELATION: correlation=1.0000 with BTC (signed by the two directions), "
        "limit=0.8, window=4 returns"
    ]


def test_a_short_against_a_long_on_correlated_markets_is_a_hedge() -> None:
    """The same B, short: its correlation with the long A, signed, is -1."""
    p = [row[:] for row in ENTER_A_THEN_B_AND_C]
    p[5] = [NAN, 0.1, NAN]
    inputs = universe(np.column_stack([A, B, C]).tolist(), p)
    portfolio = PortfolioLimits(max_correlation=0.8, correlation_window=4)
    state = run(spec_with(portfolio, allow_short=True), inputs, symbols=3)
    assert_rows(verdicts(state, 5), [(DECISION, 1, ACCEPTED, ENTRY, -0.3)])


def test_a_short_against_a_long_on_opposite_markets_counts() -> None:
    """C, short beside the long A: C moves against A, so the pair is the same bet twice."""
    p = [row[:] for row in ENTER_A_THEN_B_AND_C]
    p[5] = [NAN, NAN, 0.1]
    inputs = universe(np.column_stack([A, B, C]).tolist(), p)
    portfolio = PortfolioLimits(max_correlation=0.8, correlation_window=4)
    state = run(spec_with(portfolio, allow_short=True), inputs, symbols=3)
    assert_rows(verdicts(state, 5), [(REJECT, 2, codes.CORRELATION, 0, -_corr(A, C, 4), 0.8, 4)])


def test_a_candidate_accepted_earlier_this_bar_counts() -> None:
    """Nothing held: A (0.8) is accepted first, then B (0.6), which moves as A, is refused."""
    p = [[NAN] * 3] * 5 + [[0.9, 0.8, NAN]]
    inputs = universe(np.column_stack([A, B, C]).tolist(), p)
    portfolio = PortfolioLimits(max_correlation=0.8, correlation_window=4)
    state = run(spec_with(portfolio), inputs, symbols=3)
    assert_rows(
        verdicts(state, 5),
        [
            (DECISION, 0, ACCEPTED, ENTRY, 0.3),
            (REJECT, 1, codes.CORRELATION, 0, _corr(A, B, 4), 0.8, 4),
        ],
    )


def test_correlation_uses_the_bars_both_have_and_passes_without_enough() -> None:
    """B lacks bar 3: it has no return at bars 3 and 4, so A and B share bars 2 and 5
    only, fewer than max(3, 4 / 2): not computed, the pair passes."""
    assert min_overlap(4) == 3
    close = np.column_stack([A, B, C])
    close[3, 1] = NAN
    inputs = universe(close.tolist(), ENTER_A_THEN_B_AND_C)
    portfolio = PortfolioLimits(max_correlation=0.8, correlation_window=4)
    state = run(spec_with(portfolio), inputs, symbols=3)
    assert_rows(
        verdicts(state, 5),
        [(DECISION, 1, ACCEPTED, ENTRY, 0.3), (DECISION, 2, ACCEPTED, ENTRY, 0.3)],
    )
    # with a window of 5 the bars both have (1, 2, 5) are enough: refused again
    state = run(
        spec_with(PortfolioLimits(max_correlation=0.8, correlation_window=5)), inputs, symbols=3
    )
    assert min_overlap(5) == 3
    assert [r.values[0] for r in verdicts(state, 5)] == [codes.CORRELATION, ACCEPTED]


# --- the drawdown halt over N symbols, and one symbol -------------------------------------------


def test_the_drawdown_halt_closes_every_symbols_position() -> None:
    """30 of each at 100, 1000 cash left; at 80 the equity is 1000 + 90 x 80 = 8200, a
    drawdown of 0.18 >= 0.1: one halt, every position closed; every signal, in the side
    held, is ignored while the halt's exits close it."""
    inputs = universe([[100.0] * 3, [80.0] * 3], [[0.9, 0.9, 0.9], [0.9, 0.9, 0.9]])
    spec = spec_with(PortfolioLimits(max_open_positions=3), drawdown_limits=(0.1,))
    state = run(spec, inputs, symbols=3)
    bar = rows(state, 1)
    assert_rows(
        [r for r in bar if r.kind == "HALT"], [("HALT", -1, codes.MAX_DRAWDOWN_HALT, 0.18, 0.1)]
    )
    assert [(r.symbol, r.values[3]) for r in bar if r.kind == "ORDER"] == [
        (s, codes.EXIT_HALT) for s in range(3)
    ]
    assert [r.values[:2] for r in verdicts(state, 1)] == [(codes.IGNORED, codes.EXIT_HALT)] * 3
    assert np.all(state.sym[:, L.S_QTY] == 0.0)


def test_one_symbol_ranks_first_and_meets_the_limits() -> None:
    inputs = universe([[100.0], [100.0], [100.0]], [[0.9], [0.1], [0.9]])
    spec = spec_with(PortfolioLimits(top_k=1, max_open_positions=1), allow_short=True)
    state = run(spec, inputs, symbols=1)
    assert_rows(
        [r for b in range(3) for r in verdicts(state, b)],
        [
            (DECISION, 0, ACCEPTED, ENTRY, 0.3),
            (DECISION, 0, ACCEPTED, REVERSE, -0.3),  # a reversal opens no new position
            (DECISION, 0, ACCEPTED, REVERSE, 0.3),
        ],
    )
    state = run(spec_with(PortfolioLimits(max_weight=0.2)), inputs, symbols=1)
    assert [r.values[:3] for r in verdicts(state, 0)] == [(codes.MAX_WEIGHT, 0.3, 0.2)]


def test_no_portfolio_key_leaves_the_ladder_as_it_was() -> None:
    spec = make_spec()
    assert spec.vector()[L.P_PORTFOLIO] == 0.0 and spec.vector()[L.P_QUIET] == 1.0
    assert CoreState(spec, 2).port.shape == (L.PORT_ROWS, 2)
    with_ring = spec_with(PortfolioLimits(max_correlation=0.5, correlation_window=7))
    assert with_ring.vector()[L.P_QUIET] == 0.0  # the ring sees every close
    assert CoreState(with_ring, 2).port.shape == (L.PORT_ROWS + 7, 2)


# --- properties -------------------------------------------------------------------------------


@st.composite
def universes(draw: st.DrawFn, *, distinct: bool = False) -> tuple[CoreSpec, BarInputs]:
    nsym = draw(st.integers(1, 5))
    n = draw(st.integers(2, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    common = rng.normal(0.0, 0.02, (n, 1))
    close = 100.0 * np.exp(np.cumsum(common + rng.normal(0.0, 0.02, (n, nsym)), axis=0))
    if not distinct:
        close[rng.random((n, nsym)) < 0.1] = NAN  # bars a symbol lacks
    if distinct:  # distinct confidences at every bar: no ties
        conf = np.array([rng.permutation(np.linspace(0.2, 0.9, nsym)) for _ in range(n)])
        p = 0.5 + np.where(rng.random((n, nsym)) < 0.5, 1, -1) * conf / 2
        p[rng.random((n, nsym)) < 0.4] = NAN
    else:
        p = np.where(
            rng.random((n, nsym)) < 0.5, NAN, rng.choice([0.05, 0.2, 0.8, 0.9, 0.95], (n, nsym))
        )
    inputs = universe(close.tolist(), p.tolist())
    maybe = lambda s: draw(st.one_of(st.none(), s))  # noqa: E731
    window = draw(st.integers(3, 8))
    portfolio = PortfolioLimits(
        top_k=maybe(st.integers(1, 3)),
        max_open_positions=maybe(st.integers(1, 3)),
        max_gross_exposure=maybe(st.sampled_from([0.4, 0.7, 1.0])),
        max_net_exposure=maybe(st.sampled_from([0.3, 0.6])),
        max_weight=maybe(st.sampled_from([0.25, 0.5])),
        max_correlation=None if distinct else maybe(st.sampled_from([0.3, 0.8])),
        correlation_window=window,
    )
    if not distinct and draw(st.booleans()):
        portfolio = replace(
            portfolio,
            max_group_exposure=0.5,
            groups=tuple(int(g) for g in rng.integers(-1, 2, nsym)),
        )
    allow_short = distinct or draw(st.booleans())
    spec = make_spec(
        fraction=draw(st.sampled_from([0.2, 0.35, 0.5])),
        fee=0.001,
        allow_short=allow_short,
        portfolio=portfolio,
    )
    return spec, inputs


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(strategy=universes())
def test_the_limits_hold_after_every_bars_fills(strategy: tuple[CoreSpec, BarInputs]) -> None:
    spec, inputs = strategy
    nsym = inputs.px.shape[2]
    portfolio = spec.portfolio
    state = CoreState(replace(spec, yield_bars=True), nsym)
    close = inputs.px[3]
    mark = np.full(nsym, NAN)
    for t in range(len(inputs)):
        before = state.count
        state.run(inputs, t + 1)
        held = np.abs(state.sym[:, L.S_QTY]) > 0.0
        if portfolio.max_open_positions is not None:
            assert held.sum() <= portfolio.max_open_positions
        mark = np.where(np.isnan(close[t]), mark, close[t])
        equity = state.acct[L.A_CASH] + np.nansum(state.sym[:, L.S_QTY] * mark)
        bar_rows = state.rows(before)
        opened = any(r[0] == L.EV_ORDER and r[3 + 3] in (ENTRY, REVERSE) for r in bar_rows)
        if opened and equity > 0.0:
            weights = state.sym[:, L.S_QTY] * np.nan_to_num(mark) / equity
            slack = 1.01  # the fees of the bar's fills
            if portfolio.max_gross_exposure is not None:
                assert np.abs(weights).sum() <= portfolio.max_gross_exposure * slack + 1e-12
            if portfolio.max_weight is not None:
                entered = [
                    int(r[2]) for r in bar_rows if r[0] == L.EV_ORDER and r[6] in (ENTRY, REVERSE)
                ]
                assert all(abs(weights[s]) <= portfolio.max_weight * slack for s in entered)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))


def _one_row(inputs: BarInputs, t: int) -> BarInputs:
    return BarInputs(
        inputs.px[:, t : t + 1].copy(),
        inputs.flags[:, t : t + 1].copy(),
        inputs.score[t : t + 1].copy(),
        inputs.time_ns[t : t + 1].copy(),
        inputs.trainings[t : t + 1].copy(),
        base=t,
    )


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(strategy=universes())
def test_a_batch_run_is_the_same_run_bar_by_bar(strategy: tuple[CoreSpec, BarInputs]) -> None:
    """One call, one call per bar (P_YIELD_BARS), and one-row inputs per bar as live steps."""
    spec, inputs = strategy
    nsym = inputs.px.shape[2]
    whole = run(spec, inputs, symbols=nsym)
    stepped = CoreState(replace(spec, yield_bars=True), nsym)
    live = CoreState(replace(spec, yield_bars=True), nsym)
    for t in range(len(inputs)):
        assert stepped.run(inputs, t + 1) == L.NEED_BAR
        assert live.run(_one_row(inputs, t), t + 1) == L.NEED_BAR
    for state in (stepped, live):
        assert _same(state.rows(), whole.rows())
        for name in ("acct", "sym", "port", "sent"):
            if name == "port":  # the rows of the checks' scratch aside: the returns ring
                assert _same(state.port[L.PORT_ROWS :], whole.port[L.PORT_ROWS :])
            else:
                assert _same(getattr(state, name), getattr(whole, name)), name


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(strategy=universes(distinct=True), data=st.data())
def test_the_ranking_does_not_depend_on_the_order_of_the_symbols(
    strategy: tuple[CoreSpec, BarInputs], data: st.DataObject
) -> None:
    """Distinct confidences, a margin account (no symbol's fill waits for another's cash)."""
    spec, inputs = strategy
    nsym = inputs.px.shape[2]
    perm = np.asarray(data.draw(st.permutations(range(nsym))))
    shuffled = BarInputs(
        inputs.px[:, :, perm].copy(),
        inputs.flags[:, :, perm].copy(),
        inputs.score[:, perm].copy(),
        inputs.time_ns,
        inputs.trainings,
    )
    a = run(spec, inputs, symbols=nsym)
    b = run(spec, shuffled, symbols=nsym)

    def outcome(state: CoreState, symbol_of: np.ndarray) -> list[tuple[int, int, str, float]]:
        return sorted(
            (r.bar, int(symbol_of[r.symbol]), r.kind, r.values[0])
            for r in rows(state)
            if r.kind in (DECISION, REJECT)
        )

    assert outcome(a, np.arange(nsym)) == outcome(b, perm)
    np.testing.assert_allclose(b.sym[:, L.S_QTY], a.sym[perm, L.S_QTY], rtol=1e-9, atol=1e-9)
