"""The static shape of a strategy file: its top-level keys and where components go.

`StrategyFile` validates everything that does not depend on the installed plugins.
Each component section is only checked to be a mapping with a string ``kind``; its
other keys belong to the component and are validated by its own params model, looked
up by the section's layer (`SECTION_LAYERS`) and ``kind``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from tradeloom.bounds import MAX_NAME_LENGTH, MAX_SEED, MAX_WINDOW
from tradeloom.schemas.allocation import AllocationConstraints, Rebalance, Sides
from tradeloom.schemas.exits import ExitTime, TrailingStop
from tradeloom.schemas.health import HealthRule
from tradeloom.schemas.journal import JournalSection
from tradeloom.schemas.limits import PreTradeLimits
from tradeloom.schemas.live import LiveSection
from tradeloom.schemas.messages import show
from tradeloom.schemas.portfolio import PortfolioRisk
from tradeloom.schemas.regime import REGIME_LABELS, RegimeParams, check_regime_label
from tradeloom.schemas.scaling import Scaling
from tradeloom.time.timeframes import feature_timeframe_seconds

__all__ = [
    "CHALLENGER_SECTIONS",
    "IMPLIED_KINDS",
    "LIST_SECTIONS",
    "NAME_PATTERN",
    "RUNNER_KEYS",
    "SINGLE_SECTIONS",
    "AllocationSection",
    "ChallengerSection",
    "ComponentSection",
    "FeatureSection",
    "OutputsSection",
    "RiskSection",
    "Sides",
    "SignalSection",
    "StrategyFile",
    "fill_implied_kinds",
    "iter_sections",
    "layer_of",
]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
"""A strategy name: it names run directories (so no ``..`` or hidden ``.name``) and
client order ids (so at least one character the venue accepts), at most 64 characters."""

SINGLE_SECTIONS: dict[str, str] = {
    "data": "data",
    "model": "model",
    "signal": "signal",
    "allocation": "allocation",
    "risk.sizing": "sizing",
    "execution": "execution",
}
"""Key path of each section holding one component, and the component's layer
(``allocation`` is optional)."""

LIST_SECTIONS: dict[str, str] = {
    "features": "features",
    "risk.rules": "risk",
    "monitoring": "monitoring",
}
"""Key path of each section holding a list of components, and their layer."""

CHALLENGER_SECTIONS: dict[str, str] = {"model": "model", "signal": "signal", "sizing": "sizing"}
"""The component sections of each ``challengers`` entry (``challengers.N.model``...), and
their layers."""

RUNNER_KEYS: dict[str, tuple[str, ...]] = {
    "signal": ("regimes", "top_k", "sides"),
    "allocation": ("window", "constraints", "rebalance"),
    "features": ("timeframe", "symbol"),
}
"""Keys of a component section that the runner handles for any kind (not the component's);
a list section's (``features``) apply to each of its entries."""

IMPLIED_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {"model": ("saved", ("path", "from_run"))}
"""Top-level section -> the ``kind`` it gets when it has none but has one of these keys
(``model: {from_run: RUN_DIR}`` is a saved model, without writing ``kind: saved``)."""


class ComponentSection(BaseModel):
    """A component in the strategy file: ``kind`` picks it, the other keys configure it.

    The other keys are kept as they are here; the component's params model validates them.
    """

    model_config = ConfigDict(extra="allow")

    kind: str = Field(description="The component to use; `tradeloom plugins` lists them.")

    @model_validator(mode="before")
    @classmethod
    def _is_mapping(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise ValueError(
                f"expected a component: a mapping with 'kind' and its keys, was {show(data)}"
            )
        return data


_RegimeLabel = Annotated[
    str,
    AfterValidator(check_regime_label),  # did-you-mean, which a Literal's message lacks
    WithJsonSchema({"type": "string", "enum": list(REGIME_LABELS)}),
]


class SignalSection(ComponentSection):
    """The ``signal:`` section: the signal rule, the regimes its signals may act in, how
    many entries a bar may take (``top_k``) and the sides it trades (``sides``)."""

    regimes: Annotated[list[_RegimeLabel], Field(min_length=1)] | None = Field(
        default=None,
        description="Act on a signal only on a bar labelled with one of these regimes "
        "(trending, ranging, high_volatility, low_volatility; see regime:); a signal on "
        "any other bar is journaled as filtered and changes nothing. Null: every bar.",
    )
    top_k: Annotated[int, Field(ge=1, le=MAX_WINDOW)] | None = Field(
        default=None,
        description="Act on at most this many entries and reversals per bar: the bar's "
        "candidates are ranked by confidence, highest first, ties in the order of the "
        "symbols in the data section; the others are refused RANK (1 .. 1,000,000; null: "
        "every one). Exits never compete.",
    )
    sides: Sides = Field(
        default="both",
        description="The sides the strategy trades, whatever its signal rule: long, short "
        "or both. With long, a down signal closes a long and is a hold when flat (never "
        "a short, never refused SHORT_NOT_ALLOWED); short likewise for an up signal. "
        "Both: every signal as the rule gives it. With allocation:, it bounds the "
        "weights (long: none below 0; short: none above 0).",
    )


class AllocationSection(ComponentSection):
    """The ``allocation:`` section: the allocator, its trailing window, the constraints
    its weights satisfy and when it rebalances."""

    window: int = Field(
        ge=2,
        le=MAX_WINDOW,
        strict=True,
        description="Bars of trailing returns each rebalance estimates from, the decision "
        "bar's the last (2 .. 1,000,000).",
    )
    constraints: AllocationConstraints = Field(
        default_factory=AllocationConstraints,
        description="What every target weight vector satisfies: side, bounds, exposures, "
        "group caps, turnover or cost, minimum trade.",
    )
    rebalance: Rebalance = Field(
        description="When the targets are recomputed: every: N bars, calendar: weekly or "
        "monthly, or drift: THRESHOLD (one of the three)."
    )


def _check_timeframe(value: str | None) -> str | None:
    if value is not None:
        feature_timeframe_seconds(value)
    return value


def _check_informative(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError("must be a market symbol such as ETH/USDT, was blank")
    return value


class FeatureSection(ComponentSection):
    """An entry of ``features:``: the feature, the timeframe and the market it is computed on."""

    timeframe: Annotated[str | None, AfterValidator(_check_timeframe)] = Field(
        default=None,
        description="Compute the feature on the bars resampled to this higher timeframe "
        "(e.g. 4h on 15m bars: a whole multiple of the bars' timeframe that divides one "
        "day; buckets aligned on midnight UTC), or 1w or 1M: calendar weeks (from Monday) "
        "and months of UTC dates, opened and closed by the first and last bars the "
        "data's calendar expects in them; each base bar sees the value of the last "
        "higher-timeframe bar closed by its own close. Its columns are named "
        "{column}@{timeframe} (rsi_14@4h). Null: the bars' own timeframe.",
    )
    symbol: Annotated[str | None, AfterValidator(_check_informative)] = Field(
        default=None,
        description="Compute the feature on another market's bars (an informative pair, "
        "e.g. ETH/USDT beside BTC/USDT: same data source and timeframe, not traded), "
        "joined as of bar close: each traded bar sees that market's last bar closed by its "
        "own close (a missing bar: the last one before; NaN before the first). Its columns "
        "are named {column}@{symbol} (log_return_1@ETH/USDT); a universe gets the same "
        "values for every symbol. Backtests and check-lookahead only. Null: the traded "
        "market's bars.",
    )


class RiskSection(BaseModel):
    """The ``risk:`` section: sizing, risk rules, the engine's own exits, the limits."""

    model_config = ConfigDict(extra="forbid")

    sizing: ComponentSection = Field(description="How large a position each signal opens.")
    rules: list[ComponentSection] = Field(
        default_factory=list,
        max_length=100,
        description="Checks every order intent must pass, in order (at most 100).",
    )
    max_holding_bars: Annotated[int, Field(ge=1, le=MAX_WINDOW)] | None = Field(
        default=None,
        description="Close a position after this many bars (1 .. 1,000,000; null: never).",
    )
    stop_loss: Annotated[float, Field(gt=0, lt=1)] | None = Field(
        default=None,
        description="Close a position when the price moves this fraction against its "
        "entry price, during the bar (0.02 = 2%; null: never).",
    )
    take_profit: Annotated[float, Field(gt=0)] | None = Field(
        default=None,
        description="Close a position when the price moves this fraction in its favour, "
        "during the bar (0.04 = 4%; null: never).",
    )
    trailing_stop: TrailingStop | None = Field(
        default=None,
        description="A stop that follows the best price since the entry (a long's highest "
        "high, a short's lowest low), taken from each bar after that bar's check: this "
        "fraction below it (0.03 = 3%), or {atr: N, multiple: M}, M average true ranges "
        "of N bars below it. It only moves in the position's favour; the tighter of it "
        "and stop_loss rests (EXIT_TRAILING_STOP; null: none).",
    )
    break_even: Annotated[float, Field(gt=0)] | None = Field(
        default=None,
        description="Once the best price since the entry has gained this fraction on the "
        "entry price (0.01 = 1%), the stop rises to the entry price, from the next bar "
        "(EXIT_BREAK_EVEN; null: never).",
    )
    cooldown_bars: Annotated[int, Field(ge=1, le=MAX_WINDOW)] | None = Field(
        default=None,
        description="After a fill that closes a position (any exit), this many bars from "
        "that fill's bar on refuse new entries from flat: COOLDOWN (1: no re-entry in the "
        "bar of the exit; 1 .. 1,000,000; null: none). Exits and reversals of a held "
        "position are never held back.",
    )
    exit_time: ExitTime | None = Field(
        default=None,
        description="A UTC time of day, HH:MM: a position held at the close of the bar "
        "whose span holds it (the bar closing at or first after it) is closed there by "
        "a market order, once a day (EXIT_TIME; null: never).",
    )
    limits: PreTradeLimits = Field(
        default_factory=PreTradeLimits,
        description="Pre-trade checks on every order, in backtests, paper and live runs "
        "alike: a backtest refuses what its paper run would refuse.",
    )
    portfolio: PortfolioRisk = Field(
        default_factory=PortfolioRisk,
        description="Limits on the whole book (open positions, exposures, concentration, "
        "groups, correlation), checked on each bar's entries and reversals in rank order.",
    )
    scaling: Scaling = Field(
        default_factory=Scaling,
        description="Scaling in and out of a position: partial take-profit levels, and "
        "pyramiding or DCA adds with a maximum number of adds and a total cap.",
    )


class OutputsSection(BaseModel):
    """The ``outputs:`` section: which optional files a run writes into its directory."""

    model_config = ConfigDict(extra="forbid")

    features: bool = Field(
        default=True,
        description="Write features.parquet: every feature column, the model's probability "
        "and the signal at each bar (what the model saw). Turn it off for very large runs.",
    )
    report: bool = Field(
        default=True,
        description="Write report.html, the run's charts and tables in one offline page "
        "(`tradeloom report RUN_DIR` writes it later).",
    )
    tables: Literal["auto", "csv", "parquet"] = Field(
        default="auto",
        description="The format of a backtest's per-bar tables, equity and positions, and "
        "of its tables of orders, fills and trades: "
        "`csv` (equity.csv, positions.csv, orders.csv...), `parquet` (equity.parquet, "
        "positions.parquet, orders.parquet...: "
        "a fraction of the size and of the time to write), or `auto`: CSV up to 250,000 "
        "bars (a universe's bars counted once per symbol), Parquet above. A run writes "
        "one format, which its summary (`per-bar tables`) and metrics.json (`tables`) "
        "name; a script that reads equity.csv sets `csv`. Every reader of a run folder "
        "reads either. A paper or live run appends CSV whatever this says.",
    )


class RollbackWhen(BaseModel):
    """A canary's rollback rules (``challengers.N.promote_when.canary.rollback_when``),
    read at each bar's close of the canary: the first that fires puts the champion's
    model back (`tradeloom.live.lifecycle.canary`); a watch's after a full promotion
    (``promote_when.watch.rollback_when``, `tradeloom.live.lifecycle.promotion_watch`) the same,
    from the watch's start."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_drawdown: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description="Roll back when the run's equity has fallen this fraction below its "
        "highest close since the canary (or the watch) started (null: no such rule).",
    )
    min_auc: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description="Roll back when the AUC of the candidate's probabilities against the "
        "label's direction, over the canary's (or the watch's) bars whose outcome is known, "
        "is below this (null: no such rule).",
    )
    max_calibration_error: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description="Roll back when the expected calibration error (10 equal-width bins) "
        "of those probabilities is above this (null: no such rule).",
    )
    max_parity_gap: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description="Roll back when the run's return since the canary (or the watch) "
        "started differs by more than this, either way, from the return of its replay on "
        "the same bars (the run's probabilities, filled by the strategy's paper venue, as "
        "tradeloom parity replays it): what its fills lost or gained against what the "
        "strategy should have booked, as a fraction of equity (null: no such rule).",
    )
    min_samples: int = Field(
        default=20,
        ge=2,
        description="The predictions with a known outcome min_auc and "
        "max_calibration_error wait for.",
    )

    def journaled(self) -> str:
        """Return the rules as JSON, every field (the defaults too), a rule added after
        rules were first journaled left out when null: the rows of a run without it are
        the rows it journaled before."""
        return self.model_dump_json(exclude=_ADDED_RULES - self.model_fields_set)


_ADDED_RULES = {"max_parity_gap"}
"""The rules `RollbackWhen.journaled` leaves out when not given."""


class WatchWhen(BaseModel):
    """Rollback rules after a full promotion (``challengers.N.promote_when.watch``): read
    at each bar's close for ``bars`` bars after the challenger became the full champion
    (its canary passed, or its promotion when it has none); a rule that fires puts the
    previous champion's model back (`tradeloom.live.lifecycle.promotion_watch`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bars: int = Field(
        ge=1,
        le=MAX_WINDOW,
        description="The bars the promoted model is watched after its full promotion.",
    )
    rollback_when: RollbackWhen = Field(
        default_factory=RollbackWhen,
        description="The rules that put the previous champion back during the watch (the "
        "canary's, measured from the watch's start).",
    )


class CanaryWhen(BaseModel):
    """A canary stage between a passed gate and the full promotion
    (``challengers.N.promote_when.canary``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fraction: float = Field(
        gt=0.0,
        le=1.0,
        description="The share of the champion's size the candidate trades during the "
        "canary: each entry is sized by the strategy's risk.sizing, then times this.",
    )
    bars: int = Field(
        ge=1,
        le=MAX_WINDOW,
        description="The bars the candidate decides at that size before it becomes the "
        "full champion (when no rollback rule fired).",
    )
    rollback_when: RollbackWhen = Field(
        default_factory=RollbackWhen,
        description="The rules that put the champion back during the canary.",
    )


class PromoteWhen(BaseModel):
    """A challenger's promotion gate (``challengers.N.promote_when``): evaluated at each
    bar's close, it promotes the challenger once it has the bars and fills asked, a
    one-sided paired t-test finds its mean per-bar return above the champion's, and its
    own predictions are healthy (``min_auc``, ``max_calibration_error``) when asked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_bars: int = Field(
        ge=3,
        le=MAX_WINDOW,
        description="The bars the challenger and the champion must both have (their "
        "per-bar returns, one fewer, are compared).",
    )
    min_fills: int = Field(
        default=0, ge=0, description="The simulated fills the challenger must have made."
    )
    alpha: float = Field(
        default=0.05,
        gt=0.0,
        le=0.5,
        description="The test's significance level: promoted when its p-value is below it.",
    )
    min_auc: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description="Promote only while the AUC of the challenger's own probabilities "
        "against the label's direction, over its bars whose outcome is known, is at least "
        "this (null: no such rule).",
    )
    max_calibration_error: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description="Promote only while the expected calibration error (10 equal-width "
        "bins) of those probabilities is at most this (null: no such rule).",
    )
    min_samples: int = Field(
        default=20,
        ge=2,
        description="The predictions with a known outcome min_auc and "
        "max_calibration_error wait for (the gate waits until it has them).",
    )
    canary: CanaryWhen | None = Field(
        default=None,
        description="Promote through a canary stage at a fraction of the champion's size, "
        "with rollback rules (null: the challenger becomes the full champion at once).",
    )
    watch: WatchWhen | None = Field(
        default=None,
        description="Keep reading rollback rules for some bars after the full promotion "
        "(null: the promotion is final once full).",
    )

    @property
    def health(self) -> bool:
        """Whether the gate reads the challenger's predictions (a health rule is set)."""
        return self.min_auc is not None or self.max_calibration_error is not None


class ChallengerSection(BaseModel):
    """One entry of ``challengers:``: a candidate model (and optionally its own signal rule
    and sizing) that decides in shadow on the run's bars, with simulated fills."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=NAME_PATTERN,
        description="Names the challenger's shadow book in the journal and in status "
        "(unique; letters, digits, _ . -).",
    )
    model: ComponentSection = Field(
        description="The candidate model: any model kind, over the strategy's features "
        "and with the strategy's label."
    )
    signal: SignalSection | None = Field(
        default=None,
        description="Its own signal rule (null: the strategy's); regimes, top_k and sides "
        "mean what they mean in the strategy's signal section, each the strategy's where "
        "not written here.",
    )
    sizing: ComponentSection | None = Field(
        default=None, description="Its own sizing (null: the strategy's risk.sizing)."
    )
    promote_when: PromoteWhen | None = Field(
        default=None,
        description="Its promotion gate (null: never promoted); a challenger with one has "
        "a saved model (from_run: or path:), the file the champion then decides with.",
    )


def _unique_challengers(value: list[ChallengerSection]) -> list[ChallengerSection]:
    seen: set[str] = set()
    for entry in value:
        if entry.name in seen:
            raise ValueError(f"challenger names must be unique, {show(entry.name)} is twice")
        seen.add(entry.name)
    return value


class StrategyFile(BaseModel):
    """The top level of a strategy file."""

    model_config = ConfigDict(extra="forbid", title="tradeloom strategy")

    name: str = Field(
        pattern=NAME_PATTERN,
        description="Names run directories and client order ids: 1 to 64 letters, digits, "
        "_ . -, starting with a letter or digit.",
    )
    description: str = ""
    seed: int = Field(
        default=0,
        ge=0,
        le=MAX_SEED,
        description="Seed of every random source of the run (0 .. 4294967295).",
    )
    plugins: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        max_length=100,
        description="Modules to import for their components (at most 100).",
    )
    data: ComponentSection
    features: list[FeatureSection] = Field(
        min_length=1,
        max_length=1000,
        description="Features computed in order; each may use the ones before it (1 .. 1000).",
    )
    model: ComponentSection
    signal: SignalSection
    allocation: AllocationSection | None = Field(
        default=None,
        description="Target weights of the universe from its trailing returns (and the "
        "model's views), rebalanced on a schedule (null: each signal sized alone).",
    )
    regime: RegimeParams | None = Field(
        default=None,
        description="Label every bar's trend and volatility regime from past bars "
        "(journaled as regime_changed); signal.regimes alone uses the defaults.",
    )
    risk: RiskSection
    execution: ComponentSection
    monitoring: list[ComponentSection] = Field(
        default_factory=list, max_length=100, description="Monitors of the model (at most 100)."
    )
    health: list[HealthRule] = Field(
        default_factory=list,
        max_length=100,
        description="Rules that act on the monitors' metrics: warn, retrain or halt (at most 100).",
    )
    live: LiveSection = Field(
        default_factory=LiveSection,
        description="Paper and live runs: capital, retraining cron, "
        "scheduling and the stale-data alarm.",
    )
    outputs: OutputsSection = Field(
        default_factory=OutputsSection,
        description="Optional files of the run directory (features.parquet, report.html) "
        "and the format of its per-bar tables.",
    )
    journal: JournalSection | None = Field(
        default=None,
        description="Journal to a PostgreSQL database (url: ${NAME}) instead of the run "
        "directory's journal.sqlite.",
    )
    challengers: Annotated[
        list[ChallengerSection], Field(max_length=10), AfterValidator(_unique_challengers)
    ] = Field(
        default_factory=list,
        description="Paper and live runs: candidate models that decide in shadow on the "
        "run's bars, each with its own simulated book in the journal (at most 10).",
    )

    @field_validator("name", mode="before")
    @classmethod
    def _check_name(cls, value: Any) -> Any:
        # Say which rule a name breaks; the pattern alone would be cryptic.
        if not isinstance(value, str) or re.fullmatch(NAME_PATTERN, value):
            return value
        if not value:
            raise ValueError("must not be empty")
        if len(value) > MAX_NAME_LENGTH:
            raise ValueError(
                f"must be at most {MAX_NAME_LENGTH} characters (it names run directories), "
                f"was {len(value):,}"
            )
        bad = re.search(r"[^A-Za-z0-9_.-]", value)
        if bad is not None:
            raise ValueError(
                f"may hold only letters, digits, _ . and -, was {show(value)} "
                f"({show(bad.group())} at {bad.start() + 1})"
            )
        raise ValueError(f"must start with a letter or digit, was {show(value)}")


def layer_of(path: str) -> str | None:
    """Return the layer of the component at ``path`` (``features.2`` -> ``features``)."""
    if path in SINGLE_SECTIONS:
        return SINGLE_SECTIONS[path]
    parent, _, index = path.rpartition(".")
    if parent in LIST_SECTIONS and index.isdigit():
        return LIST_SECTIONS[parent]
    return None


def fill_implied_kinds(document: Mapping[Any, Any]) -> dict[Any, Any]:
    """Return a copy of ``document`` with ``kind`` set where `IMPLIED_KINDS` implies it.

    Only a section that is a mapping without ``kind`` and holds one of the implying keys
    gets it; any other is left as it is (one without either still reports its missing
    ``kind``). The added key has no position of its own, so messages about it are
    located at its section.
    """
    filled = dict(document)
    for key, (kind, keys) in IMPLIED_KINDS.items():
        section = filled.get(key)
        if not isinstance(section, Mapping) or "kind" in section:
            continue
        if any(k in section for k in keys):
            filled[key] = {"kind": kind, **section}
    return filled


def iter_sections(document: Mapping[Any, Any]) -> Iterator[tuple[str, str, Any]]:
    """Yield ``(key path, layer, section)`` for each component section in ``document``.

    Sections are found wherever the document has them, whatever else is wrong with it;
    a section may be anything (the caller checks it is a mapping with a string kind).
    """
    for path, layer in SINGLE_SECTIONS.items():
        found, value = _lookup(document, path)
        if found:
            yield path, layer, value
    for path, layer in LIST_SECTIONS.items():
        found, value = _lookup(document, path)
        if found and isinstance(value, list):
            for index, item in enumerate(value):
                yield f"{path}.{index}", layer, item
    entries = document.get("challengers")
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        for key, layer in CHALLENGER_SECTIONS.items():
            if isinstance(entry, Mapping) and entry.get(key) is not None:
                yield f"challengers.{index}.{key}", layer, entry[key]


def _lookup(document: Mapping[Any, Any], path: str) -> tuple[bool, Any]:
    current: Any = document
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return False, None
        current = current[part]
    return True, current
