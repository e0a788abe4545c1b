"""The ``router`` execution component: several venues, each order routed by expected cost.

``execution: {kind: router, venues: [{name: a, kind: ccxt, ...}, {name: b, kind:
simulated, ...}], policy: {...}}``. Each venue is a full execution component (the keys
of ``kind: simulated`` or ``kind: ccxt``) with its own maker and taker fees, slippage
and cash, and, for backtests and paper runs, its ``outages`` (when it is down); the
router's own keys are those that describe the strategy's orders rather than a venue
(``fill``, ``max_volume_fraction``, ``orders``) and the ``policy``.

Every mode splits each order over the venues by one rule,
`tradeloom.core.routing.route`: live with the venues' books, balances and
health (`tradeloom.live.accounts.router_venue`); in a backtest and a paper run with each
venue modelled, its own cash, base held, fees, slippage, minimum and outages
(`Router.modelled_venue`: `tradeloom.plugins.execution.routed_model.ModelledRouter`).
The router is a `tradeloom.plugins.protocols.MultiVenue`: the runner asks for that
capability, never for this class.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from tradeloom.bounds import MAX_CASH
from tradeloom.core.costs import VenueCosts
from tradeloom.plugins.component import BuildContext, ParamError, Params
from tradeloom.plugins.execution import ccxt_execution
from tradeloom.plugins.execution.ccxt_execution import CcxtExecution, CcxtExecutionParams
from tradeloom.plugins.execution.simulated import (
    SimulatedVenue,
    SimulatedVenueParams,
    min_notional_of,
)
from tradeloom.plugins.protocols import Venue, VenueTerms
from tradeloom.plugins.protocols_orders.order_params import OrdersParams
from tradeloom.runtime.lazy import pandas as pd

__all__ = [
    "CcxtRouteParams",
    "OutageParams",
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


class OutageParams(Params):
    """One item of ``execution.venues[].outages``: a time the venue is down."""

    start: datetime = Field(description="When the outage starts (UTC when no zone is given).")
    end: datetime = Field(description="When it ends: the venue is up again from then.")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if _utc(self.end) <= _utc(self.start):
            raise ValueError(
                f"end must be after start, was {self.end.isoformat()} <= {self.start.isoformat()}"
            )
        return self

    def span(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """Return ``(start, end)`` as UTC timestamps."""
        return pd.Timestamp(_utc(self.start)), pd.Timestamp(_utc(self.end))


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class _RouteKeys(Params):
    """What every venue of a router adds to its component's keys."""

    model_config = ConfigDict(json_schema_extra=_without_router_keys)

    name: str = Field(
        pattern=_NAME_PATTERN,
        description="The venue's name in the journal (route_decision.venue): lower case "
        "letters, digits and _, up to 24.",
    )
    outages: list[OutageParams] = Field(
        default_factory=list,
        description="Backtest and paper: when the venue is down (its fault schedule): "
        "from each start to its end no order is routed to it. Live: refused (a live "
        "venue is down when its requests fail).",
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
    """The router: its venues; a `MultiVenue`.

    As a simulated venue it carries only what the compiled core reads of every venue
    (the order types, the minimum order notional of the venues' cash in all); the
    fills are `modelled_venue`'s (backtest, paper) or the exchanges' (live).

    Attributes:
        keys: The component's keys.
        venues: Each venue's built component, by name, in file order.
        policy: ``execution.policy``.
        order_keys: ``execution.orders``.
    """

    def __init__(self, params: RouterParams, venues: dict[str, SimulatedVenue]) -> None:
        self.keys = params
        self.venues = venues
        self.policy = params.policy
        self.order_keys = params.orders
        cash = min(sum(entry.initial_cash for entry in params.venues), MAX_CASH)
        super().__init__(
            SimulatedVenueParams(
                initial_cash=cash,
                fill=params.fill,
                fee_bps=max(entry.fee_bps for entry in params.venues),
                max_volume_fraction=params.max_volume_fraction,
                orders=params.orders,
            )
        )

    def venue_terms(self) -> tuple[VenueTerms, ...]:
        """Return each venue's terms, in file order."""
        costs = [
            VenueCosts.from_bps(entry.fee_bps, entry.maker_fee_bps, entry.slippage_bps)
            for entry in self.keys.venues
        ]
        return tuple(
            VenueTerms(
                name=entry.name,
                index=i,
                kind=entry.kind,
                component=self.venues[entry.name],
                taker_fee=costs[i].taker,
                maker_fee=costs[i].maker,
                slippage=costs[i].slippage,
                initial_cash=entry.initial_cash,
                min_notional=min_notional_of(entry.initial_cash, entry.min_notional),
                outages=tuple(outage.span() for outage in entry.outages),
            )
            for i, entry in enumerate(self.keys.venues)
        )

    def modelled_venue(self, record: Callable[[Any], None]) -> Venue:
        """Return a new model of every venue for a backtest or a paper run.

        Raises:
            ParamError: Limit orders or slicing, which a router runs live only (the key
                is ``orders.type`` or ``orders.slicing``).
        """
        orders = self.keys.orders
        if orders.type != "market":
            raise ParamError(
                "orders.type",
                f"a router is modelled per venue for market orders in backtests and paper, "
                f"was {orders.type}; use market, or run the {orders.type} orders live",
            )
        if orders.slicing is not None:
            raise ParamError(
                "orders.slicing",
                "a router is modelled per venue for whole orders in backtests and paper; "
                "remove the slicing, or run it live",
            )
        # validate imports this module for its params: the model (pandas, journal) on use
        from tradeloom.plugins.execution.routed_model import ModelledRouter

        return ModelledRouter(
            self.venue_terms(),
            fill=self.keys.fill,
            max_volume_fraction=self.keys.max_volume_fraction,
            record=record,
        )


def build(params: RouterParams, ctx: BuildContext) -> Router:
    """Build every venue, then the router; sends nothing.

    Raises:
        ParamError: A venue name listed twice, a venue's component refused its keys
            (located at ``venues.N.<key>``), or ``orders.batch`` (a router splits each
            order over its venues and sends the parts one by one).
    """
    if params.orders.batch:
        raise ParamError(
            "orders.batch",
            "a router sends each order's parts to its venues one by one; remove "
            "orders.batch (kind: ccxt or a universe's simulated execution batches)",
        )
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
    keys = entry.model_dump(exclude={"name", "kind", "outages"})
    if keys.get("realism") is not None:  # the routing kernel fills by its own rule
        raise ParamError(
            f"venues.{index}.realism",
            "a router's venues take no realism profile yet (the router fills at the next "
            "open); set execution.realism on a single venue",
        )
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
