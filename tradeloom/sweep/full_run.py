"""A variant the batched core cannot run, run as ``tradeloom run`` runs it.

A plugin's signal, sizing, risk rule or venue, health rules that act, or a universe of
several symbols need Python at some bars: such a variant runs as a whole backtest in a
temporary run directory (deleted after), and its row takes the same metrics
(`tradeloom.sweep.batch.METRIC_KEYS`) from its ``metrics.json``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tradeloom.backtest.run import run_strategy
from tradeloom.engine.wiring import build_pipeline
from tradeloom.schemas import load_strategy
from tradeloom.schemas.yaml_loader import parse_yaml
from tradeloom.sweep.batch import METRIC_KEYS

__all__ = ["run_full"]


def run_full(
    path: str, overrides: tuple[str, ...], key: str, text: str | None = None
) -> tuple[dict[str, Any], npt.NDArray[np.float32], float, dict[str, str]]:
    """Backtest one variant (a task); return its metrics, bar returns, seconds and hashes.

    ``text``: the strategy file's text, sent with the task (a Dask worker need not see
    the file; its relative paths resolve against ``path``'s folder); None: read it.
    """
    started = time.perf_counter()
    document = None if text is None else parse_yaml(text, path)
    config, plugins = load_strategy(path, overrides, document=document)
    pipeline = build_pipeline(config)
    folder = Path(tempfile.mkdtemp(prefix=f"tradeloom-sweep-{key}-"))
    try:
        outcome = run_strategy(pipeline, plugins, out=folder / "run")
        metrics = {k: outcome.metrics.get(k) for k in METRIC_KEYS}
        values = outcome.result.equity["equity"].to_numpy(np.float64)
        previous = np.concatenate(([outcome.result.portfolio.initial_cash], values[:-1]))
        returns = (values / previous - 1.0).astype(np.float32)[None, :]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    hashes = {"data": "", "features": "", "model": "", "inputs": ""}
    return metrics, returns, time.perf_counter() - started, hashes
