"""Book fills: a bar strategy's orders executed against a recorded order book.

``execution.fill: book`` keeps everything a strategy decides (its data, features,
model, signal, sizing and risk, decided at each bar's close) and changes only where its
orders fill: against the L2 replay of ``execution.book`` (`tradeloom.core.kernels.book`)
instead of the bar's rule. `BookVenue` is the engine's `Venue` for it, written over the
kernel's steps (`advance`, `submit_order`, `cancel_order`); the backtest trades it in
place of the compiled bar's fills (`tradeloom.engine.wiring.modelled_venue`), as it
trades a router's model.

The clock. An order decided at bar *t*'s close is submitted to the replay at that close
(the bar's open time plus the timeframe); it reaches the exchange its ``send`` latency
later (the realism profile's draw for the order's sequence number: the bars' draw),
fills there by the kernel's rules, and its fills reach the strategy their ``report``
latency after the exchange made them. At bar *t*'s open the venue replays the book up to
bar *t*'s close and reports every fill whose report arrived by then, each at its level's
price and fee, at bar *t*: the decision at that close sees them, none later.

Orders. A market order walks the visible levels (one fill per level, the taker fee);
what the book cannot fill is cancelled (``BOOK_DEPTH``). A limit order
(``execution.orders``) goes with its time in force (post-only: ``GTX``; ``IOC``, ``FOK``; else
``GTC``) at its price rounded to the tick on its passive side; a resting one fills by
the profile's queue model, and ``expire_after_bars`` cancels it (``LIMIT_EXPIRED``). An
entry is sized in whole lots (`BookVenue.quantity_for`), and any quantity is sent in
whole lots (rounded down; the rest is reported cancelled, ``LOT_SIZE``); a spot buy is
cut to what the cash buys (``INSUFFICIENT_CASH``, as on bars). A cancel (a
decision's ``REPLACED``) goes out at the decision and takes its ``cancel`` latency: a
fill it races stands, and is booked when its report arrives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from tradeloom.core.kernels.book import (
    C_BASE,
    C_MAKER,
    C_TAKER,
    C_TICK,
    END,
    L_LOCAL_TS,
    L_MAKER,
    L_PRICE,
    L_QTY,
    L_SLOT,
    LIMIT,
    MARKET,
    O_LSTATUS,
    S_BA,
    S_FILLS,
    S_FULL,
    S_HIGHA,
    S_NOW,
    S_ORDERS,
    TIF_FOK,
    TIF_GTC,
    TIF_GTX,
    TIF_IOC,
    BookState,
    advance,
    cancel_order,
    new_state,
    submit_order,
)
from tradeloom.core.kernels.queue import QUEUE_RISK_AVERSE
from tradeloom.domain import Bar, Cancellation, Fill, Order
from tradeloom.errors import DataError
from tradeloom.plugins.data.book_events import BookEvents, events_from_snapshots, read_book_events
from tradeloom.plugins.protocols_orders.realism import RealismProfile
from tradeloom.plugins.protocols_venues import BookCoverage
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd

if TYPE_CHECKING:
    from tradeloom.core.costs import VenueCosts
    from tradeloom.core.kernels.specs import OrdersKernel

__all__ = [
    "BookVenue",
    "book_coverage",
    "book_state",
    "read_book",
]

_ST_FILLED, _ST_CANCELED, _ST_EXPIRED = 3, 4, 5  # the kernel's ST_* an order ends with
_DONE_SHARE = 1e-9  # an order whose rest is at most this share of it is complete
_LOT_SLACK = 1e-9  # a quantity within this many lots of a whole number of lots is one


def _snapshots(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq", ".csv")


def _frame(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    try:
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path, usecols=columns, encoding="utf-8-sig")
        return pd.read_parquet(path, columns=columns)
    except Exception as exc:  # any reader failure is the file's
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"cannot read {path}: {reason}") from exc


def book_coverage(path: Path, source: str, symbol: str | None = None) -> BookCoverage:
    """Return the symbol and time span of the book at ``path`` (``source`` in the file).

    Raises:
        DataError: The file is missing, unreadable, of another kind, empty, or names
            another market than ``symbol`` (``book.symbol``).
    """
    if not path.is_file():
        raise DataError(f"file not found: {path}")
    if _snapshots(path):
        frame = _frame(path)
        if "timestamp" not in frame.columns:
            raise DataError(
                f"{path} is not a book file: it has no timestamp column; write it with "
                "tradeloom data record-book"
            )
        if len(frame) == 0:
            raise DataError(f"{path} holds no snapshot")
        stamps = (
            pd.to_datetime(frame["timestamp"], utc=True).dt.as_unit("ns").astype("int64").to_numpy()
        )
        named = None
        if "symbol" in frame.columns:
            names = sorted({str(s) for s in frame["symbol"].dropna()})
            if len(names) > 1:
                raise DataError(
                    f"{path} records {len(names)} markets ({', '.join(names)}); keep one"
                )
            named = names[0] if names else None
        if symbol is not None and named is not None and named != symbol:
            raise DataError(f"{path} records {named}, not {symbol}")
        first, last = int(stamps.min()), int(stamps.max())
        return BookCoverage(path, source, named or symbol, first, last)
    if path.suffix.lower() not in (".npz", ".npy"):
        raise DataError(
            f"{path}: expected book snapshots (.parquet, .csv) or an L2 event array (.npz, .npy)"
        )
    events = read_book_events(path)
    if len(events) == 0:
        raise DataError(f"{path} holds no event")
    first, last = int(events.exch_ts.min()), int(events.exch_ts.max())
    return BookCoverage(path, source, symbol, first, last)


def read_book(path: Path) -> BookEvents:
    """Return the L2 events of the book at ``path`` (snapshots or an event array).

    Raises:
        DataError: The file cannot be replayed.
    """
    if _snapshots(path):
        frame = _frame(path)
        return events_from_snapshots(frame.sort_values("timestamp", kind="stable"))
    return read_book_events(path)


def book_state(
    events: BookEvents,
    *,
    tick_size: float,
    lot_size: float,
    profile: RealismProfile | None = None,
    fee_bps: float = 0.0,
    maker_fee_bps: float | None = None,
    max_orders: int = 100_000,
    max_fills: int = 400_000,
) -> BookState:
    """Return a fresh book backtest over ``events`` under ``profile``.

    The profile's latency legs and seed (so an order draws the same milliseconds on
    bars and on books), its fee tier (else ``fee_bps`` and ``maker_fee_bps``) and its
    queue model (else risk-averse).

    Args:
        events: The market's L2 events.
        tick_size, lot_size: The market's price and quantity steps.
        profile: The strategy's realism profile (None: no latency, risk-averse queue).
        fee_bps, maker_fee_bps: The venue's fees when the profile declares none
            (``maker_fee_bps`` None: the taker's).
        max_orders, max_fills: The state's capacities.
    """
    taker = fee_bps
    maker = fee_bps if maker_fee_bps is None else maker_fee_bps
    send = cancel = report = (0, 0.0, 0.0)
    seed = 0
    queue, n = QUEUE_RISK_AVERSE, 3.0
    if profile is not None:
        if profile.fees is not None:
            taker = profile.fees.taker_bps
            maker = taker if profile.fees.maker_bps is None else profile.fees.maker_bps
        latency = profile.latency
        send, cancel, report = latency.send.spec(), latency.cancel.spec(), latency.report.spec()
        seed = latency.seed
        if profile.queue is not None:
            queue, n = profile.queue.kernel()
    return new_state(
        *events.columns(),
        tick_size=tick_size,
        lot_size=lot_size,
        maker_fee=maker / 10_000.0,
        taker_fee=taker / 10_000.0,
        queue=queue,
        queue_n=n,
        send=send,
        cancel=cancel,
        report=report,
        seed=seed,
        max_orders=max_orders,
        max_fills=max_fills,
    )


def _grown(st: BookState, orders: int, fills: int) -> BookState:
    """Return ``st`` with room for ``orders`` orders and ``fills`` fills (both buses too)."""

    def more(a: np.ndarray, rows: int) -> np.ndarray:
        if a.shape[0] >= rows:
            return a
        out = np.zeros((rows, *a.shape[1:]), dtype=a.dtype)
        out[: a.shape[0]] = a
        return out

    return st._replace(
        oi=more(st.oi, orders),
        of=more(st.of, orders),
        active=more(st.active, orders),
        req=more(st.req, 2 * orders),
        rsp=more(st.rsp, 2 * orders + fills),
        fi=more(st.fi, fills),
        ff=more(st.ff, fills),
    )


@dataclass
class _Working:
    order: Order
    slot: int
    sent: float  # the quantity sent (whole lots)
    tif: int
    filled: float = 0.0  # reported to the engine
    cancel: str = ""  # why the engine cancels it ('' : it does not)
    cancel_sent: bool = False
    cut: str = "LOT_SIZE"  # why less than the order's quantity was sent


class BookVenue:
    """Fill the engine's orders against a recorded book (`tradeloom.plugins.protocols.Venue`).

    Args:
        events: The book's L2 events.
        tick_size, lot_size: The market's steps.
        profile: The realism profile (latency legs, seed, fee tier, queue model).
        fee_bps, maker_fee_bps: The fees when the profile has none.
        costs: What the sizing prices a buy with (the strategy's own venue's: a decision
            sizes as on bars).
        orders: The order types' settings (``execution.orders``).
        allow_short, initial_cash: The account's.
        timeframe_seconds: The bars' length (a decision is made at its bar's close).
    """

    def __init__(
        self,
        events: BookEvents,
        *,
        tick_size: float,
        lot_size: float,
        profile: RealismProfile | None,
        fee_bps: float,
        maker_fee_bps: float | None,
        costs: VenueCosts,
        orders: OrdersKernel,
        allow_short: bool,
        initial_cash: float,
        timeframe_seconds: int,
    ) -> None:
        self.state = book_state(
            events,
            tick_size=tick_size,
            lot_size=lot_size,
            profile=profile,
            fee_bps=fee_bps,
            maker_fee_bps=maker_fee_bps,
            max_orders=1024,
            max_fills=4096,
        )
        self.tick_size = tick_size
        self.lot_size = lot_size
        self._places = max(0, -int(Decimal(repr(tick_size)).normalize().as_tuple().exponent))
        self.allow_short = allow_short
        self.initial_cash = initial_cash
        self._costs = costs
        self._orders = orders
        self._tf_ns = int(timeframe_seconds) * 1_000_000_000
        self._working: dict[str, _Working] = {}
        self._by_slot: dict[int, _Working] = {}
        self._read = 0  # the fills reported to the engine
        self.cash = initial_cash
        """The account's cash as the fills reported so far leave it (a spot buy's bound)."""

    # --- the Venue protocol ------------------------------------------------------------

    def quantity_for(self, notional: float, price: float) -> float:
        """Return the quantity ``notional`` buys at ``price`` as the strategy's venue sizes
        it, in whole lots (rounded down, as an exchange takes an amount)."""
        quantity = self._costs.quantity_for(notional, price)
        return math.floor(quantity / self.lot_size + _LOT_SLACK) * self.lot_size

    def submit(self, order: Order) -> None:
        """Send ``order`` to the book at its decision bar's close."""
        if order.kind == "stop":  # refused before the run (`tradeloom.engine.book_checks`)
            raise RuntimeError(f"order {order.id}: fill: book cannot fill a stop order")
        self._advance(_ns(order.timestamp) + self._tf_ns)
        seq = int(order.id.rsplit("-", 1)[-1])
        st = self.state
        slot = max(seq, int(st.s[S_ORDERS]))  # the slot is the order's number: the bars' draws
        self._room(slot + 1)
        st = self.state
        st.s[S_ORDERS] = slot
        lots = math.floor(order.quantity / self.lot_size + _LOT_SLACK)
        sent = lots * self.lot_size
        if abs(sent - order.quantity) <= self.lot_size * _LOT_SLACK:
            sent = order.quantity  # whole lots but for the last bit: a position closes to 0
        if order.kind == "limit":
            ticks = order.limit_price / self.tick_size
            ticks = (
                math.floor(ticks + _LOT_SLACK) if order.side > 0 else math.ceil(ticks - _LOT_SLACK)
            )
            price, kind, tif = ticks * self.tick_size, LIMIT, self._tif()
        else:
            price, kind, tif = order.reference_price, MARKET, TIF_GTC
        working = _Working(order, slot, sent, tif)
        if order.side > 0 and not self.allow_short:
            bound = self._affordable(None if kind == MARKET else price)
            if sent > bound:  # a spot buy: what the cash buys (`_affordable`)
                lots = math.floor(bound / self.lot_size + _LOT_SLACK)
                sent = working.sent = lots * self.lot_size
                working.cut = "INSUFFICIENT_CASH"
        self._working[order.id] = working
        if lots <= 0:
            return  # nothing to send: reported cancelled at the next open (its ``cut``)
        got = submit_order(st, int(order.side), float(price), float(sent), kind, tif)
        if got != slot:  # pragma: no cover - the room was made above
            raise RuntimeError("the book replay is full")
        self._by_slot[slot] = working

    def cancel(self, order_id: str, bar: Bar, reason: str) -> Cancellation | None:
        """Send a cancel of ``order_id`` now; its outcome is reported when it arrives."""
        working = self._working.get(order_id)
        if working is None or working.cancel:
            return None
        working.cancel = reason
        self._send_cancel(working)
        return None

    def pending(self) -> list[Order]:
        """Return the orders working, or with a fill or cancellation still to report."""
        return [w.order for w in self._working.values()]

    def match(self, bar: Bar, phase: str) -> list[Fill | Cancellation]:
        """At a bar's open, replay the book to its close; report what reached the strategy."""
        if phase != "open":
            return []
        open_ns = _ns(bar.timestamp)
        self._advance(open_ns)
        expiry = self._orders.expire_after_bars
        for working in list(self._working.values()):
            order = working.order
            if expiry > 0 and order.kind == "limit" and bar.index - (order.bar + 1) >= expiry:
                working.cancel = working.cancel or "LIMIT_EXPIRED"
            if working.cancel and not working.cancel_sent:
                self._send_cancel(working)
        until = open_ns + self._tf_ns
        self._room(int(self.state.s[S_ORDERS]) + 1)
        self._advance(until)
        return self._reports(bar, until)

    # --- the replay ---------------------------------------------------------------------

    def _tif(self) -> int:
        orders = self._orders
        if orders.post_only:
            return TIF_GTX
        return {"IOC": TIF_IOC, "FOK": TIF_FOK}.get(orders.time_in_force, TIF_GTC)

    def _room(self, orders: int) -> None:
        st = self.state
        want_orders = st.oi.shape[0]
        while want_orders <= orders:
            want_orders *= 2
        want_fills = st.fi.shape[0]
        while want_fills <= 2 * int(st.s[S_FILLS]):
            want_fills *= 2
        if want_orders != st.oi.shape[0] or want_fills != st.fi.shape[0]:
            self.state = _grown(st, want_orders, want_fills)

    def _affordable(self, limit: float | None) -> float:
        """Return the most a buy may be: what the cash pays, fee included, at ``limit``, or
        (a market order, ``None``) walking the exchange's asks as they stand at the
        decision (the book may move while the order travels); unbounded past them."""
        st = self.state
        rate = max(float(st.cfg[C_TAKER]), float(st.cfg[C_MAKER]), 0.0)
        cash = max(self.cash, 0.0)
        if limit is not None:
            return cash / (limit * (1.0 + rate))
        tick, base = float(st.cfg[C_TICK]), float(st.cfg[C_BASE])
        asks = st.depth[1]
        bought = 0.0
        for t in range(int(st.s[S_BA]), int(st.s[S_HIGHA]) + 1):
            if asks[t] <= 0.0:
                continue
            unit = round((t + base) * tick, self._places) * (1.0 + rate)
            if asks[t] * unit >= cash:
                return bought + cash / unit
            bought += asks[t]
            cash -= asks[t] * unit
        return math.inf

    def _advance(self, until: int) -> None:
        st = self.state
        if until > int(st.s[S_NOW]) and advance(st, until) == END:
            st.s[S_NOW] = until  # the book is over: the clock still moves
        if st.s[S_FULL]:
            raise RuntimeError("the book replay ran out of room for fills")

    def _send_cancel(self, working: _Working) -> None:
        if working.slot not in self._by_slot:
            return
        working.cancel_sent = bool(cancel_order(self.state, working.slot))

    def _reports(self, bar: Bar, until: int) -> list[Fill | Cancellation]:
        st = self.state
        events: list[Fill | Cancellation] = []
        end = int(st.s[S_FILLS])
        k = self._read
        while k < end and st.fi[k, L_LOCAL_TS] <= until:
            working = self._by_slot[int(st.fi[k, L_SLOT])]
            order = working.order
            maker = bool(st.fi[k, L_MAKER])
            # the level's price as the venue quotes it (the ladder's is tick x index)
            qty, price = float(st.ff[k, L_QTY]), round(float(st.ff[k, L_PRICE]), self._places)
            fee = price * qty * float(st.cfg[C_MAKER if maker else C_TAKER])
            slipped = 0.0 if maker else qty * order.side * (price - order.reference_price)
            working.filled += qty
            self.cash -= order.side * qty * price + fee
            events.append(
                Fill(
                    order.id,
                    bar.index,
                    bar.timestamp,
                    order.side,
                    qty,
                    price,
                    fee,
                    slipped,
                    "maker" if maker else "taker",
                )
            )
            k += 1
        self._read = k
        for order_id, working in list(self._working.items()):
            reason = self._ended(working)
            if reason is None:
                continue
            del self._working[order_id]
            self._by_slot.pop(working.slot, None)
            rest = working.order.quantity - working.filled
            if rest > working.order.quantity * _DONE_SHARE:
                events.append(Cancellation(order_id, bar.index, bar.timestamp, rest, reason))
        return events

    def _ended(self, working: _Working) -> str | None:
        """Return why ``working`` is over as the strategy knows it (None: it works on)."""
        if working.slot not in self._by_slot:
            return working.cut  # nothing was sent
        status = int(self.state.oi[working.slot, O_LSTATUS])
        if status == _ST_FILLED:
            return working.cut
        if status == _ST_CANCELED:
            return working.cancel or "CANCELED"
        if status != _ST_EXPIRED:
            return None
        if working.order.kind != "limit":
            return "BOOK_DEPTH"
        return {TIF_GTX: "POST_ONLY_WOULD_CROSS", TIF_IOC: "UNFILLED_IOC"}.get(
            working.tif, "UNFILLED_FOK" if working.tif == TIF_FOK else "EXPIRED"
        )


def _ns(stamp: pd.Timestamp) -> int:
    return int(pd.Timestamp(stamp).value)
