"""What a venue charges: its fee rates, and the quantity a notional buys after them.

One object for every venue that sizes or routes an order: the simulated venue and its
kernel spec, the router's venues (modelled and live), and the live venues of one
exchange, of an account's markets and of a restart's replay. The rules are written
here once:

- a venue that states no maker fee charges its taker fee on a resting order's fill;
- a buy of ``notional`` at ``price`` is sized so that, with slippage and the taker fee,
  it costs no more than the notional (`tradeloom.core.kernels.sizing.sizing_quantity`,
  the compiled bar's own formula, so that every driver sizes to the same bits).
"""

from __future__ import annotations

from dataclasses import dataclass

from tradeloom.core.kernels.sizing import sizing_quantity

__all__ = ["VenueCosts"]


@dataclass(frozen=True)
class VenueCosts:
    """A venue's costs as fractions of the filled notional.

    Attributes:
        taker: The fee of a fill that takes liquidity (market orders, stops, marketable
            limit orders); buys are sized with it.
        maker: The fee of a resting limit order's fill (negative: a rebate).
        slippage: The adverse move assumed on a taker fill (a live exchange: 0, its book
            is its own; a router's venue: assumed when its book cannot be read).
    """

    taker: float
    maker: float
    slippage: float = 0.0

    @classmethod
    def of(cls, taker: float, maker: float | None = None, slippage: float = 0.0) -> VenueCosts:
        """Return the costs of a venue; without a maker fee it charges ``taker`` for both."""
        return cls(taker, taker if maker is None else maker, slippage)

    @classmethod
    def from_bps(
        cls, fee_bps: float, maker_fee_bps: float | None = None, slippage_bps: float = 0.0
    ) -> VenueCosts:
        """Return the costs of a file's ``fee_bps``, ``maker_fee_bps`` and ``slippage_bps``."""
        maker = None if maker_fee_bps is None else maker_fee_bps / 1e4
        return cls.of(fee_bps / 1e4, maker, slippage_bps / 1e4)

    def quantity_for(self, notional: float, price: float) -> float:
        """Return the quantity ``notional`` buys at ``price``, slippage and taker fee included."""
        return float(sizing_quantity(notional, price, self.slippage, self.taker))
