"""The wiring's checks of features fitted inside each walk-forward fold.

A `tradeloom.plugins.protocols.FoldFittedFeature` hands the model a transform to fit
per fold; a model that cannot fit one would train on the raw columns, which is not what
the strategy file says, so the file is refused before anything runs.
"""

from __future__ import annotations

from collections.abc import Sequence

from tradeloom.errors import Problem
from tradeloom.plugins import protocols
from tradeloom.schemas.config import ComponentConfig, StrategyConfig

__all__ = ["fold_transform_problems", "on_other_bars_problem"]


def fold_transform_problems(
    config: StrategyConfig,
    model: object,
    transforms: Sequence[tuple[str, protocols.FoldTransform]],
) -> list[Problem]:
    """Return one problem per feature whose fold transform ``model`` cannot fit."""
    if not transforms or model is None:
        return []
    if isinstance(model, protocols.FitsFoldTransforms) and model.fits_fold_transforms:
        return []
    return [
        Problem(
            config.locate(path),
            path,
            f"is fitted inside each walk-forward fold (columns {', '.join(t.columns[:3])}"
            f"{', ...' if len(t.columns) > 3 else ''}); model kind {config.model.kind} does "
            "not fit fold transforms (kind sklearn does)",
        )
        for path, t in transforms
    ]


def on_other_bars_problem(config: StrategyConfig, item: ComponentConfig) -> Problem:
    """Return why a feature fitted per fold cannot run on other bars (``timeframe:``,
    ``symbol:``): its columns are renamed there, and its transform would not find them."""
    return Problem(
        config.locate(item.path),
        item.path,
        "is fitted inside each walk-forward fold: it runs on the strategy's own bars "
        "only (leave timeframe: and symbol: out)",
    )
