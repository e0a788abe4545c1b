"""The files a run writes into its directory (`tradeloom.runner.run_dir` makes it)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

__all__ = ["RUN_FILES", "write_frame", "write_metrics", "write_strategy"]

RUN_FILES = (
    "strategy.yaml",
    "metrics.json",
    "equity.csv",
    "orders.csv",
    "fills.csv",
    "trades.csv",
    "journal.sqlite",
)


def write_strategy(run_dir: Path, document: Mapping[str, Any]) -> None:
    """Write the resolved strategy file (overrides applied, secrets as references)."""
    text = yaml.safe_dump(dict(document), sort_keys=False, allow_unicode=True)
    (run_dir / "strategy.yaml").write_text(text, encoding="utf-8")


def write_metrics(run_dir: Path, metrics: Mapping[str, Any]) -> None:
    """Write ``metrics.json`` (NaN and infinities as null)."""
    text = json.dumps(_finite(metrics), indent=2, sort_keys=True)
    (run_dir / "metrics.json").write_text(text + "\n", encoding="utf-8")


def write_frame(run_dir: Path, name: str, frame: pd.DataFrame) -> None:
    """Write a frame as CSV with ISO-8601 UTC timestamps.

    Floats are written in their shortest form that reads back to the same number
    (``806.19``, not ``806.19000000000005``): pandas' default, Python's ``repr``.
    """
    frame.to_csv(run_dir / name, index=False, date_format="%Y-%m-%dT%H:%M:%SZ")


def _finite(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
