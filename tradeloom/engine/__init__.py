"""The engine the drivers share: wiring, the compiled bar's driver, events, accounts, outputs.

The backtest (`tradeloom.backtest`) and the live runtime (`tradeloom.live`) both call
down into it; nothing here imports either of them or the command line (`tradeloom.cli`).
"""
