"""Make `tradeloom.plugins.model.estimator_table`'s table from the installed scikit-learn.

    python -m tradeloom.plugins.model.estimator_table_build

writes ``estimator_table.json`` beside the reader; `tests/plugins/model/
test_estimator_table.py` fails until the table is what `generate` makes of the installed
scikit-learn (after an upgrade: run this, and commit the table).
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import warnings
from typing import Any

from tradeloom.plugins.model.estimator_checks import (
    WORK_CEILINGS,
    Task,
    check_estimator,
    installed_distribution,
)
from tradeloom.plugins.model.estimator_table import TABLE

__all__ = ["generate", "write"]

_META = {"estimator", "base_estimator", "estimators", "final_estimator"}
"""Params of a meta-estimator (one that wraps another, even if none by default)."""


def generate() -> dict[str, Any]:
    """Return the table of the installed scikit-learn (imports it): every classifier and
    regressor of `sklearn.utils.all_estimators` made with no argument, with no nested
    estimator, not deprecated, whose default passes `check_estimator` for its task,
    under the public import path that scikit-learn's documentation gives it."""
    from sklearn.base import is_classifier, is_regressor
    from sklearn.utils import all_estimators

    estimators: dict[str, Any] = {}
    for name, cls in all_estimators(type_filter=["classifier", "regressor"]):
        path = _public_path(cls)
        if path is None:
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                made = cls()
            except Exception:  # needs an argument (a meta-estimator)
                continue
        own = made.get_params(deep=False)
        if caught or set(made.get_params(deep=True)) != set(own) or _META & set(own):
            continue  # deprecated (its warning is the check's own output), or nested
        classifier = bool(is_classifier(made))
        regressor = bool(is_regressor(made)) and callable(getattr(made, "predict", None))
        task: Task = "classifier" if classifier else "regressor"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                check_estimator(path, {}, 0, task)
        except Exception:  # refused as it is (or warns): left to the check
            continue
        descriptor = inspect.getattr_static(cls, "predict_proba", None)
        proba = descriptor is not None and type(descriptor).__name__ != "_AvailableIfDescriptor"
        constraints = getattr(cls, "_parameter_constraints", {})
        estimators[path] = {
            "name": name,
            "classifier": classifier,
            "regressor": regressor,
            "proba": proba and hasattr(made, "predict_proba"),
            "decision_function": _decision_function(cls, made),
            "params": sorted(own),
            "work": {
                key: value
                for key, value in sorted(own.items())
                if key in WORK_CEILINGS and type(value) in (int, float)
            },
            "constraints": {
                key: allowed if allowed == "no_validation" else [_encode(c) for c in allowed]
                for key, allowed in sorted(constraints.items())
                if key in own
            },
        }
    version = installed_distribution("sklearn")
    return {"version": None if version is None else version[1], "estimators": estimators}


def _decision_function(cls: type, made: Any) -> bool | None:
    """Return whether ``cls`` has a ``decision_function`` whatever its params (None: its
    params decide, an ``available_if`` method): what a calibration of it is fitted on,
    which `compiling.calibrated_problem` reads."""
    descriptor = inspect.getattr_static(cls, "decision_function", None)
    if descriptor is None:
        return False
    if type(descriptor).__name__ == "_AvailableIfDescriptor":
        return None
    return True if hasattr(made, "decision_function") else None


def _public_path(cls: type) -> str | None:
    parts = cls.__module__.split(".")
    for end in range(2, len(parts) + 1):
        module = ".".join(parts[:end])
        if parts[end - 1].startswith("_"):
            break
        if getattr(importlib.import_module(module), cls.__name__, None) is cls:
            return f"{module}.{cls.__name__}"
    return None


def _encode(constraint: Any) -> list[Any]:
    from numbers import Integral, Real

    from sklearn.utils._param_validation import Hidden, Interval, RealNotInt, StrOptions

    types: dict[Any, str] = {Integral: "numbers.Integral", Real: "numbers.Real"}
    types[RealNotInt] = "RealNotInt"
    if constraint is None:
        return ["none"]
    if isinstance(constraint, str):
        return ["str", constraint]
    if isinstance(constraint, Hidden):
        return ["hidden", _encode(constraint.constraint)]
    if isinstance(constraint, Interval):
        return [
            "interval",
            types.get(constraint.type, repr(constraint.type)),
            _bound(constraint.left),
            _bound(constraint.right),
            constraint.closed,
        ]
    if isinstance(constraint, StrOptions):
        return ["str_options", sorted(constraint.options), sorted(constraint.deprecated)]
    if isinstance(constraint, type):
        if constraint in types:
            return ["type", types[constraint]]
        if constraint.__module__ == "builtins":
            return ["type", constraint.__name__]
        return ["class", f"{constraint.__module__}.{constraint.__qualname__}"]
    return ["other", type(constraint).__name__]


def _bound(value: Any) -> int | float | None:
    if value is None or (isinstance(value, float) and math.isinf(value)):
        return None
    return int(value) if isinstance(value, int) else float(value)


def write() -> None:
    """Write `generate`'s table to `estimator_table.TABLE`."""
    TABLE.write_text(json.dumps(generate(), indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write()
