"""Check a scikit-learn estimator and its params without data, and remember the verdict.

`check_estimator` imports the estimator's class, constructs it with the strategy's
params and runs every check scikit-learn can make before fitting (unknown and invalid
params, the ceilings on a fold's work, a classifier with probabilities). Importing
scikit-learn takes one to two seconds, which ``tradeloom validate`` in an editor's
validate-on-save would pay at every save; so a passing verdict is kept in the user's
cache (`remembered_estimator`), keyed on everything it depends on: the import path,
the params, the seed, the installed version of the estimator's distribution and the
source of these checks. The same strategy validated again reads the verdict and
imports nothing; the estimator is made (`CheckedEstimator.make`) when a model trains.
Only estimators of an installed distribution are remembered (a module of the user's
own may change without a version); a failing check is never remembered, so its
message is always the estimator's own.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import pkgutil
import re
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from tradeloom.plugins.component import ParamError, raise_collected
from tradeloom.plugins.model import boosting_params
from tradeloom.plugins.model.boosting_libraries import (
    install_hint,
    library_defaults,
    library_params,
    work_aliases,
)
from tradeloom.plugins.model.estimator_table import table_verdict
from tradeloom.runtime.extras import require_installed
from tradeloom.suggestions import did_you_mean
from tradeloom.version import __version__

__all__ = [
    "N_JOBS",
    "WORK_CEILINGS",
    "CheckedEstimator",
    "Task",
    "check_estimator",
    "check_task",
    "import_estimator",
    "installed_distribution",
    "remembered_estimator",
    "value_problems",
    "verdict_digest",
    "write_remembered",
]

Task = Literal["classifier", "regressor"]
"""What a model's label needs of its estimator (`check_estimator`)."""

# sklearn's InvalidParameterError: "The 'n_estimators' parameter of RandomForestClassifier
# must be an int in the range [1, inf). Got -1 instead."
_SKLEARN_INVALID = re.compile(
    r"^The '(?P<key>[^']+)' parameter of \w+ must be (?P<expected>.+)\. Got (?P<got>.+) instead\.$",
    re.DOTALL,
)


def import_estimator(path: str) -> Any:
    """Return the object at import path ``path`` (``package.module.Name``).

    Raises:
        ParamError: At ``estimator``, saying what could not be imported and the closest
            existing name.
    """
    module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ParamError(
            "estimator",
            f"expected an import path like 'sklearn.ensemble.RandomForestClassifier', was '{path}'",
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        hint = _module_hint(exc.name, module_name)
        raise ParamError("estimator", f"cannot import '{path}': {exc}{hint}") from exc
    except Exception as exc:  # the module itself fails to import: report why
        raise ParamError(
            "estimator", f"cannot import '{path}': {type(exc).__name__}: {exc}"
        ) from exc
    try:
        found = getattr(module, attr)
    except AttributeError:
        names = [name for name in dir(module) if not name.startswith("_")]
        raise ParamError(
            "estimator",
            f"cannot import '{path}': module '{module_name}' has no attribute '{attr}'"
            f"{did_you_mean(attr, names)}",
        ) from None
    # a class that imports an optional library only when it fits (TorchClassifier) names it
    for extra in getattr(found, "needs_extras", ()):
        require_installed(extra, f"model estimator {path}")
    return found


@dataclass(frozen=True)
class CheckedEstimator:
    """An estimator whose class and params passed `check_estimator`: how to make it.

    Attributes:
        path: The class's import path.
        name: The class's name.
        settings: The params to set on a default-constructed instance (the strategy's,
            plus ``random_state`` keys set to the seed).
        decision_function: Whether the configured estimator has a ``decision_function``
            (what a calibration of it is fitted on), as the check that built it found and
            its remembered verdict keeps; None: not known (no check built it).
    """

    path: str
    name: str
    settings: dict[str, Any] = field(default_factory=dict)
    decision_function: bool | None = field(default=None, compare=False)

    def make(self) -> Any:
        """Return a new, unfitted estimator: ``cls()`` then ``set_params(**settings)``."""
        estimator = import_estimator(self.path)()
        estimator.set_params(**self.settings)
        return estimator


def check_estimator(
    path: str, params: dict[str, Any], seed: int, task: Task = "classifier"
) -> tuple[CheckedEstimator, Any]:
    """Import, check, configure and seed the estimator at ``path``; fit nothing.

    The estimator gets ``params``; if it has a ``random_state`` that ``params`` do not
    set, it is set to ``seed``. ``task`` is what the label needs: a ``classifier`` with
    ``predict_proba`` (every label kind but ``return``) or a ``regressor`` with
    ``predict`` (``return``).

    Returns:
        How to make it again, and the configured estimator.

    Raises:
        ParamError: At ``estimator`` (cannot import, not a classifier, no probabilities)
            or at ``params.KEY`` (unknown parameter, invalid value).
    """
    cls = import_estimator(path)
    if not isinstance(cls, type):
        raise ParamError(
            "estimator",
            f"'{path}' is not a class (it is a {type(cls).__name__}); expected a classifier "
            "class such as sklearn.ensemble.RandomForestClassifier",
        )
    name = cls.__name__
    try:
        estimator = cls()
    except Exception as exc:  # a third-party constructor may raise anything
        raise ParamError(
            "estimator", f"cannot construct {name}(): {type(exc).__name__}: {exc}"
        ) from exc
    if not all(callable(getattr(estimator, m, None)) for m in ("fit", "get_params", "set_params")):
        raise ParamError(
            "estimator",
            f"'{path}' is not a scikit-learn estimator (it needs fit, get_params and set_params)",
        )
    problems: list[ParamError] = []
    try:
        check_task(estimator, path, task, "estimator", probabilities=False)
    except ParamError as exc:
        problems.append(exc)
    own = list(estimator.get_params(deep=True))
    known = own + [key for key in library_params(estimator) if key not in own]
    problems.extend(
        ParamError(f"params.{key}", f"unknown parameter of {name}{did_you_mean(key, known)}")
        for key in params
        if key not in known
    )
    given = {key: value for key, value in params.items() if key in known}
    settings = dict(given)
    for key in own:
        if (key == "random_state" or key.endswith("__random_state")) and key not in settings:
            settings[key] = seed
    settings.update(library_defaults(estimator, given))
    settings = _canonical(settings)
    try:
        estimator.set_params(**settings)
    except Exception as exc:  # a third-party set_params may raise anything
        problems.append(
            ParamError("params", f"{name} refused these params: {type(exc).__name__}: {exc}")
        )
        raise_collected(problems)
    problems.extend(value_problems(estimator, given, name, work=estimator.get_params(deep=True)))
    wrong_task = any(p.key == "estimator" for p in problems)  # (no classifier: said once)
    if task == "classifier" and not wrong_task and not hasattr(estimator, "predict_proba"):
        remedy = " (set params.probability: true)" if "probability" in known else ""
        problems.append(
            ParamError(
                "estimator",
                f"{name} has no predict_proba with these params{remedy}; "
                "the model needs class probabilities",
            )
        )
    raise_collected(problems)
    checked = CheckedEstimator(path, name, settings, hasattr(estimator, "decision_function"))
    return checked, estimator


def check_task(
    estimator: Any, path: str, task: Task, key: str, *, probabilities: bool = True
) -> None:
    """Refuse an estimator that does not do ``task``: a ``classifier`` with
    ``predict_proba`` (``probabilities``: checked here) or a ``regressor``.

    Raises:
        ParamError: At ``key``.
    """
    name = type(estimator).__name__
    if task == "classifier" and not _is_classifier(estimator):
        other = " (a regressor learns label kind return)" if _is_regressor(estimator) else ""
        raise ParamError(
            key,
            f"'{path}' is not a classifier; expected a scikit-learn classifier with "
            f"predict_proba, such as sklearn.ensemble.RandomForestClassifier{other}",
        )
    if task == "regressor" and not _is_regressor(estimator):
        other = (
            " (a classifier learns label kind direction, triple_barrier or classes)"
            if _is_classifier(estimator)
            else ""
        )
        raise ParamError(
            key,
            f"'{path}' is not a regressor; label kind return needs a scikit-learn regressor "
            f"with predict, such as sklearn.ensemble.RandomForestRegressor{other}",
        )
    if probabilities and task == "classifier" and not hasattr(estimator, "predict_proba"):
        raise ParamError(
            key,
            f"{name} has no predict_proba with these params; the model needs class probabilities",
        )


def remembered_estimator(
    path: str,
    params: dict[str, Any],
    seed: int,
    cache: Path | None = None,
    task: Task = "classifier",
) -> CheckedEstimator | tuple[CheckedEstimator, Any]:
    """Return the verdict of `check_estimator` remembered from an earlier check, else check.

    Args:
        path: The estimator's import path.
        params: The strategy's params of it.
        seed: The strategy's seed.
        cache: The cache's root (default: `tradeloom.plugins.data.ohlcv_cache.default_cache_dir`).
        task: As `check_estimator`'s.

    Returns:
        The remembered `CheckedEstimator` (nothing imported); else the verdict read from
        scikit-learn's declared estimators where it surely passes (nothing imported;
        `tradeloom.plugins.model.estimator_table`); else what `check_estimator` returns.
        A passing verdict is then remembered.

    Raises:
        ParamError: As `check_estimator`.
    """
    key = _verdict_key(path, params, seed, task)
    if key is None:
        return check_estimator(path, params, seed, task)
    if cache is None:
        from tradeloom.plugins.data.ohlcv_cache import default_cache_dir

        cache = default_cache_dir()
    file = cache / "estimator-checks" / f"{key}.json"
    remembered = _read_verdict(file, path)
    if remembered is not None:
        return remembered
    declared = _declared_verdict(path, params, seed, task)
    if declared is not None:
        _write_verdict(file, declared)
        return declared
    checked, estimator = check_estimator(path, params, seed, task)
    if _round_trips(checked.settings):
        _write_verdict(file, checked)
    return checked, estimator


def _declared_verdict(
    path: str, params: dict[str, Any], seed: int, task: Task
) -> CheckedEstimator | None:
    """`check_estimator`'s passing verdict read from scikit-learn's declared estimators
    (`tradeloom.plugins.model.estimator_table`), or None where it may not pass."""
    if not path.startswith("sklearn."):
        return None
    installed = installed_distribution("sklearn")
    if installed is None:
        return None
    found = table_verdict(path, params, seed, task, installed[1])
    if found is None:
        return None
    name, settings, work = found
    if _width_problems(params) or _work_problems(work, name, {}) or _n_jobs_problems(None, params):
        return None  # the check's own message
    return CheckedEstimator(path, name, _canonical(settings))


_DISTRIBUTIONS = {"sklearn": ("scikit-learn",), "xgboost": ("xgboost", "xgboost-cpu")}
"""Top-level modules whose distribution has another name, or one of several names (the
``xgboost`` extra installs ``xgboost-cpu``, which imports as ``xgboost``)."""


def _verdict_key(path: str, params: dict[str, Any], seed: int, task: Task) -> str | None:
    installed = installed_distribution(path.partition(".")[0])
    if installed is None:
        return None  # not an installed distribution: it may change without a version
    version = "==".join(installed)
    if not _round_trips(params):
        return None
    what = {"path": path, "params": params, "seed": seed, "version": version}
    if task != "classifier":  # a classifier's key is what it always was
        what["task"] = task
    return verdict_digest(what)


def verdict_digest(what: dict[str, Any], *sources: Path) -> str:
    """Return the cache key of a verdict on ``what`` (JSON types): also of tradeloom's
    version, these checks' sources and ``sources`` (the modules of further checks)."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(Path(boosting_params.__file__).read_bytes())  # its checks too
    for source in sources:
        digest.update(source.read_bytes())
    digest.update(json.dumps([__version__, what], sort_keys=True).encode())
    return digest.hexdigest()


def installed_distribution(name: str) -> tuple[str, str] | None:
    """Return the installed distribution that provides module ``name``, and its version.

    Args:
        name: A top-level module (``sklearn``, ``xgboost``) or a distribution's name.

    Returns:
        ``(distribution, version)``, the first of ``name``'s known distributions
        installed, or None where none is.
    """
    for distribution in _DISTRIBUTIONS.get(name, (name,)):
        try:
            return distribution, metadata.version(distribution)
        except (metadata.PackageNotFoundError, ValueError):
            continue
    return None


def _round_trips(value: Any) -> bool:
    try:
        text = json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return bool(json.loads(text) == value)


def _canonical(settings: dict[str, Any]) -> dict[str, Any]:
    """Return ``settings`` in one form, however they were made: sorted by name, each name
    Python's one interned copy.

    A fold's file pickles its estimator, and some libraries keep the params they were
    given as given (LightGBM's and XGBoost's extra params: in the order set, under the
    key objects passed). Pickle writes a name once per distinct string object, so a
    model made after a fresh check (names from the strategy file and from literals) and
    one made from the remembered verdict (names from JSON) would differ in their bytes.
    """
    return {sys.intern(str(key)): settings[key] for key in sorted(settings)}


def _read_verdict(file: Path, path: str) -> CheckedEstimator | None:
    try:
        saved = json.loads(file.read_text(encoding="utf-8"))
        settings = _canonical(dict(saved["settings"]))
        function = saved.get("decision_function")
        answer = function if isinstance(function, bool) else None
        checked = CheckedEstimator(path, str(saved["name"]), settings, answer)
    except (OSError, ValueError, TypeError, KeyError):
        return None  # none yet, or damaged: check again
    return checked


def _write_verdict(file: Path, checked: CheckedEstimator) -> None:
    record: dict[str, Any] = {"name": checked.name, "settings": checked.settings}
    if checked.decision_function is not None:
        record["decision_function"] = checked.decision_function
    write_remembered(file, record)


def write_remembered(file: Path, record: dict[str, Any]) -> None:
    """Write a passing verdict's ``record`` as JSON to ``file`` at once (a rename), or not
    at all when the cache cannot be written."""
    text = json.dumps(record, sort_keys=True)
    with contextlib.suppress(OSError):  # a cache that cannot be written is no cache
        file.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=file.parent, suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(temporary, file)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temporary)


def _is_regressor(estimator: Any) -> bool:
    from sklearn.base import is_regressor

    try:
        return bool(is_regressor(estimator)) and callable(getattr(estimator, "predict", None))
    except Exception:  # no sklearn tags, as for a classifier
        return getattr(estimator, "_estimator_type", None) == "regressor"


def _is_classifier(estimator: Any) -> bool:
    from sklearn.base import is_classifier

    try:
        return bool(is_classifier(estimator))
    except Exception:  # no sklearn tags: a compatible estimator may still declare its type
        return getattr(estimator, "_estimator_type", None) == "classifier"


WORK_CEILINGS: dict[str, int] = {
    "n_estimators": 10_000,
    "max_iter": 100_000,
    "n_iter": 100_000,
    "max_fun": 1_000_000,
    "n_restarts_optimizer": 100,
}
"""Ceilings of the estimator params that size a fold's work (a forest of 1e20 trees
would never finish): each is some ten times what a strategy sensibly asks for."""


N_JOBS = (-256, 1_024)
"""The bounds of a joblib ``n_jobs``: at most 1,024 workers, down to -256 (joblib's "all
cores but N-1"), and never 0 (joblib refuses it at the first fold). LightGBM's and
XGBoost's own ``n_jobs`` have theirs (`boosting_params`)."""

_XGBOOST_DEVICE = re.compile(r"^(cpu|cuda|gpu)(:[0-9]+)?$")
"""XGBoost's ``device``: cpu, cuda, cuda:<ordinal>, gpu or gpu:<ordinal> (its context.cc)."""


def value_problems(
    estimator: Any,
    params: dict[str, Any],
    name: str,
    *,
    work: dict[str, Any] | None = None,
) -> list[ParamError]:
    """Return every problem of an estimator's params once set, each at ``params.KEY``.

    The checks a strategy's estimator gets at its top and at every level of a declared
    one (an ensemble's members, a pipeline's steps): the ceilings on a fold's work;
    scikit-learn's constraints, each param on its own (where true and false stand for an
    int or a float only if the param takes a boolean); joblib's ``n_jobs`` bounds;
    LightGBM's and XGBoost's constraints and XGBoost's ``device``.

    Args:
        estimator: The estimator, its params set.
        params: The params the strategy gave it (the ones a library's checks read).
        name: Its class's name, for messages.
        work: The params whose ceilings are checked (default: ``params``); nested
            ``step__key`` ones included where given.

    Returns:
        The problems, one a key (the first check's: a work ceiling before a bound).
    """
    settings = params if work is None else work
    found = _work_problems(settings, name, work_aliases(estimator))
    found.extend(_width_problems(settings))
    found.extend(_constraint_problems(estimator, name))
    found.extend(_n_jobs_problems(estimator, params))
    found.extend(_library_problems(estimator, params, name))
    first: dict[str, ParamError] = {}
    for problem in found:  # one problem a key: the first check's (a ceiling, then a bound)
        first.setdefault(problem.key, problem)
    return list(first.values())


_INT64 = 2**63 - 1


def _width_problems(settings: dict[str, Any]) -> list[ParamError]:
    # a library reads an int param as a C integer: beyond 64 bits its fit fails with
    # "Python int too large to convert to C ssize_t" although every declared bound holds
    return [
        ParamError(f"params.{key}", f"must be a 64-bit integer (at most {_INT64:,}), was {value:,}")
        for key, value in settings.items()
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _INT64
    ]


def _work_problems(
    settings: dict[str, Any], name: str, aliases: dict[str, str]
) -> list[ParamError]:
    found = []
    for key, value in settings.items():
        last = key.rpartition("__")[2]
        ceiling = WORK_CEILINGS.get(aliases.get(last, last))
        if ceiling is None or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if value > ceiling:
            found.append(
                ParamError(
                    f"params.{key}",
                    f"must be <= {ceiling:,} for {name} (the ceiling on the work of one fold), "
                    f"was {value:,}",
                )
            )
    return found


_TAKES_BOOL = ("boolean", "verbose", "no_validation")


def _constraint_problems(estimator: Any, name: str) -> list[ParamError]:
    # sklearn's own parameter constraints (what BaseEstimator._validate_params checks
    # when it fits), one param at a time so that each problem is named; estimators
    # without declared constraints are checked at fit
    constraints = getattr(estimator, "_parameter_constraints", None)
    if not isinstance(constraints, dict) or not callable(getattr(estimator, "get_params", None)):
        return []
    from sklearn.utils._param_validation import (
        InvalidParameterError,
        validate_parameter_constraints,
    )

    values = estimator.get_params(deep=False)
    found = []
    for key, allowed in constraints.items():
        if key not in values or allowed == "no_validation":
            continue
        value = values[key]
        # scikit-learn's Integral and Real take true and false as 1 and 0: a typo here
        bool_ok = any(c is bool or c is object or c in _TAKES_BOOL for c in allowed)
        checked = object() if isinstance(value, bool) and not bool_ok else value
        try:
            validate_parameter_constraints({key: allowed}, {key: checked}, caller_name=name)
        except (InvalidParameterError, ValueError, TypeError) as exc:
            match = _SKLEARN_INVALID.match(str(exc))
            if match is None:
                found.append(ParamError("params", f"invalid for {name}: {exc}"))
                continue
            got = repr(value) if checked is not value else match["got"]
            found.append(ParamError(f"params.{key}", f"must be {match['expected']}, was {got}"))
    return found


def _n_jobs_problems(estimator: Any, params: dict[str, Any]) -> list[ParamError]:
    value = params.get("n_jobs")
    library = type(estimator).__module__.partition(".")[0]
    if library in ("lightgbm", "xgboost") or isinstance(value, bool) or not isinstance(value, int):
        return []  # (their own bounds; a bool or another type: the constraints' say)
    low, high = N_JOBS
    if low <= value <= high and value != 0:
        return []
    return [
        ParamError(
            "params.n_jobs",
            f"must be a count of workers from 1 to {high:,}, or -1 (every core) down to "
            f"{low} (every core but {-low - 1}), or null; was {value:,}",
        )
    ]


def _library_problems(estimator: Any, params: dict[str, Any], name: str) -> list[ParamError]:
    # LightGBM's and XGBoost's params, which their wrappers do not constrain: the
    # constraints of `boosting_params`, checked by scikit-learn's validator as above
    from sklearn.utils._param_validation import (
        InvalidParameterError,
        StrOptions,
        validate_parameter_constraints,
    )

    found = []
    if type(estimator).__module__.partition(".")[0] == "xgboost" and "device" in params:
        device = params["device"]
        if device is not None and not (isinstance(device, str) and _XGBOOST_DEVICE.match(device)):
            near = did_you_mean(device, ["cpu", "cuda", "gpu"]) if isinstance(device, str) else ""
            found.append(
                ParamError(
                    "params.device",
                    "must be cpu, cuda, cuda:<ordinal>, gpu or gpu:<ordinal> (such as cuda:0) "
                    f"or null; was {device!r}{near}",
                )
            )
    constraints = boosting_params.library_constraints(estimator, params)
    for key, allowed in constraints.items():
        value = params[key]
        # scikit-learn's Interval takes true and false as the ints 1 and 0: not here
        checked = object() if isinstance(value, bool) and "boolean" not in allowed else value
        try:
            validate_parameter_constraints({key: allowed}, {key: checked}, caller_name=name)
        except InvalidParameterError as exc:
            options = sorted(o for c in allowed if isinstance(c, StrOptions) for o in c.options)
            match = _SKLEARN_INVALID.match(str(exc))
            if options:  # scikit-learn lists a set in no fixed order: sorted, and a guess
                listed = ", ".join(options) + (" or null" if None in allowed else "")
                near = did_you_mean(value, options) if isinstance(value, str) else ""
                message = f"must be one of {listed}; was {value!r}{near}"
            elif "boolean" in allowed:
                message = f"must be true or false, was {value!r}"
            elif match is not None:
                message = f"must be {match['expected']}, was {value!r}"
            else:
                message = f"invalid for {name}: {exc}"
            found.append(ParamError(f"params.{key}", message))
    return found


def _module_hint(missing: str | None, module_name: str) -> str:
    if not missing or not (module_name == missing or module_name.startswith(missing + ".")):
        return ""  # a dependency of the module is missing, not the module itself
    extra = install_hint(missing.partition(".")[0])
    if extra:  # a library an extra installs: the command, not a near name
        return extra
    parent, _, _ = missing.rpartition(".")
    if parent:
        try:
            search_path = importlib.import_module(parent).__path__
        except Exception:  # the parent is not a package: nothing to suggest
            return ""
        choices = [f"{parent}.{info.name}" for info in pkgutil.iter_modules(search_path)]
    else:
        choices = [info.name for info in pkgutil.iter_modules()]
    return did_you_mean(missing, choices)
