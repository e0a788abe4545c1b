"""Per-bar tables of a run: ``features.parquet`` (what the model saw and what it said) and
``monitoring.parquet`` (each monitor's figures at each bar, for the report's charts)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from tradeloom.domain import Signal

__all__ = [
    "FEATURES_FILE",
    "MONITORING_FILE",
    "features_frame",
    "monitoring_frame",
    "write_parquet",
]

FEATURES_FILE = "features.parquet"
MONITORING_FILE = "monitoring.parquet"


def features_frame(
    features: pd.DataFrame, probability: pd.Series, signals: Sequence[Signal]
) -> pd.DataFrame:
    """Return every feature column, the probability traded on, and the signal, per bar.

    ``signal`` is the signal's direction (+1 long, -1 short, 0 flat) at the bars where the
    signal layer gave one and NaN elsewhere; ``signal_confidence`` likewise.
    """
    frame = features.copy()
    frame["probability"] = probability.to_numpy(np.float64)
    direction = np.full(len(frame), np.nan)
    confidence = np.full(len(frame), np.nan)
    if signals:
        bars = np.fromiter((s.bar for s in signals), np.int64, len(signals))
        direction[bars] = np.fromiter((s.direction for s in signals), np.float64, len(signals))
        confidence[bars] = np.fromiter((s.confidence for s in signals), np.float64, len(signals))
    frame["signal"] = direction
    frame["signal_confidence"] = confidence
    frame.index.name = "timestamp"
    return frame


def monitoring_frame(
    values: Mapping[str, Sequence[tuple[int, Mapping[str, float]]]], index: pd.DatetimeIndex
) -> pd.DataFrame:
    """Return one column per monitor and metric (``rolling_auc.auc``), one row per bar.

    A metric per feature column (``psi.<column>``) is left out: its monitor's summary
    (``psi_max``) is charted. Bars a monitor did not see are NaN.
    """
    frame = pd.DataFrame(index=index)
    frame.index.name = "timestamp"
    for monitor, rows in values.items():
        if not rows:
            continue
        bars = np.fromiter((bar for bar, _ in rows), np.int64, len(rows))
        for name in rows[0][1]:
            if "." in name:
                continue
            column = np.full(len(index), np.nan)
            column[bars] = [float(v.get(name, np.nan)) for _, v in rows]
            frame[f"{monitor}.{name}"] = column
    return frame


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    """Write a frame with its timestamp index as a column (zstd-compressed)."""
    frame.reset_index().to_parquet(path, index=False, compression="zstd")
