"""Parity's knock-on rule as a running state (`tradeloom.diagnostics.parity_knock_on`)
answers as the scan of every earlier difference it replaced, on any sequence of
differences found and questions asked (issue 69: a run with many differences)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.diagnostics.parity_knock_on import ExplainedSoFar

FIELDS = ["fill", "fill.price", "fill.quantity", "fill.fee", "signal", "order", "funding"]
FIELDS += ["allocation", "bar.close", "equity", "probability"]
CAUSES = ["unexplained", "knock_on", "fee", "slippage", "late_bars", "data_revised"]


def _scanned(differences: list[dict[str, Any]], bar: int, decided: bool) -> bool:
    """The rule as `_Comparison.explain` wrote it before: every earlier difference read."""
    return any(
        d["cause"] != "unexplained"
        and (d["bar"] < bar or (decided and d["bar"] == bar and d["field"].startswith("fill")))
        for d in differences
    )


_found = st.tuples(
    st.just("found"), st.integers(0, 40), st.sampled_from(FIELDS), st.sampled_from(CAUSES)
)
_asked = st.tuples(st.just("asked"), st.integers(0, 40), st.booleans())


@settings(max_examples=examples(200))
@given(st.lists(st.one_of(_found, _asked), max_size=80))
def test_the_running_state_answers_as_the_scan(steps: list[tuple[Any, ...]]) -> None:
    # bars come in any order: parity notes fills, then funding, then signals and orders
    differences: list[dict[str, Any]] = []
    state = ExplainedSoFar()
    for step in steps:
        if step[0] == "found":
            _, bar, field, cause = step
            differences.append({"bar": bar, "field": field, "cause": cause})
            state.add(bar, field, cause)
        else:
            _, bar, decided = step
            assert state.before(bar, decided=decided) == _scanned(differences, bar, decided)


def test_a_fill_explained_at_a_bar_comes_before_that_bar_s_decision_only() -> None:
    state = ExplainedSoFar()
    state.add(5, "signal", "unexplained")
    assert not state.before(9) and not state.before(9, decided=True)
    state.add(5, "fill.fee", "fee")
    assert not state.before(5) and state.before(5, decided=True) and state.before(6)
    state.add(2, "order", "knock_on")
    assert state.before(3) and not state.before(2) and not state.before(2, decided=True)
