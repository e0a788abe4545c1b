"""The bar, written once.

Every mode (the backtest's compiled loop, the per-bar driver, paper and live)
runs the same compiled step, `tradeloom.core.bar.run_bars`, over the same
state arrays (`tradeloom.core.layout`): the order of a bar, the rejection
ladder, the risk engine (trading states, pre-trade checks, halts, the kill
latch, margin and liquidation), the portfolio checks (`tradeloom.core.portfolio`:
signal ranking, exposure, group and correlation limits) and the accounting live
here and nowhere else.
Reason codes and their messages live in `tradeloom.core.codes`; the event rows the
step writes are declared in `tradeloom.core.records` and read back, as columns, by
`tradeloom.core.columns`.

Nothing here imports the drivers (`tradeloom.engine`, `tradeloom.backtest`,
`tradeloom.live`): they call down into the core.
"""
