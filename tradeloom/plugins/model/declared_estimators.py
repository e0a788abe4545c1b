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
from typing import Any

from pydantic import ConfigDict, Field

from tradeloom.plugins.component import ParamError, Params
from tradeloom.plugins.model.boosting_libraries import library_defaults, work_aliases
from tradeloom.plugins.model.estimator_checks import (
    Task,
    _check_work,
    _validate_values,
    check_task,
    import_estimator,
    installed_distribution,
    verdict_digest,
    write_remembered,
)
from tradeloom.plugins.registry import did_you_mean

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


def build_declared(spec: DeclaredEstimator, seed: int, key: str = "estimator") -> Any:
    """Return the declared estimator, built and checked level by level; fit nothing.

    Args:
        spec: The declaration.
        seed: The strategy's seed, for every ``random_state`` the declaration leaves unset.
        key: The declaration's key path below the component.

    Raises:
        ParamError: At the key path of the first problem found.
    """
    return _build({"class": spec.class_, "params": dict(spec.params)}, seed, key)


def _build(node: Mapping[str, Any], seed: int, key: str) -> Any:
    path = node["class"]
    if not isinstance(path, str) or not path:
        raise ParamError(f"{key}.class", f"expected an import path, was {path!r}")
    try:
        cls = import_estimator(path)
    except ParamError as exc:
        raise ParamError(f"{key}.class", exc.message) from None
    name = getattr(cls, "__name__", path)
    if not isinstance(cls, type):
        raise ParamError(f"{key}.class", f"'{path}' is not a class")
    params = node.get("params") or {}
    if not isinstance(params, Mapping):
        raise ParamError(f"{key}.params", f"expected a mapping, was {type(params).__name__}")
    own = _param_names(cls)
    if own is None:
        raise ParamError(f"{key}.class", f"'{path}' is not a scikit-learn estimator")
    settings: dict[str, Any] = {}
    for param, value in params.items():
        if param not in own:
            raise ParamError(
                f"{key}.params.{param}",
                f"unknown parameter of {name}{did_you_mean(str(param), own)}",
            )
        settings[param] = _value(value, seed, f"{key}.params.{param}")
    if "random_state" in own and "random_state" not in settings:
        settings["random_state"] = seed
    try:  # with its params: a Pipeline, a Voting or a Stacking classifier needs some
        estimator = cls(**settings)
    except Exception as exc:  # a third-party constructor may raise anything
        raise ParamError(
            f"{key}.params", f"cannot construct {name}: {type(exc).__name__}: {exc}"
        ) from exc
    if not callable(getattr(estimator, "get_params", None)):
        raise ParamError(f"{key}.class", f"'{path}' is not a scikit-learn estimator")
    defaults = library_defaults(estimator, dict(params))
    if defaults:
        estimator.set_params(**defaults)
    plain = {k: v for k, v in settings.items() if not _is_estimator_value(v)}
    try:
        _check_work(plain, name, work_aliases(estimator))
        _validate_values(estimator, name)
    except ParamError as exc:
        raise ParamError(f"{key}.{exc.key}", exc.message) from None
    return estimator


def _param_names(cls: type) -> list[str] | None:
    names = getattr(cls, "_get_param_names", None)
    return None if not callable(names) else list(names())


def _value(value: Any, seed: int, key: str) -> Any:
    """Return a param's value: a declared estimator built, a list of them as pairs."""
    if isinstance(value, Mapping) and "class" in value:
        _only(value, _KEYS, key)
        return _build(value, seed, key)
    if isinstance(value, list) and any(isinstance(v, Mapping) and "class" in v for v in value):
        pairs = []
        for i, item in enumerate(value):
            where = f"{key}.{i}"
            if not isinstance(item, Mapping) or "class" not in item:
                raise ParamError(where, "expected {name: ..., class: ..., params: ...}")
            _only(item, _ITEM_KEYS, where)
            if "name" not in item:
                raise ParamError(where, "needs a name: these are (name, estimator) pairs")
            if not isinstance(item["name"], str) or not item["name"]:
                raise ParamError(f"{where}.name", f"expected a name, was {item['name']!r}")
            pairs.append((item["name"], _build(item, seed, where)))
        names = [n for n, _ in pairs]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ParamError(key, f"names must differ; {', '.join(repeated)} is repeated")
        return pairs
    return value


def _only(node: Mapping[str, Any], allowed: tuple[str, ...], key: str) -> None:
    for name in node:
        if name not in allowed:
            raise ParamError(
                f"{key}.{name}",
                f"unknown key of a declared estimator (expected {', '.join(allowed)})"
                f"{did_you_mean(str(name), list(allowed))}",
            )


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

    estimator = build_declared(spec, seed)
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
