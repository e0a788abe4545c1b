"""Execution quality per venue and per order type, from a run's journal, in every mode.

The figures (``docs/reference/execution-quality.md`` defines each one and its sign)
are computed once, here, from the journal's rows: a backtest, a paper run and a live
run are measured by the same code from the same kinds of rows.

- An *order* is a journal ``order`` row, except the children of a sliced order, which
  are measured as their parent (``sliced_order``): its quantity, its decision price and
  its decision bar, with every child's fills; its type is ``twap`` or ``participation``.
- Its *type* is ``market``, ``limit``, ``limit_post_only``, ``stop``, ``twap`` or
  ``participation``. A live order is post-only as it was sent (``order_sent``); a
  simulated one as ``execution.orders.limit.post_only`` says.
- Its *venue* is the one the router's ``route_decision`` rows name for it, in every
  mode (one row per child: its ``order_id``, the engine's order as its ``parent_id``,
  and the ``venue``; an order whose children went to several venues is ``a+b``). A
  journal from before backtests modelled each venue has a ``route_model`` row
  instead: the venue the run was modelled on, the limit venue for an order that
  rested (a maker fill, or a limit never filled) and the market venue for the rest.
  Without either, the run's execution component: ``simulated``, or the ccxt exchange
  id.
- Time is the bar clock where the venue is simulated (a fill's bar's time less the
  decision bar's), and the venue's trade time less the time the order was sent
  (``order_sent.sent_at``) live.

Shortfall, fees, fill ratio and maker share are weighted by quantity (or notional),
so a group's figure combines linearly into the overall one; the time-to-fill
quantiles are over orders.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from pandas import NaT

from tradeloom.journal import (
    KINDS,
    Event,
    FillEvent,
    OrderCancelled,
    OrderEvent,
    OrderSent,
    SlicedOrder,
    VenueFill,
    read_events,
)

__all__ = [
    "ORDER_TYPES",
    "ROUTE_KIND",
    "ExecutionLedger",
    "ExecutionTerms",
    "execution_quality",
    "journal_execution_quality",
    "journal_kinds",
    "order_type",
    "shortfall_bps",
    "terms_of",
]

ORDER_TYPES = ("market", "limit", "limit_post_only", "stop", "twap", "participation")
"""The order types the figures are grouped by, in the order the report lists them."""

ROUTE_KIND = "route_decision"
"""The router's journal kind: one row per routed child, with ``order_id``, ``parent_id``
and ``venue``."""
MODEL_KIND = "route_model"
"""The router's modelled venues in a backtest or paper run: ``market_venue``,
``limit_venue``."""

_KINDS = ("order", "fill", "order_cancelled", "sliced_order", "order_sent", "venue_fill")
_BPS = 1e4
_DONE = 1e-9  # a fill this close to the order's quantity completes it (the venue's rule)


@dataclass(frozen=True)
class ExecutionTerms:
    """What the journal's rows do not say about a run's orders, from its strategy file.

    Attributes:
        venue: The execution component's name (``simulated``, a ccxt exchange id).
        post_only: Whether its simulated limit orders are post-only.
    """

    venue: str = "simulated"
    post_only: bool = False


def terms_of(document: Mapping[str, Any] | None) -> ExecutionTerms:
    """Return the terms of a run whose strategy document is ``document`` (None: defaults)."""
    execution = _mapping(_mapping(document).get("execution"))
    kind = str(execution.get("kind") or "simulated")
    venue = str(execution.get("exchange") or kind) if kind == "ccxt" else kind
    limit = _mapping(_mapping(execution.get("orders")).get("limit"))
    return ExecutionTerms(venue, bool(limit.get("post_only", False)))


def journal_execution_quality(path: Path, document: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return the ``execution_quality`` block of the run journaled at ``path``.

    Args:
        path: The journal (``journal_path(run_dir)``).
        document: The run's strategy document (`terms_of`).

    Raises:
        JournalError: Not a readable journal.
    """
    return execution_quality(read_events(path, journal_kinds()), terms_of(document))


def journal_kinds() -> list[str]:
    """Return the journal kinds execution quality reads."""
    return [k for k in (*_KINDS, ROUTE_KIND, MODEL_KIND) if k in KINDS]


@dataclass
class _Order:
    """One measured order (a sliced parent stands for its children)."""

    id: str
    side: int
    quantity: float
    reference: float
    bar: int
    timestamp: float
    order_type: str
    venue: str = ""
    done: bool = False
    sent_at: float = math.nan
    fills: list[FillEvent] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    trade_times: list[float] = field(default_factory=list)


def execution_quality(events: Iterable[Event], terms: ExecutionTerms) -> dict[str, Any]:
    """Return the execution-quality figures of a run's order and fill events.

    Args:
        events: The journal's ``order``, ``fill``, ``order_cancelled`` and
            ``sliced_order`` rows, a live run's ``order_sent`` and ``venue_fill`` rows,
            and the router's ``route_decision`` rows where there are, in sequence order.
        terms: What the rows do not say (`terms_of`).

    Returns:
        ``overall``, and the lists ``by_venue``, ``by_order_type`` and ``groups`` (per
        venue and order type), each entry the figures of `_figures` with its ``venue``
        and/or ``order_type``.
    """
    ledger = ExecutionLedger(terms)
    ledger.add(events)
    return ledger.figures()


class ExecutionLedger:
    """The orders execution quality measures, accumulated event by event.

    `execution_quality` is one `add` of every event and one `figures`; a live run's
    files `add` each refresh's new events to the same ledger and ask for `figures`
    again, which equal `execution_quality` of every event so far.

    Args:
        terms: What the rows do not say (`terms_of`).
    """

    def __init__(self, terms: ExecutionTerms) -> None:
        self.terms = terms
        self._orders: dict[str, _Order] = {}
        self._measured: dict[str, _Order] = {}  # an order id -> the order its fills count for
        self._routes: dict[str, set[str]] = {}  # an order or child id -> its venues
        self._model: tuple[str, str] | None = None  # a modelled router's market, limit venues
        self._sent: dict[str, OrderSent] = {}
        self._traded: dict[str, list[float]] = {}
        self._rows: dict[str, _Measured] = {}  # each order's numbers, as last resolved
        self._dirty: set[str] = set()  # the orders an event touched since
        self._report: dict[str, Any] | None = None

    def _touch(self, order_id: str | None) -> None:
        """Mark the order ``order_id`` counts for as changed (an id of no order so far
        changes none: the order, when it comes, is new)."""
        order = self._measured.get(order_id) if order_id else None
        if order is not None:
            self._dirty.add(order.id)

    def add(self, events: Iterable[Event]) -> None:
        """Add ``events`` (as `execution_quality` takes them, in sequence order)."""
        orders, measured, routes, touch = self._orders, self._measured, self._routes, self._touch
        for event in events:
            self._report = None
            if isinstance(event, SlicedOrder):
                self._dirty.add(event.id)
                orders[event.id] = _Order(
                    event.id, event.side, event.quantity, event.reference_price, event.bar,
                    _seconds(event.timestamp), event.slicing,
                )  # fmt: skip
            elif isinstance(event, OrderEvent):
                parent = orders.get(event.parent_id) if event.parent_id else None
                if parent is not None:
                    self._dirty.add(parent.id)
                    measured[event.id] = parent
                    parent.children.append(event.id)
                    parent.done = False  # a child is working
                    continue
                kind = order_type(event.kind, self.terms.post_only)
                order = _Order(
                    event.id, event.side, event.quantity, event.reference_price, event.bar,
                    _seconds(event.timestamp), kind,
                )  # fmt: skip
                orders[event.id] = measured[event.id] = order
                self._dirty.add(event.id)
            elif isinstance(event, OrderSent):
                self._sent[event.id] = event
                touch(event.id)
            elif isinstance(event, VenueFill):
                self._traded.setdefault(event.order_id, []).append(_seconds(event.timestamp))
                touch(event.order_id)
            elif isinstance(event, FillEvent):
                touch(event.order_id)
                if event.order_id in measured:
                    measured[event.order_id].fills.append(event)
            elif isinstance(event, OrderCancelled):
                # a parent is done when its last child is (a later child works again); an
                # order_expired row is an order still working when the data ended: not done
                touch(event.order_id)
                if event.order_id in measured:
                    measured[event.order_id].done = True
            elif event.KIND == ROUTE_KIND:
                venue = str(getattr(event, "venue", ""))
                for key in (getattr(event, "order_id", None), getattr(event, "parent_id", None)):
                    if key:
                        routes.setdefault(str(key), set()).add(venue)
                        touch(str(key))
            elif event.KIND == MODEL_KIND:
                market_venue = str(getattr(event, "market_venue", ""))
                self._model = (market_venue, str(getattr(event, "limit_venue", "")))
                self._dirty.update(orders)  # every order's modelled venue

    def figures(self) -> dict[str, Any]:
        """Return `execution_quality`'s figures of the events added so far.

        Only the orders an event touched since the last call are resolved again.
        """
        if self._report is None:
            rows = self._rows
            for order_id in self._dirty:
                rows[order_id] = _measured(self._resolved(self._orders[order_id]))
            self._dirty.clear()
            self._report = _report([rows[order_id] for order_id in self._orders])
        return self._report

    def _resolved(self, order: _Order) -> _Order:
        """Return ``order`` as measured: its venue, live times, post-only type and done
        flag as every event so far says (a copy: a later event may change them)."""
        ids = order.children or [order.id]
        named = sorted(set().union(*(self._routes.get(i, set()) for i in ids)))
        venue = "+".join(named) if named else _modelled(order, self._model) or self.terms.venue
        kind, sent_at, trade_times = order.order_type, order.sent_at, order.trade_times
        live = [self._sent[i] for i in ids if i in self._sent]
        if live:
            sent_at = min(x.sent_at for x in live)
            trade_times = [t for i in ids for t in self._traded.get(i, [])]
            if kind == "limit" and live[0].post_only:
                kind = "limit_post_only"
        filled = sum(f.quantity for f in order.fills)
        done = order.done or filled >= order.quantity * (1.0 - _DONE)
        return replace(
            order, venue=venue, order_type=kind, sent_at=sent_at, trade_times=trade_times,
            done=done, fills=list(order.fills), children=list(order.children),
        )  # fmt: skip


def _modelled(order: _Order, model: tuple[str, str] | None) -> str:
    """Return the venue a modelled router books ``order`` on ('' without a model)."""
    if model is None:
        return ""
    market_venue, limit_venue = model
    rested = any(f.liquidity == "maker" for f in order.fills) or (
        order.order_type.startswith("limit") and not order.fills
    )
    return limit_venue if rested else market_venue


def order_type(kind: str, post_only: bool) -> str:
    """Return the type an order of journal ``kind`` is measured as (not a sliced child's)."""
    return "limit_post_only" if kind == "limit" and post_only else kind


def shortfall_bps(side: Any, price: Any, reference: Any) -> Any:
    """Return a fill's implementation shortfall in bps of its decision price (+: a cost).

    Works on floats and on numpy arrays alike.
    """
    return side * (price - reference) / reference * _BPS


@dataclass(frozen=True)
class _Measured:
    """One resolved order's numbers: its fills' columns and its times to fill."""

    order: _Order
    quantity: np.ndarray
    price: np.ndarray
    reference: np.ndarray
    side: np.ndarray
    fee: np.ndarray
    maker: np.ndarray
    unknown: np.ndarray
    timing: tuple[int, int, float, float] | None  # bars and seconds to first, last fill


def _measured(order: _Order) -> _Measured:
    fills = order.fills
    n = len(fills)
    timing = None
    if fills:
        bars = [f.bar - order.bar for f in fills]
        if math.isnan(order.sent_at):  # the bar clock
            times = [_seconds(f.timestamp) - order.timestamp for f in fills]
        else:  # the venue's trade times after the order left
            times = [max(0.0, t - order.sent_at) for t in order.trade_times] or [math.nan]
        timing = (min(bars), max(bars), min(times), max(times))
    return _Measured(
        order,
        np.array([f.quantity for f in fills], dtype=np.float64),
        np.array([f.price for f in fills], dtype=np.float64),
        np.full(n, order.reference, dtype=np.float64),
        np.full(n, order.side, dtype=np.float64),
        np.array([f.fee for f in fills], dtype=np.float64),
        np.array([f.liquidity == "maker" for f in fills], dtype=bool),
        np.array([f.liquidity == "" for f in fills], dtype=bool),
        timing,
    )


def _report(rows: list[_Measured]) -> dict[str, Any]:
    venues = sorted({r.order.venue for r in rows})
    types = [t for t in ORDER_TYPES if any(r.order.order_type == t for r in rows)]
    groups = []
    for venue in venues:
        for kind in types:
            chosen = [r for r in rows if r.order.venue == venue and r.order.order_type == kind]
            if chosen:
                groups.append({"venue": venue, "order_type": kind, **_figures(chosen)})
    return {
        "overall": _figures(rows),
        "by_venue": [
            {"venue": v, **_figures([r for r in rows if r.order.venue == v])} for v in venues
        ],
        "by_order_type": [
            {"order_type": t, **_figures([r for r in rows if r.order.order_type == t])}
            for t in types
        ],
        "groups": groups,
    }


def _column(rows: list[_Measured], name: str, dtype: type) -> np.ndarray:
    parts = [getattr(r, name) for r in rows]
    return np.concatenate(parts) if parts else np.zeros(0, dtype)


def _figures(rows: list[_Measured]) -> dict[str, Any]:
    """Return one group's figures (NaN where there is nothing to measure)."""
    quantity = _column(rows, "quantity", np.float64)
    price = _column(rows, "price", np.float64)
    reference = _column(rows, "reference", np.float64)
    side = _column(rows, "side", np.float64)
    fee = _column(rows, "fee", np.float64)
    maker = _column(rows, "maker", bool)
    unknown = _column(rows, "unknown", bool)
    notional = quantity * price
    traded = float(notional.sum())
    shortfall = _weighted(shortfall_bps(side, price, reference), quantity)
    # each fill's fee in bps of its notional at the decision price, weighted by quantity
    # (a fill of no quantity adds its fee, not a 0/0)
    filled = float(quantity.sum())
    fees = float((fee / reference).sum()) / filled * _BPS if filled > 0 else math.nan
    done = [r for r in rows if r.order.done]
    ordered = sum(r.order.quantity for r in done)
    done_filled = sum(f.quantity for r in done for f in r.order.fills)
    timed = [r.timing for r in rows if r.timing is not None]
    return {
        "orders": len(rows),
        "open_orders": len(rows) - len(done),
        "fills": len(quantity),
        "ordered_quantity": ordered,
        "filled_quantity": float(quantity.sum()),
        "filled_notional": traded,
        "fill_ratio": done_filled / ordered if ordered > 0 else math.nan,
        "shortfall_bps": shortfall,
        "fee_bps": fees,
        "total_cost_bps": shortfall + fees,
        "maker_share": float(notional[maker].sum()) / traded if traded > 0 else math.nan,
        "unknown_liquidity_share": (
            float(notional[unknown].sum()) / traded if traded > 0 else math.nan
        ),
        "bars_to_first_fill": _quantiles([t[0] for t in timed]),
        "bars_to_last_fill": _quantiles([t[1] for t in timed]),
        "seconds_to_first_fill": _quantiles([t[2] for t in timed]),
        "seconds_to_last_fill": _quantiles([t[3] for t in timed]),
    }


def _seconds(timestamp: Any) -> float:
    """Return a journal time as seconds since the epoch (NaN: none)."""
    return math.nan if timestamp is None or timestamp is NaT else timestamp.value / 1e9


def _weighted(values: np.ndarray, weights: np.ndarray) -> float:
    total = float(weights.sum())
    return float((values * weights).sum() / total) if total > 0 else math.nan


def _quantiles(values: Sequence[float]) -> dict[str, float]:
    finite = np.array([v for v in values if not math.isnan(v)], dtype=np.float64)
    if not len(finite):
        return {"median": math.nan, "p90": math.nan}
    return {"median": float(np.median(finite)), "p90": float(np.quantile(finite, 0.9))}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
