"""The run directory and the files a run writes into it."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from tradeloom.errors import UserError

__all__ = ["RUN_FILES", "make_run_dir", "write_frame", "write_metrics", "write_strategy"]

RUN_FILES = (
    "strategy.yaml",
    "metrics.json",
    "equity.csv",
    "orders.csv",
    "fills.csv",
    "trades.csv",
    "journal.sqlite",
)


def make_run_dir(name: str, out: Path | None, *, root: Path = Path("runs")) -> Path:
    """Create and return the run directory.

    ``out`` is used as given (it must not hold a run already); otherwise
    ``runs/<name>-<UTC time>`` is created, with a suffix if that exists.

    Raises:
        UserError: ``out`` already holds a journal, or is a file.
    """
    if out is not None:
        if out.exists() and not out.is_dir():
            raise UserError(f"--out {out}: is a file; give a folder")
        if (out / "journal.sqlite").exists():
            raise UserError(f"--out {out}: already holds a run (journal.sqlite); give a new folder")
        out.mkdir(parents=True, exist_ok=True)
        return out
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = root / f"{name}-{stamp}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = Path(f"{base}-{n}")
    path.mkdir(parents=True)
    return path


def write_strategy(run_dir: Path, document: Mapping[str, Any]) -> None:
    """Write the resolved strategy file (overrides applied, secrets as references)."""
    text = yaml.safe_dump(dict(document), sort_keys=False, allow_unicode=True)
    (run_dir / "strategy.yaml").write_text(text, encoding="utf-8")


def write_metrics(run_dir: Path, metrics: Mapping[str, Any]) -> None:
    """Write ``metrics.json`` (NaN and infinities as null)."""
    text = json.dumps(_finite(metrics), indent=2, sort_keys=True)
    (run_dir / "metrics.json").write_text(text + "\n", encoding="utf-8")


def write_frame(run_dir: Path, name: str, frame: pd.DataFrame) -> None:
    """Write a frame as CSV with ISO-8601 UTC timestamps and full float precision."""
    frame.to_csv(
        run_dir / name, index=False, float_format="%.17g", date_format="%Y-%m-%dT%H:%M:%SZ"
    )


def _finite(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
