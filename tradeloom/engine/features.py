"""A backtest's features: every feature over each symbol's own bars, placed on the clock.

A feature sees one symbol's validated bars (its own index) and the columns of the
features before it, as it always does; its rows are then placed on the universe's
common clock, NaN where the symbol has no bar. Cross-sectional features
(`tradeloom.plugins.protocols.CrossSectionalFeature`) come after: each sees, at each
bar of the clock, that bar's row of every symbol, and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from tradeloom.domain import Bars, Universe
from tradeloom.engine.finite import check_finite_features
from tradeloom.engine.informative import InformativePair
from tradeloom.engine.wiring import Pipeline
from tradeloom.errors import DataError
from tradeloom.plugins.protocols import CrossSectionalFeature, Feature
from tradeloom.runtime import progress
from tradeloom.schemas.config import ComponentConfig

__all__ = [
    "SymbolFeatures",
    "compute_features",
    "cross_row",
    "feature_plots",
    "universe_features",
]


def compute_features(
    pipeline: Pipeline, bars: Bars, informative: Mapping[str, Bars] | None = None
) -> pd.DataFrame:
    """Compute every per-symbol feature in file order; each sees the bars and those before it.

    Cross-sectional features are not computed here (they need the universe: see
    `universe_features`). An informative pair (`InformativePair`) is computed on its
    market's bars in ``informative`` and joined to ``bars`` as of their close.

    Raises:
        RuntimeError: A feature returned other columns than it declared, or other rows.
        DataError: A feature value is infinite (`check_finite_features`), or an
            informative pair's bars were not loaded.
    """
    frame = pd.DataFrame(index=bars.frame.index)
    pairs = informative or {}
    own = _per_symbol(pipeline)
    with progress.task("features", total=len(own)) as shown:
        for item, feature in own:
            shown.describe(f"features: {item.kind}")
            frame = _feature(item, feature, bars, frame, pairs)
            shown.advance()
    check_finite_features(frame, [(f.path, f.kind, c.columns()) for f, c in own])
    return frame


def feature_plots(pipeline: Pipeline) -> dict[str, str]:
    """Return where the report draws each feature column, as its component declares:
    ``price``, or ``panel:<feature path>`` (one lower panel per feature)."""
    plots: dict[str, str] = {}
    for item, feature in zip(pipeline.config.features, pipeline.features, strict=True):
        plot = item.registered.component.plot
        for column in feature.columns() if plot else ():
            plots[column] = "price" if plot == "price" else f"panel:{item.path}"
    return plots


class SymbolFeatures:
    """Every symbol's features: on its own bars, and on the common clock.

    Attributes:
        own: Per symbol, its feature rows indexed like its bars (what its model sees).
        clock: Per symbol, the same rows on the clock (NaN where it has no bar), with
            the cross-sectional columns in file order.
    """

    def __init__(self, own: tuple[pd.DataFrame, ...], clock: tuple[pd.DataFrame, ...]) -> None:
        self.own = own
        self.clock = clock

    @property
    def columns(self) -> tuple[str, ...]:
        """The feature columns, in row order."""
        return tuple(str(c) for c in self.clock[0].columns)

    def array(self) -> np.ndarray:
        """Return ``[bars, symbols, columns]``: each clock bar's row of each symbol."""
        return np.stack([f.to_numpy(np.float64) for f in self.clock], axis=1)


def universe_features(pipeline: Pipeline, universe: Universe) -> SymbolFeatures:
    """Compute the features of every symbol of ``universe``; see the module's docstring.

    The columns keep the file's order; a cross-sectional feature's column at a clock
    bar is computed from that bar's rows of the symbols present then (NaN elsewhere).
    """
    index = universe.index
    clock: list[pd.DataFrame] = []
    own: list[pd.DataFrame] = []
    for bars in universe.bars:
        frame = compute_features(pipeline, bars, universe.informative_bars())
        own.append(frame)
        clock.append(frame.reindex(index))
    crossing = [
        (item, feature)
        for item, feature in zip(pipeline.config.features, pipeline.features, strict=True)
        if isinstance(feature, CrossSectionalFeature)
    ]
    if crossing:
        present = universe.present()
        for item, feature in crossing:
            values = _cross(item, feature, clock, present)
            for s, frame in enumerate(clock):
                for j, column in enumerate(feature.columns()):
                    frame[column] = values[:, s, j]
        order = list(pipeline.feature_columns)
        clock = [frame[order] for frame in clock]
        own = [
            frame.loc[bars.frame.index] for frame, bars in zip(clock, universe.bars, strict=True)
        ]
    return SymbolFeatures(tuple(own), tuple(clock))


def _per_symbol(pipeline: Pipeline) -> list[tuple[ComponentConfig, Feature]]:
    return [
        (item, feature)
        for item, feature in zip(pipeline.config.features, pipeline.features, strict=True)
        if not isinstance(feature, CrossSectionalFeature)
    ]


def _cross(
    item: ComponentConfig,
    feature: CrossSectionalFeature,
    clock: list[pd.DataFrame],
    present: np.ndarray,
) -> np.ndarray:
    inputs = np.stack([frame[list(feature.inputs())].to_numpy(np.float64) for frame in clock], 1)
    out = np.asarray(feature.compute_cross(inputs, present), dtype=np.float64)
    expected = (len(present), present.shape[1], len(feature.columns()))
    if out.shape != expected:
        raise RuntimeError(
            f"{item.path} ({item.kind}, plugin '{item.registered.plugin.name}') returned "
            f"values of shape {out.shape}; expected {expected} (bars, symbols, columns)"
        )
    return np.where(present[:, :, None], out, np.nan)


def _feature(
    item: ComponentConfig,
    feature: Feature,
    bars: Bars,
    frame: pd.DataFrame,
    informative: Mapping[str, Bars],
) -> pd.DataFrame:
    if isinstance(feature, InformativePair):
        other = informative.get(feature.symbol)
        if other is None:
            raise DataError(f"{item.path}.symbol: {feature.symbol}'s bars were not loaded")
        out = feature.compute_joined(bars, other)
    else:
        out = feature.compute(bars, frame)
    declared = feature.columns()
    if list(out.columns) != declared or not out.index.equals(bars.frame.index):
        raise RuntimeError(
            f"{item.path} ({item.kind}, plugin '{item.registered.plugin.name}') returned "
            f"columns {list(out.columns)} over {len(out)} rows; it declared {declared} "
            f"over the {len(bars)} bars"
        )
    return pd.concat([frame, out.astype(np.float64)], axis=1)


def cross_row(
    crossing: list[CrossSectionalFeature],
    columns: tuple[str, ...],
    row: np.ndarray,
    present: np.ndarray,
) -> None:
    """Fill the cross-sectional columns of one bar's rows (in place) from the stepped ones.

    Args:
        crossing: The cross-sectional features, in file order.
        columns: Every feature column, in row order.
        row: ``[symbols, columns]``: the bar's rows, per-symbol columns filled.
        present: ``[symbols]``: which symbols have a bar (the others get NaN).
    """
    at = {c: j for j, c in enumerate(columns)}
    for feature in crossing:
        values = row[:, [at[c] for c in feature.inputs()]][None]
        out = np.asarray(feature.compute_cross(values, present[None]), np.float64)[0]
        for j, column in enumerate(feature.columns()):
            row[:, at[column]] = np.where(present, out[:, j], np.nan)
