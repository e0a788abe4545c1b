"""A paper or live run's files, kept current: ``metrics.json``, ``equity.csv``, the report.

After every tick that processed a bar (the journal committed first), `LiveOutputs`
rewrites ``metrics.json``, ``equity.csv`` and ``trades.csv`` from the engine's state,
each atomically (`tradeloom.reporting.outputs.atomic_file`: a temporary file in the run
directory, then `os.replace`), so a reader never sees half a file. ``report.html``
takes longer to draw (plotly's page: ~0.2 s for a short run, ~0.5 s for 20,000 bars):
it is redrawn at most every ``live.report_seconds`` (60 s by default), and always when
the run stops.

The files cover the live bars only (not the warm-up history); a refresh that fails
(a full disk, a plotting error) is logged and the run trades on: the journal, not
these files, is the run's record.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import structlog

from tradeloom.journal import journal_path
from tradeloom.reporting import outputs
from tradeloom.reporting.execution_quality import journal_execution_quality
from tradeloom.reporting.metrics import performance
from tradeloom.reporting.statistics import equity_statistics, trade_statistics, turnover
from tradeloom.reporting.tearsheet import tearsheet
from tradeloom.reporting.trades import trade_frame
from tradeloom.timeframes import periods_per_year

if TYPE_CHECKING:
    from tradeloom.runner.live.runner import LiveRunner

__all__ = ["LiveOutputs", "live_metrics"]

_log = structlog.get_logger("tradeloom.live")


class LiveOutputs:
    """Rewrite a live run's files after its bars.

    Args:
        run_dir: The run directory.
        clock: Seconds of a monotonic clock (the report's throttle).
    """

    def __init__(self, run_dir: Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.run_dir = run_dir
        self._clock = clock
        self._report_at: float | None = None
        self._trades: tuple[int, pd.DataFrame, dict[str, Any]] | None = None
        self.refreshes = 0
        self.reports = 0

    def refresh(self, runner: LiveRunner, *, final: bool = False) -> None:
        """Rewrite the files from ``runner``'s state; the report when due (or ``final``).

        Never raises (but for KeyboardInterrupt and the like): a failure is logged.
        """
        try:
            if not self._write(runner):
                return
            self.refreshes += 1
            every = runner.config.live.report_seconds
            now = self._clock()
            due = self._report_at is None or now - self._report_at >= every
            if (final or due) and runner.config.outputs.report:
                from tradeloom.reporting.report import write_report

                self._report_at = now
                write_report(self.run_dir)
                self.reports += 1
        except Exception as exc:
            _log.error(
                "outputs_refresh_failed",
                run_dir=str(self.run_dir),
                error=f"{type(exc).__name__}: {exc}",
            )

    def _write(self, runner: LiveRunner) -> bool:
        session = runner.session
        if session is None:
            return False
        history = session.history
        first = runner.first_live_bar
        n = len(history)
        if n <= first:
            return False  # no live bar yet
        engine = session.engine
        close_all = history.values(n)[:, 3]
        curve = engine.equity_curve(close_all)[first:]
        index = pd.DatetimeIndex(history.times_ns(n)[first:].view("datetime64[ns]"), tz="UTC")
        initial = engine.portfolio.initial_cash
        equity = curve[:, 2]
        peak = np.maximum.accumulate(np.maximum(equity, initial))
        frame = pd.DataFrame(
            {
                "timestamp": index,
                "close": close_all[first:],
                "position": curve[:, 0],
                "cash": curve[:, 1],
                "equity": equity,
                "drawdown": 1.0 - equity / peak,
            }
        )
        rec = runner.recorder_or_fail
        closed = len(engine.trades)
        if self._trades is None or self._trades[0] != closed:
            # trades.csv and its figures change only when a trade closes
            trades = trade_frame(engine.trades, rec.orders, rec.fills)
            figures = trade_statistics(trades, history.timeframe_seconds)
            outputs.write_frame(self.run_dir, "trades.csv", trades)
            self._trades = (closed, trades, figures)
        metrics = live_metrics(runner, frame, self._trades[2])
        metrics["execution_quality"] = journal_execution_quality(
            journal_path(self.run_dir), runner.config.document
        )
        outputs.write_frame(self.run_dir, "equity.csv", frame)
        outputs.write_metrics(self.run_dir, metrics)
        return True


def live_metrics(
    runner: LiveRunner, equity: pd.DataFrame, trade_figures: dict[str, Any]
) -> dict[str, Any]:
    """Return ``metrics.json`` of a paper or live run over its live bars so far.

    Args:
        runner: The running run.
        equity: Its ``equity.csv`` frame.
        trade_figures: `trade_statistics` of its ``trades.csv``.
    """
    session = runner.session
    assert session is not None
    engine = session.engine
    book = engine.portfolio
    rec = runner.recorder_or_fail
    history = session.history
    seconds = history.timeframe_seconds
    curve = pd.Series(equity["equity"].to_numpy(), index=pd.DatetimeIndex(equity["timestamp"]))
    close = pd.Series(equity["close"].to_numpy(), index=curve.index)
    perf = performance(
        curve,
        equity["position"],
        initial_cash=book.initial_cash,
        timeframe_seconds=seconds,
        trades=engine.trades,
        fees=book.fees,
    )
    perf.update(trade_figures)
    perf["turnover"] = turnover(rec.fills, curve)
    stats = equity_statistics(
        curve,
        close,
        initial_cash=book.initial_cash,
        cagr=perf["cagr"],
        max_drawdown=perf["max_drawdown"],
    )
    index = curve.index
    sheet = tearsheet(
        curve,
        close,
        initial_cash=book.initial_cash,
        periods_per_year=periods_per_year(seconds),
        benchmark="buy and hold",
    )
    last_close = float(close.iloc[-1])
    entry = book.entry_price
    entry_bar = book.entry_bar
    monitors = {m.name: m.summary() for m in session.p.monitors}
    statuses = [str(s.get("status")) for s in monitors.values() if "status" in s]
    return {
        "strategy": runner.config.name,
        "mode": runner.mode,
        "run_dir": str(runner.run_dir),
        "updated": datetime.now(UTC).isoformat(timespec="seconds"),
        "symbol": history.symbol,
        "timeframe": history.timeframe,
        "bars": len(curve),
        "start": index[0].isoformat(),
        "end": index[-1].isoformat(),
        "period": f"{index[0]:%Y-%m-%d} .. {index[-1]:%Y-%m-%d}",
        "initial_cash": book.initial_cash,
        **perf,
        **stats,
        "tearsheet": sheet,
        "open_position": book.position,
        "open_position_entry_price": entry,
        "open_position_entry_time": (
            None if entry_bar is None else history.bar(entry_bar).timestamp.isoformat()
        ),
        "open_position_pnl": (
            None if entry is None or book.position == 0.0 else book.position * (last_close - entry)
        ),
        "state": session.state,
        "signals": rec.signals,
        "orders": len(rec.orders),
        "fills": len(rec.fills),
        "rejections": dict(sorted(rec.rejections.items())),
        "halt": f"{rec.halt.code} at {rec.halt.timestamp:%Y-%m-%d %H:%M}" if rec.halt else None,
        "model_trainings": sum(1 for t in rec.trainings if not t.skipped),
        "monitoring": monitors,
        "health": _worst(statuses),
        **({} if runner.book_feed is None else {"order_book": runner.book_feed.summary()}),
    }


def _worst(statuses: list[str]) -> str | None:
    ranks = ["HEALTHY", "WARNING", "CRITICAL"]
    known = [s for s in statuses if s in ranks]
    return max(known, key=ranks.index) if known else None
