"""Read a finished run's directory: the one place the reporting code reads a run from.

Everything comes from documented run-directory files (``metrics.json``, ``equity.csv``,
``trades.csv``, ``orders.csv``, ``fills.csv``, ``strategy.yaml``, ``features.parquet``,
``monitoring.parquet``), except the timeline of events (folds, retrains, halts, health
changes and trading-state changes), which only the journal holds. The
journal is read in `_journal_events` alone, so that moving to the typed journal's
reader changes one function.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from tradeloom.errors import UserError
from tradeloom.journal import (
    HaltEvent,
    HealthActionFired,
    HealthChanged,
    ModelTrained,
    RunFailed,
    TradingStateChanged,
    journal_path,
    read_events,
)
from tradeloom.reporting.exports import FEATURES_FILE, MONITORING_FILE
from tradeloom.safe_files import UnreadableFile, read_csv, read_json, read_yaml, require_regular

__all__ = ["RunData", "RunEvent", "load_run"]

_REQUIRED = ("metrics.json", "equity.csv")
_TIME_COLUMNS = ("timestamp", "entry_time", "exit_time")
_TEXT_COLUMNS = (*_TIME_COLUMNS, "symbol", "side", "exit_reason", "strategy", "book")
"""The columns of a run's CSV tables that hold text; every other one holds numbers."""


@dataclass(frozen=True)
class RunEvent:
    """Something that happened at a bar, for the report's timeline.

    Attributes:
        kind: ``fold``, ``retrain``, ``halt``, ``health``, ``health_action``,
            or ``trading_state``.
        bar: The bar it happened at.
        timestamp: That bar's time.
        label: A short text (a code, a status, a reason).
        detail: The rest, for hover text.
    """

    kind: str
    bar: int
    timestamp: pd.Timestamp
    label: str
    detail: str = ""


@dataclass(frozen=True)
class RunData:
    """Everything the report and ``compare`` show of one run."""

    run_dir: Path
    metrics: dict[str, Any]
    equity: pd.DataFrame
    trades: pd.DataFrame
    strategy: dict[str, Any]
    features: pd.DataFrame | None = None
    monitoring: pd.DataFrame | None = None
    events: tuple[RunEvent, ...] = field(default_factory=tuple)

    @property
    def name(self) -> str:
        """Return the strategy's name (the run directory's name if unknown)."""
        return str(self.metrics.get("strategy") or self.run_dir.name)


def load_run(run_dir: Path, *, per_bar: bool = True) -> RunData:
    """Read a run directory.

    Args:
        run_dir: The directory a backtest wrote.
        per_bar: Also read the per-bar tables and the journal's events (the report
            needs them; ``compare`` does not).

    Raises:
        UserError: Not a directory, not a run, or a run that failed before its results.
    """
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: not a directory; give a run directory (runs/<name>-<time>)")
    missing = [name for name in _REQUIRED if not (run_dir / name).is_file()]
    if missing:
        raise UserError(_missing_message(run_dir, missing))
    metrics = read_json(run_dir / "metrics.json", "a run's metrics")
    if not isinstance(metrics, dict):
        raise UserError(f"{run_dir}/metrics.json: expected an object of metrics")
    equity = _csv(run_dir / "equity.csv")
    trades = _csv(run_dir / "trades.csv") if (run_dir / "trades.csv").is_file() else None
    if trades is not None:
        trades = _complete_trades(trades)
    strategy = _strategy(run_dir / "strategy.yaml")
    if not per_bar:
        return RunData(run_dir, metrics, equity, _or_empty(trades), strategy)
    return RunData(
        run_dir,
        metrics,
        equity,
        _or_empty(trades),
        strategy,
        features=_parquet(run_dir / FEATURES_FILE),
        monitoring=_parquet(run_dir / MONITORING_FILE),
        events=tuple(_journal_events(journal_path(run_dir), equity)),
    )


def _missing_message(run_dir: Path, missing: list[str]) -> str:
    names = " and ".join(missing)
    failure = _failure(journal_path(run_dir))
    if failure is not None:
        return f"{run_dir}: the run failed ({failure}), so it has no {names}; fix and run it again"
    if not journal_path(run_dir).exists() and not (run_dir / "strategy.yaml").exists():
        return f"{run_dir}: not a run directory (no {names}, no journal.sqlite)"
    return f"{run_dir}: no {names}; the run did not finish (still running, or killed)"


def _failure(path: Path) -> str | None:
    if not path.is_file():
        return None
    for event in read_events(path, ["run_failed"]):
        assert isinstance(event, RunFailed)
        return event.error
    return None


def _csv(path: Path) -> pd.DataFrame:
    frame = read_csv(path, "a run's table", text_columns=_TEXT_COLUMNS)
    for column in _TIME_COLUMNS:
        if column in frame.columns:
            try:
                frame[column] = pd.to_datetime(frame[column], utc=True)
            except (ValueError, TypeError) as exc:
                raise UserError(
                    f"{path}: column {column}: not times ({exc}); damaged, or not a run's table"
                ) from None
    return frame


def _complete_trades(trades: pd.DataFrame) -> pd.DataFrame:
    """Add the columns a run written before they existed lacks (side, return, reason)."""
    if not len(trades.columns):
        return trades
    if "side" not in trades and "direction" in trades:
        trades["side"] = ["long" if d > 0 else "short" for d in trades["direction"]]
    if "return" not in trades and {"pnl", "quantity", "entry_price"} <= set(trades):
        trades["return"] = trades["pnl"] / (trades["quantity"] * trades["entry_price"])
    if "exit_reason" not in trades:
        trades["exit_reason"] = ""
    trades["exit_reason"] = trades["exit_reason"].fillna("").astype(str)
    return trades


def _or_empty(frame: pd.DataFrame | None) -> pd.DataFrame:
    return frame if frame is not None else pd.DataFrame()


def _parquet(path: Path) -> pd.DataFrame | None:
    if not path.exists():
        return None
    require_regular(path, "a run's table")
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:  # pyarrow's errors are these
        raise UserError(f"{path}: not a parquet table ({exc}); damaged, or another file") from None
    if "timestamp" in frame.columns:
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


def _strategy(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        document = read_yaml(path, "a run's strategy file")
    except UnreadableFile:
        return {}  # the report shows the run without the strategy's settings
    return document if isinstance(document, dict) else {}


_KINDS = ("model_trained", "halt", "health", "health_action", "trading_state")


def _journal_events(path: Path, equity: pd.DataFrame) -> list[RunEvent]:
    if not path.exists():
        return []
    times = equity["timestamp"] if "timestamp" in equity.columns else None
    events: list[RunEvent] = []
    for event in read_events(path, list(_KINDS)):
        bar = event.bar
        if isinstance(event, ModelTrained):
            if event.skipped:
                continue
            retrain = event.reason != "scheduled"
            label = f"fold {event.fold}" + (f" (retrain: {event.reason})" if retrain else "")
            detail = f"trained on bars {event.train_start}..{event.train_end}"
            kind = "retrain" if retrain else "fold"
            events.append(_event(kind, event.predict_start, times, label, detail))
        elif isinstance(event, HaltEvent):
            events.append(_event("halt", bar, times, event.code, event.message))
        elif isinstance(event, HealthChanged):
            label = f"{event.monitor}: {event.previous} -> {event.status}"
            detail = f"{event.metric}={event.value}"
            events.append(_event("health", bar, times, label, detail))
        elif isinstance(event, HealthActionFired):
            label = f"health rule: {event.action}"
            events.append(_event("health_action", bar, times, label, event.reason))
        elif isinstance(event, TradingStateChanged):
            label = f"{event.state} ({event.code})"
            events.append(_event("trading_state", bar, times, label, event.message))
    return [e for e in events if e.bar >= 0]


def _event(kind: str, bar: Any, times: pd.Series | None, label: str, detail: str) -> RunEvent:
    index = -1 if bar is None else int(bar)
    if times is None or not 0 <= index < len(times):
        return RunEvent(kind, -1, pd.NaT, label, detail)
    return RunEvent(kind, index, times.iloc[index], label, detail)
