"""The money a run's status tells, from the journal's fills: positions, their average
cost, cash, the equity curve and the day's start; and the times it prints."""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from tradeloom.runtime.lazy import pandas as pd

if TYPE_CHECKING:
    from tradeloom.engine.status_values import Position

    pass

__all__ = [
    "NAT",
    "equity_curve",
    "iso_ns",
]


_EPS = 1e-9


def _held_now(
    symbols: list[str], positions: list[Position], equity: float | None
) -> np.ndarray | None:
    """Each symbol's position at its last close, of the equity (None: the equity or a
    held position's price is not known); a portfolio's decisions weigh its strategies:
    each strategy's books (``STRATEGY:SYMBOL``) summed."""
    if equity is None or not equity > 0.0:
        return None
    held = np.zeros(len(symbols))
    column = {s: j for j, s in enumerate(symbols)}
    for p in positions:
        j = column.get(p.symbol, column.get(p.symbol.split(":", 1)[0]))
        if j is None or p.quantity == 0.0:
            continue
        if p.mark is None:
            return None
        held[j] += p.quantity * p.mark / equity
    return held


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _venues_cash(venues: Any) -> float | None:
    """A router's starting cash: its venues' together (a venue's own default where it
    names none, as the simulated venue's params do: asked of the registry, as a
    third-party kind's would be)."""
    from tradeloom.plugins.manager import load_plugins

    if not isinstance(venues, list) or not venues:
        return None
    simulated = load_plugins(entry_points=False).registry.get("execution", "simulated")
    if simulated is None:  # pragma: no cover - a built-in kind
        return None
    default = simulated.component.params.model_fields["initial_cash"].default
    total = 0.0
    for venue in venues:
        cash = venue.get("initial_cash", default) if isinstance(venue, dict) else None
        if not isinstance(cash, int | float) or isinstance(cash, bool):
            return None
        total += float(cash)
    return total


def _fill_marks(fills: pd.DataFrame, funding: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each fill's bar, symbol, signed quantity and cash flow, and each perpetual's
    funding payment (a cash flow of ``-amount``, no quantity), in journal order."""
    signed = fills["side"].to_numpy(np.float64) * fills["quantity"].to_numpy(np.float64)
    flow = signed * fills["price"].to_numpy(np.float64) + fills["fee"].to_numpy(np.float64)
    frame = pd.DataFrame(
        {
            "seq": fills["seq"].to_numpy(np.int64),
            "bar": fills["bar"].to_numpy(np.int64),
            "symbol": fills["symbol"].to_numpy(object),
            "signed": signed,
            "flow": flow,
        }
    )
    if funding is not None and len(funding):
        paid = pd.DataFrame(
            {
                "seq": funding["seq"].to_numpy(np.int64),
                "bar": funding["bar"].to_numpy(np.int64),
                "symbol": funding["symbol"].to_numpy(object),
                "signed": 0.0,
                "flow": -funding["amount"].to_numpy(np.float64),
            }
        )
        frame = pd.concat([frame, paid], ignore_index=True) if len(frame) else paid
    frame = frame.sort_values("seq", kind="stable", ignore_index=True)
    return frame.drop(columns="seq")


def _quantities(marks: pd.DataFrame) -> dict[str, float]:
    return {str(k): float(v) for k, v in marks.groupby("symbol", sort=True)["signed"].sum().items()}


def _average_cost(fills: Iterable[tuple[Any, Any, Any]]) -> float | None:
    """The average entry price of what is held: fills (side, quantity, price) since the
    position was last flat."""
    quantity = 0.0
    cost: float | None = None
    for side, qty, price in fills:
        signed = float(side) * float(qty)
        after = quantity + signed
        if abs(after) <= _EPS * max(abs(quantity), abs(signed), 1.0):
            quantity, cost = 0.0, None
        elif quantity == 0.0 or (quantity > 0) == (signed > 0):
            cost = float(price) if cost is None else (cost * quantity + price * signed) / after
            quantity = after
        elif (after > 0) != (quantity > 0):  # flipped through flat: the rest at this price
            quantity, cost = after, float(price)
        else:
            quantity = after
    return cost


def _equity_curve(bars: pd.DataFrame, marks: pd.DataFrame, capital: float) -> np.ndarray:
    """Equity at each bar's close: the fills up to it, marked at its close (one market)."""
    return equity_curve(
        bars["bar"].to_numpy(np.int64),
        bars["close"].to_numpy(np.float64),
        marks["bar"].to_numpy(np.int64),
        marks["signed"].to_numpy(np.float64),
        marks["flow"].to_numpy(np.float64),
        capital,
    )


def equity_curve(
    index: np.ndarray,
    close: np.ndarray,
    fill_bar: np.ndarray,
    signed: np.ndarray,
    flow: np.ndarray,
    capital: float,
) -> np.ndarray:
    """Equity at each bar (``index``) at its ``close``: the cash flows and signed
    quantities of the fills (and funding) at bars up to it, in journal order."""
    if not len(fill_bar):
        return np.full(len(index), capital)
    order = np.argsort(fill_bar, kind="stable")
    fill_bars = fill_bar[order]
    position = np.concatenate(([0.0], np.cumsum(signed[order])))
    cash = np.concatenate(([capital], capital - np.cumsum(flow[order])))
    last = np.searchsorted(fill_bars, index, side="right")
    return np.asarray(cash[last] + position[last] * close)


def _day_start(
    bars: pd.DataFrame, curve: np.ndarray, capital: float, seconds: int, *, ended: bool = False
) -> tuple[str, float]:
    """The UTC day of the last bar's close, and the equity at the close before that day.

    Of a run that ended (a finished backtest), the last day of its data: a last close at
    midnight ends the day before, which would otherwise read as a day with no bar."""
    closes = pd.DatetimeIndex(bars["timestamp"]) + pd.Timedelta(seconds=seconds)
    day = (closes[-1] - pd.Timedelta(1 if ended else 0, "ns")).normalize()
    before = np.flatnonzero(closes <= day)
    start = float(curve[before[-1]]) if len(before) else capital
    return day.strftime("%Y-%m-%d"), start


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):  # nanoseconds (rows' times)
        return iso_ns(value)
    stamp = pd.Timestamp(value)
    if stamp is pd.NaT or pd.isna(stamp):
        return None
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return str(stamp.strftime("%Y-%m-%dT%H:%M:%SZ"))


def iso_ns(ns: int | None) -> str | None:
    """Return a time in nanoseconds since the epoch (UTC) as ISO 8601 to the second, as
    `_iso` writes a timestamp (None: none, or the journal's NaT)."""
    if ns is None or ns == NAT:
        return None
    when = datetime.datetime.fromtimestamp(ns // 1_000_000_000, tz=datetime.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


NAT = -(2**63)
"""A missing time as the journal's frames hold it (``NaT``'s nanoseconds)."""
