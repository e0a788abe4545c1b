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

A paper or live run places them bar by bar as its bars close (`LiveFunding`), by the same rule:
each symbol's bar books the funding times from its previous bar's close (from its first
bar's open, for the first) to its own close, read from the source as they are published.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from tradeloom.errors import Problem
from tradeloom.plugins.protocols import AuxiliaryData, ExtraColumns
from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

    from tradeloom.domain import AuxiliarySeries, Universe
    from tradeloom.schemas.config import StrategyConfig

__all__ = [
    "LiveFunding",
    "funding_problems",
    "funding_rates",
    "funding_series",
    "live_funding",
    "place_funding",
]


def funding_series(venue: object) -> str | None:
    """Return the name of the series ``venue`` books funding from (None: not a perpetual)."""
    name = getattr(venue, "funding_series", None)
    return name if isinstance(name, str) else None


def funding_problems(
    config: StrategyConfig, mode: str, *, data: object, venue: object, portfolio: bool = False
) -> list[Problem]:
    """Return why a perpetual's funding cannot be booked: no such series, or a portfolio
    file's paper or live run, which does not book it yet (``portfolio``: a member of one).

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
    if portfolio and mode in ("paper", "live"):
        problems.append(
            Problem(
                config.locate(path),
                path,
                f"a portfolio file's {mode} run does not book a perpetual's funding yet; "
                f"backtest it or {mode} trade it alone, or remove market: swap",
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


class LiveFunding:
    """A paper or live run's funding rates, bar by bar as the bars close (module docstring).

    Args:
        load: Reads every declared auxiliary series (all symbols'), as published now.
        name: The funding series' name.
        symbols: The run's symbols, in order.
        timeframe_ns: A bar's length.
    """

    def __init__(
        self,
        load: Callable[[], Sequence[AuxiliarySeries]],
        name: str,
        symbols: Sequence[str],
        timeframe_ns: int,
    ) -> None:
        self._load = load
        self._name = name
        self._symbols = tuple(symbols)
        self._bar = timeframe_ns
        self._done: list[int | None] = [None] * len(self._symbols)
        # per symbol, its items' (times, rates), in the order `place_funding` adds them
        self._series: list[list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]] = []
        self._known: list[tuple[int, int] | None] = []  # per symbol: last time, interval
        self._read()

    def _read(self) -> None:
        series = [item for item in self._load() if item.name == self._name]
        self._series, self._known = [], []
        for symbol in self._symbols:
            own = []
            for item in series:
                if item.applies_to(symbol):
                    times = np.asarray(item.times, np.int64)
                    rates = np.asarray(item.values, np.float64)
                    keep = np.isfinite(rates)
                    own.append((times[keep], rates[keep]))
            self._series.append(own)
            times = np.sort(np.concatenate([t for t, _ in own] + [np.empty(0, np.int64)]))
            known = None if len(times) < 2 else (int(times[-1]), int(np.min(np.diff(times))))
            self._known.append(known)

    def _stale(self, end: int) -> bool:
        """Whether a funding time before ``end`` may have been published since the read."""
        return any(known is None or known[0] + known[1] < end for known in self._known)

    def rates(self, open_ns: int, present: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
        """Return each symbol's funding rate booked at the bar opening at ``open_ns``
        (``present``: which symbols have that bar); 0 where none."""
        end = open_ns + self._bar
        if self._stale(end):
            self._read()
        out = np.zeros(len(self._symbols))
        for s, own in enumerate(self._series):
            if not present[s]:
                continue
            start = self._done[s]
            start = open_ns if start is None else start
            total = 0.0
            for times, rates in own:  # item by item, in time order, as `place_funding` adds
                first, stop = np.searchsorted(times, (start, end))
                for rate in rates[first:stop].tolist():
                    total += rate
            out[s] = total
            self._done[s] = end
        return out


def live_funding(
    venue: object, data: object, symbols: Sequence[str], timeframe_ns: int
) -> LiveFunding | None:
    """Return a paper or live run's funding rates under ``venue`` (None: not a perpetual)."""
    name = funding_series(venue)
    if name is None or not isinstance(data, AuxiliaryData):
        return None
    return LiveFunding(data.auxiliary_series, name, symbols, timeframe_ns)
