"""`LiveBars` extends one market's snapshot arrays by the new bars: the whole curve's rows.

A paper or live tick hands its files' writer the live bars' times, closes and
position/cash/equity rows. They are extended bar by bar, and the rows a fill booked
late moved are computed again; each snapshot must equal the curve computed over the
whole run (`tradeloom.core.curves.equity_curve`), bit for bit, and the arrays a
snapshot handed over must never change afterwards (the writer's thread reads them).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.core.curves import equity_curve
from tradeloom.live.outputs.refresh import LiveBars

INITIAL = 1000.0


class _Engine:
    """Fills booked as marks ``(bar, position, cash, symbol)``, in order."""

    def __init__(self) -> None:
        self.marks: list[list[float]] = []

    def fill_marks(self) -> npt.NDArray[np.float64]:
        return np.array(self.marks, dtype=np.float64).reshape(-1, 4)

    def equity_curve(
        self, close: npt.NDArray[np.float64], start: int = 0
    ) -> npt.NDArray[np.float64]:
        return equity_curve(self.fill_marks(), close, INITIAL, start)


class _History:
    def __init__(self, close: npt.NDArray[np.float64]) -> None:
        self._close = close.reshape(-1, 1)
        self._ns = np.arange(len(close), dtype=np.int64) * 3_600_000_000_000

    def times_ns(self, end: int) -> npt.NDArray[np.int64]:
        return self._ns[:end]

    def closes(self, end: int) -> npt.NDArray[np.float64]:
        return self._close[:end]


# each tick: how many bars it adds (0: a tick that ran none), and fills booked then,
# each at a bar counted back from the newest (0: the newest; more: booked late)
_TICKS = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.lists(st.tuples(st.integers(0, 4), st.floats(-5, 5), st.floats(-1e4, 1e4)), max_size=2),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=examples(60), deadline=None)
@given(ticks=_TICKS, first=st.integers(0, 5), seed=st.integers(0, 2**16))
def test_each_snapshot_is_the_whole_runs_curve_and_no_handed_over_row_changes(
    ticks: list[tuple[int, list[tuple[int, float, float]]]], first: int, seed: int
) -> None:
    total = first + sum(added for added, _ in ticks) + 1
    close = 100 + np.random.default_rng(seed).normal(0, 1, total).cumsum()
    history = _History(close)
    engine = _Engine()
    bars = LiveBars()
    n = first + 1
    handed: list[tuple[npt.NDArray[np.float64], ...]] = []
    for added, fills in ticks:
        n += added
        for back, position, cash in fills:
            bar = max(0, n - 1 - back)
            if engine.marks and bar < engine.marks[-1][0]:
                bar = int(engine.marks[-1][0])  # marks are booked in bar order
            engine.marks.append([float(bar), position, cash, 0.0])
        times, closes, curve = bars.extend(engine, history, first, n)  # type: ignore[arg-type]
        whole = engine.equity_curve(close[:n])
        np.testing.assert_array_equal(curve, whole[first:])
        np.testing.assert_array_equal(closes, close[first:n])
        np.testing.assert_array_equal(times, history.times_ns(n)[first:])
        handed.append((times, closes, curve, times.copy(), closes.copy(), curve.copy()))
    for times, closes, curve, *copies in handed:
        for view, copy in zip((times, closes, curve), copies, strict=True):
            np.testing.assert_array_equal(view, copy)


def test_a_new_engine_starts_the_arrays_again() -> None:
    close = np.array([10.0, 11.0, 12.0, 13.0])
    history = _History(close)
    old, new = _Engine(), _Engine()
    old.marks.append([1.0, 2.0, 980.0, 0.0])
    bars = LiveBars()
    _, _, curve = bars.extend(old, history, 0, 3)  # type: ignore[arg-type]
    assert curve[:, 2].tolist() == [1000.0, 980.0 + 2 * 11.0, 980.0 + 2 * 12.0]
    _, _, curve = bars.extend(new, history, 0, 4)  # type: ignore[arg-type]  # rebuilt: no fill
    assert curve[:, 2].tolist() == [1000.0] * 4


def test_arrays_that_grow_keep_the_rows_handed_over() -> None:
    close = 50 + np.arange(3000) * 0.01
    history = _History(close)
    engine = _Engine()
    bars = LiveBars()
    handed = []
    for n in (700, 1400, 2100, 2999):
        engine.marks.append([float(n - 3), 1.5, 900.0, 0.0])  # booked late: 3 bars back
        *_, curve = bars.extend(engine, history, 0, n)  # type: ignore[arg-type]
        np.testing.assert_array_equal(curve, engine.equity_curve(close[:n]))
        handed.append((curve, curve.copy()))
    for curve, copy in handed:
        np.testing.assert_array_equal(curve, copy)


@settings(max_examples=examples(300), deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 30), st.floats(-5, 5), st.floats(-1e4, 1e4)), max_size=12),
    st.lists(st.floats(1, 1e5), min_size=1, max_size=40),
)
def test_one_bars_row_is_the_whole_curves_row_bit_for_bit(
    fills: list[tuple[int, float, float]], closes: list[float]
) -> None:
    """A tick's one new bar takes a path of its own in `equity_curve` (no arrays)."""
    marks = np.array(
        [[bar, position, cash, 0.0] for bar, position, cash in sorted(fills, key=lambda f: f[0])],
        dtype=np.float64,
    ).reshape(-1, 4)
    close = np.array(closes)
    whole = equity_curve(marks, close, INITIAL)
    for start in range(len(close)):
        one = equity_curve(marks, close[start : start + 1], INITIAL, start)
        assert one.tobytes() == whole[start : start + 1].tobytes()
