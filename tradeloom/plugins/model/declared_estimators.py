"""Estimators declared in YAML as ``{class: ..., params: {...}}``, nested where scikit-learn
takes an estimator.

``model.estimator`` is an import path, or a mapping naming the class and its params. A
param of it may itself be such a mapping (``final_estimator`` of a StackingClassifier,
``estimator`` of a CalibratedClassifierCV or a BaggingClassifier), and a list of
``{name: ..., class: ..., params: ...}`` items is the ``(name, estimator)`` pairs of a
Pipeline's ``steps`` or a Stacking or Voting classifier's ``estimators``. Every level is
checked as a single estimator is (`estimator_checks`): its class imports, its params are
its own (with a "did you mean"), scikit-learn's constraints and the work ceilings hold,
and an unset ``random_state`` gets the strategy's seed. A failure is a `ParamError` at
the dotted path of the key at fault (``estimator.params.estimators.1.params.max_depth``),
so that the runner locates it at the file's line and column.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field

from tradeloom.plugins.component import ParamError, Params, raise_collected
from tradeloom.plugins.model.boosting_libraries import library_defaults, library_params
from tradeloom.plugins.model.estimator_checks import (
    Task,
    check_task,
    import_estimator,
    installed_distribution,
    value_problems,
    verdict_digest,
    write_remembered,
)
from tradeloom.suggestions import did_you_mean

__all__ = [
    "DeclaredEstimator",
    "DeclaredRecipe",
    "build_declared",
    "declared_path",
    "remembered_declared",
]

_KEYS = ("class", "params")
_ITEM_KEYS = ("name", "class", "params")


class DeclaredEstimator(Params):
    """An estimator declared by its class and params; a param may be one in turn."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    class_: str = Field(
        alias="class",
        min_length=1,
        description="Import path of the estimator's class, e.g. "
        "sklearn.ensemble.StackingClassifier.",
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Its constructor parameters. Where scikit-learn takes an estimator, "
        "a {class: ..., params: ...} mapping; where it takes (name, estimator) pairs "
        "(Pipeline steps, Stacking and Voting estimators), a list of {name: ..., class: "
        "..., params: ...}.",
    )


def declared_path(spec: DeclaredEstimator) -> str:
    """Return the import path of the declared estimator's class."""
    return spec.class_


def build_declared(
    spec: DeclaredEstimator, seed: int, key: str = "estimator", task: Task | None = None
) -> Any:
    """Return the declared estimator, built and checked level by level; fit nothing.

    Every level is checked as a top-level estimator is (`estimator_checks`): its class
    imports, its params are its own, their values hold (`value_problems`), and it does
    what its place asks: ``task`` at the top, its meta-estimator's task for an ensemble's
    members (a classifier's members are classifiers; a soft vote's have probabilities),
    a transformer before a pipeline's last step. A list of (name, estimator) pairs holds
    one at least, named without ``__`` and apart from its meta-estimator's params.

    Args:
        spec: The declaration.
        seed: The strategy's seed, for every ``random_state`` the declaration leaves unset.
        key: The declaration's key path below the component.
        task: What the label needs of the top estimator (None: not checked here).

    Raises:
        ParamError: Every problem found (`ParamErrors` for several), at its key path.
    """
    problems: list[ParamError] = []
    node = {"class": spec.class_, "params": dict(spec.params)}
    estimator = _build(node, seed, key, problems, task, spec.class_)
    raise_collected(problems)
    return estimator


_PAIRS = ("estimators", "steps", "transformer_list", "transformers")
"""scikit-learn params that hold (name, estimator) pairs: a Voting or Stacking ensemble's
members, a Pipeline's steps, a FeatureUnion's or ColumnTransformer's transformers."""

_FAILED = object()
"""A param whose declaration had a problem (reported): its level is not constructed."""


def _build(
    node: Mapping[str, Any],
    seed: int,
    key: str,
    problems: list[ParamError],
    task: Task | Literal["transformer"] | None,
    path_shown: str,
) -> Any:
    """Return the estimator ``node`` declares (None: a problem at this level or below,
    appended to ``problems``)."""
    path = node["class"]
    if not isinstance(path, str) or not path:
        problems.append(ParamError(f"{key}.class", f"expected an import path, was {path!r}"))
        return None
    try:
        cls = import_estimator(path)
    except ParamError as exc:
        problems.append(ParamError(f"{key}.class", exc.message))
        return None
    name = getattr(cls, "__name__", path)
    if not isinstance(cls, type):
        problems.append(ParamError(f"{key}.class", f"'{path}' is not a class"))
        return None
    params = node.get("params") or {}
    if not isinstance(params, Mapping):
        problems.append(
            ParamError(f"{key}.params", f"expected a mapping, was {type(params).__name__}")
        )
        return None
    own = _param_names(cls)
    if own is None:
        problems.append(ParamError(f"{key}.class", f"'{path}' is not a scikit-learn estimator"))
        return None
    settings: dict[str, Any] = {}
    members: dict[str, list[tuple[str, str, str]]] = {}  # param -> (key, class, name)
    unknown = False
    for param, value in params.items():
        where = f"{key}.params.{param}"
        if param not in own:
            problems.append(
                ParamError(where, f"unknown parameter of {name}{did_you_mean(str(param), own)}")
            )
            unknown = True
            continue
        settings[param] = _value(value, seed, where, problems, own, name, members, param)
    if any(value is _FAILED for value in settings.values()):
        return None  # a member could not be made: the problems below say why
    if "random_state" in own and "random_state" not in settings:
        settings["random_state"] = seed
    try:  # with its params: a Pipeline, a Voting or a Stacking classifier needs some
        estimator = cls(**settings)
    except Exception as exc:  # a third-party constructor may raise anything
        problems.append(
            ParamError(f"{key}.params", f"cannot construct {name}: {type(exc).__name__}: {exc}")
        )
        return None
    if not callable(getattr(estimator, "get_params", None)):
        problems.append(ParamError(f"{key}.class", f"'{path}' is not a scikit-learn estimator"))
        return None
    if task in ("classifier", "regressor"):
        try:
            check_task(estimator, path_shown, task, f"{key}.class", probabilities=False)
        except ParamError as exc:
            problems.append(exc)
    elif task == "transformer" and not callable(getattr(estimator, "transform", None)):
        problems.append(
            ParamError(
                f"{key}.class",
                f"'{path_shown}' is no transformer (fit and transform); a pipeline's steps "
                "before its last transform the rows",
            )
        )
    defaults = library_defaults(estimator, dict(params))
    if defaults:
        estimator.set_params(**defaults)
    plain = {k: v for k, v in settings.items() if not _is_estimator_value(v)}
    for error in value_problems(estimator, plain, name):
        problems.append(ParamError(f"{key}.{error.key}", error.message))
    _check_members(estimator, name, members, problems)
    return None if unknown else estimator  # (its known params checked all the same)


def _value(
    value: Any,
    seed: int,
    key: str,
    problems: list[ParamError],
    own: list[str],
    owner: str,
    members: dict[str, list[tuple[str, str, str]]],
    param: str,
) -> Any:
    """Return a param's value: a declared estimator built, a list of them as pairs; the
    members' keys, classes and names are noted in ``members`` for `_check_members`."""
    if isinstance(value, Mapping) and "class" in value:
        if not _only(value, _KEYS, key, problems):
            return _FAILED
        built = _build(value, seed, key, problems, None, str(value["class"]))
        members[param] = [(key, str(value["class"]), "")]
        return _FAILED if built is None else built
    pairs_expected = param in _PAIRS
    if isinstance(value, list) and (
        any(isinstance(v, Mapping) and "class" in v for v in value) or pairs_expected
    ):
        if not value:
            problems.append(
                ParamError(
                    key,
                    f"{owner} needs at least one estimator: a list of "
                    "{name: ..., class: ..., params: ...}",
                )
            )
            return _FAILED
        pairs: list[tuple[str, Any]] = []
        noted: list[tuple[str, str, str]] = []
        failed = False
        for i, item in enumerate(value):
            where = f"{key}.{i}"
            if not isinstance(item, Mapping) or "class" not in item:
                problems.append(ParamError(where, "expected {name: ..., class: ..., params: ...}"))
                failed = True
                continue
            if not _only(item, _ITEM_KEYS, where, problems):
                failed = True
                continue
            named = _pair_name(item, where, own, owner, problems)
            built = _build(item, seed, where, problems, None, str(item["class"]))
            if named is None or built is None:
                failed = True
                continue
            pairs.append((named, built))
            noted.append((where, str(item["class"]), named))
        names = [n for n, _ in pairs]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            problems.append(
                ParamError(key, f"names must differ; {', '.join(repeated)} is repeated")
            )
            failed = True
        members[param] = noted
        return _FAILED if failed else pairs
    return value


def _pair_name(
    item: Mapping[str, Any], where: str, own: list[str], owner: str, problems: list[ParamError]
) -> str | None:
    if "name" not in item:
        problems.append(ParamError(where, "needs a name: these are (name, estimator) pairs"))
        return None
    name = item["name"]
    if not isinstance(name, str) or not name:
        problems.append(ParamError(f"{where}.name", f"expected a name, was {name!r}"))
        return None
    if "__" in name:
        problems.append(
            ParamError(
                f"{where}.name",
                f"must not hold '__' (scikit-learn reads it as a member's parameter), was '{name}'",
            )
        )
        return None
    if name in own:
        problems.append(
            ParamError(
                f"{where}.name",
                f"must not be a parameter of {owner} ({', '.join(own)}), was '{name}'",
            )
        )
        return None
    return name


def _check_members(
    estimator: Any,
    name: str,
    members: Mapping[str, list[tuple[str, str, str]]],
    problems: list[ParamError],
) -> None:
    """Check what each member does against its place in ``estimator`` (built without a
    task: its place is known once its meta-estimator is)."""
    params = estimator.get_params(deep=False)
    pipeline = callable(getattr(estimator, "_validate_steps", None))
    task = _task_of(estimator)
    soft = params.get("voting") == "soft"
    for param, noted in members.items():
        value = params.get(param)
        built = [v for _, v in value] if isinstance(value, list) else [value]
        for index, ((where, path, _), member) in enumerate(zip(noted, built, strict=False)):
            if member is None or member == "drop" or member == "passthrough":
                continue
            place: Task | Literal["transformer"] | None = task
            if pipeline:
                place = task if index == len(noted) - 1 else "transformer"
            if place == "transformer":
                if not callable(getattr(member, "transform", None)):
                    problems.append(
                        ParamError(
                            f"{where}.class",
                            f"'{path}' is no transformer (fit and transform); a pipeline's "
                            "steps before its last transform the rows",
                        )
                    )
                continue
            if place is None:
                continue
            try:
                check_task(member, path, place, f"{where}.class", probabilities=soft)
            except ParamError as exc:
                problems.append(exc)


def _task_of(estimator: Any) -> Task | None:
    from sklearn.base import is_classifier, is_regressor

    try:
        if is_classifier(estimator):
            return "classifier"
        if is_regressor(estimator):
            return "regressor"
    except Exception:  # no sklearn tags: no task asked of its members
        return None
    return None


def _param_names(cls: type) -> list[str] | None:
    """Return the params ``cls`` takes, as a top-level estimator's are found: its
    signature's, and what an instance's ``get_params`` and its library add (XGBoost's
    wrapper takes its params through ``**kwargs``; LightGBM's aliases)."""
    names = getattr(cls, "_get_param_names", None)
    if not callable(names):
        return None
    own = list(names())
    try:
        instance = cls()
    except Exception:  # a meta-estimator needs its members: its signature's names
        return own
    given = (
        instance.get_params(deep=False) if callable(getattr(instance, "get_params", None)) else {}
    )
    return list(dict.fromkeys([*own, *given, *library_params(instance)]))


def _only(
    node: Mapping[str, Any], allowed: tuple[str, ...], key: str, problems: list[ParamError]
) -> bool:
    clean = True
    for name in node:
        if name not in allowed:
            problems.append(
                ParamError(
                    f"{key}.{name}",
                    f"unknown key of a declared estimator (expected {', '.join(allowed)})"
                    f"{did_you_mean(str(name), list(allowed))}",
                )
            )
            clean = False
    return clean


def _is_estimator_value(value: Any) -> bool:
    if isinstance(value, list):
        return any(isinstance(v, tuple) for v in value)
    return callable(getattr(value, "get_params", None))


@dataclass(frozen=True)
class DeclaredRecipe:
    """A declared estimator whose check passed: how to make it, and what the check found.

    Attributes:
        spec: The declaration.
        seed: The strategy's seed.
        name: The top class's name.
        problem: Why it will not be compiled once fitted (None: it will).
        calibrated: Why it will not be compiled behind ``model.calibration`` (None: it will).
    """

    spec: DeclaredEstimator
    seed: int
    name: str
    problem: str | None
    calibrated: str | None

    def make(self) -> Any:
        """Return a new, unfitted estimator, built from the declaration."""
        return build_declared(self.spec, self.seed)


def remembered_declared(
    spec: DeclaredEstimator, seed: int, task: Task, cache: Path | None = None
) -> DeclaredRecipe | tuple[DeclaredRecipe, Any]:
    """Return the verdict on a declared estimator remembered from an earlier check, else check.

    As `estimator_checks.remembered_estimator` for an import path: the verdict is kept
    when every class of the declaration comes from an installed distribution, keyed on
    the declaration, the seed, the task and those distributions' versions.

    Returns:
        The remembered `DeclaredRecipe` (nothing imported), or it and the built estimator.

    Raises:
        ParamError: At the key path of the first problem (`build_declared`, and
            ``estimator.class`` for an estimator that does not suit the label).
    """
    key = _declared_key(spec, seed, task)
    file: Path | None = None
    if key is not None:
        if cache is None:
            from tradeloom.plugins.data.ohlcv_cache import default_cache_dir

            cache = default_cache_dir()
        file = cache / "estimator-checks" / f"declared-{key}.json"
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            saved = json.loads(file.read_text(encoding="utf-8"))
            return DeclaredRecipe(
                spec, seed, str(saved["name"]), saved["problem"], saved["calibrated"]
            )
    from tradeloom.plugins.model.compiling import calibrated_problem, estimator_problem

    estimator = build_declared(spec, seed, task=task)
    check_task(estimator, spec.class_, task, "estimator.class")
    recipe = DeclaredRecipe(
        spec,
        seed,
        type(estimator).__name__,
        estimator_problem(estimator),
        calibrated_problem(estimator),
    )
    if file is not None:
        record = {"name": recipe.name, "problem": recipe.problem, "calibrated": recipe.calibrated}
        write_remembered(file, record)
    return recipe, estimator


def _declared_key(spec: DeclaredEstimator, seed: int, task: Task) -> str | None:
    declaration = spec.model_dump(mode="json", by_alias=True)
    versions = []
    for path in sorted(set(_classes(declaration))):
        installed = installed_distribution(path.partition(".")[0])
        if installed is None:
            return None  # not an installed distribution: it may change without a version
        versions.append("==".join(installed))
    what = {"declared": declaration, "seed": seed, "task": task, "versions": versions}
    try:
        return verdict_digest(what, Path(__file__))
    except (TypeError, ValueError):  # a value that is not JSON: check every time
        return None


def _classes(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["class"]] if isinstance(node.get("class"), str) else []
        return own + [c for value in node.values() for c in _classes(value)]
    if isinstance(node, list):
        return [c for value in node for c in _classes(value)]
    return []
