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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
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
    read_frames,
)
from tradeloom.tables.kept import column, times

__all__ = [
    "ORDER_TYPES",
    "OTHER_KINDS",
    "ROUTE_KIND",
    "ExecutionLedger",
    "ExecutionTerms",
    "execution_quality",
    "journal_execution_quality",
    "journal_kinds",
    "order_type",
    "plain_execution_quality",
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
    terms = terms_of(document)
    frames = read_frames(path, journal_kinds())
    figures = _plain_orders_quality(frames, terms)
    if figures is not None:
        return figures
    return execution_quality(read_events(path, journal_kinds()), terms)


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


@dataclass(frozen=True)
class _Group:
    """A group's orders as columns: each fill's numbers (its orders' fills, order by
    order in journal order, each order's in journal order) and each order's.

    Attributes:
        fills: Per fill, `_FILL_COLUMNS`: quantity, price, its order's reference price
            and side, fee, whether a maker fill, whether of unknown liquidity.
        done_fill: Per fill: its order is done.
        ordered: Per order: its quantity.
        done: Per order: whether done.
        timing: Per order with fills: bars and seconds to its first and last fill.
    """

    fills: tuple[np.ndarray, ...]
    done_fill: np.ndarray
    ordered: np.ndarray
    done: np.ndarray
    timing: np.ndarray


def _report_of(
    venues: np.ndarray | str, types: np.ndarray, group: Callable[[np.ndarray], _Group]
) -> dict[str, Any]:
    """Return the report of orders whose venue and type are ``venues``/``types``
    (``venues`` a text: every order's); ``group`` returns the `_Group` of the orders a
    mask picks."""
    # each order's venue and type as a code (the masks compare integers, not texts)
    type_codes, type_names = pd.factorize(types, use_na_sentinel=False)
    if isinstance(venues, str):  # one venue: its mask picks every order (no factorizing)
        of_venue = {venues: np.ones(len(types), dtype=bool)} if len(types) else {}
    else:
        venue_codes, venue_names = pd.factorize(venues, use_na_sentinel=False)
        of_venue = {v: venue_codes == k for k, v in enumerate(venue_names.tolist())}
    named = sorted(of_venue)
    of_type = {t: type_codes == k for k, t in enumerate(type_names.tolist())}
    present = [t for t in ORDER_TYPES if t in of_type]
    measured: dict[bytes, dict[str, Any]] = {}

    def figures(mask: np.ndarray) -> dict[str, Any]:
        """`_figures` of the orders ``mask`` picks, measured once per distinct pick (one
        venue and one type: the overall figures are every group's)."""
        key = np.packbits(mask).tobytes()
        if key not in measured:
            measured[key] = _figures(group(mask))
        # a copy of each (its numbers, and its quantiles' dicts): every listing its own
        return {k: dict(v) if isinstance(v, dict) else v for k, v in measured[key].items()}

    groups = []
    for venue in named:
        for kind in present:
            chosen = of_venue[venue] & of_type[kind]
            if chosen.any():
                groups.append({"venue": venue, "order_type": kind, **figures(chosen)})
    return {
        "overall": figures(np.ones(len(types), dtype=bool)),
        "by_venue": [{"venue": v, **figures(of_venue[v])} for v in named],
        "by_order_type": [{"order_type": t, **figures(of_type[t])} for t in present],
        "groups": groups,
    }


def _report(rows: list[_Measured]) -> dict[str, Any]:
    venues = np.array([r.order.venue for r in rows], dtype=object)
    types = np.array([r.order.order_type for r in rows], dtype=object)

    def group(mask: np.ndarray) -> _Group:
        chosen = [r for r, keep in zip(rows, mask, strict=True) if keep]
        timed = [r.timing for r in chosen if r.timing is not None]
        return _Group(
            tuple(_column(chosen, name) for name in _FILL_COLUMNS),
            done_fill=np.concatenate(
                [np.full(len(r.quantity), r.order.done) for r in chosen] or [np.zeros(0, bool)]
            ),
            ordered=np.array([r.order.quantity for r in chosen], dtype=np.float64),
            done=np.array([r.order.done for r in chosen], dtype=bool),
            timing=np.array(timed, dtype=np.float64).reshape(len(timed), 4),
        )

    return _report_of(venues, types, group)


_FILL_COLUMNS = ("quantity", "price", "reference", "side", "fee", "maker", "unknown")


def _column(rows: list[_Measured], name: str) -> np.ndarray:
    parts = [getattr(r, name) for r in rows]
    dtype = bool if name in ("maker", "unknown") else np.float64
    return np.concatenate(parts) if parts else np.zeros(0, dtype)


def _figures(group: _Group) -> dict[str, Any]:
    """Return one group's figures (NaN where there is nothing to measure)."""
    quantity, price, reference, side, fee, maker, unknown = group.fills
    notional = quantity * price
    traded = float(notional.sum())
    shortfall = _weighted(shortfall_bps(side, price, reference), quantity)
    # each fill's fee in bps of its notional at the decision price, weighted by quantity
    # (a fill of no quantity adds its fee, not a 0/0)
    filled = float(quantity.sum())
    fees = float((fee / reference).sum()) / filled * _BPS if filled > 0 else math.nan
    # summed in order, one at a time, as the orders' quantities add up
    ordered = sum(group.ordered[group.done].tolist())
    done_filled = sum(quantity[group.done_fill].tolist())
    timing = group.timing
    return {
        "orders": len(group.done),
        "open_orders": int((~group.done).sum()),
        "fills": len(quantity),
        "ordered_quantity": ordered,
        "filled_quantity": filled,
        "filled_notional": traded,
        "fill_ratio": done_filled / ordered if ordered > 0 else math.nan,
        "shortfall_bps": shortfall,
        "fee_bps": fees,
        "total_cost_bps": shortfall + fees,
        "maker_share": float(notional[maker].sum()) / traded if traded > 0 else math.nan,
        "unknown_liquidity_share": (
            float(notional[unknown].sum()) / traded if traded > 0 else math.nan
        ),
        "bars_to_first_fill": _quantiles(timing[:, 0]),
        "bars_to_last_fill": _quantiles(timing[:, 1]),
        "seconds_to_first_fill": _quantiles(timing[:, 2]),
        "seconds_to_last_fill": _quantiles(timing[:, 3]),
    }


OTHER_KINDS = ("sliced_order", "order_sent", "venue_fill", ROUTE_KIND, MODEL_KIND)
"""Kinds that make an order's measure depend on more than its own order, fill and
cancellation rows (a parent, a live send, a route)."""


def _plain_orders_quality(
    frames: Mapping[str, pd.DataFrame], terms: ExecutionTerms
) -> dict[str, Any] | None:
    """Return `execution_quality`'s figures from the journal's frames, as columns.

    For a journal of plain orders (a backtest's, without a router or slicing): no rows
    of `OTHER_KINDS`, no order with a parent, unique order ids, every fill and
    cancellation after its order, every time known. Each order is then measured by
    its own rows, on the bar clock, at the run's venue: the same figures as the
    ledger's, from arrays. Anything else is None (the ledger measures it).
    """
    if any(len(frames[k]) for k in OTHER_KINDS if k in frames):
        return None
    orders, fills, cancelled = frames["order"], frames["fill"], frames["order_cancelled"]

    def columns(frame: pd.DataFrame, texts: tuple[str, ...], numbers: tuple[str, ...]) -> Any:
        out: dict[str, Any] = {name: frame[name].to_numpy(object) for name in texts}
        out.update({name: frame[name].to_numpy() for name in ("seq", *numbers)})
        out["timestamp"] = frame["timestamp"]
        return out

    return _plain_quality(
        columns(
            orders, ("id", "parent_id", "kind"), ("bar", "quantity", "reference_price", "side")
        ),
        columns(fills, ("order_id", "liquidity"), ("bar", "quantity", "price", "fee")),
        {"order_id": cancelled["order_id"].to_numpy(object), "seq": cancelled["seq"].to_numpy()},
        terms,
    )


def plain_execution_quality(
    orders: Sequence[Any], fills: Sequence[Any], cancellations: Sequence[Any], terms: ExecutionTerms
) -> dict[str, Any] | None:
    """Return `journal_execution_quality`'s figures of a backtest's orders, fills and
    cancellations as it kept them (objects, or `tradeloom.tables.kept.Kept` columns), without
    reading its journal back.

    The caller vouches that these are every ``order``, ``fill`` and ``order_cancelled``
    row of the journal, in its order, and that it holds no row of `OTHER_KINDS` (no
    router, no slicing, not live): the core's rows, each fill and cancellation after its
    order. None where the orders are not plain (a child order, an id twice): read the
    journal (`journal_execution_quality`).
    """
    order_columns = {
        name: column(orders, name)
        for name in ("id", "parent_id", "kind", "bar", "quantity", "reference_price", "side")
    }
    fill_columns = {
        name: column(fills, name)
        for name in ("order_id", "liquidity", "bar", "quantity", "price", "fee")
    }
    order_columns["timestamp"] = times(orders, "timestamp")
    fill_columns["timestamp"] = times(fills, "timestamp")
    cancelled = {"order_id": column(cancellations, "order_id")}
    return _plain_quality(order_columns, fill_columns, cancelled, terms)


def _plain_quality(
    orders: Mapping[str, Any],
    fills: Mapping[str, Any],
    cancelled: Mapping[str, Any],
    terms: ExecutionTerms,
) -> dict[str, Any] | None:
    """`_plain_orders_quality` of the orders', fills' and cancellations' columns (their
    journal ``seq`` where known: without, each row is after its order)."""
    ids = np.asarray(orders["id"], dtype=object).tolist()
    at = dict(zip(ids, range(len(ids)), strict=True))  # each order's row, by its id
    if pd.notna(np.asarray(orders["parent_id"], dtype=object)).any() or len(at) != len(ids):
        return None
    of_fill = _rows_of(at, fills["order_id"])
    of_cancel = _rows_of(at, cancelled["order_id"])
    if "seq" in orders:
        order_seq = orders["seq"]
        fill_seq, cancel_seq = fills["seq"], cancelled["seq"]
        if (fill_seq[of_fill >= 0] < order_seq[of_fill[of_fill >= 0]]).any() or (
            cancel_seq[of_cancel >= 0] < order_seq[of_cancel[of_cancel >= 0]]
        ).any():
            return None  # a row before its order: the ledger ignores it as it comes
    order_time = _seconds_of(orders["timestamp"])
    fill_time = _seconds_of(fills["timestamp"])
    if np.isnan(order_time).any() or np.isnan(fill_time[of_fill >= 0]).any():
        return None
    kept = np.flatnonzero(of_fill >= 0)
    kept = kept[np.argsort(of_fill[kept], kind="stable")]  # by order, then journal order
    owner = of_fill[kept]
    quantity = np.asarray(fills["quantity"], dtype=np.float64)[kept]
    liquidity = np.asarray(fills["liquidity"], dtype=object)[kept]
    n = len(ids)
    counts = np.bincount(owner, minlength=n)
    filled = np.zeros(n)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    single = counts == 1
    filled[single] = quantity[starts[single]]
    for k in np.flatnonzero(counts > 1):  # summed one at a time, as the ledger does
        filled[k] = sum(quantity[starts[k] : starts[k] + counts[k]].tolist())
    order_quantity = np.asarray(orders["quantity"], dtype=np.float64)
    done = np.zeros(n, dtype=bool)
    done[of_cancel[of_cancel >= 0]] = True
    done |= filled >= order_quantity * (1.0 - _DONE)
    has = counts > 0
    order_bar = np.asarray(orders["bar"], dtype=np.int64)
    bars = np.asarray(fills["bar"], dtype=np.int64)[kept] - order_bar[owner]
    times_ = fill_time[kept] - order_time[owner]
    segments = starts[has]
    timing = np.column_stack(
        [
            np.minimum.reduceat(bars, segments) if len(kept) else bars,
            np.maximum.reduceat(bars, segments) if len(kept) else bars,
            np.minimum.reduceat(times_, segments) if len(kept) else times_,
            np.maximum.reduceat(times_, segments) if len(kept) else times_,
        ]
    ).astype(np.float64)
    reference = np.asarray(orders["reference_price"], dtype=np.float64)
    side = np.asarray(orders["side"], dtype=np.int64).astype(np.float64)
    per_fill = (
        quantity,
        np.asarray(fills["price"], dtype=np.float64)[kept],
        reference[owner],
        side[owner],
        np.asarray(fills["fee"], dtype=np.float64)[kept],
        liquidity == "maker",
        liquidity == "",
    )
    timed_order = np.flatnonzero(has)

    def group(mask: np.ndarray) -> _Group:
        picked = mask[owner]
        return _Group(
            tuple(column[picked] for column in per_fill),
            done_fill=done[owner][picked],
            ordered=order_quantity[mask],
            done=done[mask],
            timing=timing[mask[timed_order]],
        )

    kinds = np.asarray(orders["kind"], dtype=object)
    types = kinds.copy()
    if terms.post_only:  # `order_type` of each
        types[kinds == "limit"] = "limit_post_only"
    return _report_of(terms.venue, types, group)


def _rows_of(at: Mapping[Any, int], ids: Any) -> np.ndarray:
    """Return the row of each of ``ids`` by ``at`` (-1: no such order); a dict's look-ups
    cost a third of a string Index's (built, checked unique, searched) over 27k orders."""
    listed = np.asarray(ids, dtype=object).tolist()
    return np.fromiter(map(at.get, listed, [-1] * len(listed)), np.int64, len(listed))


def _seconds_of(times: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Return journal times as seconds since the epoch (NaN: none), as `_seconds` does."""
    index = pd.DatetimeIndex(times)
    nanoseconds = index.as_unit("ns").asi8
    return np.where(index.isna(), np.nan, nanoseconds.astype(np.float64) / 1e9)


def _seconds(timestamp: Any) -> float:
    """Return a journal time as seconds since the epoch (NaN: none)."""
    return math.nan if timestamp is None or timestamp is NaT else timestamp.value / 1e9


def _weighted(values: np.ndarray, weights: np.ndarray) -> float:
    total = float(weights.sum())
    return float((values * weights).sum() / total) if total > 0 else math.nan


def _quantiles(values: np.ndarray) -> dict[str, float]:
    finite = values[~np.isnan(values)]
    if not len(finite):
        return {"median": math.nan, "p90": math.nan}
    return {"median": float(np.median(finite)), "p90": float(np.quantile(finite, 0.9))}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
