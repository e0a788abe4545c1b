"""A perpetual's funding rates, placed on the bars the core books them at.

``execution.market: swap`` with ``execution.funding: NAME`` books funding from the
``data.auxiliary`` series ``NAME`` (`tradeloom.core.funding`): each of its values is a
funding time (the value's timestamp) and the rate then. This module turns the series
into the core's input row: for each symbol, each funding time goes to the symbol's
first bar whose close is after it, the bar whose interval ``[open, close)`` holds it (or,
in a gap of the symbol's bars, its next bar: the position held through the gap is the
one carried into that bar). Funding times before the symbol's first bar or at or after
its last close are not booked (no position was held then); several in one bar (bars
longer than the funding interval) add up. The rate is booked at its funding time
whenever it was published (``available_after`` says when a strategy may *see* it, as a
feature; the exchange books it regardless).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from tradeloom.errors import Problem
from tradeloom.plugins.protocols import AuxiliaryData, ExtraColumns

if TYPE_CHECKING:
    from tradeloom.domain import Universe
    from tradeloom.plugins.data.auxiliary import AuxiliarySeries
    from tradeloom.schemas.config import StrategyConfig

__all__ = ["funding_problems", "funding_rates", "funding_series", "place_funding"]


def funding_series(venue: object) -> str | None:
    """Return the name of the series ``venue`` books funding from (None: not a perpetual)."""
    name = getattr(venue, "funding_series", None)
    return name if isinstance(name, str) else None


def funding_problems(
    config: StrategyConfig, mode: str, *, data: object, venue: object
) -> list[Problem]:
    """Return why a perpetual's funding cannot be booked: no such series, or a mode
    that does not book it yet.

    A component that failed to build (None) was reported already and is skipped.
    """
    name = funding_series(venue)
    if name is None or data is None:
        return []
    path = f"{config.execution.path}.funding"
    problems: list[Problem] = []
    extra = data.extra_columns() if isinstance(data, ExtraColumns) else None
    if not isinstance(data, AuxiliaryData) or (extra is not None and name not in extra):
        has = ", ".join(sorted(extra)) if extra else "none"
        problems.append(
            Problem(
                config.locate(path),
                path,
                f"no data.auxiliary series '{name}' (the series: {has}); declare the funding "
                "rates under data.auxiliary (kind funding_rate)",
            )
        )
    if mode != "backtest":
        problems.append(
            Problem(
                config.locate(path),
                path,
                f"--mode {mode} does not book a perpetual's funding yet; backtest it, or "
                "remove market: swap",
            )
        )
    return problems


def funding_rates(
    venue: object, data: object, universe: Universe
) -> npt.NDArray[np.float64] | None:
    """Return ``[bars, symbols]``: the funding rate each of ``universe``'s bars books under
    ``venue`` (None: not a perpetual), from ``data``'s series."""
    name = funding_series(venue)
    if name is None:
        return None
    series = data.auxiliary_series() if isinstance(data, AuxiliaryData) else ()
    return place_funding(universe, [item for item in series if item.name == name])


def place_funding(universe: Universe, series: list[AuxiliarySeries]) -> npt.NDArray[np.float64]:
    """Return ``[bars, symbols]`` on ``universe``'s clock: the sum of the rates of the
    funding times each symbol's bar books (module docstring); 0 where none."""
    n, m = len(universe), len(universe.symbols)
    out = np.zeros((n, m))
    clock = universe.index.as_unit("ns").asi8
    length = universe.timeframe_seconds * 1_000_000_000
    for s, bars in enumerate(universe.bars):
        opens = bars.frame.index.as_unit("ns").asi8
        if not len(opens):
            continue
        closes = opens + length
        where = np.searchsorted(clock, opens)  # each of the symbol's bars on the clock
        for item in series:
            if not item.applies_to(bars.symbol):
                continue
            times = np.asarray(item.times, np.int64)
            rates = np.asarray(item.values, np.float64)
            keep = (times >= opens[0]) & (times < closes[-1]) & np.isfinite(rates)
            own = np.searchsorted(closes, times[keep], side="right")
            np.add.at(out[:, s], where[own], rates[keep])
    return out
