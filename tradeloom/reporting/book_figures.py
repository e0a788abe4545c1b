"""The champion's and each challenger's book side by side, from a run's journal.

A paper or live run with ``challengers:`` journals each challenger's shadow book
(``challenger_bar``, ``challenger_fill``: `tradeloom.live.lifecycle.challengers`). ``tradeloom
status`` (text and ``--json``), the console's run page and ``report.html`` show every
book with the same figures, each computed once here (`book_figures`) over the bars the
book has (a challenger added to a running run has the bars from the one it was added
at): the first of them and how many; the equity at the last; the return on the starting
capital; the Sharpe ratio of the per-bar equity curve and its maximum drawdown
(`curve_performance`'s, the Sharpe annualised from the bar length); the fills; the
turnover (notional traded over the starting capital); the model's AUC and its expected
calibration error (ECE), both over the predictions whose label is known; and a
challenger's promotion gate, its last ``challenger_gate`` verdict with its p-value.

The predictions (`resolved_predictions`): a symbol's journaled probability at the k-th of
its bars in the book, labelled up when its close at its (k + ``horizon``)-th bar in the
book is above its close at the k-th (the symbol's own bars: a bar it was absent from is
not one of them; a prediction whose later bar the book does not have yet, or a NaN
probability, is left out). One market is the universe of one; over a universe the
(symbol, bar) predictions of every symbol are pooled, as the backtest's metrics.json
pools them. The AUC is `tradeloom.stats.auc` over the pooled predictions (the
backtest's figure), the ECE the calibration monitor's `calibration_error` over the ten
bins of the report's calibration table.
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
from tradeloom.stats import RELIABILITY_BINS, auc, calibration_error, resolved_pairs

__all__ = [
    "BOOK_KINDS",
    "CHAMPION",
    "BookFigures",
    "Books",
    "book_figures",
    "journal_books",
    "label_horizon",
    "resolved_predictions",
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
    "warm_up",
)
"""The journal's kinds `book_figures` reads (``warm_up``: the order of a universe's
symbols, which a ``challenger_bar`` row's ``probabilities`` follow)."""


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
    market = None if one else _Market.of(live, frames.get("warm_up"))

    def resolved(probability: pd.Series | pd.DataFrame | None) -> _Resolved:
        if not horizon or probability is None:
            return None
        if market is None:  # one market: its live bars in a row
            return resolved_pairs(
                probability.to_numpy(np.float64)[:, None],
                closes.reindex(probability.index).to_numpy(np.float64)[:, None],
                horizon,
            )
        return resolved_predictions(probability, market.closes, horizon)

    fills = frames["fill"]
    champion = (
        pd.Series(live["probability"].to_numpy(np.float64), index=closes.index)
        if market is None
        else market.probabilities
    )
    books = [
        _figures(
            CHAMPION,
            curve["equity"].to_numpy(np.float64),
            float((fills["price"] * fills["quantity"]).sum()),
            len(fills),
            resolved(champion),
            capital,
            timeframe_seconds,
        )
    ]
    if len(closes):
        books[0] = replace(books[0], first_bar=int(closes.index.min()))
    shadow_fills = frames["challenger_fill"]
    gates = _gates(frames.get("challenger_gate"))
    capitals = _capitals(frames.get("challenger_started"))
    for strategy, shadows in _by_strategy(shadow):
        if strategy:  # a portfolio file's strategy: its own book, then its challengers'
            books.append(
                _member_book(strategy, shadows, fills, capitals, capital, timeframe_seconds)
            )
        for name, rows in shadows.groupby("challenger", sort=False):
            rows = rows.drop_duplicates("bar", keep="first")
            own = shadow_fills[shadow_fills["challenger"] == name]
            probability: pd.Series | pd.DataFrame | None = None  # a portfolio's: none shown
            if not strategy and market is None:
                probability = pd.Series(
                    [float(p[0]) for p in rows["probabilities"]], index=rows["bar"].to_numpy()
                )
            elif not strategy and market is not None:
                probability = market.of_rows(rows)
            figures = _figures(
                str(name),
                rows["equity"].to_numpy(np.float64),
                float(rows["traded"].sum()),
                len(own),
                resolved(probability),
                capitals.get(str(name), capital),
                timeframe_seconds,
            )
            first = int(rows["bar"].min())
            books.append(replace(figures, gate=gates.get(str(name)), first_bar=first))
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
        capitals.get(str(first["challenger"]), capital),
        timeframe_seconds,
    )
    return replace(figures, first_bar=start)


_Resolved = tuple[np.ndarray, np.ndarray] | None
"""A book's resolved predictions and their labels (None: no model figures)."""


@dataclass(frozen=True)
class _Market:
    """A universe's live bars: each symbol's close and the champion's probability at each
    bar (``[bars, symbols]``, NaN: the symbol had no bar), its symbols in the order of a
    ``challenger_bar`` row's ``probabilities``."""

    symbols: tuple[str, ...]
    closes: pd.DataFrame
    probabilities: pd.DataFrame

    @classmethod
    def of(cls, live: pd.DataFrame, warm_up: pd.DataFrame | None) -> _Market:
        # the run's symbols in its universe's order: its warm_up rows' (one per symbol,
        # in order); a journal without them, the order they first traded in
        named = live["symbol"] if warm_up is None or not len(warm_up) else warm_up["symbol"]
        symbols = tuple(dict.fromkeys(str(s) for s in named))
        rows = live.drop_duplicates(["bar", "symbol"], keep="first")
        bars = np.sort(rows["bar"].unique())

        def table(column: str) -> pd.DataFrame:
            wide = rows.pivot(index="bar", columns="symbol", values=column)
            return wide.reindex(index=bars, columns=list(symbols)).astype(np.float64)

        return cls(symbols, table("close"), table("probability"))

    def of_rows(self, rows: pd.DataFrame) -> pd.DataFrame | None:
        """Return a challenger's probabilities (``[its bars, symbols]``) from its
        ``challenger_bar`` rows (None: a row does not have one per symbol)."""
        values = [list(p) for p in rows["probabilities"]]
        if any(len(v) != len(self.symbols) for v in values):
            return None
        return pd.DataFrame(
            np.asarray(values, np.float64).reshape(len(values), len(self.symbols)),
            index=rows["bar"].to_numpy(),
            columns=list(self.symbols),
        )


def resolved_predictions(
    probabilities: pd.DataFrame, closes: pd.DataFrame, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return a book's predictions whose label is known, every symbol's pooled, and
    their labels (symbol by symbol, in the columns' order).

    Args:
        probabilities: ``[bars, symbols]``: the model's probability at each of the
            book's bars (NaN: none).
        closes: Each symbol's close at each bar of the run (NaN: it had no bar);
            read at the book's bars.
        horizon: The label's horizon, in the symbol's own bars.
    """
    shown = closes.reindex(index=probabilities.index, columns=probabilities.columns)
    return resolved_pairs(probabilities.to_numpy(np.float64), shown.to_numpy(np.float64), horizon)


def _gates(rows: pd.DataFrame | None) -> dict[str, str]:
    """Each gated challenger's last journaled verdict, with its p-value when it has one,
    the health figures its rules read (``auc=``, ``ece=``) when it has them, and the bar
    they are from (a gate's row is journaled when its verdict changes: its figures are
    that bar's, not today's)."""
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
        shown[str(name)] = f"{said} at bar {int(last['bar'])}"
    return shown


def _figures(
    name: str,
    equity: np.ndarray,
    traded: float,
    fills: int,
    predictions: _Resolved,
    capital: float,
    timeframe_seconds: int,
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
    if predictions is not None and len(predictions[0]):
        p, up = predictions
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


def _calibration_error(p: np.ndarray, up: np.ndarray) -> float:
    # the calibration monitor's ECE, over the report's reliability bins
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
    return Books(figures, rows[["challenger", "timestamp", "equity"]].reset_index(drop=True))
