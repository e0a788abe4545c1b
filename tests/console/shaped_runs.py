"""Run folders of the shapes the console's API answers about beyond one market's and a
universe's backtest: a portfolio file's, a router's and a perpetual's, made in this
process on a small CSV market with precomputed probabilities (no model to train: each
costs a fraction of a second, and no process)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from tests.builders import OMIT, PRECOMPUTED, strategy
from tradeloom.backtest.portfolio_run import run_portfolio
from tradeloom.backtest.run import run_strategy
from tradeloom.engine.wiring import build_pipeline
from tradeloom.plugins.manager import load_plugins
from tradeloom.schemas import load_strategy
from tradeloom.schemas.portfolio_file import load_portfolio

BARS = 120
START = pd.Timestamp("2024-01-01T00:00:00Z")


def _market(folder: Path) -> None:
    rng = np.random.default_rng(11)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, BARS)))
    times = [(START + pd.Timedelta(hours=i)).isoformat() for i in range(BARS)]
    pd.DataFrame(
        {
            "timestamp": times,
            "open": close,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "volume": 1e6,
            "p_a": rng.random(BARS),
            "p_b": rng.random(BARS),
        }
    ).to_csv(folder / "bars.csv", index=False, float_format="%.17g")
    eight = [(START + pd.Timedelta(hours=h)).isoformat() for h in range(0, BARS, 8)]
    pd.DataFrame({"timestamp": eight, "funding": 0.0001 * rng.normal(1.0, 0.5, len(eight))}).to_csv(
        folder / "funding.csv", index=False
    )


def _strategy(name: str, column: str, **sections: object) -> dict[str, object]:
    own = {
        "name": name,
        "data": {"symbol": "BTC/USDT"},
        "model": {"column": column},
        "signal": {"threshold": 0.3, "min_interval": OMIT},
        "execution": {"fee_bps": 5},
    }
    return strategy(PRECOMPUTED, own, **sections)


def _write(path: Path, document: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def make_shaped_runs(work: Path) -> Path:
    """Make ``work/runs/`` with ``pair-portfolio``, ``routed-bt`` and ``perp-bt``; return it."""
    _market(work)
    runs = work / "runs"
    plugins = load_plugins()
    _write(work / "a.yaml", _strategy("a", "p_a"))
    _write(work / "b.yaml", _strategy("b", "p_b"))
    pair = {
        "name": "pair",
        "initial_cash": 10000,
        "strategies": [{"file": "a.yaml", "weight": 0.6}, {"file": "b.yaml", "weight": 0.4}],
    }
    portfolio = load_portfolio(_write(work / "pair.yaml", pair), ())
    pipelines = [build_pipeline(config) for config in portfolio.strategies]
    run_portfolio(portfolio, pipelines, plugins, out=runs / "pair-portfolio")
    venues = [
        {"name": "thin", "kind": "simulated", "initial_cash": 3000, "fee_bps": 5},
        {"name": "deep", "kind": "simulated", "initial_cash": 7000, "fee_bps": 12},
    ]
    routed = _strategy("routed", "p_a", execution={"kind": "router", "venues": venues})
    config, own = load_strategy(_write(work / "routed.yaml", routed), [])
    run_strategy(build_pipeline(config), own, out=runs / "routed-bt")
    perp = _strategy("perp", "p_b")
    perp["data"] = {
        "kind": "csv",
        "path": "bars.csv",
        "symbol": "BTC/USDT:USDT",
        "auxiliary": [
            {"name": "funding", "kind": "file", "path": "funding.csv", "available_after": "0s"}
        ],
    }
    perp["execution"] = {
        "kind": "simulated",
        "market": "swap",
        "funding": "funding",
        "initial_cash": 10000,
        "fee_bps": 5,
        "margin": {"initial": 0.2, "maintenance": 0.005, "leverage": 3},
    }
    config, own = load_strategy(_write(work / "perp.yaml", perp), [])
    run_strategy(build_pipeline(config), own, out=runs / "perp-bt")
    return runs
