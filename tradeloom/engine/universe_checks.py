"""What a strategy cannot run over a universe of a given size, or on bars that end when
they do, found before any bar.

Checked when the strategy is built, if its data says how many symbols it has
(``symbol_count()``, `tradeloom.plugins.protocols.KnownSymbols`) or its clock
(`tradeloom.plugins.protocols.KnownClock`), and again once the universe is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence

from tradeloom.core.kernels.specs import CompiledComponent, VenueKernel
from tradeloom.engine.timeframe import timeframe_problem
from tradeloom.errors import Problem
from tradeloom.plugins.protocols import (
    ClockRefusal,
    CrossSectionalFeature,
    KnownClock,
    KnownSymbols,
    UniverseRefusal,
)
from tradeloom.runtime.lazy import pandas as pd
from tradeloom.schemas.config import StrategyConfig
from tradeloom.time.timeframes import parse_timeframe

__all__ = [
    "clock_problems",
    "declared_last_open",
    "declared_symbols",
    "timeframe_problems",
    "universe_problems",
]


def declared_symbols(data: object) -> int | None:
    """Return how many symbols ``data`` has, if it says before loading (None: unknown)."""
    return int(data.symbol_count()) if isinstance(data, KnownSymbols) else None


def declared_last_open(data: object) -> pd.Timestamp | None:
    """Return when ``data``'s last bar opens, if it says its clock before loading."""
    clock = data.declared_clock() if isinstance(data, KnownClock) else None
    if clock is None:
        return None
    timeframe, first, bars = clock
    return pd.Timestamp(first + (bars - 1) * parse_timeframe(timeframe) * 1_000_000_000, tz="UTC")


def clock_problems(config: StrategyConfig, model: object, last_open: pd.Timestamp) -> list[Problem]:
    """Return what the model cannot do with bars whose last one opens at ``last_open``
    (`ClockRefusal`: a saved model whose training data holds every bar), located: a
    backtest's, built with the strategy when its data says its clock, and again before
    its walk-forward fit (`tradeloom.engine.universe_model.fit_universe`)."""
    refusal = model.clock_refusal(last_open) if isinstance(model, ClockRefusal) else None
    if refusal is None:
        return []
    path = config.model.path
    where = f"{path}.{refusal.key}" if refusal.key else path
    return [Problem(config.locate(where), where, refusal.message)]


def timeframe_problems(config: StrategyConfig, seconds: int, timeframe: str) -> list[Problem]:
    """Return, at its ``timeframe`` key, each feature whose higher timeframe cannot be
    resampled from bars of ``timeframe`` (``seconds`` long): built with the strategy when
    its data says its timeframe, and again once the bars are loaded (a file's inferred)."""
    problems = []
    for item in config.features:
        problem = (
            None
            if item.timeframe is None
            else timeframe_problem(seconds, timeframe, item.timeframe)
        )
        if problem is not None:
            path = f"{item.path}.timeframe"
            problems.append(Problem(config.locate(path), path, problem))
    return problems


def universe_problems(
    config: StrategyConfig,
    features: Sequence[object],
    venue: object,
    symbols: int,
    model: object = None,
) -> list[Problem]:
    """Return what a strategy cannot run over ``symbols`` symbols, each located.

    Args:
        config: The strategy.
        features: Its built features, in file order.
        venue: Its built venue.
        symbols: How many symbols its data has.
        model: Its built model (None: failed to build, reported already).

    A cross-sectional feature needs several symbols, and per-symbol features after it
    cannot read it. Over several symbols, each symbol has its own monitors and health
    rules (`tradeloom.engine.watch`), but a ``retrain`` rule is not supported yet (a
    fold retrained mid-run predicts one market), nor is a venue that is not compiled
    (which works one market's orders). A model says what it cannot train over that
    many symbols itself (`UniverseRefusal`: calibrated pooled training).
    """
    problems: list[Problem] = []

    def refuse(path: str, message: str) -> None:
        problems.append(Problem(config.locate(path), path, message))

    crossing = False
    for item, feature in zip(config.features, features, strict=True):
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
    refusal = model.universe_refusal(symbols) if isinstance(model, UniverseRefusal) else None
    if refusal is not None:
        path = config.model.path
        refuse(f"{path}.{refusal.key}" if refusal.key else path, refusal.message)
    if symbols < 2:
        return problems
    for i, rule in enumerate(config.health):
        if rule.action == "retrain":
            refuse(
                f"health.{i}.action",
                f"retrain over a universe of {symbols} symbols is not supported yet; "
                "use warn or halt",
            )
    compiled = isinstance(venue, CompiledComponent) and isinstance(venue.kernel_spec(), VenueKernel)
    if venue is not None and not compiled:
        refuse(
            config.execution.path,
            f"execution kind '{config.execution.kind}' is not compiled; a universe of "
            f"{symbols} symbols trades the simulated venue only for now",
        )
    return problems
