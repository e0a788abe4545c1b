"""The champion's and each challenger's book side by side, from a run's journal.

A paper or live run with ``challengers:`` journals each challenger's shadow book
(``challenger_bar``, ``challenger_fill``: `tradeloom.live.challengers`). ``tradeloom
status`` (text and ``--json``), the console's run page and ``report.html`` show every
book with the same figures, each computed once here (`book_figures`) over the bars the
book has (a challenger added to a running run has the bars from the one it was added
at): the first of them and how many; the equity at the last; the return on the starting
capital; the Sharpe ratio of the per-bar equity curve and its maximum drawdown
(`curve_performance`'s, the Sharpe annualised from the bar length); the fills; the
turnover (notional traded over the starting capital); and, over one market, the model's
AUC and its expected calibration error (ECE), both over the bars with a journaled
probability whose label is known (the close ``horizon`` bars later): the AUC is
`tradeloom.stats.auc` (the backtest's metrics.json figure), the ECE the calibration
monitor's `calibration_error` over the ten bins of the report's calibration table; and a
challenger's promotion gate, its last ``challenger_gate`` verdict with its p-value.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradeloom.reporting.metrics import curve_performance
from tradeloom.stats import auc, calibration_error

__all__ = [
    "BOOK_KINDS",
    "CHAMPION",
    "BookFigures",
    "Books",
    "book_figures",
    "journal_books",
    "label_horizon",
]

CHAMPION = "champion"
"""The name status gives the run's own book beside its challengers'."""

BOOK_KINDS = (
    "live_bar",
    "fill",
    "challenger_bar",
    "challenger_fill",
    "challenger_gate",
    "challenger_started",
)
"""The journal's kinds `book_figures` reads."""


@dataclass(frozen=True)
class BookFigures:
    """One book's figures over the bars it has (None: not known)."""

    name: str
    equity: float | None
    total_return: float | None
    sharpe: float | None
    fills: int
    turnover: float | None
    auc: float | None
    gate: str | None = None
    """A challenger's promotion gate: its last journaled verdict and p-value (None: it
    has no gate)."""
    max_drawdown: float | None = None
    """The largest fall of its equity from a peak, a fraction of the peak."""
    ece: float | None = None
    """Its model's expected calibration error over the bars whose label is known."""
    first_bar: int | None = None
    """The first bar of its book (a challenger added to a running run: the bar it
    decided first on)."""
    bars: int = 0
    """The bars of its book."""


def book_figures(
    frames: Mapping[str, pd.DataFrame],
    curve: pd.DataFrame,
    capital: float | None,
    timeframe_seconds: int,
    horizon: int | None,
) -> list[BookFigures]:
    """Return the champion's figures, then each challenger's (empty: no challengers).

    Args:
        frames: The journal's frames of `BOOK_KINDS` (``challenger_gate``: when it has
            any).
        curve: The champion's equity at each live bar (``equity``).
        capital: The starting capital (None: unknown; no figure is then known).
        timeframe_seconds: The bar length (0: found from the live bars' times).
        horizon: The label's horizon in bars (None: no AUC and no ECE).
    """
    shadow = frames["challenger_bar"]
    if not len(shadow) or not capital:
        return []
    live = frames["live_bar"]
    one = live["symbol"].nunique() <= 1
    if timeframe_seconds <= 0:  # a run whose data section names no timeframe: its bars'
        steps = pd.to_datetime(live["timestamp"], utc=True).drop_duplicates().diff().dropna()
        timeframe_seconds = int(steps.min().total_seconds()) if len(steps) else 0
    closes = pd.Series(live["close"].to_numpy(np.float64), index=live["bar"].to_numpy())
    fills = frames["fill"]
    books = [
        _figures(
            CHAMPION,
            curve["equity"].to_numpy(np.float64),
            float((fills["price"] * fills["quantity"]).sum()),
            len(fills),
            pd.Series(live["probability"].to_numpy(np.float64), index=closes.index)
            if one
            else None,
            closes,
            capital,
            timeframe_seconds,
            horizon,
        )
    ]
    if len(closes):
        books[0] = replace(books[0], first_bar=int(closes.index.min()))
    shadow_fills = frames["challenger_fill"]
    gates = _gates(frames.get("challenger_gate"))
    capitals = _capitals(frames.get("challenger_started"))
    for strategy, rows in _by_strategy(shadow):
        if strategy:  # a portfolio file's strategy: its own book, then its challengers'
            books.append(
                _member_book(strategy, rows, fills, capitals, closes, capital, timeframe_seconds)
            )
        run = (capital, timeframe_seconds, horizon if one else None)
        books.extend(_challenger_books(rows, shadow_fills, gates, capitals, closes, run))
    return books


def _by_strategy(shadow: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The challengers' rows by the portfolio file's strategy they shadow ('': the
    strategy run alone), in the order of their first row."""
    if "strategy" not in shadow:
        return [("", shadow)]
    strategy = shadow["strategy"].fillna("").astype(str)
    return [(str(name), shadow[strategy == name]) for name in dict.fromkeys(strategy)]


def _capitals(rows: pd.DataFrame | None) -> dict[str, float]:
    """Each challenger of a portfolio file's strategy: the capital it started with."""
    if rows is None or not len(rows):
        return {}
    return dict(zip(rows["challenger"].astype(str), rows["capital"].astype(float), strict=True))


def _member_book(
    strategy: str,
    rows: pd.DataFrame,
    fills: pd.DataFrame,
    capitals: Mapping[str, float],
    closes: pd.Series,
    capital: float,
    timeframe_seconds: int,
) -> BookFigures:
    """A portfolio file's strategy's own book, as its challengers compare with it: its
    equity at each of their bars (their rows' ``champion_equity``: its P&L since they
    started on their capital), from the first challenger's start."""
    first = rows.loc[rows["bar"].idxmin()]
    start = int(first["bar"])
    rows = rows[rows["challenger"] == first["challenger"]].drop_duplicates("bar", keep="first")
    equity = rows["champion_equity"].to_numpy(np.float64)
    equity = equity[np.isfinite(equity)]
    # its books' fills: a book is named STRATEGY:SYMBOL (`tradeloom.engine.account`)
    mine = fills["symbol"].astype(str).str.startswith(f"{strategy}:")
    own = fills[mine & (fills["bar"] >= start)]
    figures = _figures(
        strategy,
        equity,
        float((own["price"] * own["quantity"]).sum()),
        len(own),
        None,
        closes,
        capitals.get(str(first["challenger"]), capital),
        timeframe_seconds,
        None,
    )
    return replace(figures, first_bar=start)


def _challenger_books(
    shadow: pd.DataFrame,
    shadow_fills: pd.DataFrame,
    gates: Mapping[str, str],
    capitals: Mapping[str, float],
    closes: pd.Series,
    run: tuple[float, int, int | None],
) -> list[BookFigures]:
    """Each challenger's figures (``run``: the run's capital, bar length and horizon;
    a challenger of a portfolio file's strategy on its own capital)."""
    capital, timeframe_seconds, horizon = run
    one = horizon is not None
    books = []
    for name, rows in shadow.groupby("challenger", sort=False):
        rows = rows.drop_duplicates("bar", keep="first")
        own = shadow_fills[shadow_fills["challenger"] == name]
        probability = pd.Series(
            [float(p[0]) for p in rows["probabilities"]], index=rows["bar"].to_numpy()
        )
        figures = _figures(
            str(name),
            rows["equity"].to_numpy(np.float64),
            float(rows["traded"].sum()),
            len(own),
            probability if one else None,
            closes,
            capitals.get(str(name), capital),
            timeframe_seconds,
            horizon,
        )
        first = int(rows["bar"].min())
        books.append(replace(figures, gate=gates.get(str(name)), first_bar=first))
    return books


def _gates(rows: pd.DataFrame | None) -> dict[str, str]:
    """Each gated challenger's last verdict, with its p-value when it has one and the
    health figures its rules read (``auc=``, ``ece=``) when it has them."""
    if rows is None or not len(rows):
        return {}
    shown = {}
    for name, group in rows.groupby("challenger", sort=False):
        last = group.iloc[-1]
        p = float(last["p"])
        said = str(last["verdict"]) + ("" if math.isnan(p) else f" p={p:.3g}")
        health = json.loads(str(last.get("health") or "{}"))
        for key, label in (("auc", "auc"), ("calibration_error", "ece")):
            if health.get(key) is not None:
                said += f" {label}={health[key]:.3g}"
        shown[str(name)] = said
    return shown


def _figures(
    name: str,
    equity: np.ndarray,
    traded: float,
    fills: int,
    probability: pd.Series | None,
    closes: pd.Series,
    capital: float,
    timeframe_seconds: int,
    horizon: int | None,
) -> BookFigures:
    if not len(equity) or timeframe_seconds <= 0:
        return BookFigures(name, None, None, None, fills, traded / capital, None, bars=len(equity))
    figures = curve_performance(
        pd.Series(equity),
        pd.Series(np.zeros(len(equity))),
        initial_cash=capital,
        timeframe_seconds=timeframe_seconds,
        pnl=np.zeros(0),
        trade_returns=np.zeros(0),
        fees=0.0,
    )
    area = ece = None
    if probability is not None and horizon:
        p, up = _resolved(probability, closes.reindex(probability.index), horizon)
        if len(p):
            value = auc(p, up)
            area = None if math.isnan(value) else float(value)
            ece = _calibration_error(p, up)
    return BookFigures(
        name,
        float(equity[-1]),
        float(figures["total_return"]),
        float(figures["sharpe"]),
        fills,
        traded / capital,
        area,
        max_drawdown=float(figures["max_drawdown"]),
        ece=ece,
        bars=len(equity),
    )


def _resolved(
    probability: pd.Series, close: pd.Series, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """The journaled probabilities whose label is known and their labels (an up move
    over ``horizon`` bars), paired as `tradeloom.reporting.metrics.prediction_auc` pairs
    them."""
    p = probability.to_numpy(np.float64)
    c = close.to_numpy(np.float64)
    n = len(p) - horizon
    if n <= 0:
        return np.zeros(0), np.zeros(0, dtype=bool)
    up = c[horizon:] > c[:n]
    known = ~np.isnan(p[:n])
    return p[:n][known], up[known]


def _calibration_error(p: np.ndarray, up: np.ndarray) -> float:
    # the calibration monitor's ECE, over the report's reliability bins
    from tradeloom.plugins.model.calibration import RELIABILITY_BINS

    return calibration_error(p, up.astype(np.float64), RELIABILITY_BINS)[0]


def label_horizon(document: Any) -> int | None:
    """Return the label horizon of a run's strategy document (None: none found)."""
    model = document.get("model") if isinstance(document, Mapping) else None
    label = model.get("label") if isinstance(model, Mapping) else None
    horizon = label.get("horizon") if isinstance(label, Mapping) else None
    return horizon if isinstance(horizon, int) and not isinstance(horizon, bool) else None


@dataclass(frozen=True)
class Books:
    """A run's books as the report draws them: `book_figures`, and each challenger's
    equity at each of its bars."""

    figures: list[BookFigures]
    shadow: pd.DataFrame
    """The challengers' ``challenger_bar`` rows (``challenger``, ``timestamp``, ``equity``)."""


def journal_books(journal: Path, curve: pd.DataFrame, strategy: Any) -> Books | None:
    """Return the books of the paper or live run whose journal is ``journal``, its
    champion's equity at each live bar ``curve`` (``equity``) and its strategy document
    ``strategy``, as ``tradeloom status`` reads them (the capital the run started with,
    the bar length of its data); None: it had no challenger."""
    from tradeloom.journal import read_frames
    from tradeloom.time.timeframes import parse_timeframe

    if not journal.is_file():
        return None
    frames = read_frames(journal, (*BOOK_KINDS, "run_started", "data_loaded"))
    if not len(frames["challenger_bar"]):
        return None
    started, loaded = frames["run_started"], frames["data_loaded"]
    capital = float(started["capital"].iloc[0]) if len(started) else math.nan
    data = strategy.get("data") if isinstance(strategy, Mapping) else None
    timeframe = data.get("timeframe") if isinstance(data, Mapping) else None
    if not isinstance(timeframe, str):
        timeframe = str(loaded["timeframe"].iloc[-1]) if len(loaded) else ""
    try:
        seconds = parse_timeframe(timeframe) if timeframe else 0
    except ValueError:
        seconds = 0
    figures = book_figures(
        frames,
        curve,
        capital if math.isfinite(capital) else None,
        seconds,
        label_horizon(strategy),
    )
    if not figures:
        return None
    rows = frames["challenger_bar"].drop_duplicates(["challenger", "bar"], keep="first")
    curves = [rows[["challenger", "timestamp", "equity"]]]
    if "strategy" in rows:  # a portfolio file's strategy's own book, before its challengers'
        for strategy, own in _by_strategy(rows):
            if strategy:
                first = own[own["challenger"] == own.loc[own["bar"].idxmin(), "challenger"]]
                curve = first[["timestamp"]].assign(
                    challenger=strategy, equity=first["champion_equity"].astype(float)
                )
                curves.insert(-1, curve[["challenger", "timestamp", "equity"]])
    shadow = pd.concat(curves, ignore_index=True) if len(curves) > 1 else curves[0]
    return Books(figures, shadow.reset_index(drop=True))
