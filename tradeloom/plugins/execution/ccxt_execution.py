"""The ``ccxt`` execution component: an exchange account, simulated until ``--mode live``.

``execution: {kind: ccxt, exchange: binance, api_key: ${KEY}, secret: ${SECRET}, ...}``
names the account that ``tradeloom run FILE --mode live`` sends its orders to (through
`tradeloom.live.orders.ccxt_venue.CcxtVenue`: journaled first, sent once, found
again by client order id), and, with the keys of ``kind: simulated``
(``initial_cash``, ``fill``, ``fee_bps``, ``slippage_bps``...), how a backtest and a
paper run of the same file fill. So one file backtests, paper trades and goes live.

The market traded is the data's symbol. Building the component makes the ccxt client
but sends nothing; keys are needed only for ``--mode live``, where a missing one is
refused before the first bar.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradeloom.plugins.component import BuildContext, ParamError
from tradeloom.plugins.data.ccxt_account import ExchangeAccountParams, check_account
from tradeloom.plugins.execution.simulated import (
    SimulatedVenue,
    SimulatedVenueParams,
    book_of,
    with_realism,
)
from tradeloom.plugins.protocols_orders.realism import RealismProfile

if TYPE_CHECKING:
    import ccxt

__all__ = ["CcxtExecution", "CcxtExecutionParams", "build"]


class CcxtExecutionParams(ExchangeAccountParams, SimulatedVenueParams):
    """Keys of ``execution`` with ``kind: ccxt``.

    The account (`ExchangeAccountParams`) that live trading uses, and the simulated
    fills (`SimulatedVenueParams`) of backtests and paper runs.
    """


class CcxtExecution(SimulatedVenue):
    """A simulated venue (backtest, paper) that is also a live account (`LiveVenue`).

    Args:
        params: The component's keys.
        client: The account's ccxt client (no request made yet).
    """

    params: CcxtExecutionParams

    def __init__(
        self,
        params: CcxtExecutionParams,
        client: ccxt.Exchange,
        realism: tuple[RealismProfile, str] | None = None,
    ) -> None:
        super().__init__(params, realism)
        self.params = params
        self.exchange = params.exchange
        self._client = client

    def trading_client(self) -> ccxt.Exchange:
        """Return the account's client, for ``--mode live``.

        Raises:
            ParamError: ``api_key`` or ``secret`` is not given.
        """
        if self.params.api_key is None or self.params.secret is None:
            raise ParamError(
                "",
                f"--mode live trades on {self.exchange} with this account's keys: set "
                "api_key: ${ENV_VAR} and secret: ${ENV_VAR}",
            )
        return self._client


def build(params: CcxtExecutionParams, ctx: BuildContext) -> CcxtExecution:
    """Return the venue; checks the client settings, sends nothing.

    Raises:
        ParamError: Credentials in ``config``, a setting ccxt does not have, or an
            exchange ccxt cannot send orders to.
    """
    from tradeloom.plugins.data.ccxt_client import create_client

    check_account(params)
    client = create_client(params.exchange, params.settings())
    if not client.has.get("createOrder"):
        raise ParamError("exchange", f"ccxt cannot send orders to {params.exchange}")
    if params.orders.batch and not client.has.get("createOrders"):
        raise ParamError(
            "orders.batch",
            f"ccxt's {params.exchange} cannot send orders in batches (it has no "
            "createOrders); remove orders.batch",
        )
    applied, realism = with_realism(params, ctx.strategy_dir)
    venue = CcxtExecution(applied, client, realism)
    if params.fill == "book":  # its backtests' fills (paper and live refuse it)
        venue.use_book(book_of(params, ctx))
    return venue
