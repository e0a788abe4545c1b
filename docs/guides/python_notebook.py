# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # tradeloom from Python
#
# A strategy backtested from a pandas DataFrame, its figures and charts, a small sweep,
# and a paper run's folder read back. Open it in Jupyter with jupytext
# (`jupytext --to notebook python_notebook.py`) or run it as a script; the test suite
# executes it in a Jupyter kernel (tests/test_api.py), so every cell here works.

# %%
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

import tradeloom

# %% [markdown]
# ## Bars as a DataFrame
#
# Any OHLCV frame: a DatetimeIndex (or a `timestamp` column), `open high low close`,
# optionally `volume`, and numeric extras. Here a random walk of 2,000 hourly bars, and a
# probability of an up move computed in pandas from the bars up to each one (a 24-bar
# momentum, scaled by its rolling spread): research done in the notebook, traded by
# tradeloom's engine through the `precomputed` model.

# %%
rng = np.random.default_rng(7)
times = pd.date_range("2024-01-01", periods=2000, freq="h", tz="UTC")
close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(times))))
previous = np.r_[close[0], close[:-1]]
spread = close * rng.uniform(0.001, 0.01, len(times))
bars = pd.DataFrame(
    {
        "open": previous,
        "high": np.maximum(close, previous) + spread,
        "low": np.minimum(close, previous) - spread,
        "close": close,
        "volume": rng.uniform(10, 100, len(times)),
    },
    index=times,
)
momentum = np.log(bars["close"]).diff(24)
bars["p_up"] = 1 / (1 + np.exp(-momentum / momentum.rolling(500, min_periods=50).std()))
bars.tail()

# %% [markdown]
# ## A strategy
#
# A strategy file's path, or the same document as a dict; any model works alike (an
# `sklearn` estimator trained walk-forward, a saved model...). Keyword arguments override
# keys as `--set` does, a key path's dots written `__`. Mistakes raise one
# `tradeloom.ConfigError` whose lines are those of `tradeloom validate`.

# %%
document = {
    "name": "notebook",
    "seed": 7,
    "data": {"kind": "synthetic", "symbol": "BTC/USDT", "timeframe": "1h"},
    "features": [
        {"kind": "log_return", "period": 1},
        {"kind": "rsi", "window": 14},
    ],
    "model": {"kind": "precomputed", "column": "p_up"},
    "signal": {"kind": "threshold", "threshold": 0.3, "min_interval": 2},
    "risk": {"sizing": {"kind": "fixed_fraction", "fraction": 0.5}},
    "execution": {"kind": "simulated", "initial_cash": 100000, "fee_bps": 10},
}
try:
    tradeloom.load(document, risk__sizing__fraction=1.5)
except tradeloom.ConfigError as error:
    print(error)

# %% [markdown]
# ## A backtest from the DataFrame
#
# `with_data` hands the frame to the engine as the strategy's data (every other setting
# of its data section kept), checked as a file's bars would be; `backtest()` runs
# `tradeloom run`'s engine and holds the run in memory: nothing is written until
# `run.save(folder)` writes the folder `tradeloom run` writes (`out=` writes it at once).
# The engine logs only its warnings here; `quiet=True` turns the progress bar off too.

# %%
strategy = tradeloom.load(document).with_data(bars)
run = strategy.backtest(quiet=True)
run

# %% [markdown]
# ## Its figures
#
# `run.stats` is every figure of the run's `metrics.json` as a pandas Series, headline
# first (total return, CAGR, Sharpe, Sortino, max drawdown...), then the tearsheet's risk,
# the trades, the model and the run; Jupyter shows it as the report's tables, the long
# sections folded. Each value is the file's number: `run.stats["sharpe"]` is a float, a
# nested figure is under its dotted key (`run.stats["tearsheet.beta"]`).

# %%
run.stats

# %%
run.stats["sharpe"], run.stats["tearsheet.beta"]

# %%
run.trades.head()

# %%
scratch = tempfile.TemporaryDirectory()  # removed with the notebook's session
saved = run.save(Path(scratch.name) / "runs" / "backtest")  # runs/: reports share plotly.js
sorted(p.name for p in saved.run_dir.iterdir())

# %% [markdown]
# ## Returns and positions
#
# `run.returns` is each bar's simple return of the equity, indexed by time, the first
# bar's against the starting cash; `returns.attrs["periods_per_year"]` is the bars in a
# year of the data's calendar, the annualisation of the run's figures. Handed to
# quantstats (`qs.stats.sharpe(returns, periods=...)`) or empyrical
# (`empyrical.sharpe_ratio(returns, annualization=...)`), they give the run's Sharpe
# ratio, Sortino ratio and volatility; here in pandas:

# %%
returns = run.returns
periods = returns.attrs["periods_per_year"]
sharpe = returns.mean() / returns.std() * np.sqrt(periods)
print(f"{periods:,.0f} bars a year; Sharpe {sharpe:.6f}, the run's {run.stats['sharpe']:.6f}")
returns.tail()

# %% [markdown]
# `run.positions` is every bar's non-zero position of each symbol, a row each: its
# size, its symbol's last close and its value.

# %%
run.positions.tail()

# %% [markdown]
# ## Its charts
#
# `run.plot()` is the report's charts as one plotly Figure, drawn inline: the price with
# every trade, the equity against buy and hold with its drawdown and exposure, the
# model's probability, the rolling Sharpe ratio, the monthly returns... stacked, their
# time axes zooming together. Long series are thinned for display as the report thins
# them (every peak and trough kept); no number is changed. `run.report()` writes the
# whole page, `report.html`, into the run folder.

# %%
run.plot()

# %% [markdown]
# One chart alone, as the report draws it: `run.plot("equity")` (a list of names stacks
# those; a name that is not a panel raises an error listing the run's panels).

# %%
run.plot("equity")

# %% [markdown]
# ## A sweep
#
# Axes as key paths and their values; the rows come back ranked by the objective, with
# the deflated Sharpe ratio (`dsr`) per variant and the probability of backtest
# overfitting in `attrs`.

# %%
results = strategy.sweep({"signal.threshold": [0.2, 0.3, 0.4]}, partitions=4, quiet=True)
print("\n".join(results.attrs["summary"]))
results[["param.signal.threshold", "sharpe", "total_return", "dsr"]]

# %% [markdown]
# ## A paper run's folder
#
# `tradeloom.open_run` reads any run folder: a backtest's, or a paper or live run's
# while it trades or after. Here a short paper run on the simulated clock over the same
# bars, written to a file the strategy reads (`with_data(bars, path=...)`: a strategy
# file the command runs). A paper run predicts bar by bar, which a precomputed column
# cannot: its model is a logistic regression trained walk-forward on the same features.

# %%
model = {
    "kind": "sklearn",
    "estimator": "sklearn.linear_model.LogisticRegression",
    "label": {"horizon": 4},
    "walk_forward": {"train_window": 500, "retrain_every": 500},
}
on_file = strategy.with_data(bars, path=Path(scratch.name) / "bars.parquet")
strategy_file = Path(scratch.name) / "strategy.yaml"
strategy_file.write_text(json.dumps(on_file.document))  # JSON is YAML
paper_dir = Path(scratch.name) / "paper"
done = subprocess.run(
    [sys.executable, "-m", "tradeloom.cli.main", "-q", "run", str(strategy_file),
     "--set", f"model={json.dumps(model)}", "--mode", "paper", "--clock", "simulated",
     "--speed", "max", "--max-bars", "5", "--out", str(paper_dir)],
    check=True, capture_output=True, text=True,
)  # fmt: skip
print(done.stdout)
paper = tradeloom.open_run(paper_dir)
paper.mode, paper.journal("live_bar")[["timestamp", "close"]].tail(3)
