"""A simulated venue: market orders filled at the next bar's open (or this close).

Prices move against the order by ``slippage_bps``; a fee of ``fee_bps`` of the
filled notional is charged. With ``max_volume_fraction`` an order fills at most
that share of a bar's volume and works on over the following bars. Without
``allow_short`` the account is spot: a buy fills only as far as the cash covers it
(with its fee) and the rest is cancelled as ``INSUFFICIENT_CASH``. Protective stop
orders (stop-loss, take-profit) fill during the bar at their trigger price, with
slippage and fee, regardless of volume. Quantities are not rounded: the simulated
venue has no lot size, but it has a minimum order notional (``min_notional``; by
default a billionth of the initial cash, 0.0001 on 100,000, far above a float residue
and far below any real order): a buy the cash cuts below it fills nothing and is
cancelled as ``BELOW_MINIMUM``, so a shared account spent to a residue of 1e-12 never
opens a dust position.

`fill_order` is the one kernel both drivers call: `SimulatedVenue` per order, and
the batch driver inside its compiled loop.

The order types of ``execution.orders`` (limit orders, stops at the close, slicing;
`tradeloom.plugins.protocols_orders.order_params`) are the compiled core's
(`tradeloom.core.orders`), which every driver of a simulated venue runs; the
per-order `SimulatedVenue.match` below fills market and stop orders only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Self, TypeVar

from pydantic import Field, model_validator

from tradeloom.bounds import MAX_CASH
from tradeloom.core.costs import VenueCosts
from tradeloom.core.kernels.fills import (
    CUT_CASH,
    CUT_MINIMUM,
    CUT_NONE,
    DONE_FRACTION,
    FillTerms,
    Offer,
    fill_order,
)
from tradeloom.core.kernels.sizing import sizing_quantity
from tradeloom.core.kernels.specs import (
    MARGIN_PERPETUAL,
    LatencyKernel,
    MarginKernel,
    VenueKernel,
)
from tradeloom.domain import Bar, Cancellation, Fill, Order
from tradeloom.plugins.component import BuildContext, ParamError, ParamErrors, Params
from tradeloom.plugins.execution.book_params import BookParams
from tradeloom.plugins.protocols_orders.order_params import OrdersParams
from tradeloom.plugins.protocols_orders.realism import BUILT_IN, RealismProfile, load_profile
from tradeloom.plugins.protocols_venues import BookCoverage

if TYPE_CHECKING:
    from tradeloom.plugins.protocols import Venue

__all__ = [
    "CUT_CASH",
    "CUT_MINIMUM",
    "CUT_NONE",
    "DONE_FRACTION",
    "MIN_NOTIONAL_SHARE",
    "FillTerms",
    "MarginParams",
    "Offer",
    "SimulatedVenue",
    "SimulatedVenueParams",
    "cut_reason",
    "fill_order",
    "min_notional_of",
    "sizing_quantity",
    "taker_fill",
    "with_realism",
]


class MarginParams(Params):
    """Keys of ``execution.margin``: a margin account, which may borrow, and be liquidated.

    A position's notional needs ``initial`` of it as equity when it is opened or
    grown (``INSUFFICIENT_MARGIN`` otherwise); when the equity falls below
    ``maintenance`` of the notional during a bar, the venue liquidates the position
    at the price where that happens (or at the open, on a gap) and charges
    ``liquidation_fee`` of the notional on top of the usual fee. Sizing fractions are
    of ``leverage`` times the equity.
    """

    initial: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="Initial margin: the share of a position's notional the equity must "
        "cover to open or grow it (0.1 = up to 10x).",
    )
    maintenance: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="Maintenance margin: below this share of the notional the position is "
        "liquidated (0: only at zero equity).",
    )
    leverage: float = Field(
        default=1.0,
        ge=1,
        le=100,
        description="Sizing fractions are of leverage x equity; at most 1 / initial.",
    )
    liquidation_fee: float = Field(
        default=0.0,
        ge=0,
        lt=0.1,
        description="Fee on a liquidated position's notional, on top of fee_bps (0.005 = 0.5%).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.maintenance >= self.initial:
            raise ValueError(
                f"maintenance ({self.maintenance:g}) must be below initial ({self.initial:g}): "
                "a position would be liquidated as soon as it is opened"
            )
        if self.leverage * self.initial > 1.0 + 1e-12:
            raise ValueError(
                f"leverage {self.leverage:g} needs initial <= {1.0 / self.leverage:.6g}, was "
                f"{self.initial:g} (the equity covers initial x leverage of a full position)"
            )
        return self

    def kernel(self) -> MarginKernel:
        """Return the core's margin settings."""
        return MarginKernel(self.initial, self.maintenance, self.leverage, self.liquidation_fee)


class SimulatedVenueParams(Params):
    """Keys of ``execution`` with ``kind: simulated``."""

    initial_cash: float = Field(
        default=100_000.0,
        gt=0,
        le=MAX_CASH,
        description="Starting cash (quote; at most 1e15).",
    )
    fill: Literal["next_open", "close", "book"] = Field(
        default="next_open",
        description="next_open: fill at the open of the bar after the decision; "
        "close: at the decision bar's close; book: against the recorded order book of "
        "execution.book, at the decision's close plus the send latency (backtests; see "
        "Execution realism).",
    )
    slippage_bps: float = Field(default=0.0, ge=0, lt=10_000, description="Adverse slippage.")
    fee_bps: float = Field(
        default=0.0,
        ge=0,
        lt=10_000,
        description="Taker fee on filled notional: market orders, stops and marketable limits.",
    )
    maker_fee_bps: float | None = Field(
        default=None,
        ge=-10,
        lt=10_000,
        description="Maker fee on a resting limit order's fill (negative: a rebate, at most "
        "10 bps). None: fee_bps.",
    )
    allow_short: bool = Field(default=False, description="Long/short (true) or long-only spot.")
    max_volume_fraction: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Most of a bar's volume an order may take (0.1 = 10%); the rest "
        "fills on later bars. Unlimited by default.",
    )
    margin: MarginParams | None = Field(
        default=None,
        description="A margin account (leverage, liquidation). Without it: spot cash, "
        "buys limited by the cash; with allow_short, the defaults (no leverage, "
        "liquidation at zero equity).",
    )
    orders: OrdersParams = Field(
        default_factory=OrdersParams,
        description="Order types: market, limit or auto, stops, slicing (see Order types).",
    )
    min_notional: float | None = Field(
        default=None,
        gt=0,
        le=MAX_CASH,
        description="The smallest order the venue takes, in quote: an order or a fill (cut "
        "by the cash or a bar's volume) below it is refused (BELOW_MINIMUM), and a "
        "position worth less counts as flat. None: a billionth of initial_cash (0.0001 "
        "on 100,000).",
    )
    market: Literal["spot", "swap"] = Field(
        default="spot",
        description="spot: cash or margin trading of the asset; swap: a perpetual future: a "
        "margin account (execution.margin, or its defaults), shorts allowed unless "
        "allow_short: false, and funding booked at each funding time from the series "
        "named by funding (see Perpetual futures).",
    )
    funding: str | None = Field(
        default=None,
        min_length=1,
        description="market swap: the data.auxiliary series holding the funding rates "
        "(kind funding_rate, or a file stamped at the funding times); required with swap.",
    )
    realism: str | RealismProfile | None = Field(
        default=None,
        description="A realism profile: a venue's latency and fee tier (see Execution "
        "realism): a built-in name (binance_vip0, colocated), a .yaml file relative to the "
        "strategy file, or the profile inline. None: no latency, fills as without it.",
    )
    book: BookParams | None = Field(
        default=None,
        description="The recorded order book fill: book fills against: {source, tick_size, "
        "lot_size, symbol}. Read only under fill: book, so that one key switches a file "
        "between bars and books.",
    )

    @model_validator(mode="after")
    def _perpetual(self) -> Self:
        if self.market == "swap" and self.funding is None:
            raise ValueError(
                "market swap needs funding: the name of the data.auxiliary series of its "
                "funding rates (kind funding_rate)"
            )
        if self.market == "spot" and self.funding is not None:
            raise ValueError("funding applies to a perpetual: set market: swap, or remove funding")
        if self.fill == "book" and self.book is None:
            raise ValueError(
                "fill: book needs book: {source: <recorded book file>, tick_size, lot_size}"
            )
        return self


MIN_NOTIONAL_SHARE = 1e-9
"""The default minimum order notional, as a share of the initial cash."""


def min_notional_of(initial_cash: float, min_notional: float | None) -> float:
    """Return the venue's minimum order notional: ``min_notional``, or its default."""
    return initial_cash * MIN_NOTIONAL_SHARE if min_notional is None else min_notional


def cut_reason(cut: int) -> str:
    """Return the cancellation reason of what `fill_order` cut (``cut``, not `CUT_NONE`)."""
    return "BELOW_MINIMUM" if cut == CUT_MINIMUM else "INSUFFICIENT_CASH"


def taker_fill(
    order_id: str, side: int, bar: Bar, quantity: float, price: float, fee: float, slipped: float
) -> Fill:
    """Return the fill of ``order_id`` at ``bar`` as `fill_order` priced it: a taker's."""
    return Fill(order_id, bar.index, bar.timestamp, side, quantity, price, fee, slipped, "taker")


@dataclass
class _Working:
    order: Order
    remaining: float


class SimulatedVenue:
    """Fill orders against bars with slippage, fees, volume limits and a cash account."""

    def __init__(
        self, params: SimulatedVenueParams, realism: tuple[RealismProfile, str] | None = None
    ) -> None:
        # the keys as written: a live run of this file reads execution.orders from them
        self.params = params
        self.realism = None if realism is None else realism[0]
        """The realism profile in force (`tradeloom.plugins.protocols_orders.realism`)."""
        self.realism_text = "" if realism is None else realism[0].describe(realism[1])
        """The profile in one line, as the run summary and the report show it."""
        self._injected: LatencyKernel | None = None
        self.order_keys = params.orders
        """``execution.orders``: how a live run on the data source's exchange sends them."""
        self.initial_cash = params.initial_cash
        self.cash = params.initial_cash
        swap = params.market == "swap"
        # a perpetual shorts as it longs, unless the file says otherwise
        implied = swap and "allow_short" not in params.model_fields_set
        self.allow_short = params.allow_short or implied
        self.funding_series = params.funding
        """A perpetual's funding rates: the name of its data.auxiliary series (None: spot)."""
        self.fill_phase = "close" if params.fill == "close" else "open"
        self._book: BookCoverage | None = None
        self.costs = VenueCosts.from_bps(params.fee_bps, params.maker_fee_bps, params.slippage_bps)
        """The fee rates and slippage of the file's ``fee_bps``, ``maker_fee_bps`` and
        ``slippage_bps``."""
        self.slippage = self.costs.slippage
        self.fee_rate = self.costs.taker
        self.max_volume_fraction = params.max_volume_fraction
        self.margin = None if params.margin is None else params.margin.kernel()
        if self.margin is None and swap:
            self.margin = MarginKernel(source=MARGIN_PERPETUAL)  # a perpetual is a margin account
        self.maker_fee_rate = None if params.maker_fee_bps is None else self.costs.maker
        self.orders = params.orders.kernel()
        self.min_notional = min_notional_of(params.initial_cash, params.min_notional)
        self.fill_terms = FillTerms(
            self.slippage, self.fee_rate, self.min_notional, spot=not self.allow_short
        )
        """What `fill_order` reads of the venue: its slippage, taker fee, minimum, spot."""
        self._working: list[_Working] = []

    def kernel_spec(self) -> VenueKernel:
        """Return the kernel's parameters for the batch driver."""
        return VenueKernel(
            fill_at_close=self.fill_phase == "close",
            slippage=self.slippage,
            fee_rate=self.fee_rate,
            allow_short=self.allow_short,
            initial_cash=self.initial_cash,
            max_volume_fraction=self.max_volume_fraction,
            margin=self.margin,
            maker_fee_rate=self.maker_fee_rate,
            orders=self.orders,
            min_notional=self.min_notional,
            latency=self.latency(),
        )

    def latency(self) -> LatencyKernel:
        """Return the latency the venue applies: an injected one, else its profile's."""
        if self._injected is not None:
            return self._injected
        return LatencyKernel() if self.realism is None else self.realism.latency.kernel()

    def inject_latency(self, latency: LatencyKernel) -> None:
        """Apply ``latency`` in place of the file's (``--venue-latency``): a paper run on a
        venue slower than the file declares, which the file's replay does not know of."""
        self._injected = latency

    def modelled_costs(self) -> VenueCosts:
        """Return the fee rates and slippage of the file's keys (`ModelledVenue`)."""
        return self.costs

    def recorded_book(self) -> BookCoverage | None:
        """Return the book ``fill: book`` fills against (None: the bars fill; `BookFills`)."""
        return self._book

    def use_book(self, book: BookCoverage) -> None:
        """Fill against ``book`` (``fill: book``; `build` checks it first)."""
        self._book = book

    def book_venue(self, timeframe_seconds: int) -> Venue:
        """Return a new venue filling a backtest's orders against the recorded book."""
        from tradeloom.plugins.execution.book_venue import BookVenue, read_book

        book, keys = self._book, self.params.book
        if book is None or keys is None:
            raise ValueError("this venue fills on the bars (fill: book is not set)")
        return BookVenue(
            read_book(book.path),
            tick_size=keys.tick_size,
            lot_size=keys.lot_size,
            profile=self.realism,
            fee_bps=self.params.fee_bps,
            maker_fee_bps=self.params.maker_fee_bps,
            costs=self.costs,
            orders=self.orders,
            allow_short=self.allow_short,
            initial_cash=self.initial_cash,
            timeframe_seconds=timeframe_seconds,
        )

    def quantity_for(self, notional: float, price: float) -> float:
        """Return the quantity ``notional`` buys at ``price``, slippage and fee included."""
        return self.costs.quantity_for(notional, price)

    def submit(self, order: Order) -> None:
        """Accept an order: a market order fills at the configured phase, a stop at once."""
        self._working.append(_Working(order, order.quantity))

    def pending(self) -> list[Order]:
        """Return the orders not completely filled yet."""
        return [w.order for w in self._working]

    def cancel(self, order_id: str, bar: Bar, reason: str) -> Cancellation | None:
        """Stop working an order; return the cancellation, or None if it is not working."""
        for i, working in enumerate(self._working):
            if working.order.id == order_id:
                del self._working[i]
                return Cancellation(order_id, bar.index, bar.timestamp, working.remaining, reason)
        return None

    def match(self, bar: Bar, phase: str) -> list[Fill | Cancellation]:
        """Fill the orders due at this bar's ``phase`` (``open``, ``intrabar`` or ``close``)."""
        if not self._working:
            return []
        events: list[Fill | Cancellation] = []
        kept = []
        for working in self._working:
            order = working.order
            if phase == "intrabar":
                due, price_now, cap = order.kind == "stop", order.stop_price, -1.0
            elif phase == self.fill_phase and order.kind == "market":
                due = order.bar < bar.index if phase == "open" else order.bar <= bar.index
                price_now = bar.open if phase == "open" else bar.close
                cap = self.max_volume_fraction or -1.0
            else:
                due = False
            if not due:
                kept.append(working)
                continue
            quantity, price, fee, slipped, cut = fill_order(
                order.side,
                working.remaining,
                Offer(price_now, bar.volume, cap),
                self.fill_terms,
                self.cash,
            )
            if quantity > 0.0:
                self.cash -= order.side * quantity * price + fee
                working.remaining -= quantity
                events.append(taker_fill(order.id, order.side, bar, quantity, price, fee, slipped))
            if working.remaining <= order.quantity * DONE_FRACTION:
                continue
            if cut != CUT_NONE:
                reason = cut_reason(cut)
                events.append(
                    Cancellation(order.id, bar.index, bar.timestamp, working.remaining, reason)
                )
                continue
            kept.append(working)
        self._working = kept
        return events


def build(params: SimulatedVenueParams, ctx: BuildContext) -> SimulatedVenue:
    """Build the venue, with its realism profile read and its fee tier applied, and
    (``fill: book``) its recorded book checked."""
    venue = SimulatedVenue(*with_realism(params, ctx.strategy_dir))
    if params.fill == "book":
        venue.use_book(book_of(params, ctx))
    return venue


_BOOK_REFUSED = "fill: book {what}; use fill: next_open"


def book_of(params: SimulatedVenueParams, ctx: BuildContext) -> BookCoverage:
    """Return what ``params.book`` holds, refusing what a book backtest cannot serve.

    Raises:
        ParamErrors: The file is missing or unreadable or names another market than
            ``book.symbol``; or the venue asks for what the book replay does not model
            (a margin account, a perpetual, shorts, sliced orders, a limit fallback).
    """
    from tradeloom.errors import DataError
    from tradeloom.plugins.execution.book_venue import book_coverage

    keys = params.book
    assert keys is not None  # the params' validator requires it
    errors: list[ParamError] = []
    refusals = (
        ("margin", params.margin is not None, "has no margin account (no liquidation)"),
        ("market", params.market == "swap", "fills spot orders only, not a perpetual's"),
        ("allow_short", params.allow_short, "trades long-only: shorts are not modelled"),
        ("orders.slicing", params.orders.slicing is not None, "sends no sliced orders"),
        (
            "orders.limit",
            params.orders.limit.fallback_after_bars is not None
            or params.orders.limit.fallback_after_seconds is not None,
            "has no limit fallback to market (use expire_after_bars)",
        ),
    )
    for key, refused, what in refusals:
        if refused:
            errors.append(ParamError(key, _BOOK_REFUSED.format(what=what)))
    book = None
    try:
        book = book_coverage(ctx.resolve_path(keys.source), keys.source, keys.symbol)
    except DataError as exc:
        errors.append(ParamError("book.source", str(exc)))
    if errors:
        raise ParamErrors(errors)
    assert book is not None
    return book


_P = TypeVar("_P", bound=SimulatedVenueParams)


def with_realism(params: _P, strategy_dir: Path) -> tuple[_P, tuple[RealismProfile, str] | None]:
    """Return ``params`` with its profile's fee tier applied, and the profile and its source.

    Raises:
        ParamError: ``realism`` names no built-in profile and no file; the profile has
            fees and the file sets ``fee_bps`` or ``maker_fee_bps`` too; a latency with
            ``fill: close``.
        ConfigError: The profile file is invalid (located in it).
    """
    reference = params.realism
    if reference is None:
        return params, None
    if isinstance(reference, str):
        try:
            profile, source = load_profile(reference, strategy_dir)
        except KeyError:
            raise ParamError(
                "realism",
                f"no profile {reference!r}: expected a built-in profile "
                f"({', '.join(BUILT_IN)}) or a .yaml file relative to the strategy file",
            ) from None
    else:
        profile, source = reference, "inline"
    if params.fill == "close" and profile.latency.kernel().kind != 0:
        raise ParamError(
            "realism",
            f"the profile {profile.name or source} declares a send latency, which needs "
            "fill: next_open (an order decided at a close cannot fill at that close)",
        )
    fees = profile.fees
    if fees is not None:
        set_here = [k for k in ("fee_bps", "maker_fee_bps") if k in params.model_fields_set]
        if set_here:
            raise ParamError(
                set_here[0],
                f"the realism profile {profile.name or source} sets the fees; remove "
                f"execution.{set_here[0]} or the profile's fees",
            )
        params = params.model_copy(
            update={"fee_bps": fees.taker_bps, "maker_fee_bps": fees.maker_bps}
        )
    return params, (profile, source)
