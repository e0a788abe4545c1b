"""`CoreState`: the arrays the step is given are the state's, even once one is replaced."""

from __future__ import annotations

import numpy as np

from tradeloom.core import layout as L
from tradeloom.core.state import CoreState

from .harness import bars, make_spec, rows


def test_an_array_replaced_between_calls_is_the_one_the_step_writes() -> None:
    spec = make_spec()
    inputs = bars([100.0, 101.0, 102.0, 101.0, 103.0, 104.0], p=[0.9, 0.1, 0.9, 0.1, 0.9, 0.1])
    whole = CoreState(spec)
    assert whole.run(inputs, len(inputs)) == L.NEED_DONE

    state = CoreState(spec)
    assert state.run(inputs, 2) == L.NEED_DONE
    moved = np.zeros_like(state.ev)  # as a restart or a hot reload hands over new arrays
    moved[: state.count] = state.rows()
    state.ev = moved
    assert state.run(inputs, len(inputs)) == L.NEED_DONE

    assert state.ev is moved
    np.testing.assert_array_equal(state.rows(), whole.rows())  # NaN equal to NaN
    kinds = [row.kind for row in rows(whole, bar=4)]
    assert "FILL" in kinds, kinds  # bars after the swap wrote rows
