"""The Python API: load a strategy, backtest it, sweep it, and read any run folder.

The same engine and the same files as the command line: `load` validates as
``tradeloom validate`` does, `Strategy.backtest` runs the backtest ``tradeloom run`` runs
(`tradeloom.backtest.run`): held in memory (`hold_strategy`), or into a run folder
(`run_strategy`); `Run.save` writes the folder the command writes. `Strategy.with_data`
hands a DataFrame to the engine as the strategy's data (``kind: frame``, every other
data setting kept). `Strategy.sweep` runs `tradeloom.sweep.command.sweep` as ``tradeloom
sweep`` does, and `Run` reads a run's tables, metrics and journal, in memory or from any
run folder. A notebook's session::

    import tradeloom

    strategy = tradeloom.load("strategies/btc_rf.yaml", data__bars=3000)
    run = strategy.with_data(bars).backtest()    # bars: a DataFrame of OHLCV
    run.stats["sharpe"], run.trades, run.plot()
    run.save("runs/mine")                        # the folder tradeloom run writes
    tradeloom.open_run("runs/btc_rf-20240301T120000Z")

A user's mistake (a bad key, a DataFrame without a close column, a folder that is not a
run, an argument of the wrong kind) raises one `UserError` (a `ConfigError` for a
strategy's problems) whose lines are what the command prints (``FILE:LINE:COL
key.path: what was expected, was what``), or which names the argument at fault.
"""

from __future__ import annotations

from tradeloom.api.run import Run, open_run
from tradeloom.api.strategy import Strategy, load
from tradeloom.errors import ConfigError, UserError

__all__ = ["ConfigError", "Run", "Strategy", "UserError", "load", "open_run"]
