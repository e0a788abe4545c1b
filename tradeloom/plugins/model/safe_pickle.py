"""Unpickle a model file with an allow-list of the globals it may name.

A pickle runs code as it loads: every global it names is imported and may be called,
and so may any object it builds. The registry's real protection is the SHA-256 checked
before this runs (see `tradeloom.plugins.model.loading`); this is the second line, for a
file whose hash was taken from a place an attacker could also have edited (a run
directory's index).

It is not a sandbox. A global is allowed only if it is

1. one of `HELPER_GLOBALS`: the few numpy and scikit-learn names that pickles of the
   supported estimators need besides the estimators themselves (array, dtype and scalar
   reconstructors, random number generators, a tree's arrays, boosting's loss and link
   objects, histogram gradient boosting's predictors), listed one by one, and
   tradeloom's torch classifier (an ensemble's member, pickled as numbers); or
2. a class defined in a ``sklearn.`` module that subclasses ``sklearn.base.BaseEstimator``
   (scikit-learn's convention keeps an estimator's ``__init__`` to storing its
   parameters), outside scikit-learn's test helpers; or
3. a class of a package the strategy file trusts (``model.trusted_packages``), never a
   function of it.

Nothing else: no scipy, no other function, nothing of the standard library but two
containers (`HELPER_GLOBALS`). What the allowed classes do when they are rebuilt is
trusted.
"""

from __future__ import annotations

import importlib
import io
import pickle
import re
import sys
from collections.abc import Iterable
from typing import Any

__all__ = [
    "CORE_PACKAGES",
    "HELPER_GLOBALS",
    "RefusedGlobalError",
    "restricted_loads",
    "trusted_package_problem",
]

CORE_PACKAGES = frozenset({"numpy", "scipy", "sklearn"})
"""Packages whose globals only the fixed rules decide on: never a trusted package."""


def _names(module: str, *names: str) -> set[tuple[str, str]]:
    return {(module, name) for name in names}


# Derived by pickling every supported estimator (decision tree, random forest, extra
# trees, gradient boosting, histogram gradient boosting, logistic regression, the
# IsolationForest detector, each scaler in a Pipeline; LightGBM's and XGBoost's
# classifiers) with pickle protocol 5 and listing the globals it names. numpy 1 writes
# its reconstructors under numpy.core, numpy 2 under numpy._core. The estimator classes
# themselves pass by rule 2, LightGBM's and XGBoost's by rule 3.
HELPER_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    _names("numpy", "dtype", "ndarray")
    | _names("numpy._core.multiarray", "_reconstruct", "scalar")
    | _names("numpy._core.numeric", "_frombuffer")
    | _names("numpy.core.multiarray", "_reconstruct", "scalar")
    | _names("numpy.core.numeric", "_frombuffer")
    # random_state objects: RandomState (gradient boosting), Generator (HGB)
    | _names("numpy.random._pickle", "__randomstate_ctor", "__generator_ctor")
    | _names("numpy.random._pickle", "__bit_generator_ctor")
    | _names("numpy.random._mt19937", "MT19937")
    | _names("numpy.random._pcg64", "PCG64")
    | _names("numpy.random.bit_generator", "SeedSequence", "__pyx_unpickle_SeedSequence")
    # the arrays of every fitted decision tree (forests, boosting, IsolationForest)
    | _names("sklearn.tree._tree", "Tree")
    # the binary losses of (histogram) gradient boosting, and their links
    | _names("sklearn._loss.loss", "HalfBinomialLoss", "ExponentialLoss")
    | _names("sklearn._loss._loss", "CyHalfBinomialLoss", "CyExponentialLoss")
    | _names("sklearn._loss.link", "Interval", "LogitLink", "HalfLogitLink")
    # a calibrated pipeline's (model, calibrator) pairs (`model.calibration`)
    | _names("sklearn.calibration", "_CalibratedClassifier")
    # histogram gradient boosting's trees
    | _names("sklearn.ensemble._hist_gradient_boosting.predictor", "TreePredictor")
    # LightGBM's wrapper keeps its best scores in a defaultdict of OrderedDict (two
    # containers: a defaultdict's factory is a global of its own, checked like any other)
    | _names("collections", "defaultdict", "OrderedDict")
    # tradeloom's torch network as an ensemble's member: pickled as its architecture and
    # numpy weights (no torch object), built again as one of tradeloom's own networks
    | _names("tradeloom.plugins.model.torch_estimator", "TorchClassifier")
    # the features' transforms fitted in each fold (a projection of embeddings), as numbers
    | _names("tradeloom.plugins.model.fold_transforms", "FoldColumns", "Projection")
)
"""The (module, name) pairs allowed besides scikit-learn's estimator classes."""

_REFUSED_SKLEARN_PARTS = frozenset(
    {
        "__check_build",
        "_build_utils",
        "_mocking",
        "_testing",
        "conftest",
        "datasets",
        "experimental",
        "externals",
        "tests",
    }
)
"""Module name parts of scikit-learn under which no class is allowed: test helpers,
fetchers that download and write files, build tools, modules that patch on import."""

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class RefusedGlobalError(pickle.UnpicklingError):
    """The pickle names a global the allow-list refuses.

    Attributes:
        name: ``module.name`` of the refused global.
    """

    def __init__(self, name: str, why: str) -> None:
        self.name = name
        super().__init__(f"refused global {name} ({why})")


def trusted_package_problem(package: str) -> str | None:
    """Return why ``package`` cannot be trusted for model files, or None if it can.

    A trusted package is a third-party estimator's top-level import package (such as
    ``lightgbm``): not a dotted path, not part of Python's standard library, not tradeloom,
    and none of numpy, scipy and scikit-learn (which the fixed rules decide on).
    """
    if not _IDENTIFIER.match(package):
        return "expected a top-level package name such as lightgbm"
    if package in sys.stdlib_module_names or package == "builtins":
        return "part of Python's standard library, which a model never needs"
    if package == "tradeloom":
        return (
            "tradeloom itself: its classes open journals, files and exchange connections, "
            "and a model never needs one"
        )
    if package in CORE_PACKAGES:
        return (
            "covered by the built-in allow-list (scikit-learn's estimators and the numpy "
            "helpers they need); list only a third-party estimator's package"
        )
    return None


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, trusted: frozenset[str]) -> None:
        super().__init__(file)
        self._trusted = trusted

    def find_class(self, module: str, name: str) -> Any:
        full = f"{module}.{name}"
        if not _MODULE.match(module) or not _IDENTIFIER.match(name):
            raise RefusedGlobalError(full, "not a plain module and name")
        if (module, name) in HELPER_GLOBALS:
            return _lookup(module, name, full)
        top = module.split(".")[0]
        if top == "sklearn":
            return self._estimator_class(module, name, full)
        if top in self._trusted:
            return self._trusted_class(module, name, full, top)
        raise RefusedGlobalError(full, _outside(top, self._trusted))

    def _estimator_class(self, module: str, name: str, full: str) -> type:
        if _REFUSED_SKLEARN_PARTS.intersection(module.split(".")):
            raise RefusedGlobalError(full, "scikit-learn test helpers, datasets or tools")
        from sklearn.base import BaseEstimator

        obj = _lookup(module, name, full)
        if not (isinstance(obj, type) and issubclass(obj, BaseEstimator)):
            raise RefusedGlobalError(full, "not a scikit-learn estimator class")
        if obj.__module__ != module:  # a re-exported name: only where it is defined
            raise RefusedGlobalError(full, f"defined in {obj.__module__}")
        return obj

    def _trusted_class(self, module: str, name: str, full: str, top: str) -> type:
        parts = module.split(".")
        if {"tests", "testing", "conftest"}.intersection(parts):
            raise RefusedGlobalError(full, f"test helpers of {top}")
        obj = _lookup(module, name, full)
        if not isinstance(obj, type):
            raise RefusedGlobalError(full, f"not a class; only classes of {top} are trusted")
        if str(obj.__module__).split(".")[0] != top:
            raise RefusedGlobalError(full, f"a class of {obj.__module__}, not of {top}")
        return obj


def _lookup(module: str, name: str, full: str) -> Any:
    # Only the module is imported here; the name is read from it, never called.
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise RefusedGlobalError(full, "no such name") from None
    return found


def _outside(top: str, trusted: frozenset[str]) -> str:
    if top == "numpy":
        return "not one of the numpy helpers a model needs"
    if top == "scipy":
        return "no supported estimator's pickle names scipy"
    listed = f" ({', '.join(sorted(trusted))})" if trusted else ""
    return f"not from scikit-learn or a package the strategy file trusts{listed}"


def restricted_loads(data: bytes, *, trusted_packages: Iterable[str] = ()) -> Any:
    """Unpickle ``data`` allowing only the globals described in this module's docstring.

    Args:
        data: The pickle's bytes (already checked against their SHA-256).
        trusted_packages: Third-party estimator packages whose classes are allowed, as the
            strategy file lists them (``model.trusted_packages``); never taken from a
            file that travels with the model.

    Raises:
        ValueError: A package in ``trusted_packages`` cannot be trusted
            (`trusted_package_problem`).
        RefusedGlobalError: The pickle names a global the allow-list refuses.
        pickle.UnpicklingError, EOFError, ...: The bytes are not a valid pickle.
    """
    trusted = frozenset(trusted_packages)
    for package in sorted(trusted):
        problem = trusted_package_problem(package)
        if problem is not None:
            raise ValueError(f"cannot trust package '{package}': {problem}")
    return _RestrictedUnpickler(io.BytesIO(data), trusted).load()
