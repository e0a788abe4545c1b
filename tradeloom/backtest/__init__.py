"""The backtest driver: a strategy or a portfolio file over its history, and its run directory."""
