"""A paper or live run's files, kept current: ``metrics.json``, ``equity.csv``, the report.

After every tick that processed a bar (the journal committed first), `LiveOutputs` hands
the run to a background thread (`LatestWriter`); the trading thread does not wait for
the files, nor copy what they need. The thread copies it from the engine (a `Snapshot`:
the equity curve's arrays, the trades, orders and fills, the run's state and counts)
under `LiveOutputs.lock`, which the trading thread holds while it changes the run (a
tick, the stop): a snapshot is of the run between two ticks. The copy costs what is new
since the last, not the run: the curve's rows are extended by the new bars (`LiveBars`)
and the records are views of copies extended by the new ones (`RecordCopies`). The
thread appends the new bars to ``equity.csv`` (`EquityFile`), rewrites ``trades.csv``
when a trade closed and ``metrics.json`` (each atomically:
`tradeloom.reporting.outputs`), so a reader never sees half a file. When bars come
faster than the files are written (a simulated clock at ``--speed max``), only the
newest snapshot is written: each holds the whole run so far. ``report.html`` takes
longer to draw (plotly's page: ~0.2 s for a short run, ~0.5 s for 20,000 bars): it is
redrawn at most every ``live.report_seconds`` (60 s by default), and always when the run
stops, after the last snapshot is written; the redraws between the first and the last
run in a process of their own (each reads the whole run back: drawn here, the run's
memory grew with every one), and the heap's free pages are given back after a refresh.
Before each report, ``features.parquet`` is written whole from the live bars' feature
rows, the ones the model was given (`MarketHistory.rows`): the report draws a paper
run's indicators as a backtest's, from the same numbers.

What the metrics read is kept between refreshes, so that a refresh costs the new bars
and records plus passes over arrays, not a Python loop over the run: the journal's
blocks (``execution_quality``, a router's ``venues``) follow the journal, reading only
the rows committed since the last refresh and resolving again only the orders they
touched (`JournalFigures`); the trades' P&L and the fills' notional are added as they
arrive (`TradeLedger`). The curve's figures (performance, drawdowns, calendar returns,
the benchmark) are numpy passes over the curve's arrays; the rolling Sharpe and
volatility stay pandas' rolling windows over the whole curve (their summary is over
every window so far, and pandas' running sums are not state a refresh can resume
exactly). Every value equals the batch functions' over the whole run: the same code,
fed the same rows. A new engine (a restart, a rebuild after the journal was lost)
starts them all again.

The files cover the live bars only (not the warm-up history); a refresh that fails
(a full disk, a plotting error) is logged and the run trades on: the journal, not
these files, is the run's record.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradeloom.core import layout as L
from tradeloom.engine.capabilities import calibration_metric
from tradeloom.engine.features import feature_plots
from tradeloom.engine.frames import equal_weight, equity_frame, position_rows
from tradeloom.engine.funding import funding_series
from tradeloom.engine.health import run_health
from tradeloom.engine.sides import sides_metric
from tradeloom.engine.text_guard import text_metrics
from tradeloom.live.outputs.equity_file import EquityFile
from tradeloom.live.outputs.heap import release_free_heap
from tradeloom.live.outputs.journal_figures import JournalFigures
from tradeloom.live.outputs.latest_writer import LatestWriter
from tradeloom.live.outputs.record_copies import RecordCopies
from tradeloom.reporting import exports, outputs
from tradeloom.reporting.account_figures import TradeLedger, account_figures
from tradeloom.reporting.attribution import symbol_attribution
from tradeloom.reporting.labels import TRADES_NOT_APPLICABLE
from tradeloom.reporting.refusals import refusal_metrics, unfilled_orders
from tradeloom.reporting.statistics import trade_statistics
from tradeloom.reporting.tearsheet import tearsheet
from tradeloom.reporting.trades import trade_frame
from tradeloom.runtime.lazy import logger
from tradeloom.runtime.memory import release_arrow_pool
from tradeloom.time.calendars import CRYPTO, TradingCalendar

if TYPE_CHECKING:
    from tradeloom.engine.driver import Engine
    from tradeloom.live.tick.book_feed import BookFeed
    from tradeloom.live.tick.history import MarketHistory
    from tradeloom.live.tick.services import JournalLink, Markets, RunFiles
    from tradeloom.live.tick.session import LiveSession

__all__ = [
    "LiveBars",
    "LiveOutputs",
    "OutputsSource",
    "Snapshot",
    "live_metrics",
    "run_facts",
]


@dataclass(frozen=True)
class OutputsSource:
    """What the output files read of a run (the run's services, read when snapshot).

    Attributes:
        files: The run's file in force, mode and directory.
        link: Its recorder.
        markets: Its session.
        first_live_bar: The first bar traded live (the bars before it are the warm-up).
        book_feed: One market's order book (None: none).
    """

    files: RunFiles
    link: JournalLink
    markets: Markets
    first_live_bar: int
    book_feed: BookFeed | None


_log = logger("tradeloom.live")

_TRIM_SECONDS = 1.0
"""The heap's free memory is given back at most this often (after a refresh)."""


@dataclass(frozen=True)
class Snapshot:
    """What the files of a run say after a bar, taken by the files' thread between ticks.

    Its arrays never change once taken (one market's are views of `LiveBars`, whose
    handed-over rows stay as they are).

    Attributes:
        times: The live bars' times (ns since the epoch, UTC).
        close: Each live bar's close (one market) or closes ``[bars, symbols]``.
        curve: One market: each live bar's position, cash and equity (columns).
            A universe: each bar's cash and equity (columns).
        positions: A universe's positions ``[bars, symbols]`` (None: one market).
        trades: The closed trades (a view of a list that only grows: `RecordCopies`).
        orders: The orders sent (likewise).
        fills: The fills booked (likewise).
        order_symbols: Each order id's symbol (None: one market).
        facts: The ``metrics.json`` keys read from the run's state (counts, state,
            open positions, monitors), as of the bar.
        initial_cash: The account's starting cash.
        fees: The fees paid so far.
        timeframe_seconds: The bar's length.
        document: The strategy document (execution quality's terms).
        report: Draw ``report.html`` (``outputs.report``).
        report_seconds: At most once every this many seconds (``live.report_seconds``).
        generation: The engine's: another number is another engine (a restart, a
            rebuild after the journal was lost), whose figures start again.
        calendar: The data's trading calendar (the annualization, `periods_per_year`).
        perpetual: A perpetual: ``metrics.json`` has its net ``funding``.
        features: The live bars' feature rows ``[bars, symbols, columns]``, as the run
            computed them for its model (a view of `MarketHistory.rows`, whose rows
            stay as they are once appended; None: ``outputs.features`` is off, or the
            run has no feature of its own, a portfolio file's account).
        feature_columns: Their columns.
        symbols: The symbols of the rows.
        plots: Where the report draws each column (`feature_plots`).
    """

    times: npt.NDArray[np.int64]
    close: npt.NDArray[np.float64]
    curve: npt.NDArray[np.float64]
    positions: npt.NDArray[np.float64] | None
    trades: Sequence[Any]
    orders: Sequence[Any]
    fills: Sequence[Any]
    order_symbols: Mapping[str, str] | None
    facts: dict[str, Any]
    initial_cash: float
    fees: float
    timeframe_seconds: int
    document: Mapping[str, Any]
    report: bool
    report_seconds: float
    generation: int = 0
    calendar: TradingCalendar = CRYPTO
    perpetual: bool = False
    features: npt.NDArray[np.float64] | None = None
    feature_columns: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ()
    plots: Mapping[str, str] | None = None

    def periods_per_year(self) -> float:
        """Return the bars a year of the data's calendar has over the live bars (as a
        backtest over the same bars annualizes: `tradeloom.time.calendars`)."""
        times = self.times
        first, last = (int(times[0]), int(times[-1])) if len(times) else (0, 0)
        return self.calendar.periods_per_year(self.timeframe_seconds, first, last)

    def calendar_year(self) -> float | None:
        """`periods_per_year` for `account_figures`: None for crypto (its 365-day year,
        computed exactly as a backtest does)."""
        return None if self.calendar is CRYPTO else self.periods_per_year()

    @property
    def index(self) -> pd.DatetimeIndex:
        """The live bars' times."""
        return pd.DatetimeIndex(self.times.view("datetime64[ns]"), tz="UTC")


class LiveOutputs:
    """Keep a live run's files current, written on a thread of their own.

    Args:
        run_dir: The run directory.
        clock: Seconds of a monotonic clock (the report's throttle).
    """

    def __init__(self, run_dir: Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.run_dir = run_dir
        self._clock = clock
        self._report_at: float | None = None
        self._trades: tuple[int, pd.DataFrame, dict[str, Any]] | None = None
        self.equity = EquityFile(run_dir)
        self._bars = LiveBars()
        """One market's live bars, extended at each snapshot."""
        self._closes: list[npt.NDArray[np.float64]] = []
        """A universe's closes of each bar so far (a bar's row is copied once, when new)."""
        self._records = RecordCopies()
        """The trades, orders and fills handed over (each copied once, when new)."""
        self._engine: Engine | None = None
        self._generation = 0
        self._order_symbols: dict[str, str] = {}
        self._journal = JournalFigures(run_dir)
        """The blocks read from the journal (on the writer's thread)."""
        self._ledger: tuple[int, TradeLedger] | None = None
        """The trades and fills the figures read, of one engine (on the writer's thread)."""
        self.lock = threading.Lock()
        """Held by the trading thread while it changes the run (`LiveRunner.changing`);
        the writer's thread copies a snapshot under it."""
        self.writer: LatestWriter[OutputsSource] = LatestWriter(self._refresh, "tradeloom-outputs")
        self.refreshes = 0
        """Snapshots written."""
        self.reports = 0
        """Reports drawn."""
        self._trimmed_at: float | None = None
        self._latest: Snapshot | None = None
        """The snapshot written last: its features are written before a report is drawn."""
        self._features_at = -1
        """The live bars ``features.parquet`` holds (-1: not written by this process)."""

    def refresh(self, run: OutputsSource, *, final: bool = False) -> None:
        """Have the writer's thread snapshot ``run`` and write its files; ``final``:
        end that thread, then snapshot and write here and draw the report.

        Not ``final``, the caller may hold `lock` (the writer takes it to snapshot);
        ``final``, it must not. Never raises (but for KeyboardInterrupt and the like): a
        failure is logged.
        """
        if not final:
            self.writer.submit(run)
            return
        self.writer.close()
        self._refresh(run)
        self._journal.close()
        self._write_features()
        if self.refreshes and run.files.config.outputs.report:
            self._draw_report(here=True)

    def _refresh(self, run: OutputsSource) -> None:
        try:
            with self.lock:
                snapshot = self.snapshot(run)
        except Exception as exc:
            _failed(self.run_dir, exc)
            return
        if snapshot is not None:
            self._write(snapshot)

    def wait(self) -> None:
        """Block until every snapshot handed over is written."""
        self.writer.wait()

    def snapshot(self, run: OutputsSource) -> Snapshot | None:
        """Return what the files say after the run's last bar (None: no live bar yet)."""
        session = run.markets.session
        if session is None:
            return None
        history = session.history
        first = run.first_live_bar
        n = len(history)
        if n <= first:
            return None  # no live bar yet
        if len(history.symbols) > 1:
            return self._universe_snapshot(run, history, first, n)
        times, close, curve = self._bars.extend(session.engine, history, first, n)
        return self._snapshot_of(
            run,
            times=times,
            close=close,
            curve=curve,
            positions=None,
            facts=_facts(run),
        )

    def _snapshot_of(
        self,
        run: OutputsSource,
        *,
        times: npt.NDArray[np.int64],
        close: npt.NDArray[np.float64],
        curve: npt.NDArray[np.float64],
        positions: npt.NDArray[np.float64] | None,
        facts: dict[str, Any],
    ) -> Snapshot:
        """Return a `Snapshot` of ``run``: these arrays, and the run's records (each list
        copied once, when new: the writer thread reads them while the run appends)."""
        session = run.markets.session
        assert session is not None
        engine = session.engine
        if engine is not self._engine:
            self._engine = engine
            self._generation += 1
            self._records.clear()
            self._order_symbols = {}
        rec = run.link.recorder_or_fail
        order_symbols = None
        if positions is not None:  # a universe: a new dict only when an order was added
            if len(rec.order_symbols) != len(self._order_symbols):
                self._order_symbols = dict(rec.order_symbols)
            order_symbols = self._order_symbols
        config = run.files.config
        history = session.history
        features = None
        if config.outputs.features and history.columns:
            n = len(history)
            features = history.rows()[n - len(times) : n]
        return Snapshot(
            times=times,
            close=close,
            curve=curve,
            positions=positions,
            trades=self._records.view("trades", engine.trades),
            orders=self._records.view("orders", rec.orders),
            fills=self._records.view("fills", rec.fills),
            order_symbols=order_symbols,
            facts=facts,
            initial_cash=engine.portfolio.initial_cash,
            fees=engine.portfolio.fees,
            timeframe_seconds=history.timeframe_seconds,
            document=config.document,
            report=config.outputs.report,
            report_seconds=config.live.report_seconds,
            generation=self._generation,
            calendar=data_calendar(session),
            perpetual=funding_series(getattr(session.p, "venue", None)) is not None,
            features=features,
            feature_columns=tuple(history.columns) if features is not None else (),
            symbols=tuple(history.symbols),
            plots=feature_plots(session.p) if features is not None else None,
        )

    def _universe_snapshot(
        self, run: OutputsSource, history: MarketHistory, first: int, n: int
    ) -> Snapshot:
        session = run.markets.session
        assert session is not None
        engine = session.engine
        del self._closes[n:]
        self._closes.extend(np.array(history.prices(t)[:, 3]) for t in range(len(self._closes), n))
        close_all = np.stack(self._closes)
        positions, cash, equity = engine.universe_curve(close_all)
        book = engine.portfolio
        monitors, statuses = _monitoring(engine)
        facts = run_facts(run.files, run.link, session)
        health = run_health(statuses, facts.get("model_never_trained"))
        facts |= {
            "symbol": ",".join(history.symbols),
            "symbols": list(history.symbols),
            "benchmark": "equal_weight",
            "open_positions": {
                symbol: book.position_of(s)
                for s, symbol in enumerate(history.symbols)
                if book.position_of(s) != 0.0
            },
            **({"monitoring": monitors, "health": health} if monitors or health else {}),
        }
        return self._snapshot_of(
            run,
            times=np.array(history.times_ns(n)[first:], dtype=np.int64),
            close=close_all[first:],
            curve=np.column_stack([cash[first:], equity[first:]]),
            positions=positions[first:],
            facts=facts,
        )

    def _write(self, snapshot: Snapshot) -> None:
        try:
            self.write_files(snapshot)
            self._latest = snapshot
            self.refreshes += 1
            now = self._clock()
            if snapshot.report and (
                self._report_at is None or now - self._report_at >= snapshot.report_seconds
            ):
                self._write_features()
                self._draw_report()
        except Exception as exc:
            _failed(self.run_dir, exc)
        now = self._clock()
        if self._trimmed_at is None or now - self._trimmed_at >= _TRIM_SECONDS:
            # what the refresh freed goes back to the system (`tradeloom.live.outputs.heap`)
            self._trimmed_at = now
            release_free_heap()

    def _write_features(self) -> None:
        """Write ``features.parquet`` of the last snapshot: its live bars' feature rows,
        the very numbers the model was given, where the report draws them as a backtest's
        (written whole, when a report is drawn and when the run stops: not at every bar)."""
        snapshot = self._latest
        if snapshot is None or snapshot.features is None:
            return
        bars = len(snapshot.times)
        if bars == self._features_at:
            return
        try:
            symbols = snapshot.symbols
            present = ~np.isnan(snapshot.close) if len(symbols) > 1 else None
            frame = exports.clock_features_frame(
                snapshot.index, snapshot.features, snapshot.feature_columns, symbols, present
            )
            data = exports.parquet_bytes(frame, snapshot.plots)
            outputs.atomic_bytes(self.run_dir / exports.FEATURES_FILE, data)
            self._features_at = bars
        except Exception as exc:
            _failed(self.run_dir, exc)
        # Arrow's pool keeps the pages of the file's table, larger at every write (40
        # symbols x 4,000 bars: 38 MB resident after the write, handed back here)
        release_arrow_pool()

    def _draw_report(self, *, here: bool = False) -> None:
        """Draw ``report.html``: the first and the last here, the others (each reads the
        whole run back, larger at every draw) in a process of its own, whose memory goes
        back to the system when it ends (drawn here, the run's grew with every draw)."""
        from tradeloom.reporting.report import write_report

        try:
            self._report_at = self._clock()
            if here or not self.reports:
                write_report(self.run_dir)
            else:
                _draw_apart(self.run_dir)
            self.reports += 1
        except Exception as exc:
            _failed(self.run_dir, exc)

    def write_files(self, snapshot: Snapshot) -> None:
        """Write ``equity.csv``, ``trades.csv`` and ``metrics.json`` of ``snapshot``
        (over a universe ``positions.csv`` too)."""
        if snapshot.positions is not None:
            self._write_universe(snapshot)
            return
        equity = snapshot.curve[:, 2]
        initial = snapshot.initial_cash
        peak = np.maximum.accumulate(np.maximum(equity, initial))
        frame = pd.DataFrame(
            {
                "timestamp": snapshot.index,
                "close": snapshot.close,
                "position": snapshot.curve[:, 0],
                "cash": snapshot.curve[:, 1],
                "equity": equity,
                "drawdown": 1.0 - equity / peak,
            }
        )
        figures = self.trade_figures(snapshot)
        metrics = live_metrics(snapshot, frame, figures, self._ledger_of(snapshot))
        quality, venues = self._journal.blocks(snapshot.generation, snapshot.document)
        metrics["execution_quality"] = quality
        if venues:  # a router's: what each venue bought, sold, holds and charged
            metrics["venues"] = venues
        if snapshot.perpetual:  # its funding, net, in the equity above as in a backtest's
            metrics["funding"] = self._journal.funding
        self._allocation(snapshot, metrics)
        self.equity.write(frame)
        outputs.write_metrics(self.run_dir, metrics)

    def _allocation(self, snapshot: Snapshot, metrics: dict[str, Any]) -> None:
        """Add an allocating strategy's ``allocation`` block to ``metrics``, from its
        journal, as a backtest's (and say that the trade figures do not apply)."""
        refusals = metrics.get("refusals") or {}
        block = self._journal.allocation(snapshot.generation, snapshot.document, refusals)
        if block is not None:
            metrics["allocation"] = block
            metrics["trade_statistics"] = TRADES_NOT_APPLICABLE

    def _write_universe(self, snapshot: Snapshot) -> None:
        assert snapshot.positions is not None
        symbols = tuple(snapshot.facts["symbols"])
        index = snapshot.index
        close, positions = snapshot.close, snapshot.positions
        cash, equity = snapshot.curve[:, 0], snapshot.curve[:, 1]
        frame = equity_frame(index, symbols, close, positions, cash, equity, snapshot.initial_cash)
        figures = self.trade_figures(snapshot)
        metrics = _universe_metrics(snapshot, frame, figures, self._ledger_of(snapshot))
        self._allocation(snapshot, metrics)
        self.equity.write(frame.reset_index(names="timestamp"))
        outputs.write_frame(
            self.run_dir, "positions.csv", position_rows(index, close, positions, symbols)
        )
        outputs.write_metrics(self.run_dir, metrics)

    def _ledger_of(self, snapshot: Snapshot) -> TradeLedger:
        """Return the trade ledger of the snapshot's engine, with its new trades and fills."""
        if self._ledger is None or self._ledger[0] != snapshot.generation:
            self._ledger = (snapshot.generation, TradeLedger())
        ledger = self._ledger[1]
        ledger.add(snapshot.trades[ledger.trades :], snapshot.fills[ledger.fills :])
        return ledger

    def trade_figures(self, snapshot: Snapshot) -> dict[str, Any]:
        """Write ``trades.csv`` when a trade closed since the last; return its figures."""
        closed = len(snapshot.trades)
        if self._trades is None or self._trades[0] != closed:
            # trades.csv and its figures change only when a trade closes
            trades = trade_frame(
                snapshot.trades, snapshot.orders, snapshot.fills, snapshot.order_symbols
            )
            figures = trade_statistics(trades, snapshot.timeframe_seconds)
            outputs.write_frame(self.run_dir, "trades.csv", trades)
            self._trades = (closed, trades, figures)
        return self._trades[2]


class LiveBars:
    """One market's live bars as the snapshots hand them over: times, closes, curve rows.

    Each snapshot extends the arrays by the bars since the last one, and computes again
    only the rows of the bars a fill booked since then moved (a fill booked late), so a
    tick's snapshot costs the new bars, not the whole run. A snapshot gets views of the
    arrays' first rows, which never change afterwards: the rows after them are written
    in place, and rows a late fill moves, or a full array, are written to a new copy (a
    snapshot stays what it was when taken, whoever still holds it). A new engine (a
    restart, a rebuild after the journal was lost) starts them again.
    """

    def __init__(self) -> None:
        self._engine: Engine | None = None
        self._first = 0
        self._end = 0
        """The bar after the last one held."""
        self._marks = 0
        """The engine's fill marks seen."""
        self._times = np.empty(0, np.int64)
        self._close = np.empty(0, np.float64)
        self._curve = np.empty((0, 3), np.float64)

    def extend(
        self, engine: Engine, history: MarketHistory, first: int, n: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Return the times, closes and position/cash/equity rows of bars ``first .. n``."""
        marks = engine.fill_marks()
        if (
            engine is not self._engine
            or first != self._first
            or n < self._end
            or len(marks) < self._marks
        ):
            self._engine, self._first, self._end, self._marks = engine, first, first, 0
        held = self._end - first
        start = self._end
        if len(marks) > self._marks:  # the first bar a new fill moved
            start = min(start, max(first, int(marks[self._marks :, 0].min())))
        size = n - first
        if size > len(self._times):
            capacity = max(2 * len(self._times), size, 1024)
            self._times = _grown(self._times, held, capacity)
            self._close = _grown(self._close, held, capacity)
            self._curve = _grown(self._curve, held, capacity)
        elif start < self._end:  # rows a snapshot was handed: a copy for the new ones
            self._curve = self._curve.copy()
        self._times[held:size] = history.times_ns(n)[self._end : n]
        self._close[held:size] = history.closes(n)[self._end : n, 0]
        self._curve[start - first : size] = engine.equity_curve(
            self._close[start - first : size], start
        )
        self._end, self._marks = n, len(marks)
        return self._times[:size], self._close[:size], self._curve[:size]


def _grown(array: npt.NDArray[Any], rows: int, capacity: int) -> npt.NDArray[Any]:
    grown = np.empty((capacity, *array.shape[1:]), array.dtype)
    grown[:rows] = array[:rows]
    return grown


def data_calendar(session: Any) -> TradingCalendar:
    """Return the calendar of a live session's data (crypto: a source that names none,
    or a portfolio file's session)."""
    data = getattr(getattr(session, "p", None), "data", None)
    calendar = getattr(data, "calendar", CRYPTO)
    return calendar if isinstance(calendar, TradingCalendar) else CRYPTO


def _draw_apart(run_dir: Path) -> None:
    """Draw ``run_dir``'s report in a new Python process (`tradeloom.reporting.report`).

    Raises:
        RuntimeError: The process failed: its last line of error output.
    """
    done = subprocess.run(
        [sys.executable, "-m", "tradeloom.reporting.report", str(run_dir)],
        capture_output=True,
        text=True,
        check=False,
        # its own session: a terminal's Ctrl-C stops the run, which says why; the report
        # it was drawing finishes instead of failing with a KeyboardInterrupt logged
        start_new_session=True,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise RuntimeError(f"the report's process failed: {last}")


def _failed(run_dir: Path, exc: Exception) -> None:
    _log.error("outputs_refresh_failed", run_dir=str(run_dir), error=f"{type(exc).__name__}: {exc}")


def run_facts(files: RunFiles, link: JournalLink, session: LiveSession) -> dict[str, Any]:
    """Return the ``metrics.json`` keys of any live run read from its state: names,
    state, counts, the halt (under `LiveOutputs.lock`: the state changes with the bars)."""
    rec = link.recorder_or_fail
    untrained = session.never_trained()
    return {
        "strategy": files.config.name,
        "mode": files.mode,
        "run_dir": str(files.run_dir),
        "updated": datetime.now(UTC).isoformat(timespec="seconds"),
        "timeframe": session.history.timeframe,
        "state": session.state,
        "signals": rec.signals,
        "orders": len(rec.orders),
        "fills": len(rec.fills),
        "unfilled_orders": unfilled_orders(
            rec.cancellations.column("order_id").tolist(),
            rec.cancellations.column("remaining").tolist(),
        ),
        **refusal_metrics(rec.refusals()),
        "halt": _halt(link, session),
        "model_trainings": sum(1 for t in rec.trainings if not t.skipped),
        # only where it holds, as a backtest's metrics.json
        **({"model_never_trained": untrained} if untrained else {}),
        **calibration_metric(files.config, session.p.sizer, session.p.model),
        **sides_metric(files.config, session.p.venue),
        # only with text features: which came from text, their scorers and cutoffs
        **text_metrics(files.config, session.p.features, None),
    }


def _halt(link: JournalLink, session: LiveSession) -> str | None:
    """Return the halt that holds: the one journaled by this process, else the code
    that holds the run HALTED (a halt latched before a restart, the kill switch)."""
    halt = link.recorder_or_fail.halt
    if halt is not None:
        return f"{halt.code} at {halt.timestamp:%Y-%m-%d %H:%M}"
    if session.state != "HALTED":
        return None
    engine = session.engine
    if engine.halted:
        return engine.halt_code
    return engine.ctx.table.name(int(engine.state.acct[L.A_STATE_WHY]))


def _facts(run: OutputsSource) -> dict[str, Any]:
    """`run_facts` of one market, with its open position, monitors and order book."""
    session = run.markets.session
    assert session is not None
    book = session.engine.portfolio
    history = session.history
    entry = book.entry_price
    entry_bar = book.entry_bar
    last_close = float(history.closes()[-1, 0])
    monitors, statuses = _monitoring(session.engine)
    facts = run_facts(run.files, run.link, session)
    return {
        **facts,
        "symbol": history.symbol,
        "open_position": book.position,
        "open_position_entry_price": entry,
        "open_position_entry_time": (
            None if entry_bar is None else history.time(entry_bar).isoformat()
        ),
        "open_position_pnl": (
            None if entry is None or book.position == 0.0 else book.position * (last_close - entry)
        ),
        "monitoring": monitors,
        "health": run_health(statuses, facts.get("model_never_trained")),
        **({} if run.book_feed is None else {"order_book": run.book_feed.summary()}),
    }


def live_metrics(
    snapshot: Snapshot,
    equity: pd.DataFrame,
    trade_figures: dict[str, Any],
    ledger: TradeLedger | None = None,
) -> dict[str, Any]:
    """Return ``metrics.json`` of a paper or live run over its live bars so far.

    Args:
        snapshot: The run after its last bar.
        equity: Its ``equity.csv`` frame.
        trade_figures: `trade_statistics` of its ``trades.csv``.
        ledger: Its trades and fills as added so far (None: read from the snapshot).
    """
    curve = pd.Series(equity["equity"].to_numpy(), index=pd.DatetimeIndex(equity["timestamp"]))
    close = pd.Series(equity["close"].to_numpy(), index=curve.index)
    figures = _account_figures(snapshot, curve, equity["position"], close, trade_figures, ledger)
    sheet = tearsheet(
        curve,
        close,
        initial_cash=snapshot.initial_cash,
        periods_per_year=snapshot.periods_per_year(),
        benchmark="buy and hold",
    )
    facts = snapshot.facts
    head = {k: facts[k] for k in ("strategy", "mode", "run_dir", "updated", "symbol", "timeframe")}
    return {
        **head,
        **figures,
        "calendar": snapshot.calendar.name,
        "periods_per_year": snapshot.periods_per_year(),
        "tearsheet": sheet,
        **{k: v for k, v in facts.items() if k not in head},
    }


def _monitoring(engine: Engine) -> tuple[dict[str, Any], list[str]]:
    """Return each monitor's summary by label (over a universe, each symbol's:
    ``<monitor>[<symbol>]``) and their statuses (`run_health` takes the worst)."""
    monitors = {label: m.summary() for label, m in engine.monitors().items()}
    return monitors, [str(s.get("status")) for s in monitors.values() if "status" in s]


def _account_figures(
    snapshot: Snapshot,
    curve: pd.Series,
    position: pd.Series,
    benchmark: pd.Series,
    trade_figures: dict[str, Any],
    ledger: TradeLedger | None,
) -> dict[str, Any]:
    """Return the figures of a live run's account in ``metrics.json``: its span, its
    performance (with ``trade_figures`` and the turnover) and its statistics against
    ``benchmark``, the same for one market and for a universe."""
    return {
        "bars": len(curve),
        **account_figures(
            curve,
            position,
            benchmark,
            snapshot,
            timeframe_seconds=snapshot.timeframe_seconds,
            fills=snapshot.fills,
            trade_figures=trade_figures,
            periods_per_year=snapshot.calendar_year(),
            ledger=ledger,
        ),
    }


def _universe_metrics(
    snapshot: Snapshot, equity: pd.DataFrame, trade_figures: dict[str, Any], ledger: TradeLedger
) -> dict[str, Any]:
    """Return ``metrics.json`` of a universe's live bars so far: the account, the
    equal-weight benchmark of the symbols and the attribution by symbol."""
    assert snapshot.positions is not None and snapshot.order_symbols is not None
    positions, close = snapshot.positions, snapshot.close
    symbols = tuple(snapshot.facts["symbols"])
    curve = equity["equity"]
    index = curve.index
    held = pd.Series(np.abs(positions).sum(1), index=index)  # the bars with any position
    benchmark = equal_weight(close, index)
    figures = _account_figures(snapshot, curve, held, benchmark, trade_figures, ledger)
    facts = snapshot.facts
    head = ("strategy", "mode", "run_dir", "updated", "symbol", "symbols", "benchmark")
    return {
        **{k: facts[k] for k in head},
        "timeframe": facts["timeframe"],
        **figures,
        "calendar": snapshot.calendar.name,
        "periods_per_year": snapshot.periods_per_year(),
        **{k: v for k, v in facts.items() if k not in head and k != "timeframe"},
        "attribution": symbol_attribution(
            symbols,
            snapshot.fills,
            snapshot.order_symbols,
            snapshot.trades,
            positions,
            close,
            curve.to_numpy(np.float64),
        ),
    }
