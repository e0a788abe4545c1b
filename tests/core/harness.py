"""Running the compiled bar on crafted bars and reading its event rows back.

The tests of `tradeloom.core` build a `CoreSpec`, a few bars (`bars`), run them
through `tradeloom.core.bar.run_bars` (`run`) and compare the rows a bar wrote with
the rows worked out by hand (`assert_rows`). Rows are read raw, with the slots of
`tradeloom.core.layout`: ``(KIND, symbol, value, value, ...)``; a rejection's purpose
(the order reason of what was refused, its row's last value) is ``For(reason)`` after
its values, compared where the expected row gives it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradeloom.core import layout as L
from tradeloom.core.columns import RowContext, RowEvent, decode
from tradeloom.core.kernels.specs import MarginKernel, SizingKernel, ThresholdKernel, VenueKernel
from tradeloom.core.params import CoreSpec, Limits
from tradeloom.core.records import REJECT
from tradeloom.core.state import BarInputs, CoreState

__all__ = [
    "HOUR",
    "KIND",
    "T0",
    "For",
    "Row",
    "assert_rows",
    "bars",
    "decoded",
    "make_spec",
    "rows",
    "run",
]

HOUR = 3_600_000_000_000
"""One bar: the risk clock reads a bar at its open time plus this."""
T0 = pd.Timestamp("2024-03-01T00:00Z").value
"""Open time of bar 0 (ns)."""

KIND = {
    L.EV_TRAINING: "TRAINING",
    L.EV_SIGNAL: "SIGNAL",
    L.EV_DECISION: "DECISION",
    L.EV_REJECT: "REJECT",
    L.EV_HALT: "HALT",
    L.EV_ORDER: "ORDER",
    L.EV_FILL: "FILL",
    L.EV_CANCEL: "CANCEL",
    L.EV_TRADE: "TRADE",
    L.EV_REGIME: "REGIME",
    L.EV_STATE: "STATE",
    L.EV_LIQUIDATION: "LIQUIDATION",
    L.EV_EXTERNAL: "EXTERNAL",
    L.EV_PARENT: "PARENT",
    L.EV_FUNDING: "FUNDING",
}
NAN = math.nan


def make_spec(
    *,
    cash: float = 10_000.0,
    threshold: float = 0.2,
    min_interval: int = 1,
    fraction: float = 1.0,
    fill_at_close: bool = True,
    slippage: float = 0.0,
    fee: float = 0.0,
    allow_short: bool = False,
    max_volume_fraction: float | None = None,
    margin: MarginKernel | None = None,
    limits: Limits | None = None,
    **other: object,
) -> CoreSpec:
    """Return a strategy of built-in components: threshold signal, fixed fraction, simulated venue.

    The threshold 0.2 signals long at p >= 0.6 and short at p <= 0.4. A venue that
    allows shorts is a margin account (with `MarginKernel`'s defaults unless given), as
    `tradeloom.engine.core_spec` makes it.
    """
    if allow_short and margin is None:
        margin = MarginKernel()
    spec = CoreSpec(
        signal=ThresholdKernel(threshold, min_interval),
        sizing=SizingKernel("fixed_fraction", fraction),
        venue=VenueKernel(
            fill_at_close, slippage, fee, allow_short, cash, max_volume_fraction, margin
        ),
        allow_short=allow_short,
        initial_cash=cash,
        margin=margin,
        limits=limits or Limits(),
        timeframe_ns=HOUR,
    )
    return replace(spec, **other)  # type: ignore[arg-type]


def bars(
    close: npt.ArrayLike,
    *,
    open_: npt.ArrayLike | None = None,
    high: npt.ArrayLike | None = None,
    low: npt.ArrayLike | None = None,
    volume: npt.ArrayLike | None = None,
    p: npt.ArrayLike | None = None,
    anomalous: npt.ArrayLike | None = None,
    score: npt.ArrayLike | None = None,
    regime: npt.ArrayLike | None = None,
    bar_ns: int = HOUR,
    start: int = T0,
) -> BarInputs:
    """Return one symbol's bars; open, high and low default to the close (a flat bar).

    ``p`` is the model's probability per bar (NaN: none, no signal).
    """
    c = np.asarray(close, np.float64)
    o = c if open_ is None else np.asarray(open_, np.float64)
    h = np.maximum(o, c) if high is None else np.asarray(high, np.float64)
    lo = np.minimum(o, c) if low is None else np.asarray(low, np.float64)
    v = np.full(len(c), 1e12) if volume is None else np.asarray(volume, np.float64)
    prob = np.full(len(c), np.nan) if p is None else np.asarray(p, np.float64)
    return BarInputs.of(
        (o, h, lo, c, v),
        prob,
        start + bar_ns * np.arange(len(c), dtype=np.int64),
        anomalous=None if anomalous is None else np.asarray(anomalous, np.bool_),
        score=None if score is None else np.asarray(score, np.float64),
        regime=None if regime is None else np.asarray(regime, np.uint8),
    )


def run(
    spec: CoreSpec, inputs: BarInputs, t_end: int | None = None, *, symbols: int = 1
) -> CoreState:
    """Run every bar of ``inputs`` (up to ``t_end``) of a compiled strategy; return the state."""
    state = CoreState(spec, symbols)
    need = state.run(inputs, len(inputs) if t_end is None else t_end)
    assert need == L.NEED_DONE, L.NEED_NAMES[need]
    return state


_PURPOSE = REJECT.slots["purpose"][0]  # among a row's values (the code is the first)


@dataclass(frozen=True)
class For:
    """A rejection's purpose in an expected row: the order reason of what was refused."""

    reason: int

    def __repr__(self) -> str:
        return f"For({self.reason})"


@dataclass(frozen=True)
class Row:
    """One event row: its kind's name, bar, symbol and values (a rejection's purpose
    apart: `For`)."""

    kind: str
    bar: int
    symbol: int
    values: tuple[float, ...]
    purpose: For | None = None

    def __repr__(self) -> str:
        shown = list(self.values)
        while shown and shown[-1] == 0.0:
            shown.pop()
        said = [f"{v:.10g}" for v in shown] + ([repr(self.purpose)] if self.purpose else [])
        return f"({self.kind!r}, {self.symbol}, {', '.join(said)})"


def _row(kind: str, bar: int, symbol: int, values: tuple[float, ...]) -> Row:
    if kind != "REJECT":
        return Row(kind, bar, symbol, values)
    purpose = For(int(values[_PURPOSE]))
    return Row(kind, bar, symbol, values[:_PURPOSE] + (0.0,) * (len(values) - _PURPOSE), purpose)


def rows(state: CoreState, bar: int | None = None) -> list[Row]:
    """Return the rows written (those of ``bar`` only, if given)."""
    out = [
        _row(
            KIND[int(r[L.E_KIND])], int(r[L.E_BAR]), int(r[L.E_SYM]), tuple(float(v) for v in r[3:])
        )
        for r in state.rows()
    ]
    return out if bar is None else [r for r in out if r.bar == bar]


def _same(actual: float, expected: float) -> bool:
    if math.isnan(expected):
        return math.isnan(actual)
    return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9)


def assert_rows(actual: Sequence[Row], expected: Sequence[tuple[object, ...]]) -> None:
    """Assert rows equal ``(KIND, symbol, v0, v1, ...)`` tuples, in order.

    Values not given must be 0 (the core writes 0 in the slots a kind does not use);
    given values compare to a relative 1e-9 (NaN equals NaN). A rejection's purpose is
    compared when the expected row ends with `For`.
    """
    problem = ""
    if len(actual) != len(expected):
        problem = f"{len(actual)} rows, expected {len(expected)}"
    for i, (row, want) in enumerate(zip(actual, expected, strict=False)):
        if problem:
            break
        kind, symbol, *values = want
        purpose = values.pop() if values and isinstance(values[-1], For) else None
        padded = [float(v) for v in values] + [0.0] * (L.EV_VALUES - len(values))  # type: ignore[arg-type]
        if (
            (row.kind, row.symbol) != (kind, symbol)
            or not all(_same(a, e) for a, e in zip(row.values, padded, strict=True))
            or (purpose is not None and purpose != row.purpose)
        ):
            problem = f"row {i} differs"
    if problem:
        listing = "\n".join(
            [f"{problem}; got:", *(f"  {r!r}" for r in actual), "expected:"]
            + [f"  {e!r}" for e in expected]
        )
        raise AssertionError(listing)


def decoded(state: CoreState, refs: Sequence[object] = ()) -> list[RowEvent]:
    """Return the rows read back as the journal reads them (orders are ``o<seq>``).

    ``refs`` are the Python objects rows refer to (a plugin's halt or rejection).
    """
    ctx = RowContext(
        times=lambda bar: pd.Timestamp(T0 + bar * HOUR, tz="UTC"),
        order_id=lambda seq: f"o{seq}",
        refs=list(refs),
    )
    return decode(state.rows(), ctx).events()
