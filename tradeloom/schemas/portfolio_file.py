"""A portfolio file: several strategy files trading one account.

A portfolio file names strategy files and how the account's capital is allocated
between them; each strategy keeps its own data, features, model, signal and sizing,
and the account (its cash, its venue, its pre-trade limits and drawdown rules) is the
portfolio's. It is told from a strategy file by its top-level ``strategies:`` key::

    name: two_strategies
    initial_cash: 100000
    allocation: {kind: fixed}          # or {kind: hrp, window: 500, rebalance: {every: 24}}
    strategies:
      - {file: two_strategies/trend_btc.yaml, weight: 0.6}
      - {file: two_strategies/reversion_eth.yaml, weight: 0.4}
    risk:
      limits: {max_order_notional: 50000}

`load_portfolio` validates the file and every strategy file it lists; a problem in a
strategy file is reported at that file's own ``FILE:LINE:COL``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from tradeloom.bounds import MAX_WINDOW
from tradeloom.errors import ConfigError, Problem, UserError
from tradeloom.plugins import manager
from tradeloom.plugins.component import BuildContext
from tradeloom.schemas.allocation import (
    AllocationConstraints,
    Rebalance,
    allocation_problems,
)
from tradeloom.schemas.building import build_component
from tradeloom.schemas.config import Challenger, ComponentConfig, StrategyConfig
from tradeloom.schemas.file_kind import is_portfolio_document
from tradeloom.schemas.limits import PreTradeLimits
from tradeloom.schemas.loader import load_strategy, section_component, validate_model
from tradeloom.schemas.overrides import apply_overrides
from tradeloom.schemas.portfolio import PortfolioRisk as PortfolioLimits
from tradeloom.schemas.strategy import NAME_PATTERN
from tradeloom.schemas.yaml_loader import load_yaml

__all__ = [
    "WEIGHT_TOLERANCE",
    "Allocation",
    "PortfolioConfig",
    "PortfolioFile",
    "StrategyEntry",
    "is_portfolio_document",
    "load_portfolio",
]

WEIGHT_TOLERANCE = 1e-9
"""How far from 1 fixed weights may sum (rounding in the file) without ``normalize``."""

MAX_STRATEGIES = 100


class StrategyEntry(BaseModel):
    """One strategy file of the portfolio and its share of the account."""

    model_config = ConfigDict(extra="forbid")

    file: str = Field(
        min_length=1,
        max_length=4096,
        description="The strategy file, relative to the portfolio file's folder.",
    )
    weight: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Its share of the account's equity under allocation kind fixed "
        "(0 < weight <= 1); not used by an allocator kind.",
    )


FIXED = "fixed"
"""The allocation whose weights are the file's own; every other kind is an allocator's."""

SLEEVE_CONSTRAINTS = ("min_weight", "max_weight", "bounds", "max_turnover")
"""The keys of ``allocation.constraints`` that mean something for a portfolio's strategies
(a strategy's share is never short, the shares sum to 1, no group of markets or trade
cost is a strategy's)."""


SLEEVE_COVARIANCE = "sample"
"""The covariance estimator of a portfolio's allocator when its file names none: the
strategies are few beside the window's bars, where the sample covariance is well
conditioned (a strategy's allocator shrinks towards Ledoit-Wolf by default: its symbols
may be many beside the bars); the numbers of a portfolio file written before the
strategies shared the allocators stay as they were."""


class Allocation(BaseModel):
    """How the account's capital is shared between the strategies: the file's own fixed
    weights, or any allocator a strategy's ``allocation:`` takes, over the strategies'
    trailing returns (its keys beside ``kind``, validated by the allocator as a
    strategy's are)."""

    model_config = ConfigDict(extra="allow")

    kind: str = Field(
        default=FIXED,
        description="fixed: each strategy's weight; or an allocator kind, as a strategy's "
        "allocation takes (equal_weight, inverse_volatility, risk_parity, hrp, "
        "minimum_variance, mean_variance, maximum_diversification, black_litterman, a "
        "plugin's; `tradeloom plugins` lists them), over the strategies' returns in a "
        "trailing window, with its own keys beside kind.",
    )
    window: int | None = Field(
        default=None,
        ge=2,
        le=MAX_WINDOW,
        strict=True,
        description="An allocator kind: bars of the strategies' returns in the trailing "
        "window (2 .. 1,000,000); required for it.",
    )
    rebalance: Rebalance | None = Field(
        default=None,
        description="An allocator kind: when the weights are recomputed, every: N bars or "
        "calendar: weekly or monthly (null: at every bar).",
    )
    constraints: AllocationConstraints = Field(
        default_factory=AllocationConstraints,
        description="An allocator kind: what the weights satisfy, over the strategies' "
        "names: min_weight, max_weight, bounds {STRATEGY: {min, max}}, max_turnover.",
    )
    normalize: bool = Field(
        default=False,
        description="fixed: scale the weights to sum to 1; without it they must.",
    )

    @model_serializer(mode="wrap")
    def _written(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # the resolved file holds the constraints a file declares: one that declares none
        # resolves as before they were a portfolio's key (its document, its run's key)
        dumped: dict[str, Any] = handler(self)
        if "constraints" not in self.model_fields_set:
            dumped.pop("constraints", None)
        return dumped

    @model_validator(mode="after")
    def _window(self) -> Allocation:
        if self.kind != FIXED and self.window is None:
            raise ValueError(f"allocation kind {self.kind} needs window: BARS")
        if self.kind == FIXED:
            for key in self.model_extra or {}:
                raise ValueError(
                    f"kind fixed takes no key {key!r} (an allocator kind's keys sit beside it)"
                )
            for key in ("window", "rebalance"):
                if getattr(self, key) is not None:
                    raise ValueError(f"{key} applies to an allocator kind, not fixed")
            if self.constraints != AllocationConstraints():
                raise ValueError("constraints apply to an allocator kind, not fixed")
        elif self.normalize:
            raise ValueError(f"normalize applies to kind fixed, not {self.kind}")
        if self.rebalance is not None and self.rebalance.drift is not None:
            raise ValueError(
                "rebalance: a strategy's share has no held weight to drift from; use every "
                "or calendar"
            )
        return self


class PortfolioRisk(BaseModel):
    """The account's risk: what every strategy's orders, summed, must pass."""

    model_config = ConfigDict(extra="forbid")

    limits: PreTradeLimits = Field(
        default_factory=PreTradeLimits,
        description="Pre-trade checks on every order of every strategy, on the one account.",
    )
    max_drawdown: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Halt every strategy when the account's drawdown reaches this "
        "fraction of its peak equity (null: never).",
    )
    portfolio: PortfolioLimits = Field(
        default_factory=PortfolioLimits,
        description="The portfolio limits over every strategy's books (a book: one "
        "strategy's position on one market): exposures summed over the books, groups of "
        "markets, the correlation limit; max_open_positions counts books. max_weight is "
        "not checked on an account yet.",
    )

    @model_validator(mode="after")
    def _no_weight(self) -> PortfolioRisk:
        if self.portfolio.max_weight is not None:
            raise ValueError(
                "portfolio.max_weight is not checked on an account yet (a market's weight is "
                "split across the strategies' books); use max_gross_exposure or groups"
            )
        return self


class PortfolioFile(BaseModel):
    """The top level of a portfolio file."""

    model_config = ConfigDict(extra="forbid", title="tradeloom portfolio")

    name: str = Field(
        pattern=NAME_PATTERN,
        description="Names run directories and client order ids (like a strategy's name).",
    )
    description: str = ""
    initial_cash: float = Field(
        gt=0, allow_inf_nan=False, description="The account's cash at the start."
    )
    allocation: Allocation = Field(
        default_factory=Allocation, description="How the capital is shared."
    )
    strategies: list[StrategyEntry] = Field(
        min_length=1,
        max_length=MAX_STRATEGIES,
        description="The strategy files (1 .. 100), each with its own data, features, "
        "model, signal and sizing.",
    )
    risk: PortfolioRisk = Field(
        default_factory=PortfolioRisk, description="The account's risk limits."
    )


@dataclass(frozen=True)
class PortfolioConfig:
    """A validated portfolio file and its validated strategies.

    Attributes:
        source: The portfolio file.
        file: Its top level.
        strategies: Each listed strategy, validated, in file order.
        weights: Under fixed allocation, each strategy's weight (normalized if asked);
            under an allocator kind, equal weights (what applies until its first answer).
        allocator: The allocator of ``allocation`` over the strategies, its keys
            validated (None: fixed).
        locate: ``FILE:LINE:COL`` of a key path of the portfolio file (a problem found
            once the strategies are built or their bars loaded is located like the rest).
    """

    source: Path
    file: PortfolioFile
    strategies: tuple[StrategyConfig, ...]
    weights: tuple[float, ...]
    locate: Callable[[str], str]
    allocator: ComponentConfig | None = None


def load_portfolio(
    path: str | Path,
    overrides: Sequence[str] = (),
    *,
    load_plugins: Any = manager.load_plugins,
) -> PortfolioConfig:
    """Load the portfolio file at ``path`` and every strategy file it lists.

    Args:
        path: The portfolio file; its name as given is used in every location.
        overrides: ``KEY.PATH=VALUE`` strings (``--set``) for the portfolio file.
        load_plugins: Builds the plugins a strategy file lists (`load_strategy`).

    Raises:
        UserError: The portfolio file cannot be read.
        ConfigError: Every problem in the portfolio file and in the strategy files, each
            at its own ``FILE:LINE:COL``.
    """
    document = load_yaml(path)
    data, source_map, problems = apply_overrides(document.data, overrides, document.source_map)
    top = validate_model(PortfolioFile, data, "", source_map, problems)
    # every strategy file is checked even when the portfolio file has other problems
    strategies = _load_strategies(data, Path(path).parent, source_map.locate, load_plugins)
    problems.extend(strategies.problems)
    allocator = None
    if isinstance(top, PortfolioFile):
        problems.extend(_weight_problems(top, source_map.locate))
        if top.allocation.kind != FIXED:
            names = [config.name for config in strategies.configs]
            allocator = _allocator(top, data, names, path, source_map, problems, load_plugins)
    if problems:
        raise ConfigError(list(dict.fromkeys(problems)))
    assert isinstance(top, PortfolioFile)
    return PortfolioConfig(
        source=Path(path),
        file=top,
        strategies=strategies.configs,
        weights=_weights(top),
        locate=source_map.locate,
        allocator=allocator,
    )


def _allocator(
    top: PortfolioFile,
    data: Any,
    names: Sequence[str],
    path: str | Path,
    source_map: Any,
    problems: list[Problem],
    load_plugins: Any,
) -> ComponentConfig | None:
    """Return ``allocation``'s allocator over the strategies, validated as a strategy's
    allocation section is (its kind in the registry, its keys by its params model, its
    constraints against the kind, its factory's refusals); append what is wrong."""
    section = {k: v for k, v in data["allocation"].items() if k != "normalize"}
    try:
        registry = load_plugins(()).registry
    except UserError as exc:  # a third-party package that does not load
        problems.append(Problem(source_map.locate("allocation"), "allocation", str(exc)))
        return None
    found = registry.matches("allocation", top.allocation.kind)
    if len(found) == 1 and "covariance" in found[0].component.params.model_fields:
        section.setdefault("covariance", SLEEVE_COVARIANCE)
    item = section_component(registry, "allocation", "allocation", section, source_map, problems)
    allocation = top.allocation
    declared, default = allocation.constraints, AllocationConstraints()
    for key in AllocationConstraints.model_fields:
        # a resolved file writes every key: one at its default asks nothing
        if key not in SLEEVE_CONSTRAINTS and getattr(declared, key) != getattr(default, key):
            where = f"allocation.constraints.{key}"
            problems.append(
                Problem(
                    source_map.locate(where),
                    where,
                    "a portfolio file's strategies share the account long-only, their shares "
                    f"summing to 1: {key} is a strategy's allocation key; the portfolio's "
                    f"are {', '.join(SLEEVE_CONSTRAINTS)}",
                )
            )
    if item is None:
        return None
    assert allocation.window is not None  # the model's rule
    refused = allocation_problems(
        allocation.window,
        declared,
        item.kind,
        item.params,
        names,
        {},
        named="strategy",
        listed="the portfolio's strategies",
    )
    for where, message in refused:
        problems.append(Problem(source_map.locate(where), where, message))
    folder = Path(path).resolve().parent
    ctx = BuildContext(strategy_name=top.name, strategy_dir=folder, seed=0)  # no seed of its own
    problems.extend(build_component(item, ctx, source_map.locate)[1])
    return item


@dataclass(frozen=True)
class _Loaded:
    configs: tuple[StrategyConfig, ...]
    problems: tuple[Problem, ...]


CORE_SIZINGS = ("volatility_target", "risk_per_trade")
"""Sizings whose estimate (a volatility, a stop's ATR) lives in the compiled core's state."""


def _load_strategies(data: Any, folder: Path, locate: Any, load_plugins: Any) -> _Loaded:
    """Load every strategy file listed under ``strategies``; collect their problems."""
    listed = data.get("strategies") if isinstance(data, Mapping) else None
    if not isinstance(listed, list):
        return _Loaded((), ())  # reported by the top-level validation
    configs: list[StrategyConfig] = []
    problems: list[Problem] = []
    names: dict[str, int] = {}
    for i, entry in enumerate(listed):
        file = entry.get("file") if isinstance(entry, Mapping) else None
        if not isinstance(file, str) or not file:
            continue  # reported by the top-level validation
        where = f"strategies.{i}.file"
        try:
            config, _ = load_strategy(folder / file, load_plugins=load_plugins)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        except UserError as exc:
            problems.append(Problem(locate(where), where, str(exc)))
            continue
        if config.name in names:
            problems.append(
                Problem(
                    locate(where),
                    where,
                    f"strategy name '{config.name}' is also the name of strategies."
                    f"{names[config.name]}; names attribute every order and must differ",
                )
            )
        if config.sizing.kind in CORE_SIZINGS:
            at = "risk.sizing.kind"
            problems.append(
                Problem(
                    config.locate(at),
                    at,
                    f"sizing kind {config.sizing.kind} keeps its estimate in the compiled "
                    "core of a strategy run alone; in a portfolio file each strategy sizes "
                    "in Python: use kelly or fixed_fraction",
                )
            )
        if config.allocation is not None:
            at = "allocation"
            problems.append(
                Problem(
                    config.locate(at),
                    at,
                    "a strategy's allocation: runs when the strategy runs alone; a portfolio "
                    "file's strategies share one account at the portfolio's allocation: "
                    "remove it here",
                )
            )
        for c, challenger in enumerate(config.challengers):
            gate = challenger.promote_when
            if gate is not None and gate.canary is not None:
                at = f"challengers.{c}.promote_when.canary"
                problems.append(
                    Problem(
                        config.locate(at),
                        at,
                        "a portfolio file's strategy promotes its challenger without a "
                        "canary: a canary sizes its entries in the compiled core of a "
                        "strategy run alone (a portfolio's books size in Python) and rolls "
                        "back on the run's drawdown (which its strategies share); remove "
                        "canary here",
                    )
                )
            if gate is not None:
                problems += _promoted_rule_problems(config, c, challenger)
            if gate is not None and gate.watch is not None:
                at = f"challengers.{c}.promote_when.watch"
                problems.append(
                    Problem(
                        config.locate(at),
                        at,
                        "a portfolio file's strategy promotes its challenger without a "
                        "watch: its rollback rules read the run's drawdown and the run's "
                        "replay (which its strategies share); remove watch here",
                    )
                )
        names.setdefault(config.name, i)
        configs.append(config)
    return _Loaded(tuple(configs), tuple(problems))


_ACCOUNT_SIGNAL_KEYS = {
    "signal_regimes": "regimes",
    "signal_sides": "sides",
    "signal_top_k": "top_k",
}
"""A challenger's signal keys the account reads once for every strategy (`account_problems`)."""


def _promoted_rule_problems(
    config: StrategyConfig, c: int, challenger: Challenger
) -> list[Problem]:
    """Why the signal section or sizing of ``config``'s promotable challenger ``c`` cannot
    be put in force for its strategy's books on the account: a key the account reads once
    for every strategy that differs from the strategy's, or a sizing the compiled core
    estimates."""
    problems: list[Problem] = []
    for field_name, value in challenger.signal_keys:
        if value != getattr(config, field_name):
            at = f"challengers.{c}.signal.{_ACCOUNT_SIGNAL_KEYS[field_name]}"
            problems.append(
                Problem(
                    config.locate(at),
                    at,
                    "a promotion puts this challenger's signal section in force on the "
                    "portfolio's account, which reads regimes, sides and top_k once for "
                    "every strategy: make it the strategy's, or remove it here",
                )
            )
    sizing = challenger.sizing
    if sizing is not None and sizing.kind in CORE_SIZINGS:
        at = f"challengers.{c}.sizing.kind"
        problems.append(
            Problem(
                config.locate(at),
                at,
                f"sizing kind {sizing.kind} keeps its estimate in the compiled core of a "
                "strategy run alone; a promotion puts this sizing in force for the "
                "strategy's books, which size in Python: use kelly or fixed_fraction",
            )
        )
    return problems


def _weight_problems(top: PortfolioFile, locate: Any) -> list[Problem]:
    allocation = top.allocation
    problems: list[Problem] = []
    if allocation.kind != FIXED:
        for i, entry in enumerate(top.strategies):
            if entry.weight is not None:
                where = f"strategies.{i}.weight"
                problems.append(
                    Problem(
                        locate(where),
                        where,
                        f"a weight is not used by allocation kind {allocation.kind}; "
                        "remove it, or use kind fixed",
                    )
                )
        return problems
    missing = [i for i, entry in enumerate(top.strategies) if entry.weight is None]
    for i in missing:
        where = f"strategies.{i}"
        problems.append(
            Problem(locate(where), where, "allocation kind fixed needs a weight per strategy")
        )
    if missing or allocation.normalize:
        return problems
    total = math.fsum(entry.weight or 0.0 for entry in top.strategies)
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        problems.append(
            Problem(
                locate("strategies"),
                "strategies",
                f"the weights sum to {total:.10g}, not 1; fix them or set "
                "allocation.normalize: true",
            )
        )
    return problems


def _weights(top: PortfolioFile) -> tuple[float, ...]:
    count = len(top.strategies)
    if top.allocation.kind != FIXED:
        return (1.0 / count,) * count
    weights = [entry.weight or 0.0 for entry in top.strategies]
    total = math.fsum(weights)
    return tuple(w / total for w in weights)
