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

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradeloom.reporting import outputs
from tradeloom.reporting.attribution import symbol_attribution
from tradeloom.reporting.metrics import performance
from tradeloom.reporting.statistics import equity_statistics, turnover
from tradeloom.runner.backtest import equity_frame
from tradeloom.runner.live.refresh import LiveOutputs, Snapshot, run_facts, snapshot_of
from tradeloom.runner.run import equal_weight, position_rows

if TYPE_CHECKING:
    from tradeloom.runner.live.runner import LiveRunner
    from tradeloom.runner.live.universe_history import UniverseHistory

__all__ = ["UniverseOutputs"]


class UniverseOutputs(LiveOutputs):
    """Keep a universe's live files current (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._closes: list[npt.NDArray[np.float64]] = []
        """Each bar's closes so far (a bar's row is copied once, when it is new)."""

    def snapshot(self, runner: LiveRunner) -> Snapshot | None:
        session = runner.session
        if session is None:
            return None
        history: UniverseHistory = session.history  # type: ignore[assignment]
        first = runner.first_live_bar
        n = len(history)
        if n <= first:
            return None  # no live bar yet
        engine = session.engine
        del self._closes[n:]
        self._closes.extend(np.array(history.prices(t)[:, 3]) for t in range(len(self._closes), n))
        close_all = np.stack(self._closes)
        positions, cash, equity = engine.universe_curve(close_all)
        book = engine.portfolio
        facts = run_facts(runner) | {
            "symbol": ",".join(history.symbols),
            "symbols": list(history.symbols),
            "benchmark": "equal_weight",
            "open_positions": {
                symbol: book.position_of(s)
                for s, symbol in enumerate(history.symbols)
                if book.position_of(s) != 0.0
            },
        }
        return snapshot_of(
            runner,
            times=np.array(history.times_ns(n)[first:], dtype=np.int64),
            close=close_all[first:],
            curve=np.column_stack([cash[first:], equity[first:]]),
            positions=positions[first:],
            facts=facts,
        )

    def write_files(self, snapshot: Snapshot) -> None:
        assert snapshot.positions is not None
        symbols = tuple(snapshot.facts["symbols"])
        index = snapshot.index
        close, positions = snapshot.close, snapshot.positions
        cash, equity = snapshot.curve[:, 0], snapshot.curve[:, 1]
        frame = equity_frame(index, symbols, close, positions, cash, equity, snapshot.initial_cash)
        metrics = _metrics(snapshot, frame, self.trade_figures(snapshot))
        self.equity.write(frame.reset_index(names="timestamp"))
        outputs.write_frame(
            self.run_dir, "positions.csv", position_rows(index, close, positions, symbols)
        )
        outputs.write_metrics(self.run_dir, metrics)


def _metrics(
    snapshot: Snapshot, equity: pd.DataFrame, trade_figures: dict[str, Any]
) -> dict[str, Any]:
    """Return ``metrics.json`` of a universe's live bars so far."""
    assert snapshot.positions is not None and snapshot.order_symbols is not None
    positions, close = snapshot.positions, snapshot.close
    symbols = tuple(snapshot.facts["symbols"])
    curve = equity["equity"]
    index = curve.index
    perf = performance(
        curve,
        pd.Series(np.abs(positions).sum(1), index=index),  # the bars with any position
        initial_cash=snapshot.initial_cash,
        timeframe_seconds=snapshot.timeframe_seconds,
        trades=snapshot.trades,
        fees=snapshot.fees,
    )
    perf.update(trade_figures)
    perf["turnover"] = turnover(snapshot.fills, curve)
    stats = equity_statistics(
        curve,
        equal_weight(close, index),
        initial_cash=snapshot.initial_cash,
        cagr=perf["cagr"],
        max_drawdown=perf["max_drawdown"],
    )
    facts = snapshot.facts
    head = ("strategy", "mode", "run_dir", "updated", "symbol", "symbols", "benchmark")
    return {
        **{k: facts[k] for k in head},
        "timeframe": facts["timeframe"],
        "bars": len(curve),
        "start": index[0].isoformat(),
        "end": index[-1].isoformat(),
        "period": f"{index[0]:%Y-%m-%d} .. {index[-1]:%Y-%m-%d}",
        "initial_cash": snapshot.initial_cash,
        **perf,
        **stats,
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
