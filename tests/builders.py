"""What many tests build from: one base strategy document, and bars.

`strategy` returns the base document (`BASE`: a small random forest over the built-in
synthetic market, quick enough for a paper run of a few bars) with the sections a test
names overridden, as freqtrade's tests start from one ``default_conf``; `strategy_text`
is the same as YAML, `write_strategy` writes it. Layers of overrides serve whole
families of tests: `PRECOMPUTED` for tests that choose every probability (``bars.csv``
with a ``p_up`` column, as `write_bars` writes it), `EMULATED` for runs against the
exchange emulator, `REPORTED` for the tests that read report.html or features.parquet
(the base writes neither). `walk_bars` is an exchange's hourly bars of a random walk.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import yaml

__all__ = [
    "BASE",
    "BINANCE",
    "EMULATED",
    "FAST",
    "OMIT",
    "PRECOMPUTED",
    "REPORTED",
    "START",
    "strategy",
    "strategy_text",
    "walk_bars",
    "write_bars",
    "write_strategy",
]

OMIT: Final = object()
"""An override's value that removes the key from the document."""

BASE: Final[Mapping[str, Any]] = {
    "name": "demo",
    "seed": 1,
    "data": {
        "kind": "synthetic",
        "symbol": "BTC/USDT",
        "timeframe": "1h",
        "bars": 400,
        "start": "2024-01-01T00:00:00Z",
    },
    "features": [{"kind": "log_return", "period": 1}, {"kind": "rsi", "window": 14}],
    "model": {
        "kind": "sklearn",
        "estimator": "sklearn.ensemble.RandomForestClassifier",
        "params": {"n_estimators": 5, "max_depth": 3, "n_jobs": 1},
        "label": {"horizon": 2},
        "walk_forward": {"train_window": 150, "retrain_every": 100},
    },
    "signal": {"kind": "threshold", "threshold": 0.02, "min_interval": 1},
    "risk": {"sizing": {"kind": "fixed_fraction", "fraction": 0.5}},
    "execution": {"kind": "simulated", "fee_bps": 10, "initial_cash": 10000},
    "outputs": {"report": False, "features": False},
}
"""The document every `strategy` starts from. It draws no report.html and writes no
features.parquet (about a fifth of a short run's time, read by few tests): a test that
reads either, or what they make, layers `REPORTED`."""

REPORTED: Final[Mapping[str, Any]] = {"outputs": {"report": True, "features": True}}
"""The layer of the tests that read a run's report.html or features.parquet (or what is
made of them): the outputs a user's run writes by default. ``**REPORTED``."""

LONG_ONLY: Final[Mapping[str, Any]] = {"signal": {"sides": "long"}}
"""The layer of a test whose long-only strategy must start silent: ``signal.sides: long``
(without it, validate and a paper run's start warn that the signal may go short on the
spot venue: `tradeloom.engine.sides.sides_warning`)."""

PRECOMPUTED: Final[Mapping[str, Any]] = {
    "seed": OMIT,
    "data": {"kind": "csv", "path": "bars.csv"},
    "features": [{"kind": "log_return", "period": 1}],
    "model": {"kind": "precomputed", "column": "p_up"},
}
"""Overrides reading the probabilities from ``bars.csv`` (`write_bars`): ``**PRECOMPUTED``."""

BINANCE: Final[Mapping[str, Any]] = {
    "kind": "ccxt",
    "exchange": "binance",
    "symbol": "BTC/USDT",
    "timeframe": "1h",
    "start": "2024-01-01",
    "cache_dir": "cache",
}
"""A ``data`` section: binance's hourly BTC/USDT bars from 2024, cached in ``cache/``."""

EMULATED: Final[Mapping[str, Any]] = {
    "seed": 3,
    "data": {**BINANCE, "api_key": "${EMU_API_KEY}", "secret": "${EMU_API_SECRET}"},
    "features": [
        {"kind": "log_return", "period": 1},
        {"kind": "log_return", "period": 6},
        {"kind": "rsi", "window": 14},
    ],
    "model": {
        "params": {"n_estimators": 15, "max_depth": 4, "min_samples_leaf": 10, "n_jobs": 1},
        "label": {"horizon": 3},
        "walk_forward": {"train_window": 120, "retrain_every": 40},
    },
    "signal": {"threshold": 0.04, "min_interval": 2},
    "execution": {"initial_cash": 50000},
    "live": {
        "stream": "poll",
        "close_delay_seconds": 0,
        "capital": 50000,
        "stale_after_bars": None,
    },
}
"""A layer trading on the loopback exchange emulator's binance (`tradeloom.testing`), its
keys from ``EMU_API_KEY`` and ``EMU_API_SECRET``, polled, a bar closed as the emulator
moves past it."""

FAST: Final[list[str]] = [
    *("--set", "data.bars=1500"),
    *("--set", "model.walk_forward.train_window=400"),
    *("--set", "model.walk_forward.retrain_every=400"),
    *("--set", "model.params.n_jobs=1"),
    *("--set", "model.params.n_estimators=20"),
]
"""``--set`` options making a shipped strategy a short run: 1,500 bars, three folds of a
forest of 20 trees."""

START = pd.Timestamp("2024-01-01", tz="UTC")
"""The open of every builder's first bar."""


def _merged(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        was = merged.get(key)
        if value is OMIT:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(was, dict) and "kind" not in value:
            merged[key] = _merged(was, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def strategy(*layers: Mapping[str, Any], **overrides: Any) -> dict[str, Any]:
    """Return `BASE` overridden by each of ``layers`` in turn (`EMULATED`...), then by
    the keywords.

    A mapping updates the section's keys, recursively, unless it names a ``kind``: then
    it is the component's whole configuration and replaces the section. Any other value
    replaces the key; `OMIT` removes it.
    """
    document = dict(BASE)
    for layer in (*layers, overrides):
        document = _merged(document, layer)
    if "outputs" in document:  # last: every other section on the line it had without it
        document["outputs"] = document.pop("outputs")
    return document


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)  # a list's items indented under their key


def strategy_text(*layers: Mapping[str, Any], **overrides: Any) -> str:
    """Return `strategy` as YAML, in block style (a key and its value on a line of their
    own, which a test may edit as text), sections in the base's order."""
    document = strategy(*layers, **overrides)
    return yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000
    )


def write_strategy(
    folder: Path, *layers: Mapping[str, Any], name: str = "strategy.yaml", **overrides: Any
) -> Path:
    """Write `strategy_text` to ``folder / name`` and return its path."""
    path = folder / name
    path.write_text(strategy_text(*layers, **overrides), encoding="utf-8")
    return path


def write_bars(
    folder: Path,
    close: Sequence[float],
    p_up: Sequence[float] | None = None,
    *,
    open_: Sequence[float] | None = None,
    high: Sequence[float] | None = None,
    low: Sequence[float] | None = None,
    wick: float = 1.0,
    volume: float = 1.0,
    name: str = "bars.csv",
) -> Path:
    """Write hourly bars from `START` to ``folder / name``: the open is the previous close
    unless given, the high and low ``wick`` beyond them unless given, ``p_up`` a column
    (NaN: empty)."""
    c = np.asarray(close, dtype=float)
    o = np.asarray(open_, dtype=float) if open_ is not None else np.r_[c[0], c[:-1]]
    hour = pd.Timedelta(hours=1)
    frame = pd.DataFrame(
        {
            "timestamp": [(START + i * hour).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(len(c))],
            "open": o,
            "high": np.maximum(o, c) + wick if high is None else np.asarray(high, dtype=float),
            "low": np.minimum(o, c) - wick if low is None else np.asarray(low, dtype=float),
            "close": c,
            "volume": volume,
        }
    )
    if p_up is not None:
        frame["p_up"] = np.asarray(p_up, dtype=float)
    path = folder / name
    frame.to_csv(path, index=False, float_format="%.17g")
    return path


def walk_bars(
    n: int = 400,
    seed: int = 5,
    *,
    level: float = 20_000.0,
    step: float = 40.0,
    wick: float = 60.0,
) -> pd.DataFrame:
    """Return hourly bars of a random walk from `START` at ``level`` (steps of ``step``
    standard deviation, wicks up to ``wick``), on a 0.01 tick, as an exchange serves them."""
    rng = np.random.default_rng(seed)
    close = level + np.cumsum(rng.normal(0, step, n))
    open_ = np.r_[level, close[:-1]]
    frame = pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + rng.uniform(1, wick, n),
            "low": np.minimum(open_, close) - rng.uniform(1, wick, n),
            "close": close,
            "volume": rng.uniform(1, 50, n),
        },
        index=pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="timestamp"),
    )
    return frame.round({"open": 2, "high": 2, "low": 2, "close": 2, "volume": 5})


@contextlib.contextmanager
def counted_yaml_parses() -> Iterator[list[Path]]:
    """Count the YAML files `tradeloom.files.reading.read_yaml` parses inside the block
    (the kept parses forgotten first): the paths, in order."""
    from tradeloom.files import reading

    seen: list[Path] = []
    parse, kept = reading.read_yaml, reading._KEPT

    def counted(path: Path, what: str) -> object:
        seen.append(path)
        return parse(path, what)

    reading.read_yaml, reading._KEPT = counted, {}  # type: ignore[assignment]
    try:
        yield seen
    finally:
        reading.read_yaml, reading._KEPT = parse, kept
