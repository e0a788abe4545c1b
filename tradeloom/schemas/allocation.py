"""The ``allocation:`` section's own keys: the trailing window, the constraints and the
rebalance schedule (the ``kind`` and its keys are the allocator's, `tradeloom.plugin.Allocator`).

What can be known from the file is refused here, one line per problem naming the key:
bounds that cannot reach the exposure, a group cap below what its members' lower bounds
force, a window too short for the covariance of the universe's symbols, shorts declared
for a long-only allocator, a constraint the allocator cannot honour, a ``signal.sides``
the weights cannot keep to (`allocation_problems`).

``signal.sides`` holds with an allocation layer too: its weights are the positions, so the
side the strategy does not trade is barred in the weights' bounds (``long``: no weight
below 0; ``short``: none above 0), and the allocator solves under them
(`weight_constraints`), as it solves under the declared bounds: the net exposure and every
other constraint still hold, and the engine checks each answer against them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tradeloom.bounds import MAX_NAME_LENGTH, MAX_WINDOW
from tradeloom.plugins.protocols_allocation import (
    HONOURABLE,
    GroupCap,
    WeightConstraints,
    infeasibility,
)
from tradeloom.suggestions import did_you_mean

__all__ = [
    "DEFAULT_SHORT_BOUND",
    "AllocationConstraints",
    "Rebalance",
    "Sides",
    "allocation_problems",
    "weight_constraints",
]

Sides = Literal["both", "long", "short"]
"""``signal.sides``: the sides a strategy trades (here, beside the weights' bounds it
narrows, so that the strategy file's schema imports it from below)."""

DEFAULT_SHORT_BOUND = 1.0
"""A long-short weight's default bounds: ``[-1, 1]`` (a whole equity either way)."""

_Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH)]
_Cap = Annotated[float, Field(gt=0)]


class SymbolBounds(BaseModel):
    """One symbol's own bounds, over the section's ``min_weight`` and ``max_weight``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: float | None = Field(default=None, description="The symbol's least weight.")
    max: float | None = Field(default=None, description="The symbol's largest weight.")

    @model_validator(mode="after")
    def _order(self) -> SymbolBounds:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}")
        return self


class AllocationConstraints(BaseModel):
    """``allocation.constraints``: what every target weight vector must satisfy.

    Weights are signed fractions of equity, one per symbol of the data section.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    side: Literal["long_only", "long_short"] = Field(
        default="long_only",
        description="long_only: every weight >= 0; long_short: weights may be negative "
        "(only minimum_variance, mean_variance and black_litterman sell short).",
    )
    net_exposure: float = Field(
        default=1.0,
        ge=-MAX_WINDOW,
        le=MAX_WINDOW,
        description="The weights' sum, longs minus shorts (1.0 = the equity; long_only: > 0).",
    )
    gross_exposure: float | None = Field(
        default=None,
        gt=0,
        description="long_short: the largest sum of |weight| (at least |net_exposure|; "
        "null: only the bounds limit it).",
    )
    min_weight: float | None = Field(
        default=None,
        description="Every symbol's least weight (null: 0 long_only, -1 long_short).",
    )
    max_weight: float | None = Field(
        default=None,
        description="Every symbol's largest weight (null: net_exposure long_only, 1 long_short).",
    )
    bounds: dict[_Name, SymbolBounds] = Field(
        default_factory=dict,
        max_length=100_000,
        description="One symbol's own bounds, {SYMBOL: {min: X, max: Y}}, over "
        "min_weight and max_weight.",
    )
    group_caps: dict[_Name, _Cap] = Field(
        default_factory=dict,
        max_length=1000,
        description="{GROUP: CAP}: the net weight of a group of risk.portfolio.groups lies "
        "in [-CAP, CAP] (long_only: its total weight is at most CAP).",
    )
    max_turnover: float | None = Field(
        default=None,
        gt=0,
        description="The largest sum of |target - held weight| of one rebalance (0.5 = "
        "half the equity traded); not with transaction_cost.",
    )
    transaction_cost: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="The cost of trading one unit of weight (0.001 = 10 bp of the weight "
        "traded), charged against a year's expected return: the optimiser weighs the "
        "cost of a rebalance's turnover against the mean return per bar times the bars "
        "of a year of the data's calendar, so a value means the same on any timeframe "
        "(mean_variance and black_litterman; not with max_turnover).",
    )
    min_trade: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="A symbol whose target differs from its held weight by less than "
        "this is not traded at a rebalance (0.005 = half a percent of the equity); a "
        "target of zero is always traded: the position is closed.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> AllocationConstraints:
        long_only = self.side == "long_only"
        if long_only and self.net_exposure <= 0:
            raise ValueError(
                f"net_exposure: long_only weights sum to more than 0, was {self.net_exposure:g}"
            )
        if long_only and self.gross_exposure is not None:
            raise ValueError("gross_exposure applies to side: long_short (long_only: the net)")
        if long_only and self.min_weight is not None and self.min_weight < 0:
            raise ValueError(
                f"min_weight: long_only weights are >= 0, was {self.min_weight:g}; "
                "set side: long_short to sell short"
            )
        low, high = self.min_weight, self.max_weight
        if low is not None and high is not None and low > high:
            raise ValueError(f"min_weight {low:g} is above max_weight {high:g}")
        gross = self.gross_exposure
        if gross is not None and abs(self.net_exposure) > gross:
            raise ValueError(
                f"gross_exposure {gross:g} is below |net_exposure| {abs(self.net_exposure):g}"
            )
        if self.max_turnover is not None and self.transaction_cost is not None:
            raise ValueError("max_turnover and transaction_cost: declare one of the two")
        return self


class Rebalance(BaseModel):
    """``allocation.rebalance``: when the targets are recomputed and traded (one of)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    every: int | None = Field(
        default=None,
        ge=1,
        le=MAX_WINDOW,
        strict=True,
        description="Every this many bars from the first rebalance (1 .. 1,000,000).",
    )
    calendar: Literal["weekly", "monthly"] | None = Field(
        default=None,
        description="At the first bar of each UTC week (from Monday) or month of the "
        "data's calendar.",
    )
    drift: float | None = Field(
        default=None,
        gt=0,
        le=2,
        description="When a held weight has drifted from its target by more than this "
        "(0.05 = five points of equity), checked at every bar.",
    )

    @model_validator(mode="after")
    def _one(self) -> Rebalance:
        chosen = [k for k in ("every", "calendar", "drift") if getattr(self, k) is not None]
        if len(chosen) != 1:
            was = ", ".join(chosen) if chosen else "none"
            raise ValueError(f"declare one of every, calendar or drift; was {was}")
        return self


_SOLVERS = "minimum_variance, mean_variance, maximum_diversification or black_litterman"
_UNHONOURED = {
    "group_caps": f"cannot honour group caps (it solves no program over the weights); "
    f"{_SOLVERS} solve under them",
    "max_turnover": f"cannot honour a turnover limit (it solves no program over the "
    f"weights); {_SOLVERS} solve under it",
    "transaction_cost": "maximises no expected return to charge a transaction cost "
    "against; mean_variance or black_litterman do (or limit the trading with "
    "max_turnover where the allocator honours it)",
}
"""Why an allocator whose params' ``honours`` leaves out a declared constraint refuses it."""


def weight_constraints(
    constraints: AllocationConstraints,
    symbols: Sequence[str],
    groups: Mapping[str, Sequence[str]] = {},
    *,
    periods_per_year: float = 1.0,
    sides: Sides = "both",
) -> WeightConstraints:
    """Return ``constraints`` resolved over ``symbols`` (the data section's, in order).

    Args:
        constraints: The declared constraints.
        symbols: The universe's symbols.
        groups: ``risk.portfolio.groups``: the members of each group a cap names (a
            member or a name not known is left out: validation reports it).
        periods_per_year: Bars in a year of the data's calendar and timeframe: the
            declared ``transaction_cost``, charged against a year's expected return,
            is ``transaction_cost / periods_per_year`` against a bar's, the allocators'
            unit (`WeightConstraints.transaction_cost`).
        sides: ``signal.sides``: ``long`` raises every least weight to 0 at least,
            ``short`` lowers every largest weight to 0 at most (``both``: as declared).
    """
    long_only = constraints.side == "long_only"
    net = constraints.net_exposure
    low = constraints.min_weight
    high = constraints.max_weight
    if low is None:
        low = 0.0 if long_only else -DEFAULT_SHORT_BOUND
    if high is None:
        high = net if long_only else DEFAULT_SHORT_BOUND
    lower, upper = [low] * len(symbols), [high] * len(symbols)
    index = {symbol: k for k, symbol in enumerate(symbols)}
    for symbol, own in constraints.bounds.items():
        if symbol in index:
            k = index[symbol]
            lower[k] = own.min if own.min is not None else lower[k]
            upper[k] = own.max if own.max is not None else upper[k]
    if sides == "long":
        lower = [max(low, 0.0) for low in lower]
    elif sides == "short":
        upper = [min(high, 0.0) for high in upper]
    caps = tuple(
        GroupCap(name, tuple(index[s] for s in groups[name] if s in index), cap)
        for name, cap in constraints.group_caps.items()
        if name in groups
    )
    return WeightConstraints(
        min_weight=tuple(lower),
        max_weight=tuple(upper),
        net_exposure=net,
        gross_exposure=constraints.gross_exposure,
        groups=caps,
        max_turnover=constraints.max_turnover,
        transaction_cost=(constraints.transaction_cost or 0.0) / periods_per_year,
        names=tuple(symbols),
    )


def allocation_problems(
    window: int,
    declared: AllocationConstraints,
    kind: str,
    params: BaseModel,
    symbols: Sequence[str] | None,
    groups: Mapping[str, Sequence[str]],
    *,
    named: str = "symbol",
    listed: str = "the data's symbols",
    sides: Sides = "both",
) -> Iterator[tuple[str, str]]:
    """Yield ``(key path, message)`` for what the section asks that cannot be met.

    Args:
        window: ``allocation.window``.
        declared: ``allocation.constraints``.
        kind: The allocator's kind.
        params: The allocator's validated keys (its ``covariance``; whether it sells
            short and which constraints it honours: its params model's ``allows_short``
            and ``honours``).
        symbols: The data section's symbols (None: a source that chooses its own; the
            checks that need them wait for the run).
        groups: ``risk.portfolio.groups``.
        named: What a column is, in a message (a portfolio file's: ``strategy``).
        listed: What the columns are, in a message (``the portfolio's strategies``).
        sides: ``signal.sides`` (`weight_constraints`).
    """
    where = "allocation.constraints"
    barred = _sides_problem(declared, sides)
    if barred is not None:
        yield "signal.sides", barred
        sides = "both"  # said once: the bounds' checks below read the declared ones
    if declared.side == "long_short" and not getattr(type(params), "allows_short", False):
        yield (
            f"{where}.side",
            f"allocation kind {kind} is long-only; long_short needs minimum_variance, "
            "mean_variance or black_litterman",
        )
    honours = getattr(type(params), "honours", HONOURABLE)
    for key, why in _UNHONOURED.items():
        if key not in honours and getattr(declared, key) not in (None, {}):
            yield f"{where}.{key}", f"allocation kind {kind} {why}"
    for name in declared.group_caps:
        if name not in groups:
            known = ", ".join(groups) if groups else "none (declare risk.portfolio.groups)"
            yield (
                f"{where}.group_caps.{name}",
                f"unknown group {name!r}{did_you_mean(name, groups)}; the groups are {known}",
            )
    if symbols is None:
        return
    for symbol in declared.bounds:
        if symbol not in symbols:
            yield (
                f"{where}.bounds.{symbol}",
                f"unknown {named} {symbol!r}{did_you_mean(symbol, symbols)}; {listed} "
                f"are {', '.join(repr(s) for s in symbols)}",
            )
    resolved = weight_constraints(declared, symbols, groups, sides=sides)
    for key, message in infeasibility(resolved):
        yield f"{where}.{key}", message
    cov = getattr(params, "covariance", None)
    if cov in ("sample", "exponential") and window <= len(symbols):
        yield (
            "allocation.window",
            f"a {cov} covariance of {len(symbols)} {named}s is singular with "
            f"{window} bars: the window needs more than {len(symbols)} (or "
            "covariance: ledoit_wolf)",
        )


def _sides_problem(declared: AllocationConstraints, sides: str) -> str | None:
    """Return why weights of the one side ``signal.sides`` trades cannot reach the
    declared net exposure (None: they can, or ``sides`` is ``both``)."""
    net = declared.net_exposure
    if sides == "short" and declared.side == "long_only":
        return (
            "is short but allocation.constraints.side is long_only: the allocator's "
            "weights are never below 0; set side: long_short with a net_exposure below 0, "
            "or signal.sides: long"
        )
    if sides == "short" and net >= 0:
        return (
            f"is short but allocation.constraints.net_exposure is {net:g}: weights of 0 or "
            "below cannot sum to it; set a net_exposure below 0, or signal.sides: both"
        )
    if sides == "long" and net <= 0:
        return (
            f"is long but allocation.constraints.net_exposure is {net:g}: weights of 0 or "
            "above cannot sum to it; set a net_exposure above 0, or signal.sides: both"
        )
    return None
