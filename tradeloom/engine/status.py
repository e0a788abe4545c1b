"""``tradeloom status RUN_DIR``: what a run is doing, or did, read from its journal.

The journal is read through `tradeloom.journal.FrameFollower` alone, read-only and in one
snapshot: a running paper or live run keeps writing it (SQLite WAL lets a reader and
the writer work at once), and its ``live.pid`` lock is only tested, never taken. The
other files read are documented ones: ``strategy.yaml`` (the timeframe), ``live.pid``
(is a process running it) and, for a backtest, its equity table (the closes; a backtest
journals no bar prices).

Position, cash and equity come from the journal's fills (``cash -= side x quantity x
price + fee``, as the core books them) and a perpetual's funding payments (``cash +=
amount``), marked at the last bar's close, so they are
what the journal says, whether the process is alive, stopped, or was killed mid-bar.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from tradeloom.engine.model_in_force import models_in_force
from tradeloom.engine.status_figures import (
    _EPS,
    _average_cost,
    _day_start,
    _equity_curve,
    _fill_marks,
    _finite,
    _held_now,
    _iso,
    _quantities,
    _venues_cash,
)
from tradeloom.engine.status_text import _ago, _duration, error_line
from tradeloom.engine.status_values import (
    AllocationStatus,
    AllocationWeight,
    OpenOrder,
    Position,
    RunStatus,
)
from tradeloom.errors import UserError
from tradeloom.files.reading import NotAFile, read_yaml_kept
from tradeloom.journal import FrameFollower, journal_path, verify_again
from tradeloom.journal.events import kinds_read_by
from tradeloom.reporting.allocation_figures import top_columns
from tradeloom.reporting.monitor_labels import monitor_label
from tradeloom.reporting.refusals import (
    refusals_of_frames,
)
from tradeloom.runtime.lazy import pandas as pd
from tradeloom.time.timeframes import parse_timeframe

__all__ = ["RunFollower", "RunReading", "read_run"]

_KINDS = kinds_read_by("status", "status_error", "lifecycle")
"""The kinds status reads: its own, its errors', and a run's lifecycle's (the console's
promote buttons change with them)."""
_ENDED = ("stopped", "finished", "failed")
"""Processes that ended on purpose or by failure (not killed): no bar is due."""

_ERROR_KINDS = kinds_read_by("status_error")
_TERMINAL_ORDER_STATES = frozenset({"filled", "cancelled", "rejected"})
_HEALTH_RANKS = ("HEALTHY", "WARNING", "CRITICAL")
ERRORS_SHOWN = 5
"""How many of the last errors status shows."""
WEIGHTS_SHOWN = 10
"""Symbols whose target and held weights status lists at most; past it the largest
``WEIGHTS_SHOWN - 1`` and the rest counted and summed."""


@dataclass(frozen=True)
class RunReading:
    """A run's status, its equity curve and the journal's frames they were read from.

    Attributes:
        status: What ``tradeloom status`` shows.
        curve: The equity at each bar, the status's equity its last value: ``timestamp``
            (UTC) and ``equity`` (empty before a bar or without the starting capital).
        frames: The journal's rows by kind, as of one moment (each read of new rows is
            one read transaction: `FrameFollower`).
        restarted: Why this reading read the journal from its first row again though
            it had been read before (`RunFollower`: it was replaced or cut); None: it
            did not.
    """

    status: RunStatus
    curve: pd.DataFrame
    frames: dict[str, pd.DataFrame]
    restarted: str | None = None


def read_run(run_dir: Path, *, now: pd.Timestamp | None = None) -> RunReading:
    """Read what the run in ``run_dir`` is doing (or did), its equity curve and the
    journal's rows of the kinds status reads (fills, orders, rejections, health...).

    Args:
        run_dir: A run directory (a backtest's, a paper or a live run's).
        now: The time now (UTC), for ages and staleness; the wall clock by default.

    Raises:
        UserError: Not a run directory (one line naming it).
        JournalError: The journal is of another format version, damaged or truncated
            (one line naming it and the problem).
    """
    return RunFollower(run_dir).read(now=now)


class RunFollower:
    """Read a run again and again as it trades, its journal's new rows only each time.

    The first `read` checks the journal's hash chain and tail record (`verify`) and
    reads its rows; each later one checks and reads the rows committed since
    (`tradeloom.journal.verify_again`, `FrameFollower`) and computes the status again
    from all of them. A journal replaced (rotated, copied, restored) or cut since is
    read again from its first row, verified again, and the reading says why
    (`RunReading.restarted`).

    Args:
        run_dir: A run directory (a backtest's, a paper or a live run's).
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._frames = FrameFollower(journal_path(run_dir), _KINDS)
        self._lock = threading.Lock()  # one read at a time (a console reads from threads)

    def read(self, *, now: pd.Timestamp | None = None) -> RunReading:
        """Return the run as `read_run` reads it, from the rows read before and the new.

        Raises:
            UserError: Not a run directory (one line naming it).
            JournalError: The journal is of another format version, damaged or
                truncated (one line naming it and the problem).
        """
        with self._lock:
            return self._read(now)

    def _read(self, now: pd.Timestamp | None) -> RunReading:
        run_dir = self.run_dir
        now = pd.Timestamp.now(tz="UTC") if now is None else now
        journal = journal_path(run_dir)
        if not run_dir.is_dir():
            raise UserError(f"{run_dir}: not a directory; give a run directory (runs/<name>-...)")
        if not journal.exists():
            raise UserError(
                f"{run_dir}: not a run directory (no journal.sqlite); give the folder a "
                "'tradeloom run' wrote"
            )
        follower = self._frames
        try:
            # a cut, broken or another run's journal shows nothing: each read checks the
            # rows appended since the last (the first, or a journal replaced: all), after
            # reading them, so that a row committed between the two is checked too
            follower.read()
            verify_again(journal)
        except BaseException:
            follower.reset()  # the next read starts, and verifies, again
            raise
        restarted = follower.restarted and f"{follower.restarted}: read again from its first row"
        frames, meta = dict(follower.frames), follower.meta
        status = _Status(run_dir, frames, meta.get("mode", ""), meta.get("strategy", ""), now)
        return RunReading(status.build(), status.curve, frames, restarted)


class _Status:
    def __init__(
        self,
        run_dir: Path,
        frames: dict[str, Any],
        mode: str,
        strategy: str,
        now: pd.Timestamp,
    ) -> None:
        self.run_dir = run_dir
        self.f = frames
        self.mode = mode
        self.strategy = strategy
        self.now = now
        loaded = self._last("data_loaded")
        self.timeframe, self.seconds = _timeframe(
            run_dir, None if loaded is None else str(loaded["timeframe"])
        )
        started = self._first("run_started")
        self.simulated = started is not None and str(started["clock"]) == "simulated"
        """The run's clock is not the wall clock: ages are measured on the run's own."""
        self._closes: dict[str, float] = {}
        """A universe backtest's last close of each symbol held at its end (its positions
        table's last rows; equity.csv's columns in a run written before)."""
        self._strategies: dict[str, float] = {}
        """A portfolio file's backtest: each strategy's last P&L (its equity.csv's)."""
        self.curve: Any = None
        """The equity at each bar (`build` sets it: a frame of ``timestamp``, ``equity``)."""

    # --- the journal's rows, as the frames hold them (`_RowStatus`: as rows) ------------

    def _count(self, kind: str) -> int:
        return len(self.f[kind])

    def _first(self, kind: str) -> Any:
        """The kind's first row (its values by column name); None: none."""
        frame = self.f[kind]
        return frame.iloc[0] if len(frame) else None

    def _last(self, kind: str) -> Any:
        """The kind's last row (its values by column name); None: none."""
        frame = self.f[kind]
        return frame.iloc[-1] if len(frame) else None

    def _column(self, kind: str, name: str) -> list[Any]:
        """The kind's values of one column, in the journal's order."""
        return list(self.f[kind][name])

    def _last_of(self, kinds: tuple[str, ...]) -> tuple[str, Any] | None:
        best: tuple[str, Any] | None = None
        for kind in kinds:
            row = self._last(kind)
            if row is not None and (best is None or row["seq"] > best[1]["seq"]):
                best = (kind, row)
        return best

    def build(self) -> RunStatus:
        self.curve = pd.DataFrame({"timestamp": pd.to_datetime([], utc=True), "equity": []})
        process, detail, pid = self._process()
        state, code, reason, since = self._state()
        bars = self._bars()
        capital = self._capital()
        marks = _fill_marks(self.f["fill"], self.f["funding"])
        last_close = float(bars["close"].iloc[-1]) if len(bars) else None
        if last_close is not None and math.isnan(last_close):
            last_close = None  # a universe: each symbol's, with its position
        cash = equity = total = day_pnl = day_return = None
        day = None
        if capital is not None:
            cash = capital - float(marks["flow"].sum()) if len(marks) else capital
            if len(bars):
                # a universe backtest's equity.csv has its equity: several markets
                curve = (
                    bars["equity"].to_numpy(np.float64)
                    if "equity" in bars
                    else _equity_curve(bars, marks, capital)
                )
                equity = float(curve[-1])
                self.curve = pd.DataFrame(
                    {"timestamp": pd.to_datetime(bars["timestamp"], utc=True), "equity": curve}
                ).reset_index(drop=True)
                day, start = _day_start(bars, curve, capital, self.seconds, ended=process in _ENDED)
                day_pnl = equity - start
                day_return = day_pnl / start if start else None
            elif not self._positions_held(marks):
                equity = cash
            total = equity / capital - 1.0 if equity is not None and capital else None
        last = bars.iloc[-1] if len(bars) else None
        last_time = None if last is None else pd.Timestamp(last["timestamp"])
        close_time = None if last_time is None else last_time + pd.Timedelta(seconds=self.seconds)
        now = self._run_now()
        age = None if close_time is None else (now - close_time).total_seconds()
        symbol = self._symbol(bars)
        status = self._run_status(
            (process, detail, pid),
            (state, code, reason, since),
            last_bar=None if last is None else int(last["bar"]),
            last_time=last_time,
            close_time=close_time,
            age=age,
            last_close=last_close,
            bars=len(bars),
            money=(capital, cash, equity, total, day, day_pnl, day_return),
            symbol=symbol,
            positions=self._positions(marks, symbol, last_close),
            refused=refusals_of_frames(self.f),
        )
        status = replace(
            status, canary=self._canary(status.last_bar), watch=self._watch(status.last_bar)
        )
        if not len(self.f["challenger_bar"]):
            return status
        # pandas' figures: the rows' reader hands a run with challengers to this one
        from tradeloom.reporting.book_figures import book_figures, label_horizon

        horizon = label_horizon(_strategy(self.run_dir))
        books = book_figures(self.f, self.curve, capital, self.seconds, horizon)
        return replace(status, books=books)

    def _run_status(
        self,
        process: tuple[str, str, int | None],
        state: tuple[str, str, str, str | None],
        *,
        last_bar: int | None,
        last_time: Any,
        close_time: Any,
        age: float | None,
        last_close: float | None,
        bars: int,
        money: tuple[Any, ...],
        symbol: str,
        positions: list[Position],
        refused: Any,
    ) -> RunStatus:
        """Return the `RunStatus` of the figures a reader worked out (the frames' or the
        rows' `build`) and of what both read alike: the staleness, health, open orders,
        counts and errors. ``money``: capital, cash, equity, total return, day, day P&L
        and day return; ``last_time`` and ``close_time`` as `_iso` takes them."""
        stale, staleness = self._staleness(process[0], age, close_time)
        health, worst, monitors = self._health()
        capital, cash, equity, total, day, day_pnl, day_return = money
        return RunStatus(
            run_dir=str(self.run_dir),
            strategy=self.strategy,
            mode=self.mode,
            process=process[0],
            process_detail=process[1],
            pid=process[2],
            state=state[0],
            state_code=state[1],
            state_reason=state[2],
            state_since=state[3],
            symbol=symbol,
            timeframe=self.timeframe,
            last_bar=last_bar,
            last_bar_time=_iso(last_time),
            last_bar_close_time=_iso(close_time),
            last_bar_age_seconds=age,
            last_close=last_close,
            bars=bars,
            stale=stale,
            staleness=staleness,
            capital=capital,
            cash=cash,
            equity=equity,
            total_return=total,
            day=day,
            day_pnl=day_pnl,
            day_return=day_return,
            positions=positions,
            open_orders=self._open_orders(),
            health=health,
            health_worst=worst,
            monitors=monitors,
            signals=self._count("signal"),
            orders=self._count("order"),
            fills=self._count("fill"),
            rejections=self._count("rejection"),
            errors=self._errors(),
            strategies=dict(self._strategies),
            refusals=refused.nested(),
            exits_refused=refused.exits_by_purpose(),
            allocation=self._allocation(positions, equity),
            parity=self._parity(),
            models=self._models(),
        )

    def _records(self, kind: str) -> list[Mapping[str, Any]]:
        """The kind's rows as mappings by column name, in the journal's order."""
        return list(self.f[kind].to_dict("records"))

    def _models(self) -> dict[str, str]:
        """The model in force per strategy, in words (`models_in_force`): a portfolio
        file's strategies' by name, a strategy's run alone's as ''; {} for a backtest."""
        if self.mode not in ("paper", "live"):
            return {}
        starts = self._records("strategy_at_start")
        if starts:
            sections = {str(r["strategy"]): _model_section(r["document"]) for r in starts}
        else:
            row = self._last("config_reloaded")  # the document in force: its last reload's
            if row is None:
                row = self._first("run_started")
            sections = {"": _model_section(None if row is None else row["document"])}
        models = models_in_force(
            self._records("model_swapped"),
            sections,
            self._records("canary_rolled_back"),
            self._records("promotion_rolled_back"),
        )
        symbols = len({str(s) for s in self._column("live_bar", "symbol")})
        if not starts and symbols > 1:  # a universe: each symbol trades its copy
            models = {name: f"on each of its {symbols} symbols, {w}" for name, w in models.items()}
        return models

    def _canary(self, last_bar: int | None) -> dict[str, Any] | None:
        return self._stage("canary", ("canary_passed", "canary_rolled_back"), last_bar)

    def _watch(self, last_bar: int | None) -> dict[str, Any] | None:
        return self._stage("watch", ("watch_passed", "promotion_rolled_back"), last_bar)

    def _stage(
        self, name: str, ends: tuple[str, str], last_bar: int | None
    ) -> dict[str, Any] | None:
        """A promotion's stage (its ``NAME_started`` row, ended by ``ends``: passed, rolled
        back) as status shows it; None: never started. The canary's share of the size and
        who ended it are shown where its rows record them."""
        started = self._last(f"{name}_started")
        if started is None:
            return None
        since = int(started["bar"])
        stage: dict[str, Any] = {"stage": name, "challenger": str(started["challenger"])}
        if "fraction" in started:
            stage["fraction"] = float(started["fraction"])
        stage.update(
            since_bar=since,
            bars=max(0, (since if last_bar is None else last_bar) - since),
            of_bars=int(started["bars"]),
            by=str(started["by"]),
        )
        ended = self._last_of(ends)
        if ended is None or ended[1]["seq"] < started["seq"]:
            return stage
        kind, row = ended
        stage.update(stage="passed", bars=int(row["bars"]))
        if "by" in row:
            stage["by"] = str(row["by"])
        if kind == ends[1]:
            stage.update(
                stage="rolled_back",
                rule=str(row["rule"]),
                figure=_finite(float(row["figure"])),
                limit=_finite(float(row["limit"])),
            )
        return stage

    def _parity(self) -> dict[str, Any] | None:
        """The live parity monitor's last check (None: none journaled)."""
        last = self._last("parity_checked")
        if last is None:
            return None
        ints = ("bar", "first_bar", "last_bar")
        floats = ("equity_gap", "window_gap", "unexplained_pnl", "max_unexplained")
        texts = ("first_divergence", "verdict", "message")
        return (
            {k: int(last[k]) for k in ints}
            | {k: float(last[k]) for k in floats}
            | {k: str(last[k] or "") for k in texts}
            | {"time": _iso(last["timestamp"]), "checks": self._count("parity_checked")}
        )

    def _allocation(
        self, positions: list[Position], equity: float | None
    ) -> AllocationStatus | None:
        """The last rebalance's targets against the weights held now (at the rebalance's
        close where a position has no price now)."""
        last = self._last("allocation_decided")
        if last is None:
            return None
        symbols = [str(x) for x in last["symbols"]]
        target = np.full(len(symbols), np.nan)
        if len(last["weights"]) == len(symbols):  # empty: no feasible weights yet
            target[:] = np.asarray(last["weights"], np.float64)
        held = np.asarray(last["held"], np.float64)
        held_at = "rebalance"
        now = _held_now(symbols, positions, equity)
        if now is not None:
            held, held_at = now, "now"
        columns = top_columns(np.vstack([target, held]), WEIGHTS_SHOWN)
        others = [j for j in range(len(symbols)) if j not in set(columns)]
        statuses = self._column("allocation_decided", "status")
        return AllocationStatus(
            allocator=str(last["allocator"]),
            bar=int(last["bar"]),
            time=_iso(last["timestamp"]),
            status=str(last["status"]),
            message=str(last["message"] or ""),
            rebalances=len(statuses),
            kept=sum(str(x) != "ok" for x in statuses),
            held_at=held_at,
            weights=[
                AllocationWeight(symbols[j], _finite(target[j]), _finite(held[j])) for j in columns
            ],
            others=len(others),
            others_target=_finite(float(target[others].sum())) if others else None,
            others_held=_finite(float(held[others].sum())) if others else None,
            weighs="strategy" if self._portfolio() else "symbol",
        )

    def _portfolio(self) -> bool:
        """Whether the run is a portfolio file's (its resolved file, else the document
        its ``run_started`` row kept, lists strategies)."""
        document = _strategy(self.run_dir)
        if document is None:
            started = self._first("run_started")
            document = started["document"] if started is not None else None
        # `tradeloom.schemas.file_kind.is_portfolio_document`'s rule, not imported: the
        # schemas package would cost each status pydantic and the plugins (a watch loop)
        return isinstance(document, dict) and "strategies" in document

    # --- the process ------------------------------------------------------------------

    def _process(self) -> tuple[str, str, int | None]:
        from tradeloom.engine.control_files import PID_FILE, running_pid

        pid = running_pid(self.run_dir) if (self.run_dir / PID_FILE).exists() else None
        last = self._last_of(("run_started", "restarted", "run_stopped", "run_finished"))
        failed = self._last_of(("run_failed",))
        if failed is not None and (last is None or failed[1]["seq"] > last[1]["seq"]):
            last = failed
        if pid is not None:
            return "running", f"pid {pid}", pid
        if last is None:
            return "not running", "the journal holds no start (the first start failed)", None
        kind, row = last
        if kind == "run_finished":
            return "finished", f"in {row['seconds']:.1f} s", None
        if kind == "run_failed":
            return "failed", str(row["error"]), None
        if kind == "run_stopped":
            when = _iso(row["wall_time"])
            return "stopped", f"{row['reason']} (after {row['bars']} bars, at {when})", None
        return (
            "not running",
            "no stop was journaled after its last start: killed (kill -9), crashed, or the "
            "machine went down; the same 'tradeloom run' command continues it",
            None,
        )

    # --- the trading state --------------------------------------------------------------

    def _state(self) -> tuple[str, str, str, str | None]:
        row = self._last("halt")
        if row is not None:
            # a risk rule's halt (drawdown, no equity, a health rule) stays: resume lifts
            # only the kill switch
            return "HALTED", str(row["code"]), str(row["message"]), _iso(row["timestamp"])
        row = self._last("trading_state")
        if row is None:
            return "ACTIVE", "", "", None
        since = _iso(row["at"]) or _iso(row["timestamp"])
        return str(row["state"]), str(row["code"]), str(row["message"]), since

    # --- bars and prices ----------------------------------------------------------------

    def _bars(self) -> pd.DataFrame:
        """Return the closes the run saw: live bars, or a backtest's equity table
        (``equity.csv`` or ``equity.parquet``)."""
        from tradeloom.reporting.run_data import read_table
        from tradeloom.reporting.run_tables import EQUITY

        live = self.f["live_bar"]
        if len(live) and live["symbol"].nunique() > 1:
            return self._universe_live_bars(live)
        if len(live):
            return live[["bar", "timestamp", "symbol", "close"]].reset_index(drop=True)
        frame = read_table(self.run_dir, EQUITY) if self.mode == "backtest" else None
        if frame is not None:
            if "close" not in frame.columns:
                return self._universe_bars(frame)
            return pd.DataFrame(
                {
                    "bar": np.arange(len(frame)),
                    "timestamp": frame["timestamp"],
                    "symbol": self._symbol(None),
                    "close": frame["close"].to_numpy(np.float64),
                }
            )
        return pd.DataFrame({"bar": [], "timestamp": [], "symbol": [], "close": []})

    def _universe_live_bars(self, live: pd.DataFrame) -> pd.DataFrame:
        """Return a paper universe's clock (one row per tick) and its equity: the fills up
        to each tick, each symbol marked at its last close; keep each symbol's last close
        for its position."""
        closes = live.pivot_table(index="bar", columns="symbol", values="close", aggfunc="last")
        closes = closes.ffill()
        for symbol, close in closes.iloc[-1].items():
            if math.isfinite(float(close)):
                self._closes[str(symbol)] = float(close)
        times = live.groupby("bar")["timestamp"].first().reindex(closes.index)
        capital = self._capital() or 0.0
        marks = _fill_marks(self.f["fill"], self.f["funding"])
        held = marks.pivot_table(index="bar", columns="symbol", values="signed", aggfunc="sum")
        held = held.reindex(columns=closes.columns, fill_value=0.0).fillna(0.0).cumsum()
        held = held.reindex(closes.index, method="ffill").fillna(0.0)
        flow = marks.groupby("bar")["flow"].sum().cumsum()
        cash = capital - flow.reindex(closes.index, method="ffill").fillna(0.0)
        equity = cash + (held * closes.fillna(0.0)).sum(axis=1)
        return pd.DataFrame(
            {
                "bar": closes.index.to_numpy(np.int64),
                "timestamp": pd.to_datetime(times.to_numpy(), utc=True),
                "symbol": ", ".join(dict.fromkeys(str(s) for s in live["symbol"])),
                "close": np.nan,
                "equity": equity.to_numpy(np.float64),
            }
        )

    def _universe_bars(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return a universe backtest's clock and equity (``close`` NaN: several markets);
        keep each symbol's last close for its position."""
        from tradeloom.reporting.run_data import read_table
        from tradeloom.reporting.run_tables import POSITIONS

        held = read_table(self.run_dir, POSITIONS) if "gross" in frame.columns else None
        if held is not None and len(held):  # the positions table's last rows: the marks
            last = held[held["bar"] == held["bar"].max()]
            for symbol, close in zip(last["symbol"], last["close"], strict=True):
                self._closes[str(symbol)] = float(close)
        for column in frame.columns:  # a run written before the table was long
            if column.startswith("close[") and column.endswith("]"):
                closes = frame[column].dropna()
                if len(closes):
                    self._closes[column[6:-1]] = float(closes.iloc[-1])
            if column.startswith("pnl[") and column.endswith("]") and len(frame):
                self._strategies[column[4:-1]] = float(frame[column].iloc[-1])
        return pd.DataFrame(
            {
                "bar": np.arange(len(frame)),
                "timestamp": pd.to_datetime(frame["timestamp"], utc=True),
                "symbol": "",
                "close": np.nan,
                "equity": frame["equity"].to_numpy(np.float64),
            }
        )

    def _symbol(self, bars: pd.DataFrame | None) -> str:
        if bars is not None and len(bars) and bars["symbol"].iloc[-1]:
            return str(bars["symbol"].iloc[-1])
        loaded = self.f["data_loaded"]
        if len(loaded) > 1:  # a universe: every symbol, in order
            return ", ".join(dict.fromkeys(str(s) for s in loaded["symbol"]))
        for kind in ("data_loaded", "warm_up", "order"):
            frame = self.f[kind]
            if len(frame) and frame["symbol"].iloc[-1]:
                return str(frame["symbol"].iloc[-1])
        return ""

    def _capital(self) -> float | None:
        started = self._first("run_started")
        if started is not None:
            capital = float(started["capital"])
            if math.isfinite(capital):
                return capital
        document = _strategy(self.run_dir)
        execution = document.get("execution") if isinstance(document, dict) else None
        cash = execution.get("initial_cash") if isinstance(execution, dict) else None
        if cash is None and isinstance(execution, dict) and execution.get("kind") == "router":
            cash = _venues_cash(execution.get("venues"))
        if cash is None and isinstance(document, dict):
            cash = document.get("initial_cash")  # a portfolio file's account
        if isinstance(cash, int | float) and not isinstance(cash, bool):
            return float(cash)
        return None

    def _positions_held(self, marks: pd.DataFrame) -> bool:
        return bool(len(marks)) and any(abs(q) > _EPS for q in _quantities(marks).values())

    def _positions(
        self, marks: pd.DataFrame, symbol: str, last_close: float | None
    ) -> list[Position]:
        fills = self.f["fill"]
        out = []
        for market, quantity in _quantities(marks).items():
            if abs(quantity) <= _EPS:
                continue
            held = fills[fills["symbol"] == market]
            cost = _average_cost(zip(held["side"], held["quantity"], held["price"], strict=True))
            mark = last_close if market == symbol else self._closes.get(market)
            if mark is None and ":" in market:  # a portfolio's book: STRATEGY:SYMBOL
                mark = self._closes.get(market.split(":", 1)[1])
            unrealized = None if mark is None or cost is None else quantity * (mark - cost)
            out.append(Position(market, quantity, cost, mark, unrealized))
        return out

    # --- orders -------------------------------------------------------------------------

    def _open_orders(self) -> list[OpenOrder]:
        orders = self.f["order"]
        if not len(orders):
            return []
        fills = self.f["fill"].groupby("order_id")["quantity"].sum()
        cancelled = self.f["order_cancelled"].groupby("order_id")["remaining"].sum()
        expired = set(self.f["order_expired"]["order_id"])
        states = self.f["order_state"]
        final: set[str] = set()
        if len(states):
            last_state = states.groupby("client_id")["state"].last()
            final = {str(k) for k, v in last_state.items() if v in _TERMINAL_ORDER_STATES}
        # the orders with something left, at once: a long run has sent thousands
        ids = orders["id"].astype(str)
        quantities = orders["quantity"].to_numpy(np.float64)
        filled = fills.reindex(ids).fillna(0.0).to_numpy(np.float64)
        gone = cancelled.reindex(ids).fillna(0.0).to_numpy(np.float64)
        left = quantities - filled - gone > _EPS * np.maximum(quantities, 1.0)
        left &= ~ids.isin(expired | final).to_numpy()
        return [
            OpenOrder(
                id=str(orders["id"].iloc[i]),
                symbol=str(orders["symbol"].iloc[i]),
                bar=int(orders["bar"].iloc[i]),
                timestamp=_iso(orders["timestamp"].iloc[i]),
                side="buy" if int(orders["side"].iloc[i]) > 0 else "sell",
                quantity=float(quantities[i]),
                filled=float(filled[i]),
                reason=str(orders["reason"].iloc[i]),
            )
            for i in np.flatnonzero(left)
        ]

    # --- data, health, errors -----------------------------------------------------------

    def _run_now(self) -> pd.Timestamp:
        """Return the time ages are measured to: now, or a simulated clock's at the last bar.

        A run on a simulated clock journals its clock with each live bar; the wall
        clock says nothing about it (its bars may be years old).
        """
        live = self.f["live_bar"]
        if not self.simulated or not len(live):
            return self.now
        return pd.Timestamp(live["wall_time"].max())

    def _staleness(
        self, process: str, age: float | None, close_time: Any
    ) -> tuple[bool | None, str]:
        # close_time: a timestamp, or nanoseconds (`tradeloom.engine.status_rows`)
        alarms = self._last("stale_data")
        alarm = "" if alarms is None else str(alarms["message"])
        if self.mode == "backtest":
            return None, "a backtest (its data is history)"
        if age is None or close_time is None:
            return None, "no live bar yet"
        clock = " (simulated clock)" if self.simulated else ""
        closed = f"at {_iso(close_time)}" if self.simulated else _ago(age)
        if process in _ENDED:  # a run that ended waits for no bar: nothing is overdue
            return None, f"the run {process}{clock}; its last bar closed {closed}"
        late = age / self.seconds if self.seconds else 0.0
        if process != "running":
            text = f"the run is not running{clock}; its last bar closed {closed}"
            if self.simulated:  # its clock stopped with it: no bar can be late
                return None, text
            return late >= 1.0, text + (f"; its last alarm: {alarm}" if alarm else "")
        if late < 1.0:
            return False, f"fresh{clock}: the next bar closes in {_duration(self.seconds - age)}"
        missed = int(late)
        text = f"stale{clock}: {missed} bar{'s' if missed != 1 else ''} overdue"
        return True, text + (f"; the run's alarm: {alarm}" if alarm else "")

    def _health(self) -> tuple[str | None, list[str], dict[str, str]]:
        # Over a universe each symbol has its own monitors: the last status of each
        # (monitor, symbol), not of the monitor's last row whatever its symbol.
        health = self.f["health"]
        if not len(health):
            return _worst(self._with_declared({}))
        symbols = health["symbol"] if "symbol" in health else pd.Series("", index=health.index)
        labels = [
            monitor_label(str(m), str(s))
            for m, s in zip(health["monitor"], symbols.fillna(""), strict=True)
        ]
        last = health.assign(label=labels).groupby("label", sort=True)["status"].last()
        return _worst(self._with_declared({str(k): str(v) for k, v in last.items()}))

    def _with_declared(self, monitors: dict[str, str]) -> dict[str, str]:
        """``monitors`` (each one's last journaled status) with each monitor the run's
        strategy file declares that journaled no change: HEALTHY, where every monitor
        starts. One market's only: a universe's monitors are labelled per symbol."""
        if any("[" in label for label in monitors):
            return monitors
        document = _strategy(self.run_dir)
        declared = document.get("monitoring") if isinstance(document, Mapping) else None
        if not isinstance(declared, list):
            return monitors
        names = [str(m.get("name") or m.get("kind")) for m in declared if isinstance(m, Mapping)]
        added = {name: "HEALTHY" for name in names if name not in monitors}
        return dict(sorted({**monitors, **added}.items()))

    def _errors(self) -> list[dict[str, Any]]:
        rows: list[tuple[int, dict[str, Any]]] = []
        for kind in _ERROR_KINDS:
            frame = self.f[kind]
            if not len(frame):
                continue
            for row in frame.tail(ERRORS_SHOWN).to_dict("records"):
                rows.append((int(row["seq"]), {"kind": kind, **error_line(kind, row)}))
        rows.sort(key=lambda item: item[0])
        return [entry for _, entry in rows[-ERRORS_SHOWN:]]


# --- helpers -----------------------------------------------------------------------


def _timeframe(run_dir: Path, loaded: str | None) -> tuple[str, int]:
    text = ""
    document = _strategy(run_dir)
    data = document.get("data") if isinstance(document, dict) else None
    if isinstance(data, dict) and isinstance(data.get("timeframe"), str):
        text = data["timeframe"]
    elif loaded is not None:  # the last data_loaded's
        text = loaded
    try:
        return text, parse_timeframe(text) if text else 0
    except ValueError:
        return text, 0


def _worst(monitors: dict[str, str]) -> tuple[str | None, list[str], dict[str, str]]:
    """The worst status of ``monitors``, the monitors at it, and ``monitors``."""
    known = [s for s in monitors.values() if s in _HEALTH_RANKS]
    if not known:
        return None, [], monitors
    worst = max(known, key=_HEALTH_RANKS.index)
    return worst, [k for k, v in monitors.items() if v == worst], monitors


def _strategy(run_dir: Path) -> Any:
    try:
        return read_yaml_kept(run_dir / "strategy.yaml", "a run's strategy file")
    except NotAFile:
        return None  # the timeframe then comes from the journal


def _model_section(document: object) -> object:
    """The ``model`` section of a journaled strategy document (None: none)."""
    return document.get("model") if isinstance(document, Mapping) else None
