"""A portfolio file: several strategy files trading one account.

A portfolio file names strategy files and how the account's capital is allocated
between them; each strategy keeps its own data, features, model, signal and sizing,
and the account (its cash, its venue, its pre-trade limits and drawdown rules) is the
portfolio's. It is told from a strategy file by its top-level ``strategies:`` key::

    name: two_strategies
    initial_cash: 100000
    allocation: {kind: fixed}          # or {kind: risk_parity, window: 500, rebalance: {every: 24}}
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
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tradeloom.bounds import MAX_WINDOW
from tradeloom.errors import ConfigError, Problem, UserError
from tradeloom.plugins import manager
from tradeloom.schemas.allocation import Rebalance
from tradeloom.schemas.config import StrategyConfig
from tradeloom.schemas.file_kind import is_portfolio_document
from tradeloom.schemas.limits import PreTradeLimits
from tradeloom.schemas.loader import load_strategy, validate_model
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
        "(0 < weight <= 1); not used by inverse_volatility or risk_parity.",
    )


MOVING_KINDS = ("inverse_volatility", "risk_parity")
"""The allocations whose weights follow the strategies' trailing returns."""


class Allocation(BaseModel):
    """How the account's capital is shared between the strategies."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["fixed", "inverse_volatility", "risk_parity"] = Field(
        default="fixed",
        description="fixed: each strategy's weight; inverse_volatility: weights "
        "proportional to 1 / the volatility of each strategy's returns over a trailing "
        "window; risk_parity: equal risk contributions of the strategies' returns over "
        "the window (their sample covariance).",
    )
    window: int | None = Field(
        default=None,
        ge=2,
        le=MAX_WINDOW,
        description="inverse_volatility and risk_parity: bars of returns in the trailing "
        "window (2 .. 1,000,000); required for them.",
    )
    rebalance: Rebalance | None = Field(
        default=None,
        description="inverse_volatility and risk_parity: when the weights are recomputed, "
        "every: N bars or calendar: weekly or monthly (null: at every bar).",
    )
    normalize: bool = Field(
        default=False,
        description="fixed: scale the weights to sum to 1; without it they must.",
    )

    @model_validator(mode="after")
    def _window(self) -> Allocation:
        if self.kind in MOVING_KINDS and self.window is None:
            raise ValueError(f"allocation kind {self.kind} needs window: BARS")
        if self.kind == "fixed" and self.window is not None:
            raise ValueError(
                "window applies to allocation kinds inverse_volatility and risk_parity only"
            )
        if self.kind == "fixed" and self.rebalance is not None:
            raise ValueError(
                "rebalance applies to allocation kinds inverse_volatility and risk_parity only"
            )
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
            under inverse_volatility, equal weights (what applies until the window fills).
        locate: ``FILE:LINE:COL`` of a key path of the portfolio file (a problem found
            once the strategies are built or their bars loaded is located like the rest).
    """

    source: Path
    file: PortfolioFile
    strategies: tuple[StrategyConfig, ...]
    weights: tuple[float, ...]
    locate: Callable[[str], str]


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
    if isinstance(top, PortfolioFile):
        problems.extend(_weight_problems(top, source_map.locate))
    if problems:
        raise ConfigError(list(dict.fromkeys(problems)))
    assert isinstance(top, PortfolioFile)
    return PortfolioConfig(
        source=Path(path),
        file=top,
        strategies=strategies.configs,
        weights=_weights(top),
        locate=source_map.locate,
    )


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


def _weight_problems(top: PortfolioFile, locate: Any) -> list[Problem]:
    allocation = top.allocation
    problems: list[Problem] = []
    if allocation.kind in MOVING_KINDS:
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
    if top.allocation.kind in MOVING_KINDS:
        return (1.0 / count,) * count
    weights = [entry.weight or 0.0 for entry in top.strategies]
    total = math.fsum(weights)
    return tuple(w / total for w in weights)
