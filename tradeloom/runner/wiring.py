"""Build the pipeline: call each component's factory with its validated params."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from tradeloom.errors import ConfigError, Problem
from tradeloom.plugins import protocols
from tradeloom.plugins.component import BuildContext, ParamError
from tradeloom.plugins.registry import did_you_mean
from tradeloom.runner.health import check_health_rules
from tradeloom.runner.live.capabilities import Mode, live_problems
from tradeloom.runner.universe_checks import declared_symbols, universe_problems
from tradeloom.schemas.config import ComponentConfig, StrategyConfig

__all__ = ["Pipeline", "build_pipeline"]

_PROTOCOLS: dict[str, type] = {  # a cross-sectional feature is a Feature too
    "data": protocols.DataSource,
    "features": protocols.Feature,
    "model": protocols.Model,
    "signal": protocols.SignalRule,
    "sizing": protocols.Sizer,
    "risk": protocols.RiskRule,
    "execution": protocols.Venue,
    "monitoring": protocols.Monitor,
}


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


def build_pipeline(config: StrategyConfig, *, mode: Mode = "backtest") -> Pipeline:
    """Build every component of ``config``, collecting every problem before raising.

    Args:
        config: The validated strategy.
        mode: What it is built for; ``paper`` and ``live`` also check that the
            components can trade live (`tradeloom.runner.live.capabilities`).

    Raises:
        ConfigError: A factory refused its params (`ParamError`), returned an object
            that does not implement its layer, features produce the same column twice,
            or a component cannot run in ``mode``.
    """
    problems: list[Problem] = []
    ctx = BuildContext(
        strategy_name=config.name, strategy_dir=config.source.parent, seed=config.seed
    )

    def build(item: ComponentConfig, context: BuildContext) -> object:
        component = item.registered.component
        try:
            built = component.factory(item.params, context)
        except ParamError as exc:
            path = f"{item.path}.{exc.key}" if exc.key else item.path
            problems.append(Problem(config.locate(path), path, exc.message))
            return None
        expected = _PROTOCOLS[component.layer]
        if not isinstance(built, expected):
            missing = protocols.missing_members(built, expected)
            problems.append(
                Problem(
                    config.locate(item.path),
                    item.path,
                    f"{component.layer} kind '{item.kind}' of plugin "
                    f"'{item.registered.plugin.name}' built a {type(built).__name__}, which "
                    f"does not implement {expected.__name__} (missing: {', '.join(missing)})",
                )
            )
            return None
        return built

    features = []
    columns: list[str] = []
    owners: dict[str, str] = {}
    for item in config.features:
        feature = build(item, replace(ctx, feature_columns=tuple(columns)))
        if feature is None:
            continue
        assert isinstance(feature, protocols.Feature)
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
    ctx = replace(ctx, feature_columns=tuple(columns), feature_spec=tuple(config.feature_spec()))
    model = build(config.model, ctx)
    horizon = int(getattr(model, "horizon", 0) or 0)
    ctx = replace(ctx, horizon=horizon)
    signal = build(config.signal, ctx)
    sizer = build(config.sizing, ctx)
    rules = [build(item, ctx) for item in config.risk_rules]
    venue = build(config.execution, ctx)
    monitors = [build(item, ctx) for item in config.monitoring]
    problems.extend(check_health_rules(config, monitors, model))
    data = build(config.data, ctx)
    problems.extend(live_problems(config, mode, data=data, model=model, venue=venue))
    problems.extend(_data_problems(config, data, features, model))
    symbols = declared_symbols(data)
    if data is not None and symbols is not None and len(features) == len(config.features):
        problems.extend(universe_problems(config, features, venue, symbols))
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
    )


def _data_problems(
    config: StrategyConfig, data: object, features: Sequence[object], model: object
) -> list[Problem]:
    """Refuse, before any bar, what the data cannot give: volume to a feature that reads it,
    and enough bars for the model's first fold."""
    problems = []
    has_volume = getattr(data, "has_volume", None)
    if callable(has_volume) and not has_volume():
        for item, feature in zip(config.features, features, strict=False):
            if getattr(feature, "needs_volume", False):
                problems.append(
                    Problem(
                        config.locate(item.path),
                        item.path,
                        f"{item.kind} reads volume, and the data has no volume column; "
                        "remove this feature or use data with volume",
                    )
                )
    extra_columns = getattr(data, "extra_columns", None)
    extra = extra_columns() if callable(extra_columns) else None
    if extra is not None:
        for item, feature in zip(config.features, features, strict=False):
            column = getattr(feature, "bars_column", None)
            if isinstance(column, str) and column not in extra:
                path = f"{item.path}.of"
                has = ", ".join(sorted(extra)) if extra else "none"
                problems.append(
                    Problem(
                        config.locate(path),
                        path,
                        f"the bars have no column '{column}'{did_you_mean(column, sorted(extra))}"
                        f" (their columns beside OHLCV: {has}); declare it under "
                        "data.auxiliary",
                    )
                )
    bar_count = getattr(data, "bar_count", None)
    first_fold = getattr(model, "first_fold_bar", None)
    bars = bar_count() if callable(bar_count) else None
    needed = first_fold() if callable(first_fold) else None
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
