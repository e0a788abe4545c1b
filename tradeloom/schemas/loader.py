"""Load and validate a strategy file against the installed components.

`load_strategy` is the one entry point: it reads the YAML (keeping positions), applies
``--set`` overrides, resolves ``${NAME}`` secrets, loads the plugins the file lists,
validates the top level and then every component section by its layer and ``kind``.
Every problem found on the way is collected; if there is any, one `ConfigError` names
them all, in file order, each as ``FILE:LINE:COL key.path: message``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from tradeloom.errors import ConfigError, Problem
from tradeloom.plugins import manager
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.manager import PluginImportError, Plugins
from tradeloom.plugins.protocols import Feature
from tradeloom.plugins.registry import Registry
from tradeloom.schemas.allocation import allocation_problems
from tradeloom.schemas.building import build_component
from tradeloom.schemas.challengers import challenger_problems
from tradeloom.schemas.config import (
    Challenger,
    ComponentConfig,
    StrategyConfig,
    feature_spec_of,
    informative_column,
    timeframe_column,
)
from tradeloom.schemas.events import events_problems
from tradeloom.schemas.messages import describe_validation_error, join_path
from tradeloom.schemas.overrides import apply_overrides
from tradeloom.schemas.portfolio import PortfolioRisk, unknown_group_symbols
from tradeloom.schemas.regime import RegimeParams
from tradeloom.schemas.scaling import scaling_problems
from tradeloom.schemas.secrets import (
    check_secret_fields,
    credential_problems,
    resolve_secrets,
    to_document,
)
from tradeloom.schemas.strategy import (
    LIST_SECTIONS,
    RUNNER_KEYS,
    AllocationSection,
    RiskSection,
    Sides,
    SignalSection,
    StrategyFile,
    fill_implied_kinds,
    iter_sections,
)
from tradeloom.schemas.yaml_loader import SourceMap, YamlDocument, load_yaml
from tradeloom.suggestions import did_you_mean

__all__ = ["load_strategy", "section_component", "validate_model"]


def load_strategy(
    path: str | Path,
    overrides: Sequence[str] = (),
    *,
    load_plugins: Callable[[Sequence[str]], Plugins] = manager.load_plugins,
    document: YamlDocument | None = None,
) -> tuple[StrategyConfig, Plugins]:
    """Load the strategy file at ``path`` and validate it completely.

    Args:
        path: The strategy file; its name as given is used in every location.
        overrides: ``KEY.PATH=VALUE`` strings (``--set``), applied before validation.
        load_plugins: Builds the plugins from the module paths under ``plugins:``.
        document: The file as already loaded from ``path`` (a sweep validates many
            variants of one file: it is read once).

    Returns:
        The validated strategy and the plugins it was validated against.

    Raises:
        UserError: The file cannot be read, or the plugins cannot be loaded for a reason
            other than a listed module failing to import.
        ConfigError: Every problem found in the file and the overrides.
    """
    if document is None:
        document = load_yaml(path)
    data, source_map, problems = apply_overrides(document.data, overrides, document.source_map)
    credentials = credential_problems(data, source_map.locate)
    problems.extend(credentials)
    data, secret_problems = resolve_secrets(data, source_map.locate)
    problems.extend(secret_problems)
    data = fill_implied_kinds(data)

    plugins: Plugins | None = None
    indices, modules = _plugin_modules(data)
    if modules:
        _importable(Path(path).resolve().parent)
    try:
        plugins = load_plugins(modules)
    except PluginImportError as exc:
        where = f"plugins.{indices[exc.index]}" if exc.index < len(indices) else "plugins"
        problems.append(Problem(source_map.locate(where), where, str(exc)))

    top = validate_model(StrategyFile, data, "", source_map, problems)
    # each check across keys runs when the sections it reads are valid, whatever else is
    # wrong with the file: a section's problems are said in one round
    risk = top.risk if top is not None else _section(RiskSection, data, "risk", source_map)
    signal = top.signal if top is not None else _section(SignalSection, data, "signal", source_map)
    allocation = (
        top.allocation
        if top is not None
        else _section(AllocationSection, data, "allocation", source_map)
    )
    if risk is not None and isinstance(data.get("data"), Mapping):
        for where, message in unknown_group_symbols(risk.portfolio, data["data"]):
            problems.append(Problem(source_map.locate(where), where, message))
    if risk is not None and signal is not None:
        ranked = risk.portfolio != PortfolioRisk() or signal.top_k is not None
        for where, message in scaling_problems(risk.scaling, risk.take_profit, ranked, data):
            problems.append(Problem(source_map.locate(where), where, message))
    if risk is not None and top is not None and risk.scaling.scale_in is not None:
        for index, entry in enumerate(top.challengers):
            if entry.signal is not None and entry.signal.top_k is not None:
                where = f"challengers.{index}.signal.top_k"
                message = "not available with risk.scaling.scale_in: adds are not ranked"
                problems.append(Problem(source_map.locate(where), where, message))
    if risk is not None:
        stopless = risk.stop_loss is None and risk.trailing_stop is None
        if risk.sizing.kind == "risk_per_trade" and stopless:
            where = "risk.sizing.kind"
            problems.append(
                Problem(
                    source_map.locate(where),
                    where,
                    "risk_per_trade sizes by the distance to the stop: set risk.stop_loss "
                    "or risk.trailing_stop",
                )
            )
    if top is not None and plugins is not None and top.live.events:
        for where, key, message in events_problems(
            top.live.events, plugins.registry, source_map.locate
        ):
            problems.append(Problem(where, key, message))
    components: dict[str, ComponentConfig] = {}
    if plugins is not None:
        for section_path, layer, section in iter_sections(data):
            component = section_component(
                plugins.registry, layer, section_path, section, source_map, problems
            )
            if component is not None:
                components[section_path] = component
    problems.extend(challenger_problems(data, components, source_map.locate))
    allocator = components.get("allocation")
    if risk is not None and allocation is not None and allocator is not None:
        sides: Sides = signal.sides if signal is not None else "both"
        for where, message in _allocation_problems(allocation, risk, allocator, data, sides):
            problems.append(Problem(source_map.locate(where), where, message))
    if problems and plugins is not None:
        # the components whose keys validated are built too: their factories' refusals
        # (an estimator that does not import, a missing data file) come with the rest
        valid = top if isinstance(top, StrategyFile) else None
        problems.extend(_own_checks(Path(path), valid, data, components, source_map.locate))
    if problems:
        # A credential written out is reported once, by its own check: what pydantic says
        # at or below its key may show the value.
        hidden = {p.path for p in credentials}
        problems = [
            p
            for p in problems
            if p in credentials
            or not any(p.path == h or p.path.startswith(h + ".") for h in hidden)
        ]
        # A secret in a string field is found both by pydantic and by the secret check.
        raise ConfigError(list(dict.fromkeys(problems)))
    assert isinstance(top, StrategyFile) and plugins is not None
    return _strategy_config(Path(path), top, components, data, source_map), plugins


_SIGNAL_KEYS = {"regimes": "signal_regimes", "top_k": "signal_top_k", "sides": "signal_sides"}
"""A signal section's runner keys -> the `StrategyConfig` fields they set."""


def _signal_keys(section: SignalSection | None) -> tuple[tuple[str, Any], ...]:
    """Return the `StrategyConfig` fields a challenger's signal section sets (the keys it
    writes among ``regimes``, ``top_k`` and ``sides``), as `Challenger.signal_keys`."""
    if section is None:
        return ()
    keys: list[tuple[str, Any]] = []
    for key, field_name in _SIGNAL_KEYS.items():
        if key in section.model_fields_set:
            value = getattr(section, key)
            keys.append(
                (field_name, tuple(dict.fromkeys(value or ())) if key == "regimes" else value)
            )
    return tuple(keys)


def _own_checks(
    source: Path,
    top: StrategyFile | None,
    data: Mapping[Any, Any],
    components: Mapping[str, ComponentConfig],
    locate: Callable[[str], str],
) -> list[Problem]:
    """Return the refusals of the factories of the components whose keys validated, in a
    file with other mistakes, in the order `build_pipeline` builds them.

    Each sees what the file says of the strategy; past a feature that did not validate
    or build, the features are not all known (``BuildContext.features_known``), and no
    factory refuses a name for missing from them. What needs every component (the data
    against the features, the health rules' metrics) waits until the file is whole.
    """
    ctx = BuildContext(  # a name and a seed of the file's when its top level validated
        strategy_name=top.name if top is not None else "",
        strategy_dir=source.resolve().parent,
        seed=top.seed if top is not None else 0,
    )
    problems: list[Problem] = []
    columns: list[str] = []
    entries: list[ComponentConfig] = []
    known = True
    features = data.get("features")
    for index in range(len(features) if isinstance(features, list) else 0):
        item = components.get(f"features.{index}")
        if item is None:
            known = False
            continue
        plain = item.timeframe is None and item.symbol is None
        # a feature on other bars sees no earlier column (as `build_pipeline` builds it)
        seen = replace(ctx, feature_columns=tuple(columns), features_known=known)
        built, refused = build_component(item, seen if plain else ctx, locate, implements=False)
        problems.extend(refused)
        if not isinstance(built, Feature):
            known = False
            continue
        for column in built.columns():
            if item.timeframe is not None:
                column = timeframe_column(column, item.timeframe)
            if item.symbol is not None:
                column = informative_column(column, item.symbol)
            columns.append(column)
        entries.append(item)
    ctx = replace(
        ctx,
        feature_columns=tuple(columns),
        feature_spec=tuple(feature_spec_of(entries)) if known else (),
        features_known=known,
    )
    model = components.get("model")
    if model is not None:
        built, refused = build_component(model, ctx, locate, implements=False)
        problems.extend(refused)
        horizon = getattr(built, "horizon", 0)
        ctx = replace(ctx, horizon=horizon if isinstance(horizon, int) else 0)
    for path, item in components.items():
        if not path.startswith(("features.", "model")):
            problems.extend(build_component(item, ctx, locate, implements=False)[1])
    return problems


def _section(
    model: type[BaseModel], data: Mapping[Any, Any], key: str, source_map: SourceMap
) -> Any:
    """Return the section ``key`` of a file whose top level did not validate, validated
    alone (None: it is not valid either; its problems were said by the top level)."""
    return validate_model(model, data.get(key), key, source_map, []) if key in data else None


def _allocation_problems(
    allocation: AllocationSection,
    risk: RiskSection,
    allocator: ComponentConfig,
    data: Mapping[Any, Any],
    sides: Sides,
) -> list[tuple[str, str]]:
    """Return what ``allocation:`` asks that cannot be met, over the data's symbols (a
    data section that lists none: the checks that need them wait for the run), with the
    one side ``signal.sides`` trades."""
    section = data.get("data")
    listed = section.get("symbols") if isinstance(section, Mapping) else None
    if not isinstance(listed, list) and isinstance(section, Mapping):
        single = section.get("symbol")
        listed = [single] if isinstance(single, str) else None
    symbols = [s for s in listed if isinstance(s, str)] if isinstance(listed, list) else None
    return list(
        allocation_problems(
            allocation.window,
            allocation.constraints,
            allocator.kind,
            allocator.params,
            symbols,
            risk.portfolio.groups,
            sides=sides,
        )
    )


def _importable(folder: Path) -> None:
    """Let ``plugins:`` name a module that sits beside the strategy file (no PYTHONPATH).

    Appended, not prepended: an installed package keeps its name.
    """
    if str(folder) not in sys.path:
        sys.path.append(str(folder))


def _plugin_modules(data: Mapping[Any, Any]) -> tuple[list[int], list[str]]:
    # Invalid entries are reported by the top-level validation; import the others.
    listed = data.get("plugins")
    if not isinstance(listed, list):
        return [], []
    pairs = [(i, item) for i, item in enumerate(listed) if isinstance(item, str) and item]
    return [i for i, _ in pairs], [item for _, item in pairs]


def section_component(
    registry: Registry,
    layer: str,
    path: str,
    section: Any,
    source_map: SourceMap,
    problems: list[Problem],
) -> ComponentConfig | None:
    """Return the section at ``path`` of ``layer``, its ``kind`` found in ``registry`` and
    its keys (the runner's aside) validated by the component's params model; None, its
    problems appended to ``problems``, when it is not (a strategy file's sections, and a
    portfolio file's ``allocation``: one schema for both)."""
    # A section that is not a mapping, or has no string kind, is reported by the top level.
    if not isinstance(section, Mapping) or not isinstance(section.get("kind"), str):
        return None
    kind = section["kind"]
    found = registry.matches(layer, kind)
    if len(found) != 1:
        where = join_path(path, "kind")
        message = (
            registry.ambiguous_kind_message(layer, kind)
            if found
            else registry.unknown_kind_message(layer, kind)
        )
        problems.append(Problem(source_map.locate(where), where, message))
        return None
    registered = found[0]
    # the runner's keys (signal.regimes) were validated with the top level
    listed_in = path.rpartition(".")[0] if layer in LIST_SECTIONS.values() else path
    if path.startswith("challengers."):  # challengers.N.signal: a signal section's keys
        listed_in = path.rpartition(".")[2]
    runner_keys = ("kind", *RUNNER_KEYS.get(listed_in, ()))
    keys = {key: value for key, value in section.items() if key not in runner_keys}
    model = registered.component.params
    misplaced = check_secret_fields(model, keys)
    for below, message in misplaced:
        where = join_path(path, below)
        problems.append(Problem(source_map.locate(where), where, message))
    before = len(problems)
    params = validate_model(model, keys, path, source_map, problems)
    problems[before:] = [_runner_key_hint(p, path, runner_keys[1:]) for p in problems[before:]]
    if params is None or misplaced:
        return None
    # the bare kind, however the file spelt it (messages name the plugin beside it)
    kind = registered.component.kind
    timeframe = section.get("timeframe") if listed_in == "features" else None
    symbol = section.get("symbol") if listed_in == "features" else None
    return ComponentConfig(
        path=path,
        kind=kind,
        params=params,
        registered=registered,
        timeframe=timeframe if isinstance(timeframe, str) else None,
        symbol=symbol if isinstance(symbol, str) else None,
    )


def _runner_key_hint(problem: Problem, path: str, runner_keys: tuple[str, ...]) -> Problem:
    """Suggest a key the runner handles for any kind (``symbl``: ``symbol``) when the
    component's own keys had no suggestion for an unknown key of its section."""
    parent, _, key = problem.path.rpartition(".")
    if parent != path or not problem.message.startswith("unknown key;"):
        return problem
    hint = did_you_mean(key, runner_keys)
    return replace(problem, message=f"unknown key{hint}") if hint else problem


def validate_model(
    model: type[BaseModel],
    data: Any,
    prefix: str,
    source_map: SourceMap,
    problems: list[Problem],
) -> Any:
    """Validate ``data`` against ``model``; append each error, located, to ``problems``.

    An unknown key hides nothing else: the rest of ``data`` is validated again without
    the unknown keys, so that the checks pydantic runs once a mapping's keys are valid
    (its model validators: a minimum above a maximum) are reported in the same round.

    Returns:
        The model; when ``data`` is invalid, the model of ``data`` without its unknown
        keys when that is valid (``problems`` holds the unknown keys: the file is
        invalid, and the checks that need the model are made in the same round), else
        None.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        said = _append_errors(exc, model, data, prefix, source_map, problems)
        rest = _without_unknown_keys(data, exc)
    if rest is None:
        return None
    try:
        return model.model_validate(rest)
    except ValidationError as again:
        # a missing key was said already, or its misspelling was (`_meant_keys`)
        _append_errors(again, model, rest, prefix, source_map, problems, said, missing=False)
        return None


def _append_errors(
    exc: ValidationError,
    model: type[BaseModel],
    data: Any,
    prefix: str,
    source_map: SourceMap,
    problems: list[Problem],
    said: frozenset[str] = frozenset(),
    *,
    missing: bool = True,
) -> frozenset[str]:
    """Append ``exc``'s errors, located, to ``problems`` (none at a path in ``said``, no
    missing key unless ``missing``); return the paths of those appended."""
    paths = []
    for error in describe_validation_error(exc, data, model):
        where = join_path(prefix, *error.parts)
        if where in said or (error.missing and not missing):
            continue
        if error.at_key:
            location = source_map.locate_key(where)
        elif error.missing:
            location = source_map.locate(where.rpartition(".")[0] if error.parts else where)
        else:
            location = source_map.locate(where)
        problems.append(Problem(location, where, error.message))
        paths.append(where)
    return frozenset(paths)


def _without_unknown_keys(data: Any, exc: ValidationError) -> Any:
    """Return a copy of ``data`` without the keys ``exc`` says are unknown, or None when
    it says none is (or one cannot be told from the data)."""
    errors = exc.errors(include_url=False)
    unknown = [tuple(e["loc"]) for e in errors if e["type"] == "extra_forbidden"]
    if not unknown:
        return None
    rest = _copy_mappings(data)
    for loc in unknown:
        holder = rest
        for part in loc[:-1]:
            listed = isinstance(holder, list) and isinstance(part, int) and part < len(holder)
            if not (listed or (isinstance(holder, dict) and part in holder)):
                return None  # a union member's tag in the path: not where the data has it
            holder = holder[part]
        if not isinstance(holder, dict) or loc[-1] not in holder:
            return None
        del holder[loc[-1]]
    return rest


def _copy_mappings(data: Any) -> Any:
    """Return ``data`` with every mapping and list copied (the values are shared)."""
    if isinstance(data, Mapping):
        return {key: _copy_mappings(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_copy_mappings(value) for value in data]
    return data


def _strategy_config(
    source: Path,
    top: StrategyFile,
    components: Mapping[str, ComponentConfig],
    data: Mapping[Any, Any],
    source_map: SourceMap,
) -> StrategyConfig:
    def listed(path: str, count: int) -> tuple[ComponentConfig, ...]:
        return tuple(components[f"{path}.{i}"] for i in range(count))

    signal_regimes = tuple(dict.fromkeys(top.signal.regimes or ()))
    regime = top.regime if top.regime is not None or not signal_regimes else RegimeParams()

    return StrategyConfig(
        source=source,
        name=top.name,
        seed=top.seed,
        plugins=tuple(top.plugins),
        data=components["data"],
        features=listed("features", len(top.features)),
        model=components["model"],
        signal=components["signal"],
        signal_regimes=signal_regimes,
        regime=regime,
        sizing=components["risk.sizing"],
        risk_rules=listed("risk.rules", len(top.risk.rules)),
        max_holding_bars=top.risk.max_holding_bars,
        stop_loss=top.risk.stop_loss,
        take_profit=top.risk.take_profit,
        trailing_stop=top.risk.trailing_stop,
        break_even=top.risk.break_even,
        cooldown_bars=top.risk.cooldown_bars,
        exit_time=top.risk.exit_time,
        risk_limits=top.risk.limits,
        signal_top_k=top.signal.top_k,
        signal_sides=top.signal.sides,
        risk_portfolio=top.risk.portfolio,
        risk_scaling=top.risk.scaling,
        execution=components["execution"],
        monitoring=listed("monitoring", len(top.monitoring)),
        health=tuple(top.health),
        live=top.live,
        outputs=top.outputs,
        journal=top.journal,
        allocation=components.get("allocation"),
        allocation_window=top.allocation.window if top.allocation is not None else 0,
        allocation_constraints=top.allocation.constraints if top.allocation else None,
        allocation_rebalance=top.allocation.rebalance if top.allocation else None,
        document=to_document(data),
        locate=source_map.locate,
        challengers=tuple(
            Challenger(
                entry.name,
                components[f"challengers.{i}.model"],
                components.get(f"challengers.{i}.signal"),
                components.get(f"challengers.{i}.sizing"),
                entry.promote_when,
                _signal_keys(entry.signal),
            )
            for i, entry in enumerate(top.challengers)
        ),
    )
