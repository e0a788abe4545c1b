"""A backtest's trained models: saved at the end of the run into its folder, or kept by a
run held in memory (`ModelsOut`), each save journaled (``models_saved``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from tradeloom.backtest.pipeline import BacktestResult
from tradeloom.engine.events import Recorder
from tradeloom.engine.wiring import Pipeline
from tradeloom.journal import ModelsSaved
from tradeloom.plugins.model.registry import (
    MODELS_DIR,
    ModelFiles,
    model_files,
    registry_metrics,
)
from tradeloom.schemas.config import StrategyConfig

__all__ = [
    "ModelsOut",
    "folder_name",
    "save_models",
    "save_trained",
]


ModelsOut = Callable[[str, ModelFiles], None]
"""Where a run's saved models go, by their folder relative to the run: written into the
run's folder, or kept by a run held in memory (`hold_strategy`)."""


def save_models(
    pipeline: Pipeline, result: BacktestResult, recorder: Recorder, out: Path | ModelsOut
) -> dict[str, Any] | None:
    """Save what was trained: the model, or (``per_symbol``) each symbol's in its folder.

    At the end, so that folds retrained mid-run are saved with the scheduled ones.
    """
    config = pipeline.config
    models = result.models or {"": pipeline.model}
    registry: dict[str, Any] = {}
    for symbol, model in models.items():
        relative = f"{MODELS_DIR}/{folder_name(symbol)}" if symbol else MODELS_DIR
        registry[symbol] = save_trained(
            model, config, out, relative, result.universe.index, recorder, symbol
        )
    if list(registry) == [""]:
        return registry[""]  # type: ignore[no-any-return]
    return registry


def save_trained(
    model: Any,
    config: StrategyConfig,
    out: Path | ModelsOut,
    relative: str,
    timestamps: pd.DatetimeIndex,
    recorder: Recorder,
    symbol: str,
) -> Any:
    """Save a trained model's folds in ``out / relative`` (``out``: the run's folder, or
    `ModelsOut`); return its registry entry.

    Where folds were saved, they are journaled (``models_saved``, for ``symbol``) and
    the entry's ``dir`` is ``relative``.
    """
    files = model_files(
        model,
        strategy=config.name,
        feature_spec=config.feature_spec(),
        timestamps=timestamps,
    )
    if files is not None:
        if isinstance(out, Path):
            files.write(out / relative)
        else:
            out(relative, files)
        event = ModelsSaved(**files.journal_row())
        recorder.record(replace(event, symbol=symbol, dir=relative))
    entry: Any = registry_metrics(files, model)
    if files is not None:
        entry["dir"] = relative
    return entry


def folder_name(symbol: str) -> str:
    """Return a folder name for ``symbol`` (``BTC/USDT`` -> ``BTC-USDT``)."""
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in symbol)
