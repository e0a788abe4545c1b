"""Keys of ``execution.orders``: which orders a strategy sends, and how they fill.

One section, read by every mode: the compiled core fills these orders in a backtest
and a paper replay (`tradeloom.core.orders`), and a live venue sends the same orders
to the exchange. The defaults are today's behaviour: market orders, the taker fee,
stop-loss and take-profit exits resting at the venue.

```yaml
execution:
  kind: simulated
  fee_bps: 10                # taker fee: market orders and marketable limit orders
  maker_fee_bps: 2           # fee of a resting limit order's fill (default: fee_bps)
  orders:
    type: limit              # market | limit | auto
    limit: {offset_bps: 5, post_only: false, time_in_force: GTC, fallback_after_bars: 3}
    auto: {max_spread_bps: 8, urgent_confidence: 0.3}
    queue: conservative      # a resting limit fills when the price trades through it
    stops: exchange          # stop-loss / take-profit rest at the venue
    slicing: {kind: twap, children: 4, every_bars: 1}
```

The full rules are on the docs page ``reference/execution.md`` ("Order types").
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from tradeloom.core.kernels.specs import OrdersKernel
from tradeloom.plugins.component import Params

__all__ = [
    "AutoOrderParams",
    "LimitOrderParams",
    "OrdersParams",
    "SlicingParams",
]


class LimitOrderParams(Params):
    """Keys of ``execution.orders.limit``: the limit orders of ``type: limit`` (and ``auto``)."""

    offset_bps: float = Field(
        default=0.0,
        ge=0,
        lt=10_000,
        description="The limit price's distance from the decision bar's close, on the "
        "passive side: a buy at close x (1 - offset), a sell at close x (1 + offset).",
    )
    post_only: bool = Field(
        default=False,
        description="Refuse the order (cancel, POST_ONLY_WOULD_CROSS) if it would fill "
        "as a taker on arrival; only with time_in_force GTC.",
    )
    time_in_force: Literal["GTC", "IOC", "FOK"] = Field(
        default="GTC",
        description="GTC: rests until filled, expired, fallen back or cancelled; IOC: fills "
        "what it can on arrival, the rest is cancelled; FOK: fills entirely on arrival or "
        "not at all.",
    )
    fallback_after_bars: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="After this many bars resting unfilled (in part), cancel the rest and "
        "send it as a market order. None: no fallback.",
    )
    fallback_after_seconds: float | None = Field(
        default=None,
        gt=0,
        le=86_400 * 30,
        description="Live: the fallback after this many seconds. A backtest and a paper "
        "replay count it in whole bars, rounded up.",
    )
    expire_after_bars: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="After this many bars resting, cancel the rest (LIMIT_EXPIRED) "
        "without a fallback. None: good till cancelled.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.post_only and self.time_in_force != "GTC":
            raise ValueError(
                f"post_only needs time_in_force GTC, was {self.time_in_force} (a post-only "
                "order rests; an IOC or FOK order never does)"
            )
        if self.fallback_after_bars is not None and self.fallback_after_seconds is not None:
            raise ValueError("give fallback_after_bars or fallback_after_seconds, not both")
        fallback = self.fallback_after_bars is not None or self.fallback_after_seconds is not None
        if fallback and self.expire_after_bars is not None:
            raise ValueError(
                "give a fallback (fallback_after_bars/seconds) or expire_after_bars, not both"
            )
        if self.time_in_force != "GTC" and (fallback or self.expire_after_bars is not None):
            raise ValueError(
                f"time_in_force {self.time_in_force} never rests: a fallback or expiry needs GTC"
            )
        return self


class AutoOrderParams(Params):
    """Keys of ``execution.orders.auto``: the rule of ``type: auto``.

    A signal's order is a market order when the signal is urgent (its confidence is at
    least ``urgent_confidence``) or the spread is wider than ``max_spread_bps``, and a
    limit order (``execution.orders.limit``) otherwise.
    """

    max_spread_bps: float = Field(
        default=8.0,
        gt=0,
        lt=10_000,
        description="Widest spread (bps) at which a limit order is sent. Live: the order "
        "book's spread; backtest and paper replay: the decision bar's high-low range in "
        "bps (the bars carry no order book).",
    )
    urgent_confidence: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="A signal with at least this confidence is urgent: a market order. "
        "None: no signal is urgent.",
    )


class SlicingParams(Params):
    """Keys of ``execution.orders.slicing``: a signal's order sent as child orders.

    ``twap``: ``children`` equal children, one every ``every_bars`` bars from the first
    fill bar. ``participation``: one child per bar of at most ``max_volume_fraction`` of
    the previous bar's volume, until the parent is done. Each child is an order of
    ``orders.type`` with its own client id (the parent's, then ``-c1``, ``-c2``...); the
    children's quantities sum to the parent's.
    """

    kind: Literal["twap", "participation"] = Field(description="twap or participation.")
    children: int | None = Field(
        default=None,
        ge=2,
        le=10_000,
        description="twap: the number of children (required).",
    )
    every_bars: int = Field(
        default=1,
        ge=1,
        le=100_000,
        description="twap: bars between two children.",
    )
    max_volume_fraction: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="participation: a child's most, as a share of the previous bar's "
        "volume (required).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.kind == "twap":
            if self.children is None:
                raise ValueError("twap needs children (2 or more)")
            if self.max_volume_fraction is not None:
                raise ValueError(
                    "max_volume_fraction is participation's; twap takes children and every_bars"
                )
        else:
            if self.max_volume_fraction is None:
                raise ValueError("participation needs max_volume_fraction (0.1 = 10%)")
            if self.children is not None or self.every_bars != 1:
                raise ValueError(
                    "children and every_bars are twap's; participation takes max_volume_fraction"
                )
        return self


class OrdersParams(Params):
    """Keys of ``execution.orders``: the order types a strategy sends."""

    type: Literal["market", "limit", "auto"] = Field(
        default="market",
        description="The order a signal sends: market, limit (execution.orders.limit), or "
        "auto (execution.orders.auto chooses). The engine's own exits (holding limit, "
        "halts) are market orders.",
    )
    limit: LimitOrderParams = Field(
        default_factory=LimitOrderParams, description="The limit orders' settings."
    )
    auto: AutoOrderParams = Field(
        default_factory=AutoOrderParams, description="The rule of type auto."
    )
    queue: Literal["conservative", "touch"] = Field(
        default="conservative",
        description="Backtest and paper replay: a resting limit order fills when a bar "
        "trades through its price (conservative: low < limit for a buy) or touches it "
        "(touch: low <= limit).",
    )
    stops: Literal["exchange", "bar_close"] = Field(
        default="exchange",
        description="exchange: stop-loss and take-profit rest at the venue and fill at "
        "their price, or at the open when it gaps through; bar_close: a close beyond the "
        "level sends a market exit, filled as a market order.",
    )
    slicing: SlicingParams | None = Field(
        default=None,
        description="Send a signal's order as TWAP or participation children. None: one order.",
    )
    batch: bool = Field(
        default=False,
        description="Live: send the orders decided in one bar (a universe's or a "
        "portfolio's rebalance) together through ccxt's createOrders, and cancel several "
        "through cancelOrders, each child journaled and looked up as one order; refused "
        "where ccxt's exchange has no createOrders. A market that cannot batch (Binance "
        "spot) sends them one by one with the same journal rows. Backtests and paper "
        "runs fill as without it.",
    )

    def kernel(self) -> OrdersKernel:
        """Return the core's form of these settings."""
        limit, auto, slicing = self.limit, self.auto, self.slicing
        return OrdersKernel(
            order_type=self.type,
            limit_offset=limit.offset_bps / 10_000.0,
            post_only=limit.post_only,
            time_in_force=limit.time_in_force,
            fallback_after_bars=limit.fallback_after_bars or 0,
            fallback_after_seconds=limit.fallback_after_seconds,
            expire_after_bars=limit.expire_after_bars or 0,
            auto_max_spread=auto.max_spread_bps / 10_000.0,
            auto_urgent_confidence=auto.urgent_confidence,
            queue_touch=self.queue == "touch",
            stops_at_close=self.stops == "bar_close",
            slicing="none" if slicing is None else slicing.kind,
            slice_children=0 if slicing is None else slicing.children or 0,
            slice_every_bars=1 if slicing is None else slicing.every_bars,
            slice_volume_fraction=0.0 if slicing is None else slicing.max_volume_fraction or 0.0,
        )
