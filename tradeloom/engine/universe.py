"""A backtest's universe: loading it, journaling it, and what it cannot run yet.

A data source (`tradeloom.plugins.protocols.DataSource`) gives the bars of its symbols on
one clock; one market is the universe of one (whose clock is its own index, so nothing
about a one-symbol run changes). The markets
of informative pairs (``features[].symbol``) are loaded beside them, by the same source.
What was loaded is journaled: one `DataLoaded` per symbol, and each stretch of the
clock where a symbol has no bar (not listed yet, delisted, halted) once, as a
`SymbolAbsent`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from tradeloom.domain import Universe
from tradeloom.engine.events import Recorder
from tradeloom.engine.informative import InformativePair
from tradeloom.engine.universe_checks import timeframe_problems, universe_problems
from tradeloom.engine.wiring import Pipeline
from tradeloom.errors import ConfigError
from tradeloom.journal import DataLoaded, SymbolAbsent
from tradeloom.kernels.first_run import sized as first_run_sized
from tradeloom.plugins.protocols import InformativeSource
from tradeloom.runtime.memory import release_arrow_pool, return_freed_memory

__all__ = [
    "absences",
    "check_universe",
    "informative_symbols",
    "journal_universe",
    "load_universe",
]


def load_universe(pipeline: Pipeline) -> Universe:
    """Return the data's universe (one market: the universe of one).

    Raises:
        ConfigError: The strategy uses what a universe of that size cannot run
            (`universe_problems`).
    """
    data = pipeline.data
    universe = data.load_universe()
    check_universe(pipeline, universe)
    # a run cheaper as Python runs so; a large run compiles
    first_run_sized(len(universe) * len(universe.symbols), len(pipeline.features))
    symbols = informative_symbols(pipeline)
    if symbols:
        # wiring refused a source that cannot load them (`InformativeSource`)
        assert isinstance(data, InformativeSource)
        # a pair's text features read the data's text sources, which ride with the traded bars
        documents = {n: d for bars in universe.bars for n, d in bars.documents.items()}
        pairs = tuple(data.load_informative(s) for s in symbols)
        if documents:
            pairs = tuple(replace(p, documents={**documents, **p.documents}) for p in pairs)
        universe = replace(universe, informative=pairs)
    release_arrow_pool()  # what a file read through Arrow left free, for the rest of the run
    if len(universe.symbols) > 1:
        return_freed_memory()  # its many blocks, kept free, fragment the heaps
    return universe


def informative_symbols(pipeline: Pipeline) -> tuple[str, ...]:
    """Return the informative pairs' symbols (``features[].symbol``), each once, in file order."""
    seen = dict.fromkeys(f.symbol for f in pipeline.features if isinstance(f, InformativePair))
    return tuple(seen)


def check_universe(pipeline: Pipeline, universe: Universe) -> None:
    """Raise `ConfigError` listing `universe_problems` and `timeframe_problems` of the
    loaded ``universe``, if any."""
    symbols = len(universe.symbols)
    problems = universe_problems(
        pipeline.config, pipeline.features, pipeline.venue, symbols, pipeline.model
    )
    if universe.bars:  # a file's timeframe, inferred from its rows, is known now
        seconds, timeframe = universe.timeframe_seconds, universe.timeframe
        problems += timeframe_problems(pipeline.config, seconds, timeframe)
    if problems:
        raise ConfigError(list(dict.fromkeys(problems)))


def journal_universe(
    recorder: Recorder, universe: Universe, names: Sequence[str] | None = None
) -> None:
    """Journal each symbol's `DataLoaded`, then each stretch a symbol is absent from the clock.

    ``names`` stand for the symbols in the events (a portfolio file's books); None: the
    symbols.
    """
    index = universe.index
    symbols = universe.symbols if names is None else tuple(names)
    for bars, symbol in zip(universe.bars, symbols, strict=True):
        recorder.record(
            DataLoaded(
                symbol=symbol,
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
    for s, symbol in enumerate(symbols):
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
