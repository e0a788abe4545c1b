"""A paper or live run's files over a universe, kept current after each tick.

`UniverseOutputs` is `LiveOutputs` over N symbols: after every tick that ran a clock
bar (the journal committed first) it rewrites, each atomically and over the live bars
only, the files a backtest over the universe writes:

- ``equity.csv``: ``cash equity drawdown``, then per symbol ``close[S]`` (NaN: no bar),
  ``position[S]`` and ``value[S]`` (`tradeloom.runner.backtest.equity_frame`);
- ``positions.csv``: every bar's non-zero position of each symbol, marked at its last
  close (`tradeloom.runner.run.position_rows`);
- ``trades.csv``, with each trade's symbol;
- ``metrics.json``: the performance of the account, the equal-weight benchmark of the
  symbols, each symbol's open position and the attribution by symbol (P&L, fees,
  exposure, trades), with the run's state and counts.

``report.html`` is redrawn as for one market (throttled, and when the run stops).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tradeloom.reporting import outputs
from tradeloom.reporting.attribution import symbol_attribution
from tradeloom.reporting.metrics import performance
from tradeloom.reporting.statistics import equity_statistics, trade_statistics, turnover
from tradeloom.reporting.trades import trade_frame
from tradeloom.runner.backtest import equity_frame
from tradeloom.runner.live.refresh import LiveOutputs
from tradeloom.runner.run import equal_weight, position_rows

if TYPE_CHECKING:
    from tradeloom.runner.live.runner import LiveRunner
    from tradeloom.runner.live.universe_history import UniverseHistory

__all__ = ["UniverseOutputs"]


class UniverseOutputs(LiveOutputs):
    """Rewrite a universe's live files after its ticks (see the module)."""

    def _write(self, runner: LiveRunner) -> bool:
        session = runner.session
        if session is None:
            return False
        history: UniverseHistory = session.history  # type: ignore[assignment]
        first = runner.first_live_bar
        n = len(history)
        if n <= first:
            return False  # no live bar yet
        engine = session.engine
        symbols = history.symbols
        close_all = np.stack([history.prices(t)[:, 3] for t in range(n)])
        positions, cash, equity = engine.universe_curve(close_all)
        close, positions = close_all[first:], positions[first:]
        index = pd.DatetimeIndex(history.times_ns(n)[first:].view("datetime64[ns]"), tz="UTC")
        initial = engine.portfolio.initial_cash
        frame = equity_frame(
            index, symbols, close, positions, cash[first:], equity[first:], initial
        )
        rec = runner.recorder_or_fail
        closed = len(engine.trades)
        if self._trades is None or self._trades[0] != closed:
            trades = trade_frame(engine.trades, rec.orders, rec.fills, rec.order_symbols)
            figures = trade_statistics(trades, history.timeframe_seconds)
            outputs.write_frame(self.run_dir, "trades.csv", trades)
            self._trades = (closed, trades, figures)
        metrics = _metrics(runner, frame, close, positions, self._trades[2])
        outputs.write_frame(self.run_dir, "equity.csv", frame.reset_index(names="timestamp"))
        outputs.write_frame(
            self.run_dir, "positions.csv", position_rows(index, close, positions, symbols)
        )
        outputs.write_metrics(self.run_dir, metrics)
        return True


def _metrics(
    runner: LiveRunner,
    equity: pd.DataFrame,
    close: np.ndarray,
    positions: np.ndarray,
    trade_figures: dict[str, Any],
) -> dict[str, Any]:
    """Return ``metrics.json`` of a universe's live bars so far."""
    session = runner.session
    assert session is not None
    engine = session.engine
    book = engine.portfolio
    rec = runner.recorder_or_fail
    history: UniverseHistory = session.history  # type: ignore[assignment]
    symbols = history.symbols
    curve = equity["equity"]
    index = curve.index
    perf = performance(
        curve,
        pd.Series(np.abs(positions).sum(1), index=index),  # the bars with any position
        initial_cash=book.initial_cash,
        timeframe_seconds=history.timeframe_seconds,
        trades=engine.trades,
        fees=book.fees,
    )
    perf.update(trade_figures)
    perf["turnover"] = turnover(rec.fills, curve)
    stats = equity_statistics(
        curve,
        equal_weight(close, index),
        initial_cash=book.initial_cash,
        cagr=perf["cagr"],
        max_drawdown=perf["max_drawdown"],
    )
    return {
        "strategy": runner.config.name,
        "mode": runner.mode,
        "run_dir": str(runner.run_dir),
        "updated": datetime.now(UTC).isoformat(timespec="seconds"),
        "symbol": ",".join(symbols),
        "symbols": list(symbols),
        "benchmark": "equal_weight",
        "timeframe": history.timeframe,
        "bars": len(curve),
        "start": index[0].isoformat(),
        "end": index[-1].isoformat(),
        "period": f"{index[0]:%Y-%m-%d} .. {index[-1]:%Y-%m-%d}",
        "initial_cash": book.initial_cash,
        **perf,
        **stats,
        "open_positions": {
            symbol: book.position_of(s)
            for s, symbol in enumerate(symbols)
            if book.position_of(s) != 0.0
        },
        "state": session.state,
        "signals": rec.signals,
        "orders": len(rec.orders),
        "fills": len(rec.fills),
        "rejections": dict(sorted(rec.rejections.items())),
        "halt": f"{rec.halt.code} at {rec.halt.timestamp:%Y-%m-%d %H:%M}" if rec.halt else None,
        "model_trainings": sum(1 for t in rec.trainings if not t.skipped),
        "attribution": symbol_attribution(
            symbols,
            rec.fills,
            rec.order_symbols,
            engine.trades,
            positions,
            close,
            curve.to_numpy(np.float64),
        ),
    }
