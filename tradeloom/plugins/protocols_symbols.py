"""One market is a universe of one: the contract's protocols are written over symbols.

What drives a component of an older, single-market form over symbols, for plugins
written before the protocols were: a data source of one market (``load() -> Bars``)
becomes the universe of one (`UniverseOfOne`, deprecated: it warns), a live feed of one
market (``closed_bars``, ``bar_stream``) the live feed of that universe
(`LiveUniverseOfOne`, deprecated: it warns), and a model of one market
(``fit_predict(bars, features)``) a model over symbols that trains a fresh copy on each
symbol apart (`ModelOverSymbols`, deprecated: it warns), its live training
(``train_next(bars, ...)``) that of the universe of one (`TrainerOverSymbols`; a model
over symbols whose live trainer is still of that form, `LiveTrainerOverSymbols`). A
built-in model that trains each symbol apart does it the same way (`fit_each_symbol`,
`train_fold_in_effect`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Protocol, runtime_checkable

from tradeloom._deprecated import deprecated
from tradeloom.domain import Bars, ModelOutput, ModelTraining, Universe
from tradeloom.plugins.protocols import BarStream, DataSource, LiveFeed, LiveTrainer, Model
from tradeloom.runtime.lazy import pandas as pd

__all__ = [
    "DEPRECATED_SINCE",
    "REMOVED_IN",
    "LiveTrainerOverSymbols",
    "LiveUniverseOfOne",
    "ModelOverSymbols",
    "OneMarketFeed",
    "OneMarketModel",
    "OneMarketSource",
    "OneMarketTrainer",
    "TrainerOverSymbols",
    "UniverseOfOne",
    "data_source",
    "fit_each_symbol",
    "fit_per_symbol",
    "model_over_symbols",
    "on_clock",
    "one_market",
    "train_fold_in_effect",
]

DEPRECATED_SINCE = "0.1"
"""The release whose protocols are written over symbols only (issue 71)."""
REMOVED_IN = "0.2"
"""The release that removes the single-market forms and their names (CHANGELOG.md's
Deprecated: one minor release of warnings)."""


@runtime_checkable
class OneMarketSource(Protocol):
    """The single-market form of the data layer, deprecated: `DataSource` is written over
    symbols. A component of this form is driven through `UniverseOfOne`, with a warning."""

    def load(self) -> Bars:
        """Return one market's validated bars."""
        ...


@runtime_checkable
class OneMarketFeed(Protocol):
    """The single-market form of a live feed, deprecated: `LiveFeed` is written over
    symbols. A component of this form is driven through `LiveUniverseOfOne`, with a
    warning."""

    def closed_bars(self, last_seen: pd.Timestamp, now: pd.Timestamp) -> pd.DataFrame:
        """Return the market's bars opened after ``last_seen`` and closed by ``now``."""
        ...

    def bar_stream(self, *, grace_seconds: float, clock: Callable[[], float]) -> BarStream | None:
        """Return the market's stream of closed bars (not started), or None."""
        ...


class UniverseOfOne:
    """A `OneMarketSource` as a `DataSource`: its bars, the universe of one.

    Every other attribute is the source's own (`InformativeSource`, `KnownLength`, ...),
    so what it can do besides loading is what it could do before.

    Args:
        source: The component of the single-market form.
    """

    def __init__(self, source: object) -> None:
        self.source = source

    def load_universe(self) -> Universe:
        """Return the source's bars as the universe of one (their index is the clock)."""
        if isinstance(self.source, DataSource):  # only its live calls are of one market
            return self.source.load_universe()
        assert isinstance(self.source, OneMarketSource)
        bars = self.source.load()
        return Universe((bars,), bars.frame.index)

    def symbol_count(self) -> int:
        """Return 1: the single-market form has one symbol."""
        return 1

    def __getattr__(self, name: str) -> Any:
        if name == "source" or name.startswith("__"):  # unpickling, copying
            raise AttributeError(name)
        return getattr(self.source, name)


class LiveUniverseOfOne(UniverseOfOne):
    """A `OneMarketFeed` as a `LiveFeed`: its market's bars as they close, the universe of
    one's (whatever the symbol asked, it is the one market).

    Args:
        source: The component of the single-market form.
    """

    def closed_bars_of(
        self, symbol: str, last_seen: pd.Timestamp, now: pd.Timestamp
    ) -> pd.DataFrame:
        """Return the market's bars opened after ``last_seen`` and closed by ``now``."""
        assert isinstance(self.source, OneMarketFeed)
        return self.source.closed_bars(last_seen, now)

    def bar_stream_of(
        self, symbol: str, *, grace_seconds: float, clock: Callable[[], float]
    ) -> BarStream | None:
        """Return the market's stream of closed bars (not started), or None."""
        assert isinstance(self.source, OneMarketFeed)
        return self.source.bar_stream(grace_seconds=grace_seconds, clock=clock)


def data_source(built: object, what: str) -> object:
    """Return ``built`` as a `DataSource`: itself, or one of the single-market form adapted
    (warned): `UniverseOfOne`, or `LiveUniverseOfOne` for a live feed of that form.

    Args:
        built: What a data factory built.
        what: The component, as a user names it (``data kind 'my_feed' of plugin 'mine'``).

    Warns:
        TradeloomDeprecationWarning: ``built`` is of the single-market form, or its live
            trainer is.
    """
    one_load = isinstance(built, OneMarketSource) and not isinstance(built, DataSource)
    one_feed = isinstance(built, OneMarketFeed) and not isinstance(built, LiveFeed)
    if not (one_load or one_feed):
        return built
    forms = ["load() -> Bars"] * one_load + ["closed_bars, bar_stream"] * one_feed
    instead = ["load_universe() -> Universe"] * one_load + [
        "closed_bars_of(symbol, ...) and bar_stream_of(symbol, ...)"
    ] * one_feed
    deprecated(
        f"{what}: a {'live feed' if forms == ['closed_bars, bar_stream'] else 'data source'} "
        f"of one market ({'; '.join(forms)})",
        since=DEPRECATED_SINCE,
        removed_in=REMOVED_IN,
        use_instead=f"{', '.join(instead)}, one market being the universe of one",
        stacklevel=3,
    )
    return LiveUniverseOfOne(built) if one_feed else UniverseOfOne(built)


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


def fit_each_symbol(
    model: Any, universe: Universe, features: Sequence[pd.DataFrame]
) -> tuple[tuple[ModelOutput, ...], dict[str, Any]]:
    """Train ``model`` on each symbol apart: itself on the universe of one, else a fresh copy
    on each symbol's own bars (`fit_per_symbol`).

    Args:
        model: A model of one market's bars (``fit_predict(bars, features)``).
        universe: The symbols' bars on one clock.
        features: Per symbol, its feature rows indexed like its own bars.

    Returns:
        Each symbol's output on the clock, and the trained copy of each symbol (none for
        the universe of one: ``model`` itself is trained).
    """
    if len(universe.symbols) == 1:
        return (model.fit_predict(universe.bars[0], features[0]),), {}
    return fit_per_symbol(model, universe, features)


@runtime_checkable
class OneMarketModel(Protocol):
    """The single-market form of the model layer, deprecated: `Model` is written over
    symbols. A component of this form is driven through `ModelOverSymbols`, with a warning."""

    horizon: int

    def fit_predict(self, bars: Bars, features: pd.DataFrame) -> ModelOutput:
        """Train walk-forward on one market's bars and predict them."""
        ...


class ModelOverSymbols:
    """A `OneMarketModel` as a `Model`: trained on the universe of one as it always was, and
    over several symbols a fresh copy on each symbol's own bars (a `PerSymbolModels`).

    Every other attribute is the model's own (`LiveModel`, `LiveTrainer`, `Retrainable`,
    ...), so what it can do besides training is what it could do before.

    Args:
        model: The component of the single-market form.

    Attributes:
        per_symbol: After `fit_predict_universe` over several symbols: each symbol's copy.
    """

    def __init__(self, model: OneMarketModel) -> None:
        self.model = model
        self.per_symbol: dict[str, Any] = {}

    def fit_predict_universe(
        self, universe: Universe, features: Sequence[pd.DataFrame]
    ) -> tuple[ModelOutput, ...]:
        """Train the model on each symbol apart (`fit_each_symbol`); return each output."""
        outputs, self.per_symbol = fit_each_symbol(self.model, universe, features)
        return outputs

    def __getattr__(self, name: str) -> Any:
        if name in ("model", "per_symbol") or name.startswith("__"):  # unpickling, copying
            raise AttributeError(name)
        return getattr(self.model, name)


@runtime_checkable
class OneMarketTrainer(Protocol):
    """The single-market form of a live trainer, deprecated: `LiveTrainer` is written over
    symbols. A model of this form is driven through `TrainerOverSymbols`, with a warning
    (the built-in ``sklearn`` model has these calls too, for the universe of one)."""

    retrain_every: int

    def train_next(
        self, bars: Bars, features: pd.DataFrame, *, reason: str | None = None
    ) -> ModelTraining | None:
        """Train, at the last bar's close, the fold that predicts from the next bar."""
        ...

    def scheduled_start(self, bars: Bars, features: pd.DataFrame) -> int | None:
        """Return the first bar of the latest scheduled fold that starts by the next bar."""
        ...


def train_fold_in_effect(
    model: OneMarketTrainer, bars: Bars, features: pd.DataFrame
) -> ModelTraining | None:
    """Train one market's walk-forward fold in effect at the bar after ``bars``: the
    backtest's fold for the first bar a paper or live run predicts.

    A run that starts (or restarts) inside a fold must predict its first bars as the
    backtest predicts them, so it trains the latest fold of the walk-forward plan that
    starts by then (`OneMarketTrainer.scheduled_start`), on the rows the plan gives that
    fold: the bars before its start only. The history past that start (the newest rows)
    would give another forest, other probabilities and other signals until the next fold.

    Args:
        model: The model; its fold becomes the one it predicts with.
        bars: Every bar known now, the last one just closed.
        features: Their feature rows, indexed like ``bars.frame``.

    Returns:
        The training (``reason`` scheduled, ``predict_start`` the fold's first bar, which
        may be before the next bar; a skipped one included), or None when the plan
        starts no fold by the next bar (too few rows are known).

    Raises:
        ModelFitError: As for a scheduled fold of the backtest.
    """
    start = model.scheduled_start(bars, features)
    if start is None:
        return None
    head = Bars(
        bars.frame.iloc[:start],
        bars.symbol,
        bars.timeframe,
        bars.timeframe_seconds,
        documents=bars.documents,
    )
    return model.train_next(head, features.iloc[:start], reason=None)


def one_market(universe: Universe, features: Sequence[pd.DataFrame]) -> tuple[Bars, pd.DataFrame]:
    """Return the universe of one's bars and features.

    Raises:
        ValueError: The universe has several symbols.
    """
    if len(universe.symbols) != 1:
        raise ValueError(
            f"a model of one market trains one symbol's bars, was given {len(universe.symbols)}"
        )
    return universe.bars[0], features[0]


class _OneMarketTraining:
    """The live training of a model whose trainer is of the single-market form
    (`OneMarketTrainer`, ``self.model``): that of the universe of one. It does not pool,
    so the live driver trains a copy of it on each symbol's universe of one."""

    model: Any

    pooled = False
    """It trains on one market's bars only."""

    def train_next_universe(
        self,
        universe: Universe,
        features: Sequence[pd.DataFrame],
        *,
        reason: str | None = None,
        in_effect: bool = False,
    ) -> ModelTraining | None:
        """Train the universe of one's next fold by its own calls (`train_fold_in_effect`
        for the fold in effect)."""
        assert isinstance(self.model, OneMarketTrainer)
        bars, frame = one_market(universe, features)
        if in_effect:
            return train_fold_in_effect(self.model, bars, frame)
        return self.model.train_next(bars, frame, reason=reason)

    def scheduled_start_universe(
        self, universe: Universe, features: Sequence[pd.DataFrame]
    ) -> int | None:
        """Return the universe of one's latest scheduled fold's start, by its own call."""
        assert isinstance(self.model, OneMarketTrainer)
        return self.model.scheduled_start(*one_market(universe, features))


class TrainerOverSymbols(_OneMarketTraining, ModelOverSymbols):
    """A `OneMarketModel` that is a `OneMarketTrainer`, as a `Model` and a `LiveTrainer`: it
    does not pool, so the live driver trains a copy of it on each symbol's universe of one.

    Args:
        model: The component of the single-market form.
    """


class LiveTrainerOverSymbols(_OneMarketTraining):
    """A `Model` whose live trainer is of the single-market form (`OneMarketTrainer`), as a
    `LiveTrainer`: it trains as a `Model` by its own `Model.fit_predict_universe`, and live
    as `TrainerOverSymbols` trains, a copy per symbol on its universe of one.

    Every other attribute is the model's own (`fit_predict_universe`, `LiveModel`,
    `PerSymbolModels`, ...).

    Args:
        model: A `Model` with ``train_next(bars, ...)`` and ``scheduled_start(bars, ...)``
            but not their forms over symbols.
    """

    def __init__(self, model: Model) -> None:
        self.model = model

    def __getattr__(self, name: str) -> Any:
        if name == "model" or name.startswith("__"):  # unpickling, copying
            raise AttributeError(name)
        return getattr(self.model, name)


def model_over_symbols(built: object, what: str) -> object:
    """Return ``built`` as a `Model`: itself, or one of the single-market form adapted
    (`ModelOverSymbols`, or `TrainerOverSymbols` for one that trains live; warned), or a
    `Model` whose live trainer is of that form adapted (`LiveTrainerOverSymbols`; warned).

    Args:
        built: What a model factory built.
        what: The component, as a user names it (``model kind 'oracle' of plugin 'mine'``).

    Warns:
        TradeloomDeprecationWarning: ``built`` is of the single-market form, or its live
            trainer is.
    """
    if isinstance(built, Model):
        if not isinstance(built, OneMarketTrainer) or isinstance(built, LiveTrainer):
            return built
        deprecated(
            f"{what}: a live trainer of one market (train_next(bars, features), "
            "scheduled_start(bars, features))",
            since=DEPRECATED_SINCE,
            removed_in=REMOVED_IN,
            use_instead="train_next_universe(universe, features) and "
            "scheduled_start_universe(universe, features), one market being the universe "
            "of one",
            stacklevel=3,
        )
        return LiveTrainerOverSymbols(built)
    if not isinstance(built, OneMarketModel):
        return built
    deprecated(
        f"{what}: a model of one market (fit_predict(bars, features) -> ModelOutput)",
        since=DEPRECATED_SINCE,
        removed_in=REMOVED_IN,
        use_instead="fit_predict_universe(universe, features) -> tuple[ModelOutput, ...], "
        "one market being the universe of one",
        stacklevel=3,
    )
    return (
        TrainerOverSymbols(built)
        if isinstance(built, OneMarketTrainer)
        else ModelOverSymbols(built)
    )
