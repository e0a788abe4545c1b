"""One market is a universe of one: the contract's protocols are written over symbols.

What drives a component of an older, single-market form over symbols, for plugins
written before the protocols were: a data source of one market (``load() -> Bars``)
becomes the universe of one (`UniverseOfOne`, deprecated: it warns), and a model with
no universe form of its own is trained on each symbol apart, a fresh copy each
(`fit_per_symbol`, the engine's way for any such model).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol, runtime_checkable

from tradeloom._deprecated import deprecated
from tradeloom.domain import Bars, ModelOutput, Universe
from tradeloom.plugins.protocols import DataSource
from tradeloom.runtime.lazy import pandas as pd

__all__ = [
    "DEPRECATED_SINCE",
    "OneMarketSource",
    "UniverseOfOne",
    "data_source",
    "fit_per_symbol",
    "on_clock",
]

DEPRECATED_SINCE = "0.1"
"""The release whose protocols are written over symbols only (issue 71)."""


@runtime_checkable
class OneMarketSource(Protocol):
    """The single-market form of the data layer, deprecated: `DataSource` is written over
    symbols. A component of this form is driven through `UniverseOfOne`, with a warning."""

    def load(self) -> Bars:
        """Return one market's validated bars."""
        ...


class UniverseOfOne:
    """A `OneMarketSource` as a `DataSource`: its bars, the universe of one.

    Every other attribute is the source's own (a `LiveFeed`'s calls, `InformativeSource`,
    `KnownLength`, ...), so what it can do besides loading is what it could do before.

    Args:
        source: The component of the single-market form.
    """

    def __init__(self, source: OneMarketSource) -> None:
        self.source = source

    def load_universe(self) -> Universe:
        """Return the source's bars as the universe of one (their index is the clock)."""
        bars = self.source.load()
        return Universe((bars,), bars.frame.index)

    def symbol_count(self) -> int:
        """Return 1: the single-market form has one symbol."""
        return 1

    def __getattr__(self, name: str) -> Any:
        if name == "source" or name.startswith("__"):  # unpickling, copying
            raise AttributeError(name)
        return getattr(self.source, name)


def data_source(built: object, what: str) -> object:
    """Return ``built`` as a `DataSource`: itself, or a `OneMarketSource` adapted (warned).

    Args:
        built: What a data factory built.
        what: The component, as a user names it (``data kind 'my_feed' of plugin 'mine'``).

    Warns:
        TradeloomDeprecationWarning: ``built`` is of the single-market form.
    """
    if isinstance(built, DataSource) or not isinstance(built, OneMarketSource):
        return built
    deprecated(
        f"{what}: a data source of one market (load() -> Bars)",
        since=DEPRECATED_SINCE,
        use_instead="load_universe() -> Universe, one market being the universe of one",
        stacklevel=3,
    )
    return UniverseOfOne(built)


def on_clock(output: ModelOutput, universe: Universe, s: int) -> ModelOutput:
    """Return symbol ``s``'s output (on its own bars) on the clock, its folds in clock bars."""
    index = universe.index
    own = universe.bars[s].frame.index
    position = index.get_indexer(own)

    def clock(series: pd.Series | None) -> pd.Series | None:
        return None if series is None else series.set_axis(own).reindex(index)

    trainings = tuple(
        replace(
            t,
            train_start=int(position[t.train_start]),
            train_end=int(position[t.train_end]),
            predict_start=int(position[t.predict_start]),
            predict_end=int(position[min(t.predict_end, len(own) - 1)]),
        )
        for t in output.trainings
    )
    anomalous = clock(output.anomalous)
    return ModelOutput(
        probability=clock(output.probability),
        trainings=trainings,
        anomalous=None if anomalous is None else anomalous.fillna(False).astype(bool),
        anomaly_score=clock(output.anomaly_score),
    )


def fit_per_symbol(
    model: Any, universe: Universe, features: Sequence[pd.DataFrame]
) -> tuple[tuple[ModelOutput, ...], dict[str, Any]]:
    """Train a fresh copy of ``model`` (untrained) on each symbol's own bars.

    Returns:
        Each symbol's output on the clock, and the trained copy of each symbol.
    """
    outputs: list[ModelOutput] = []
    models: dict[str, Any] = {}
    for s, (bars, frame) in enumerate(zip(universe.bars, features, strict=True)):
        own = copy.deepcopy(model)
        output = own.fit_predict(bars, frame)
        if len(output.probability) != len(bars):
            raise RuntimeError(
                f"model returned {len(output.probability)} probabilities for the "
                f"{len(bars)} bars of {bars.symbol}"
            )
        outputs.append(on_clock(output, universe, s))
        models[bars.symbol] = own
    return tuple(outputs), models
