"""Run a validated strategy as a backtest and write its run directory."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import structlog

from tradeloom import __version__
from tradeloom.domain import RunInfo
from tradeloom.plugins.manager import Plugins
from tradeloom.plugins.model.registry import MODELS_DIR, registry_metrics, save_models
from tradeloom.reporting import outputs
from tradeloom.reporting.metrics import performance, prediction_auc
from tradeloom.runner.backtest import BacktestResult, Driver, run_backtest
from tradeloom.runner.events import Recorder
from tradeloom.runner.health import action_counts, retrains
from tradeloom.runner.journal import Journal
from tradeloom.runner.wiring import Pipeline

__all__ = ["RunOutcome", "run_key", "run_strategy"]

_log = structlog.get_logger("tradeloom.run")


@dataclass(frozen=True)
class RunOutcome:
    """Where a run wrote its files, its metrics, and the in-memory result."""

    run_dir: Path
    metrics: dict[str, Any]
    result: BacktestResult


def run_key(document: Any) -> str:
    """Return 8 hex digits identifying the resolved strategy (client order ids use it)."""
    text = json.dumps(document, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def run_strategy(
    pipeline: Pipeline, plugins: Plugins, *, out: Path | None = None, driver: Driver = "auto"
) -> RunOutcome:
    """Backtest ``pipeline`` and write its run directory.

    The journal is opened first and closed last: whatever was journaled before a
    failure (bad data, a plugin's exception) stays in it.

    Args:
        pipeline: The built strategy.
        plugins: The plugin manager whose observers are told about the run.
        out: The run directory to use instead of ``runs/<name>-<time>``.
        driver: Which driver runs the sequential layers (`run_backtest`).
    """
    config = pipeline.config
    run_dir = outputs.make_run_dir(config.name, out).resolve()
    outputs.write_strategy(run_dir, config.document)
    run = RunInfo(run_id=run_dir.name, strategy=config.name, mode="backtest", run_dir=str(run_dir))
    journal = Journal(run_dir / "journal.sqlite")
    log = _log.bind(run_id=run.run_id, strategy=config.name)
    started = time.perf_counter()
    try:
        journal.append(
            "run",
            {
                "event": "started",
                "mode": "backtest",
                "strategy": config.name,
                "source": str(config.source),
                "tradeloom": __version__,
                "wall_time": datetime.now(UTC).isoformat(),
            },
        )
        plugins.hook.tradeloom_run_started(run=run)
        log.info("run_started", run_dir=str(run_dir))
        recorder = Recorder(journal, plugins.hook, run)
        key = f"{config.name}-{run_key(config.document)}"
        result = run_backtest(pipeline, recorder, key, driver=driver)
        # at the end, so that folds retrained mid-run are saved with the scheduled ones
        saved = save_models(
            run_dir / MODELS_DIR,
            pipeline.model,
            strategy=config.name,
            feature_spec=config.feature_spec(),
            timestamps=result.bars.frame.index,
        )
        if saved is not None:
            recorder.note("models_saved", saved.journal_row())
        metrics = _metrics(pipeline, result, run_dir)
        metrics["model_registry"] = registry_metrics(saved, pipeline.model)
        _write(run_dir, result, metrics)
        journal.append(
            "run",
            {
                "event": "finished",
                "wall_time": datetime.now(UTC).isoformat(),
                "seconds": round(time.perf_counter() - started, 3),
            },
        )
    except BaseException as exc:
        journal.append(
            "run",
            {
                "event": "failed",
                "error": f"{type(exc).__name__}: {exc}",
                "wall_time": datetime.now(UTC).isoformat(),
            },
        )
        raise
    finally:
        journal.close()
    log.info("run_finished", seconds=round(time.perf_counter() - started, 2))
    plugins.hook.tradeloom_run_finished(run=run, metrics=metrics)
    return RunOutcome(run_dir=run_dir, metrics=metrics, result=result)


def _metrics(pipeline: Pipeline, result: BacktestResult, run_dir: Path) -> dict[str, Any]:
    bars = result.bars
    rec = result.recorder
    index = bars.frame.index
    perf = performance(
        result.equity["equity"],
        result.equity["position"],
        initial_cash=result.portfolio.initial_cash,
        timeframe_seconds=bars.timeframe_seconds,
        trades=result.portfolio.trades,
        fees=result.portfolio.fees,
    )
    predictions = prediction_auc(
        result.probability, bars.frame["close"], max(int(pipeline.model.horizon), 1)
    )
    monitors = {m.name: m.summary() for m in pipeline.monitors}
    statuses = [str(s.get("status")) for s in monitors.values() if "status" in s]
    worst = max(statuses, key=["HEALTHY", "WARNING", "CRITICAL"].index) if statuses else None
    return {
        "strategy": pipeline.config.name,
        "run_dir": str(run_dir),
        "symbol": bars.symbol,
        "timeframe": bars.timeframe,
        "bars": len(bars),
        "start": index[0].isoformat(),
        "end": index[-1].isoformat(),
        "period": f"{index[0]:%Y-%m-%d} .. {index[-1]:%Y-%m-%d}",
        **perf,
        "open_position": float(result.portfolio.position),
        "signals": rec.signals,
        "orders": len(rec.orders),
        "fills": len(rec.fills),
        "unfilled_orders": len(result.unfilled),
        "rejections": dict(sorted(rec.rejections.items())),
        "halt": f"{rec.halt.code} at {rec.halt.timestamp:%Y-%m-%d %H:%M}" if rec.halt else None,
        "model_trainings": sum(1 for t in rec.trainings if not t.skipped),
        "model_folds_skipped": sum(1 for t in rec.trainings if t.skipped),
        "auc": predictions["auc"],
        "predictions": predictions["predictions"],
        "monitoring": monitors,
        "health": worst,
        "retrains": retrains(rec.trainings, index),
        "health_actions": action_counts(pipeline.config.health, rec.health_actions),
    }


def _write(run_dir: Path, result: BacktestResult, metrics: dict[str, Any]) -> None:
    outputs.write_metrics(run_dir, metrics)
    equity = result.equity.reset_index(names="timestamp")
    outputs.write_frame(run_dir, "equity.csv", equity)
    outputs.write_frame(run_dir, "orders.csv", _records(result.recorder.orders, _ORDER_COLUMNS))
    outputs.write_frame(run_dir, "fills.csv", _records(result.recorder.fills, _FILL_COLUMNS))
    outputs.write_frame(run_dir, "trades.csv", _records(result.portfolio.trades, _TRADE_COLUMNS))


_ORDER_COLUMNS = ("id", "bar", "timestamp", "side", "quantity", "reason", "reference_price")
_FILL_COLUMNS = ("order_id", "bar", "timestamp", "side", "quantity", "price", "fee", "slippage")
_TRADE_COLUMNS = (
    "direction",
    "entry_bar",
    "entry_time",
    "exit_bar",
    "exit_time",
    "quantity",
    "entry_price",
    "exit_price",
    "fees",
    "pnl",
)


def _records(items: list[Any], columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame([[getattr(i, c) for c in columns] for i in items], columns=list(columns))
