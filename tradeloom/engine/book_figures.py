"""The champion's and each challenger's book side by side, from a run's journal.

A paper or live run with ``challengers:`` journals each challenger's shadow book
(``challenger_bar``, ``challenger_fill``: `tradeloom.live.challengers`); ``tradeloom
status`` shows every book with the same figures, each computed once here over the bars
the run processed live: the equity at the last bar, the return on the starting capital,
the Sharpe ratio of the per-bar equity curve (`curve_performance`'s, annualised from
the bar length), the fills, the turnover (notional traded over the starting capital) and,
over one market, the AUC of the probabilities against the label's direction
(`prediction_auc`, the backtest's metrics.json figure); and a challenger's promotion
gate, its last ``challenger_gate`` verdict with its p-value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from tradeloom.reporting.metrics import curve_performance, prediction_auc

__all__ = ["CHAMPION", "BookFigures", "book_figures", "label_horizon"]

CHAMPION = "champion"
"""The name status gives the run's own book beside its challengers'."""


@dataclass(frozen=True)
class BookFigures:
    """One book's figures over the bars the run processed live (None: not known)."""

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


def book_figures(
    frames: Mapping[str, pd.DataFrame],
    curve: pd.DataFrame,
    capital: float | None,
    timeframe_seconds: int,
    horizon: int | None,
) -> list[BookFigures]:
    """Return the champion's figures, then each challenger's (empty: no challengers).

    Args:
        frames: The journal's frames: ``live_bar``, ``fill``, ``challenger_bar``,
            ``challenger_fill`` and (when it has any) ``challenger_gate``.
        curve: The champion's equity at each bar (``timestamp``, ``equity``).
        capital: The starting capital (None: unknown; no figure is then known).
        timeframe_seconds: The bar length.
        horizon: The label's horizon in bars (None: no AUC).
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
    shadow_fills = frames["challenger_fill"]
    gates = _gates(frames.get("challenger_gate"))
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
            capital,
            timeframe_seconds,
            horizon,
        )
        books.append(replace(figures, gate=gates.get(str(name))))
    return books


def _gates(rows: pd.DataFrame | None) -> dict[str, str]:
    """Each gated challenger's last verdict, with its p-value when it has one."""
    if rows is None or not len(rows):
        return {}
    shown = {}
    for name, group in rows.groupby("challenger", sort=False):
        last = group.iloc[-1]
        p = float(last["p"])
        shown[str(name)] = str(last["verdict"]) + ("" if math.isnan(p) else f" p={p:.3g}")
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
        return BookFigures(name, None, None, None, fills, traded / capital, None)
    figures = curve_performance(
        pd.Series(equity),
        pd.Series(np.zeros(len(equity))),
        initial_cash=capital,
        timeframe_seconds=timeframe_seconds,
        pnl=np.zeros(0),
        trade_returns=np.zeros(0),
        fees=0.0,
    )
    auc = None
    if probability is not None and horizon:
        aligned = closes.reindex(probability.index)
        value = prediction_auc(probability, aligned, horizon)["auc"]
        auc = None if math.isnan(value) else float(value)
    return BookFigures(
        name,
        float(equity[-1]),
        float(figures["total_return"]),
        float(figures["sharpe"]),
        fills,
        traded / capital,
        auc,
    )


def label_horizon(document: Any) -> int | None:
    """Return the label horizon of a run's strategy document (None: none found)."""
    model = document.get("model") if isinstance(document, Mapping) else None
    label = model.get("label") if isinstance(model, Mapping) else None
    horizon = label.get("horizon") if isinstance(label, Mapping) else None
    return horizon if isinstance(horizon, int) and not isinstance(horizon, bool) else None
