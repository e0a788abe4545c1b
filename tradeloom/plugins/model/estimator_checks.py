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

from tradeloom.plugins.component import ParamError
from tradeloom.plugins.model import boosting_params
from tradeloom.plugins.model.boosting_libraries import (
    install_hint,
    library_defaults,
    library_params,
    work_aliases,
)
from tradeloom.plugins.registry import did_you_mean
from tradeloom.version import __version__

__all__ = [
    "WORK_CEILINGS",
    "CheckedEstimator",
    "Task",
    "check_estimator",
    "check_task",
    "import_estimator",
    "installed_distribution",
    "remembered_estimator",
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
        return getattr(module, attr)
    except AttributeError:
        names = [name for name in dir(module) if not name.startswith("_")]
        raise ParamError(
            "estimator",
            f"cannot import '{path}': module '{module_name}' has no attribute '{attr}'"
            f"{did_you_mean(attr, names)}",
        ) from None


@dataclass(frozen=True)
class CheckedEstimator:
    """An estimator whose class and params passed `check_estimator`: how to make it.

    Attributes:
        path: The class's import path.
        name: The class's name.
        settings: The params to set on a default-constructed instance (the strategy's,
            plus ``random_state`` keys set to the seed).
    """

    path: str
    name: str
    settings: dict[str, Any] = field(default_factory=dict)

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
    check_task(estimator, path, task, "estimator", probabilities=False)
    own = list(estimator.get_params(deep=True))
    known = own + [key for key in library_params(estimator) if key not in own]
    for key in params:
        if key not in known:
            raise ParamError(
                f"params.{key}", f"unknown parameter of {name}{did_you_mean(key, known)}"
            )
    settings = dict(params)
    for key in own:
        if (key == "random_state" or key.endswith("__random_state")) and key not in settings:
            settings[key] = seed
    settings.update(library_defaults(estimator, params))
    settings = _canonical(settings)
    try:
        estimator.set_params(**settings)
    except Exception as exc:  # a third-party set_params may raise anything
        raise ParamError(
            "params", f"{name} refused these params: {type(exc).__name__}: {exc}"
        ) from exc
    _check_work(estimator.get_params(deep=True), name, work_aliases(estimator))
    _validate_values(estimator, name)
    _validate_library_values(estimator, params, name)
    if task == "classifier" and not hasattr(estimator, "predict_proba"):
        remedy = " (set params.probability: true)" if "probability" in known else ""
        raise ParamError(
            "estimator",
            f"{name} has no predict_proba with these params{remedy}; "
            "the model needs class probabilities",
        )
    return CheckedEstimator(path, name, settings), estimator


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
        The remembered `CheckedEstimator` (nothing imported), or what `check_estimator`
        returns when nothing was remembered (the passing verdict is then remembered).

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
    checked, estimator = check_estimator(path, params, seed, task)
    if _round_trips(checked.settings):
        _write_verdict(file, checked)
    return checked, estimator


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
        checked = CheckedEstimator(path, str(saved["name"]), settings)
    except (OSError, ValueError, TypeError, KeyError):
        return None  # none yet, or damaged: check again
    return checked


def _write_verdict(file: Path, checked: CheckedEstimator) -> None:
    write_remembered(file, {"name": checked.name, "settings": checked.settings})


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


def _check_work(settings: dict[str, Any], name: str, aliases: dict[str, str]) -> None:
    for key, value in settings.items():
        last = key.rpartition("__")[2]
        ceiling = WORK_CEILINGS.get(aliases.get(last, last))
        if ceiling is None or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if value > ceiling:
            raise ParamError(
                f"params.{key}",
                f"must be <= {ceiling:,} for {name} (the ceiling on the work of one fold), "
                f"was {value:,}",
            )


def _validate_values(estimator: Any, name: str) -> None:
    # sklearn's own parameter checks without fitting (BaseEstimator._validate_params, the
    # same call fit makes); estimators without declared constraints are checked at fit.
    validate = getattr(estimator, "_validate_params", None)
    if not callable(validate) or not hasattr(estimator, "_parameter_constraints"):
        return
    try:
        validate()
    except (ValueError, TypeError) as exc:
        match = _SKLEARN_INVALID.match(str(exc))
        if match is None:
            raise ParamError("params", f"invalid for {name}: {exc}") from exc
        raise ParamError(
            f"params.{match['key']}", f"must be {match['expected']}, was {match['got']}"
        ) from exc


def _validate_library_values(estimator: Any, params: dict[str, Any], name: str) -> None:
    # LightGBM's and XGBoost's params, which their wrappers do not constrain: the
    # constraints of `boosting_params`, checked by scikit-learn's validator as above
    from sklearn.utils._param_validation import (
        InvalidParameterError,
        StrOptions,
        validate_parameter_constraints,
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
            raise ParamError(f"params.{key}", message) from None


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
