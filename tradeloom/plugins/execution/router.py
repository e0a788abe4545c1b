"""The ``router`` execution component: several venues, each order routed by expected cost.

``execution: {kind: router, venues: [{name: a, kind: ccxt, ...}, {name: b, kind:
simulated, ...}], policy: {...}}``. Each venue is a full execution component (the keys
of ``kind: simulated`` or ``kind: ccxt``) with its own maker and taker fees, slippage
and cash; the router's own keys are those that describe the strategy's orders rather
than a venue (``fill``, ``max_volume_fraction``, ``orders``) and the ``policy``.

Live, each order is split over the venues by `tradeloom.plugins.execution.routing.route`
with the venues' books, balances and health (`tradeloom.runner.live.router_venue`).

A backtest (and a paper run, which runs the same compiled core) has one fee schedule
and no book, so the router is modelled as the venue the same policy picks with no book,
decided once at build time from the venues' parameters: for market orders the lowest
taker fee plus slippage, for resting limit orders the lowest maker fee (ties: file
order). The account's cash is the sum of the venues' ``initial_cash``. `Router`
journals that choice at the run's start (``route_model``).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from tradeloom.bounds import MAX_CASH
from tradeloom.journal import RouteModel
from tradeloom.plugins.component import BuildContext, ParamError, Params
from tradeloom.plugins.execution import ccxt_execution
from tradeloom.plugins.execution.ccxt_execution import CcxtExecution, CcxtExecutionParams
from tradeloom.plugins.execution.order_params import OrdersParams
from tradeloom.plugins.execution.routing import Candidate, RouteOrder, route
from tradeloom.plugins.execution.simulated import SimulatedVenue, SimulatedVenueParams

__all__ = [
    "CcxtRouteParams",
    "Router",
    "RouterParams",
    "RoutingPolicyParams",
    "SimulatedRouteParams",
    "build",
]

_ROUTER_KEYS = ("fill", "allow_short", "max_volume_fraction", "margin", "orders")
"""Keys of a venue's component that belong to the router (the strategy's orders)."""

_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,23}$"


class RoutingPolicyParams(Params):
    """Keys of ``execution.policy``: how live orders are routed."""

    book_levels: int = Field(
        default=50,
        ge=1,
        le=1000,
        description="Levels of each venue's order book read per order (live).",
    )
    failures_to_down: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Consecutive failed requests after which a venue is marked down.",
    )
    cool_off_seconds: float = Field(
        default=300.0,
        gt=0,
        le=86_400,
        description="How long a venue marked down is skipped before it is tried again.",
    )
    max_latency_ms: float | None = Field(
        default=None,
        gt=0,
        description="Skip a venue whose median latency over its recent requests is above "
        "this (milliseconds). None: latency does not exclude.",
    )


def _without_router_keys(schema: dict[str, Any]) -> None:
    # an editor should not offer a key the validation refuses
    for key in _ROUTER_KEYS:
        schema.get("properties", {}).pop(key, None)


class _RouteKeys(Params):
    """What every venue of a router adds to its component's keys."""

    model_config = ConfigDict(json_schema_extra=_without_router_keys)

    name: str = Field(
        pattern=_NAME_PATTERN,
        description="The venue's name in the journal (route_decision.venue): lower case "
        "letters, digits and _, up to 24.",
    )

    @field_validator(*_ROUTER_KEYS, mode="before", check_fields=False)
    @classmethod
    def _router_key(cls, value: Any, info: ValidationInfo) -> Any:
        raise ValueError(
            f"{info.field_name} is a key of the router (execution.{info.field_name}), "
            "the same for every venue"
        )


class SimulatedRouteParams(_RouteKeys, SimulatedVenueParams):
    """A venue of a router with ``kind: simulated``: its fees, slippage and cash."""

    kind: Literal["simulated"] = Field(description="A simulated venue.")


class CcxtRouteParams(_RouteKeys, CcxtExecutionParams):
    """A venue of a router with ``kind: ccxt``: an exchange account, simulated in backtests."""

    kind: Literal["ccxt"] = Field(description="An exchange account through ccxt.")


RouteParams = Annotated[SimulatedRouteParams | CcxtRouteParams, Field(discriminator="kind")]


class RouterParams(Params):
    """Keys of ``execution`` with ``kind: router``."""

    venues: list[RouteParams] = Field(
        min_length=1,
        description="The venues, each an execution component (kind: simulated or ccxt) "
        "with a name; file order breaks ties between equal costs.",
    )
    policy: RoutingPolicyParams = Field(
        default_factory=RoutingPolicyParams, description="How live orders are routed."
    )
    fill: Literal["next_open", "close"] = Field(
        default="next_open",
        description="Backtest: next_open fills at the open of the bar after the decision; "
        "close at the decision bar's close.",
    )
    max_volume_fraction: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Backtest: most of a bar's volume an order may take; the rest fills "
        "on later bars. Unlimited by default.",
    )
    orders: OrdersParams = Field(
        default_factory=OrdersParams,
        description="Order types: market, limit or auto, stops, slicing (see Order types).",
    )


class Router(SimulatedVenue):
    """The router: its venues, and the simulated venue that models it in backtests.

    Attributes:
        keys: The component's keys (``params`` holds the modelled simulated venue's).
        venues: Each venue's built component, by name, in file order.
        market_venue: The venue a backtest's market orders are modelled on.
        limit_venue: The venue a backtest's resting limit orders are modelled on.
    """

    def __init__(self, params: RouterParams, venues: dict[str, SimulatedVenue]) -> None:
        self.keys = params
        self.venues = venues
        entries = {entry.name: entry for entry in params.venues}
        self.market_venue = _pick(entries, is_limit=False)
        self.limit_venue = _pick(entries, is_limit=True)
        market = entries[self.market_venue]
        limit = entries[self.limit_venue]
        maker = limit.fee_bps if limit.maker_fee_bps is None else limit.maker_fee_bps
        cash = min(sum(entry.initial_cash for entry in params.venues), MAX_CASH)
        super().__init__(
            SimulatedVenueParams(
                initial_cash=cash,
                fill=params.fill,
                slippage_bps=market.slippage_bps,
                fee_bps=market.fee_bps,
                maker_fee_bps=maker,
                max_volume_fraction=params.max_volume_fraction,
                orders=params.orders,
            )
        )

    def route_model(self) -> RouteModel:
        """Return the journal row of the venues a backtest models the router with."""
        return RouteModel(
            market_venue=self.market_venue,
            limit_venue=self.limit_venue,
            taker_fee=self.fee_rate,
            slippage=self.slippage,
            maker_fee=self.fee_rate if self.maker_fee_rate is None else self.maker_fee_rate,
            initial_cash=self.initial_cash,
        )


def _pick(entries: dict[str, SimulatedRouteParams | CcxtRouteParams], *, is_limit: bool) -> str:
    """Return the venue `route` picks with no book, for a market or a resting limit order."""
    order = RouteOrder(1, 1.0, 1.0, limit_price=1.0 if is_limit else math.nan)
    candidates = [
        Candidate(
            name,
            taker_fee=entry.fee_bps / 1e4,
            maker_fee=(entry.fee_bps if entry.maker_fee_bps is None else entry.maker_fee_bps) / 1e4,
            # a resting limit never takes: only its maker fee counts
            last_price=math.inf if is_limit else 1.0,
            slippage=entry.slippage_bps / 1e4,
        )
        for name, entry in entries.items()
    ]
    return route(order, candidates).allocations[0].venue


def build(params: RouterParams, ctx: BuildContext) -> Router:
    """Build every venue, then the router; sends nothing.

    Raises:
        ParamError: A venue name listed twice, or a venue's component refused its keys
            (located at ``venues.N.<key>``).
    """
    seen: dict[str, int] = {}
    venues: dict[str, SimulatedVenue] = {}
    for i, entry in enumerate(params.venues):
        if entry.name in seen:
            raise ParamError(
                f"venues.{i}.name",
                f"venue '{entry.name}' is listed twice (first as venues.{seen[entry.name]}); "
                "give each venue its own name",
            )
        seen[entry.name] = i
        venues[entry.name] = _build_venue(i, entry, ctx)
    return Router(params, venues)


def _build_venue(
    index: int, entry: SimulatedRouteParams | CcxtRouteParams, ctx: BuildContext
) -> SimulatedVenue:
    keys = entry.model_dump(exclude={"name", "kind"})
    if isinstance(entry, SimulatedRouteParams):
        return SimulatedVenue(SimulatedVenueParams.model_validate(keys))
    try:
        built: CcxtExecution = ccxt_execution.build(
            CcxtExecutionParams.model_validate({**keys, **_secrets(entry)}), ctx
        )
    except ParamError as exc:
        where = f"venues.{index}" + (f".{exc.key}" if exc.key else "")
        raise ParamError(where, exc.message) from exc
    return built


def _secrets(entry: CcxtRouteParams) -> dict[str, Any]:
    # model_dump masks SecretStr values; hand the secrets over as they are
    return {
        key: getattr(entry, key)
        for key in ("api_key", "secret", "password")
        if getattr(entry, key) is not None
    }
