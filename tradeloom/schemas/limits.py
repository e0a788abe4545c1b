"""The pre-trade limits (``risk.limits``): largest order, position and rate, price collar,
daily loss.

The core's risk engine applies them to every order in every mode, on the bar clock
(`tradeloom.core.risk.pretrade_check`), so a backtest refuses what its paper run would.
"""

from __future__ import annotations

from pydantic import Field

from tradeloom.plugins.component import Params, bars_key

__all__ = ["PreTradeLimits"]


class PreTradeLimits(Params):
    """The pre-trade limits of every run; a limit left out is not checked."""

    max_order_notional: float | None = Field(
        default=None,
        gt=0,
        description="Largest quote amount of one order (quantity x reference price).",
    )
    max_position_quantity: float | None = Field(
        default=None,
        gt=0,
        description="Largest absolute position after an order, in base units (e.g. BTC).",
    )
    max_orders_per_minute: int | None = bars_key(
        None, 1, "Most orders sent in any 60 s window", strict=False
    )
    price_collar: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Largest distance of an order's price from the last price, as a "
        "fraction of the last price (0.05 = within 5%).",
    )
    daily_loss_limit: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Loss, as a fraction of the UTC day's starting equity, that moves "
        "trading to REDUCING for the rest of the day (0.03 = 3%).",
    )
