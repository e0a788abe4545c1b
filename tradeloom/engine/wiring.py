"""Build the pipeline: call each component's factory with its validated params."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from tradeloom.engine.book_checks import book_problems
from tradeloom.engine.capabilities import Mode, live_problems
from tradeloom.engine.feature_inputs import input_problems
from tradeloom.engine.fold_fitting import fold_transform_problems, on_other_bars_problem
from tradeloom.engine.funding import funding_problems
from tradeloom.engine.health import check_health_rules
from tradeloom.engine.sides import sides_problems
from tradeloom.engine.text_guard import text_problems
from tradeloom.engine.timeframe import (
    HigherTimeframe,
    timeframe_problem,
    timeframe_refusal,
)
from tradeloom.engine.universe_checks import (
    clock_problems,
    declared_last_open,
    declared_symbols,
    universe_problems,
)
from tradeloom.errors import ConfigError, Problem
from tradeloom.plugins import protocols
from tradeloom.plugins.component import BuildContext, ParamError
from tradeloom.plugins.protocols import (
    DescribedModel,
    KnownLength,
    LabelHorizon,
    WalkForwardModel,
)
from tradeloom.plugins.protocols_allocation import Allocator
from tradeloom.plugins.protocols_venues import BookFills
from tradeloom.schemas.building import build_component
from tradeloom.schemas.challengers import label_problem
from tradeloom.schemas.config import Challenger, ComponentConfig, StrategyConfig
from tradeloom.schemas.regime import RegimeParams
from tradeloom.time.timeframes import parse_timeframe

if TYPE_CHECKING:
    from tradeloom.engine.informative import InformativePair

__all__ = [
    "Pipeline",
    "build_pipeline",
    "candidate_components",
    "challenger_config",
    "modelled_venue",
    "pair_problems",
    "traded_symbols",
]


@dataclass(frozen=True)
class Pipeline:
    """The built components of a strategy, one object per layer (lists where several)."""

    config: StrategyConfig
    data: protocols.DataSource
    features: tuple[protocols.Feature, ...]
    feature_columns: tuple[str, ...]
    model: protocols.Model
    signal: protocols.SignalRule
    sizer: protocols.Sizer
    rules: tuple[protocols.RiskRule, ...]
    venue: protocols.Venue
    monitors: tuple[protocols.Monitor, ...]
    allocator: Allocator | None = None
    rebalances: Mapping[int, tuple[str, str, Sequence[float] | None]] | None = None
    """Rebalances given, by their bar's open time (UTC ns): ``(status, message,
    weights)`` (weights when ``ok``). The allocation decides at exactly these bars with
    these answers, neither its window nor its schedule asked (`tradeloom.engine.allocating`):
    a parity replay takes the run's journaled decisions (None: decide as the file says)."""
    scales: Sequence[tuple[int, float]] = ()
    """Changes of the share of the sizing's size entries take, by the open time (UTC ns)
    of the bar at whose close each was made: ``(time, fraction)``, in force from the next
    bar's decision on (`tradeloom.engine.driver.Engine.replay_scales`): a parity replay
    takes a run's canaries as journaled (empty: full size throughout)."""
    signal_rules: Sequence[tuple[int, protocols.SignalRule, protocols.Sizer, StrategyConfig]] = ()
    """Changes of the signal rule and the sizing, by the open time (UTC ns) of the bar at
    whose close each was made: ``(time, rule, sizer, config)`` (the config the rule's
    ``regimes``, ``top_k`` and ``sides``, and ``risk.sizing``, are read from), in force
    from the next bar's decision on: a parity replay takes the rules and sizings a run's
    promotions put in force (`tradeloom.live.lifecycle.promoted_signal`; empty: the
    file's throughout)."""

    @property
    def router(self) -> protocols.MultiVenue | None:
        """The venue when it routes each order over several venues (a `MultiVenue`:
        ``execution.kind: router``); None: the orders go to one venue."""
        venue = self.venue
        return venue if isinstance(venue, protocols.MultiVenue) else None


def build_pipeline(
    config: StrategyConfig,
    *,
    mode: Mode = "backtest",
    served: bool = False,
    portfolio: bool = False,
) -> Pipeline:
    """Build every component of ``config``, collecting every problem before raising.

    Args:
        config: The validated strategy.
        mode: What it is built for; ``paper`` and ``live`` also check that the
            components can trade live (`tradeloom.engine.capabilities`).
        served: ``--clock simulated``: the emulator serves the bars (any data source).
        portfolio: A strategy of a portfolio file (whose paper and live runs do not book a
            perpetual's funding yet).

    Raises:
        ConfigError: A factory refused its params (`ParamError`), returned an object
            that does not implement its layer, features produce the same column twice,
            or a component cannot run in ``mode``.
    """
    problems: list[Problem] = []
    ctx = BuildContext(
        strategy_name=config.name, strategy_dir=config.source.parent, seed=config.seed, mode=mode
    )

    def build(item: ComponentConfig, context: BuildContext) -> object:
        built, refused = build_component(item, context, config.locate)
        problems.extend(refused)
        return built

    features = []
    built: list[tuple[ComponentConfig, object]] = []  # each feature beside its entry
    columns: list[str] = []
    owners: dict[str, str] = {}
    fold_transforms: list[tuple[str, protocols.FoldTransform]] = []
    for item in config.features:
        if item.timeframe is None and item.symbol is None:
            feature = build(item, replace(ctx, feature_columns=tuple(columns)))
        else:
            before = len(problems)
            feature = build(item, ctx)
            if isinstance(feature, protocols.FoldFittedFeature):
                problems.append(on_other_bars_problem(config, item))
                continue
            if item.timeframe is not None:
                feature = _higher_timeframe(config, item, feature, problems)
            if item.symbol is not None:
                feature = _informative(config, item, feature, problems)
            problems[before:] = [_on_other_bars(item, p) for p in problems[before:]]
        if feature is None:
            continue
        assert isinstance(feature, protocols.Feature)
        if isinstance(feature, protocols.FoldFittedFeature):
            fold_transforms.append((item.path, feature.fold_transform()))
        for column in feature.columns():
            if column in owners:
                problems.append(
                    Problem(
                        config.locate(item.path),
                        item.path,
                        f"column '{column}' is already produced by {owners[column]}; "
                        "set name: to rename it",
                    )
                )
            owners[column] = item.path
            columns.append(column)
        features.append(feature)
        built.append((item, feature))
    ctx = replace(
        ctx,
        feature_columns=tuple(columns),
        feature_spec=tuple(config.feature_spec()),
        fold_transforms=tuple(transform for _, transform in fold_transforms),
    )
    model = build(config.model, ctx)
    problems.extend(fold_transform_problems(config, model, fold_transforms))
    horizon = int(model.horizon or 0) if isinstance(model, LabelHorizon) else 0
    ctx = replace(ctx, horizon=horizon)
    signal = build(config.signal, ctx)
    sizer = build(config.sizing, ctx)
    rules = [build(item, ctx) for item in config.risk_rules]
    allocator = build(config.allocation, ctx) if config.allocation is not None else None
    venue = build(config.execution, ctx)
    monitors = [build(item, ctx) for item in config.monitoring]
    problems.extend(check_health_rules(config, monitors, model))
    data = build(config.data, ctx)
    problems.extend(live_problems(config, mode, data=data, model=model, venue=venue, served=served))
    problems.extend(pair_problems(config, mode, data))
    problems.extend(_data_problems(config, data, built, model))
    problems.extend(text_problems(config, data, built))
    problems.extend(funding_problems(config, mode, data=data, venue=venue, portfolio=portfolio))
    problems.extend(book_problems(config, mode, data=data, venue=venue))
    problems.extend(sides_problems(config, venue))
    symbols = declared_symbols(data)
    if data is not None and symbols is not None and len(features) == len(config.features):
        problems.extend(universe_problems(config, features, venue, symbols, model))
    # a backtest's walk-forward fit (`fit_universe`) asks a saved model the same; only such
    # a model reads the clock (and its timestamp is pandas', which validate does not import)
    clocked = mode == "backtest" and isinstance(model, protocols.ClockRefusal)
    last_open = declared_last_open(data) if clocked else None
    if last_open is not None:
        problems.extend(clock_problems(config, model, last_open))
    if isinstance(venue, protocols.MultiVenue):
        problems.extend(_multi_venue_problems(config, mode, venue, symbols))
    for challenger in config.challengers:  # a paper or live run builds them at its start
        problems.extend(candidate_components(config, challenger, tuple(columns), model)[3])
        if challenger.signal is not None:  # its own sides, named at its own signal section
            problems.extend(sides_problems(challenger_config(config, challenger), venue))
    if problems:
        raise ConfigError(problems)
    return Pipeline(
        config=config,
        data=data,  # type: ignore[arg-type]
        features=tuple(features),
        feature_columns=tuple(columns),
        model=model,  # type: ignore[arg-type]
        signal=signal,  # type: ignore[arg-type]
        sizer=sizer,  # type: ignore[arg-type]
        rules=tuple(rules),  # type: ignore[arg-type]
        venue=venue,  # type: ignore[arg-type]
        monitors=tuple(monitors),  # type: ignore[arg-type]
        allocator=allocator,  # type: ignore[arg-type]
    )


def challenger_config(config: StrategyConfig, challenger: Challenger) -> StrategyConfig:
    """Return ``config`` as ``challenger`` decides with it: its model, its signal rule and
    sizing (the strategy's where it has none), and the ``regimes``, ``top_k`` and
    ``sides`` its signal section writes (`Challenger.signal_keys`; the others the
    strategy's). Regimes where the strategy has no ``regime:`` section are classified with
    its defaults, as the strategy's own ``signal.regimes`` are."""
    keys: dict[str, Any] = dict(challenger.signal_keys)
    regime = config.regime
    if regime is None and keys.get("signal_regimes"):
        regime = RegimeParams()
    return replace(
        config,
        model=challenger.model,
        signal=challenger.signal or config.signal,
        sizing=challenger.sizing or config.sizing,
        regime=regime,
        **keys,
    )


def candidate_components(
    config: StrategyConfig,
    challenger: Challenger,
    feature_columns: Sequence[str],
    champion: object = None,
) -> tuple[Any, Any, Any, list[Problem]]:
    """Build ``challenger``'s model, and its signal rule and sizing (the strategy's where it
    has none), over the strategy's feature columns; return them and what their factories
    refused (a component that failed is None), and, with ``champion`` (the strategy's
    model, built), a challenger of the file whose model is not scored on its label (a
    saved model's label is in its file: `tradeloom.schemas.challengers` compares the
    declared ones before anything is built).

    `build_pipeline` builds every challenger, so that validation refuses what a paper or
    live run would refuse at its start (`tradeloom.live.lifecycle.challengers.candidate_pipeline`).
    """
    problems: list[Problem] = []
    ctx = BuildContext(
        strategy_name=config.name,
        strategy_dir=config.source.parent,
        seed=config.seed,
        feature_columns=tuple(feature_columns),
        feature_spec=tuple(config.feature_spec()),
    )

    def build(item: ComponentConfig, context: BuildContext) -> object:
        built, refused = build_component(item, context, config.locate)
        problems.extend(refused)
        return built

    model = build(challenger.model, ctx)
    mismatch = _label_mismatch(champion, model)
    if mismatch is not None and challenger in config.challengers:  # not a canary's champion
        path = challenger.model.path  # challengers.N.model
        where = path if challenger.model.kind == "saved" else f"{path}.label"
        problems.append(Problem(config.locate(where), where, mismatch))
    horizon = int(model.horizon or 0) if isinstance(model, LabelHorizon) else 0
    ctx = replace(ctx, horizon=horizon)
    signal = build(challenger.signal or config.signal, ctx)
    sizer = build(challenger.sizing or config.sizing, ctx)
    return model, signal, sizer, problems


def _label_mismatch(champion: object, model: object) -> str | None:
    """Why ``model`` is not scored on the label of ``champion`` (the file's words,
    `tradeloom.schemas.challengers.label_problem`); None: the same label, or one of them
    does not say its label (`DescribedModel`)."""
    if not isinstance(champion, DescribedModel) or not isinstance(model, DescribedModel):
        return None
    label, own = champion.label_record(), model.label_record()
    return None if label == own else label_problem(label, own)


def _higher_timeframe(
    config: StrategyConfig, item: ComponentConfig, inner: object, problems: list[Problem]
) -> HigherTimeframe | None:
    """Return the feature ``inner`` (built seeing no earlier column: it runs on the
    resampled bars alone) on ``item.timeframe``, or None after appending why it cannot be."""
    if inner is None:
        return None
    assert isinstance(inner, protocols.Feature) and item.timeframe is not None
    path = f"{item.path}.timeframe"
    refusal = timeframe_refusal(inner)
    base = getattr(config.data.params, "timeframe", None)
    if refusal is None and isinstance(base, str):
        refusal = timeframe_problem(parse_timeframe(base), base, item.timeframe)
    if refusal is not None:
        problems.append(Problem(config.locate(path), path, refusal))
        return None
    return HigherTimeframe(inner, item.timeframe)


def _informative(
    config: StrategyConfig, item: ComponentConfig, inner: object, problems: list[Problem]
) -> InformativePair | None:
    """Return the feature ``inner`` (built seeing no earlier column: it runs on the other
    market's bars alone) on ``item.symbol``'s bars, or None after appending why not."""
    # only a feature on another market's bars needs them (and the order book's modules)
    from tradeloom.engine.informative import InformativePair, informative_refusal

    if inner is None:
        return None
    assert isinstance(inner, protocols.Feature) and item.symbol is not None
    path = f"{item.path}.symbol"
    refusal = informative_refusal(inner)
    traded = traded_symbols(config)
    if refusal is None and item.symbol in traded:
        refusal = (
            f"{item.symbol} is traded by this strategy, and an informative pair is a market "
            "it does not trade; remove symbol: to compute the feature on the traded bars"
        )
    if refusal is not None:
        problems.append(Problem(config.locate(path), path, refusal))
        return None
    return InformativePair(inner, item.symbol)


def traded_symbols(config: StrategyConfig) -> tuple[str, ...]:
    """Return the symbols ``data`` declares (``symbols``, or ``symbol``; none: unknown)."""
    params = config.data.params
    symbols = getattr(params, "symbols", None)
    if isinstance(symbols, list):
        return tuple(str(s) for s in symbols)
    symbol = getattr(params, "symbol", None)
    return (symbol,) if isinstance(symbol, str) else ()


def pair_problems(config: StrategyConfig, mode: Mode, data: object) -> list[Problem]:
    """Return why an informative pair (``features[].symbol``) cannot run: the data source
    cannot load it, or ``mode`` (paper, live) does not fetch it yet.

    `build_pipeline` checks it; a run built as a backtest and then run as paper (the
    simulated clock, a portfolio file) calls it again with its mode.
    """
    problems = []
    for item in config.features:
        if item.symbol is None:
            continue
        path = f"{item.path}.symbol"
        if mode != "backtest":
            refusal: str | None = (
                f"--mode {mode}: paper and live runs do not fetch an informative pair's bars "
                "yet; remove symbol: or run a backtest"
            )
        elif data is None:
            continue
        elif not isinstance(data, protocols.InformativeSource):
            refusal = (
                f"data kind {config.data.kind} cannot load another market's bars beside the "
                "traded ones; remove symbol: or use a source that can (synthetic, csv or "
                "parquet with symbols, ccxt)"
            )
        else:
            refusal = data.informative_refusal(item.symbol)
        if refusal is not None:
            problems.append(Problem(config.locate(path), path, refusal))
    return problems


def _on_other_bars(item: ComponentConfig, problem: Problem) -> Problem:
    if problem.path.endswith((".timeframe", ".symbol")):
        return problem
    if item.symbol is not None:
        sees = f"{item.symbol}'s bars"
        key = "symbol"
        if item.timeframe is not None:
            sees += " resampled to its timeframe"
    else:
        sees, key = "the bars resampled to it", "timeframe"
    return replace(
        problem,
        message=f"{problem.message} (a feature with {key}: sees {sees}, not the columns of "
        "other features)",
    )


def _multi_venue_problems(
    config: StrategyConfig,
    mode: Mode,
    venue: protocols.MultiVenue,
    symbols: int | None,
) -> list[Problem]:
    """Return why ``venue``'s venues cannot be modelled (backtest, paper) or traded live."""
    path = config.execution.path
    problems: list[Problem] = []
    if mode == "live":
        for terms in venue.venue_terms():
            if terms.outages:
                where = f"{path}.venues.{terms.index}.outages"
                problems.append(
                    Problem(
                        config.locate(where),
                        where,
                        "--mode live: a venue is down when its requests fail; outages "
                        "model it in backtests and paper only, remove them",
                    )
                )
        return problems
    if symbols is not None and symbols > 1:
        where = f"{config.data.path}.symbols"
        problems.append(
            Problem(
                config.locate(where),
                where,
                f"execution kind {config.execution.kind} routes one symbol's orders over its "
                "venues; list one symbol",
            )
        )
    try:
        venue.modelled_venue(lambda event: None)
    except ParamError as exc:
        where = f"{path}.{exc.key}" if exc.key else path
        problems.append(Problem(config.locate(where), where, exc.message))
    return problems


def modelled_venue(
    pipeline: Pipeline, record: Callable[[Any], None], timeframe_seconds: int | None = None
) -> protocols.Venue | None:
    """Return the venue a backtest or paper run of ``pipeline`` trades, when it is not
    the strategy's own: a `MultiVenue`'s model of every venue, or (a backtest: given its
    bars' ``timeframe_seconds``) a `BookFills` venue's replay of its recorded book
    (``fill: book``; refused in paper and live, `tradeloom.engine.book_checks`). None
    otherwise: the compiled bar fills the orders."""
    router = pipeline.router
    if router is not None:
        return router.modelled_venue(record)
    venue = pipeline.venue
    if (
        timeframe_seconds is not None
        and isinstance(venue, BookFills)
        and venue.recorded_book() is not None
    ):
        return venue.book_venue(timeframe_seconds)
    return None


def _data_problems(
    config: StrategyConfig,
    data: object,
    features: Sequence[tuple[ComponentConfig, object]],
    model: object,
) -> list[Problem]:
    """Refuse, before any bar, what the data cannot give: a column a feature reads
    (`input_problems`), and enough bars for the model's first fold."""
    problems = input_problems(config, data, features)
    needed = model.first_fold_bar() if isinstance(model, WalkForwardModel) else None
    # counting a file's bars reads all of it: only for a model that needs the count
    bars = data.bar_count() if needed is not None and isinstance(data, KnownLength) else None
    if bars is not None and needed is not None and bars <= needed[0]:
        path = "model.walk_forward.train_window"
        problems.append(
            Problem(
                config.locate(path) if _has(config.document, path) else config.locate("model"),
                path,
                f"the model can never train: its first fold predicts bar {needed[0]:,} at the "
                f"earliest ({needed[1]}), and the data has {bars:,} bars; lower train_window "
                "(or min_train_rows) or use more bars",
            )
        )
    return problems


def _has(document: Mapping[str, Any], path: str) -> bool:
    current: Any = document
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return False
        current = current[part]
    return True
