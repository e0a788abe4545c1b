"""The tick of a paper or live run: the runner, its services, start (one strategy or a
portfolio file), the session that runs the backtest's per-bar steps on each closed bar,
the clock (scheduled or simulated), the run's history and feeds, the journal opened and
its outage (docs/concepts/layout.md: what this room may import).
"""
