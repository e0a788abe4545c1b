"""scikit-learn's plain estimators, declared: a first ``validate`` that imports no sklearn.

`estimator_checks.check_estimator` imports the estimator's class to check its params;
importing scikit-learn takes most of a second, which a user's first ``validate`` of a
file paid. This module holds, for the installed scikit-learn's version, what that check
reads of each plain classifier and regressor (one constructed with no argument, with no
nested estimator, not deprecated): its params, their defaults that have a work ceiling,
its task, whether it always has ``predict_proba``, and its parameter constraints written
as JSON (``estimator_table.json``, made by `tradeloom.plugins.model.estimator_table_build`;
`tests/plugins/model/test_estimator_table.py` holds it to what scikit-learn says and to
`check_estimator`'s verdicts).

`table_verdict` is a verdict only when it is sure: every key known, every value one that
a constraint of the table surely accepts (each constraint read conservatively: a value
it cannot judge is not accepted); `estimator_checks.remembered_estimator` adds the work
ceilings and joblib's bounds. Any doubt, and any problem, and the caller checks with
scikit-learn itself, so that every refusal is still the check's own line.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["TABLE", "TableVerdict", "declared_decision_function", "table_verdict"]

TABLE = Path(__file__).with_name("estimator_table.json")
"""The declared estimators of one scikit-learn version (made by `estimator_table_build`)."""

_TAKES_BOOL = ("boolean", "verbose", "no_validation")
"""As `estimator_checks._TAKES_BOOL`: the constraints under which true and false are
booleans (elsewhere a bool given to an int or a float param is refused)."""


@cache
def _table() -> dict[str, Any] | None:
    try:
        table: dict[str, Any] = json.loads(TABLE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return table


TableVerdict = tuple[str, dict[str, Any], dict[str, Any]]
"""A verdict read from the table: the class's name, the settings (the strategy's params
and each ``random_state`` they leave to the seed) and the params whose work ceilings the
check reads (the settings over the defaults)."""


def table_verdict(
    path: str, params: dict[str, Any], seed: int, task: str, version: str
) -> TableVerdict | None:
    """Return what `estimator_checks.check_estimator` would find of the estimator at
    ``path`` with ``params`` before its ceilings, read from the table, or None when the
    table cannot be sure that it passes.

    Args:
        path: The estimator's import path (as the strategy writes it).
        params: The strategy's params of it.
        seed: The strategy's seed (set on a ``random_state`` the params do not set).
        task: What the label needs: ``classifier`` or ``regressor``.
        version: The installed scikit-learn's version.

    Returns:
        The class's name, the settings `check_estimator` makes (not yet in their one
        canonical form) and the params whose work ceilings it checks; None: not in the
        table, another scikit-learn version, or a param not surely accepted.
    """
    table = _table()
    if table is None or table["version"] != version:
        return None
    entry = table["estimators"].get(path)
    if entry is None:
        return None
    if task == "classifier" and not (entry["classifier"] and entry["proba"]):
        return None
    if task == "regressor" and not entry["regressor"]:
        return None
    own: list[str] = entry["params"]
    if any(key not in own for key in params):
        return None
    settings = dict(params)
    if "random_state" in own and "random_state" not in settings:
        settings["random_state"] = seed
    constraints: dict[str, Any] = entry["constraints"]
    for key, value in settings.items():
        allowed = constraints.get(key)
        if allowed is not None and not _accepted(value, allowed):
            return None
    return str(entry["name"]), settings, {**entry["work"], **settings}


def declared_decision_function(path: str, version: str) -> bool | None:
    """Return whether the estimator at ``path`` has a ``decision_function`` whatever its
    params, as the table declares it for scikit-learn ``version`` (what a calibration of it
    is fitted on: `tradeloom.plugins.model.compiling.calibrated_problem`); None: not in
    the table, another version, or its params decide (an ``available_if`` method)."""
    table = _table()
    if table is None or table["version"] != version:
        return None
    entry = table["estimators"].get(path)
    declared = None if entry is None else entry.get("decision_function")
    return declared if isinstance(declared, bool) else None


def _accepted(value: Any, allowed: Any) -> bool:
    """Whether scikit-learn surely accepts ``value`` under a param's ``allowed``
    (``"no_validation"`` or a list of encoded constraints, any one of which may hold)."""
    if allowed == "no_validation":
        return True
    if isinstance(value, bool) and not any(_takes_bool(c) for c in allowed):
        return False  # the check refuses a bool where no constraint takes one
    if isinstance(value, float) and not math.isfinite(value):
        return False  # (not judged here)
    return any(_satisfies(value, c) for c in allowed)


def _takes_bool(constraint: Any) -> bool:
    return constraint in (["type", "bool"], ["type", "object"]) or (
        isinstance(constraint, list) and constraint[:1] == ["str"] and constraint[1] in _TAKES_BOOL
    )


def _satisfies(value: Any, constraint: list[Any]) -> bool:
    tag = constraint[0]
    if tag == "none":
        return value is None
    if tag == "hidden":
        return _satisfies(value, constraint[1])
    if tag == "str":
        name = constraint[1]
        if name == "boolean":
            return isinstance(value, bool)
        if name == "verbose":
            return isinstance(value, bool) or (isinstance(value, int) and value >= 0)
        if name == "random_state":
            return value is None or (
                isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**32
            )
        return False
    if tag == "interval":
        return _in_interval(value, constraint[1], constraint[2], constraint[3], constraint[4])
    if tag == "str_options":
        return isinstance(value, str) and value in constraint[1] and value not in constraint[2]
    if tag == "type":
        return _instance_of(value, constraint[1])
    return False  # HasMethods, array-like, cv_object, Options, a class: not judged here


def _instance_of(value: Any, name: str) -> bool:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    checks = {
        "bool": isinstance(value, bool),
        "int": isinstance(value, int),
        "float": isinstance(value, float),
        "str": isinstance(value, str),
        "object": True,
        "numbers.Integral": isinstance(value, int),
        "numbers.Real": isinstance(value, int | float),
        "RealNotInt": number and isinstance(value, float),
    }
    return checks.get(name, False)


def _in_interval(value: Any, kind: str, left: Any, right: Any, closed: str) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if kind == "numbers.Integral" and not isinstance(value, int):
        return False
    if kind == "RealNotInt" and not isinstance(value, float):
        return False
    if kind not in ("numbers.Integral", "numbers.Real", "RealNotInt"):
        return False
    if left is not None and (value < left or (value == left and closed not in ("left", "both"))):
        return False
    return right is None or not (
        value > right or (value == right and closed not in ("right", "both"))
    )
