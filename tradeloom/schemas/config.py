"""The validated strategy: what `tradeloom.schemas.load_strategy` returns.

Every component section is validated by its own params model; the result keeps,
for each component, where it came from in the file, so that later checks (a
factory's `ParamError`, a missing data file) can still be reported as
``FILE:LINE:COL key.path: message``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tradeloom.plugins.registry import RegisteredComponent
from tradeloom.schemas.allocation import AllocationConstraints, Rebalance
from tradeloom.schemas.exits import TrailingAtr
from tradeloom.schemas.health import HealthRule
from tradeloom.schemas.journal import JournalSection
from tradeloom.schemas.limits import PreTradeLimits
from tradeloom.schemas.live import LiveSection
from tradeloom.schemas.portfolio import PortfolioRisk
from tradeloom.schemas.regime import RegimeParams
from tradeloom.schemas.scaling import Scaling
from tradeloom.schemas.strategy import OutputsSection, PromoteWhen, Sides

__all__ = [
    "Challenger",
    "ComponentConfig",
    "StrategyConfig",
    "feature_spec_of",
    "informative_column",
    "timeframe_column",
]


@dataclass(frozen=True)
class ComponentConfig:
    """One component of the strategy, validated.

    Attributes:
        path: Dotted key path of its section, e.g. ``features.3`` or ``risk.sizing``.
        kind: The component's kind, bare (``range_position`` also where the file chose
            the plugin with ``example:range_position``).
        params: Its keys, validated by the component's params model.
        registered: The component and the plugin that provides it.
        timeframe: A feature's ``timeframe:``, the higher timeframe it is computed on
            (None: the bars' own; always None for the other layers).
        symbol: A feature's ``symbol:``, the informative market it is computed on
            (None: the traded market's own bars; always None for the other layers).
    """

    path: str
    kind: str
    params: BaseModel
    registered: RegisteredComponent = field(repr=False)
    timeframe: str | None = None
    symbol: str | None = None


@dataclass(frozen=True)
class Challenger:
    """One entry of ``challengers:``, validated: a candidate that decides in shadow.

    Attributes:
        name: Its name (its shadow book's in the journal).
        model: Its model (``challengers.N.model``).
        signal: Its signal rule (None: the strategy's).
        sizing: Its sizing (None: the strategy's).
        promote_when: Its promotion gate (None: never promoted).
        signal_keys: What its signal section's ``regimes``, ``top_k`` and ``sides`` set,
            as ``(StrategyConfig field, value)`` pairs (``("signal_sides", "long")``):
            only the keys it writes; the others are the strategy's.
    """

    name: str
    model: ComponentConfig
    signal: ComponentConfig | None = None
    sizing: ComponentConfig | None = None
    promote_when: PromoteWhen | None = None
    signal_keys: tuple[tuple[str, Any], ...] = ()


def timeframe_column(column: str, timeframe: str) -> str:
    """Return the name of ``column`` computed on ``timeframe`` (``rsi_14@4h``): a feature's
    column with ``timeframe:``."""
    return f"{column}@{timeframe}"


def informative_column(column: str, symbol: str) -> str:
    """Return the name of ``column`` computed on ``symbol``'s bars
    (``log_return_1@ETH/USDT``): a feature's column with ``symbol:``."""
    return f"{column}@{symbol}"


@dataclass(frozen=True)
class StrategyConfig:
    """A strategy file, fully validated against the installed components.

    Attributes:
        source: The strategy file.
        name: The strategy's name (used for run directories and client order ids).
        seed: Seed of every random source of the run.
        plugins: Module paths listed under ``plugins:``.
        data, model, signal, sizing, execution: One component each.
        features: The feature components, in file order.
        signal_regimes: The labels of ``signal.regimes``, in file order (empty: no filter).
        regime: The ``regime:`` settings; the defaults when only ``signal.regimes`` is
            given; None when neither is (no bar is labelled).
        risk_rules: The risk rules, in file order.
        max_holding_bars: A position is closed after this many bars (None: never).
        stop_loss: A position is closed during the bar when the price moves this
            fraction against its entry price (None: never).
        take_profit: Likewise when it moves this fraction in its favour (None: never).
        trailing_stop: ``risk.trailing_stop``: a fraction, or an ATR distance (None: none).
        break_even: ``risk.break_even`` (None: none).
        cooldown_bars: ``risk.cooldown_bars`` (None: none).
        exit_time: ``risk.exit_time``, ``HH:MM`` UTC (None: none).
        monitoring: The monitors, in file order.
        health: The rules of ``health:``, in file order.
        live: The ``live:`` section (paper and live runs).
        risk_limits: The pre-trade limits (``risk.limits``), applied in every mode.
        signal_top_k: ``signal.top_k``: the entries and reversals kept per bar, ranked
            by confidence (None: every one).
        signal_sides: ``signal.sides``: the sides the strategy trades (``both``: every
            signal as its rule gives it).
        risk_portfolio: The portfolio limits (``risk.portfolio``).
        risk_scaling: Partial take-profits and adds (``risk.scaling``).
        outputs: The ``outputs:`` section (optional files of the run directory).
        journal: The ``journal:`` section (None: the run directory's journal.sqlite).
        allocation: The allocator of ``allocation:`` (None: no allocation layer).
        allocation_window: ``allocation.window``, bars of trailing returns (0: none).
        allocation_constraints: ``allocation.constraints`` (None: no allocation layer).
        allocation_rebalance: ``allocation.rebalance`` (None: no allocation layer).
        challengers: The candidates of ``challengers:`` (paper and live runs).
        document: The resolved file as plain data, overrides applied, secrets kept as
            their ``${NAME}`` reference; written to the run directory.
        locate: Map a dotted key path to ``FILE:LINE:COL`` (or ``--set``) for messages.
    """

    source: Path
    name: str
    seed: int
    plugins: tuple[str, ...]
    data: ComponentConfig
    features: tuple[ComponentConfig, ...]
    model: ComponentConfig
    signal: ComponentConfig
    signal_regimes: tuple[str, ...]
    regime: RegimeParams | None
    sizing: ComponentConfig
    risk_rules: tuple[ComponentConfig, ...]
    max_holding_bars: int | None
    stop_loss: float | None
    take_profit: float | None
    execution: ComponentConfig
    monitoring: tuple[ComponentConfig, ...]
    document: Mapping[str, Any]
    locate: Callable[[str], str]
    health: tuple[HealthRule, ...] = ()
    live: LiveSection = field(default_factory=LiveSection)
    risk_limits: PreTradeLimits = field(default_factory=PreTradeLimits)
    signal_top_k: int | None = None
    signal_sides: Sides = "both"
    risk_portfolio: PortfolioRisk = field(default_factory=PortfolioRisk)
    risk_scaling: Scaling = field(default_factory=Scaling)
    outputs: OutputsSection = field(default_factory=OutputsSection)
    journal: JournalSection | None = None
    trailing_stop: float | TrailingAtr | None = None
    break_even: float | None = None
    cooldown_bars: int | None = None
    exit_time: str | None = None
    allocation: ComponentConfig | None = None
    allocation_window: int = 0
    allocation_constraints: AllocationConstraints | None = None
    allocation_rebalance: Rebalance | None = None
    challengers: tuple[Challenger, ...] = ()

    def feature_spec(self) -> list[dict[str, Any]]:
        """Return the features as a saved model records them: each entry's ``kind`` and
        every key of its params, defaults filled in, as JSON data.

        Built from the validated params rather than the file's text, so that two files
        that spell the same features differently (a default written out or left implicit)
        give equal specifications, and a model trained with one loads with the other.
        A feature's ``timeframe`` is recorded when it is set (rsi on 4h bars is another
        feature than rsi on the bars), and so is its ``symbol`` (rsi of ETH/USDT is not
        rsi of the traded market).
        """
        return feature_spec_of(self.features)


def feature_spec_of(features: Sequence[ComponentConfig]) -> list[dict[str, Any]]:
    """Return `StrategyConfig.feature_spec` of the validated entries ``features``."""
    return [
        _plain(
            {
                "kind": item.kind,
                **_dump(item.params),
                **({"timeframe": item.timeframe} if item.timeframe else {}),
                **({"symbol": item.symbol} if item.symbol else {}),
            }
        )
        for item in features
    ]


def _dump(params: BaseModel) -> dict[str, Any]:
    try:
        return params.model_dump(mode="json")
    except Exception:  # a third-party params type with no JSON form: its repr stands in
        return params.model_dump()


def _plain(value: Any) -> Any:
    # JSON data that survives a round trip unchanged: tuples as lists, an unknown type as
    # its repr, NaN and infinities as their repr (NaN would never equal itself)
    return _finite(json.loads(json.dumps(value, default=repr)))


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value
