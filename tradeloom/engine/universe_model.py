"""The model over a universe: one call whatever the number of symbols.

The model is written over symbols (`tradeloom.plugins.protocols.Model`): it trains as it
declares (the ``sklearn`` model: ``pooling: pooled`` or ``per_symbol``); one market is the
universe of one. A model that trains each symbol apart says which model it trained for
each (`tradeloom.plugins.protocols.PerSymbolModels`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tradeloom.domain import ModelOutput, ModelTraining, Universe
from tradeloom.engine.features import SymbolFeatures
from tradeloom.engine.universe_checks import clock_problems
from tradeloom.engine.wiring import Pipeline
from tradeloom.errors import ConfigError
from tradeloom.plugins.protocols import PerSymbolModels

__all__ = ["UniverseOutput", "fit_universe"]


@dataclass(frozen=True)
class UniverseOutput:
    """The model's outputs over a universe.

    Attributes:
        outputs: Per symbol, its output on the clock.
        trainings: Every fold, in clock bars (per symbol, the symbols in order).
        models: Per symbol, the model trained for it (``per_symbol``); empty when one
            model (the pipeline's) was trained.
    """

    outputs: tuple[ModelOutput, ...]
    trainings: tuple[ModelTraining, ...]
    models: Mapping[str, Any]


def fit_universe(
    pipeline: Pipeline, universe: Universe, features: SymbolFeatures
) -> UniverseOutput:
    """Train ``pipeline``'s model over ``universe`` and predict every symbol's bars.

    Raises:
        ConfigError: The model cannot predict these bars (`clock_problems`: validation
            finds it where the data says its clock).
        RuntimeError: The model returned another number of probabilities than bars.
    """
    model = pipeline.model
    if len(universe.index):
        problems = clock_problems(pipeline.config, model, universe.index[-1])
        if problems:
            raise ConfigError(problems)
    outputs = model.fit_predict_universe(universe, features.own)
    models: Mapping[str, Any] = dict(model.per_symbol) if isinstance(model, PerSymbolModels) else {}
    for symbol, output in zip(universe.symbols, outputs, strict=True):
        if len(output.probability) != len(universe):
            bars = f"{len(universe)}" if len(outputs) == 1 else f"{symbol}'s {len(universe)}"
            raise RuntimeError(
                f"model ({pipeline.config.model.kind}) returned {len(output.probability)} "
                f"probabilities for {bars} bars"
            )
    trainings = tuple(t for output in outputs for t in output.trainings)
    return UniverseOutput(outputs, trainings, models)
