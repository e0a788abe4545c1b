"""A backtest's universe: loading it, journaling it, and what it cannot run yet.

A data source that is a `tradeloom.plugins.protocols.UniverseSource` gives the bars of
several symbols on one clock; any other gives one symbol's bars, the universe of one
(whose clock is its own index, so nothing about a one-symbol run changes). What was
loaded is journaled: one `DataLoaded` per symbol, and each stretch of the clock where
a symbol has no bar (not listed yet, delisted, halted) once, as a `SymbolAbsent`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tradeloom.domain import Universe
from tradeloom.errors import ConfigError, Problem
from tradeloom.journal import DataLoaded, SymbolAbsent
from tradeloom.plugins.kernel_specs import CompiledComponent, VenueKernel
from tradeloom.plugins.protocols import CrossSectionalFeature, UniverseSource
from tradeloom.runner.events import Recorder
from tradeloom.runner.wiring import Pipeline

__all__ = ["absences", "check_universe", "journal_universe", "load_universe", "universe_problems"]


def load_universe(pipeline: Pipeline) -> Universe:
    """Return the data's universe (a source of one symbol gives the universe of one).

    Raises:
        ConfigError: The strategy uses what a universe of that size cannot run
            (`universe_problems`).
    """
    data = pipeline.data
    if isinstance(data, UniverseSource):
        universe = data.load_universe()
    else:
        bars = data.load()
        universe = Universe((bars,), bars.frame.index)
    check_universe(pipeline, len(universe.symbols))
    return universe


def check_universe(pipeline: Pipeline, symbols: int) -> None:
    """Raise `ConfigError` listing `universe_problems`, if any."""
    problems = universe_problems(pipeline, symbols)
    if problems:
        raise ConfigError(problems)


def universe_problems(pipeline: Pipeline, symbols: int) -> list[Problem]:
    """Return what ``pipeline`` cannot run over ``symbols`` symbols, each located.

    A cross-sectional feature needs several symbols, and per-symbol features after it
    cannot read it. Over several symbols, the monitors and health rules (which watch
    one model's predictions of one market) and a venue that is not compiled (which
    works one market's orders) are not supported yet.
    """
    config = pipeline.config
    problems: list[Problem] = []

    def refuse(path: str, message: str) -> None:
        problems.append(Problem(config.locate(path), path, message))

    crossing = False
    for item, feature in zip(config.features, pipeline.features, strict=True):
        if isinstance(feature, CrossSectionalFeature):
            crossing = True
            if symbols < 2:
                refuse(
                    item.path,
                    f"{item.kind} is computed across the symbols of a universe, and the "
                    "data has one symbol; list several under data.symbols or remove it",
                )
        elif crossing:
            refuse(
                item.path,
                f"{item.kind} comes after a cross-sectional feature; put the "
                "cross-sectional features last",
            )
    if symbols < 2:
        return problems
    if config.monitoring:
        refuse(
            config.monitoring[0].path,
            f"monitoring over a universe of {symbols} symbols is not supported yet",
        )
    if config.health:
        refuse("health", f"health rules over a universe of {symbols} symbols are not supported yet")
    venue = pipeline.venue
    if not (isinstance(venue, CompiledComponent) and isinstance(venue.kernel_spec(), VenueKernel)):
        refuse(
            config.execution.path,
            f"execution kind '{config.execution.kind}' is not compiled; a universe of "
            f"{symbols} symbols trades the simulated venue only for now",
        )
    return problems


def journal_universe(recorder: Recorder, universe: Universe) -> None:
    """Journal each symbol's `DataLoaded`, then each stretch a symbol is absent from the clock."""
    index = universe.index
    for bars in universe.bars:
        recorder.record(
            DataLoaded(
                symbol=bars.symbol,
                timeframe=bars.timeframe,
                bars=len(bars),
                first=bars.frame.index[0],
                last=bars.frame.index[-1],
                repaired=[vars(i) for i in bars.repaired],
                gaps=[vars(i) for i in bars.gaps],
            )
        )
    if len(universe.bars) == 1:
        return  # the clock is the symbol's own index
    present = universe.present()
    for s, symbol in enumerate(universe.symbols):
        for first, last in absences(present[:, s]):
            recorder.record(
                SymbolAbsent(
                    bar=first,
                    timestamp=index[first],
                    symbol=symbol,
                    correlation_id=first,
                    last=index[last],
                    bars=last - first + 1,
                )
            )


def absences(present: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Return the ``(first, last)`` bars (inclusive) of each stretch where ``present`` is False."""
    absent = np.concatenate([[False], ~np.asarray(present, bool), [False]])
    edges = np.flatnonzero(absent[1:] != absent[:-1])
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]
