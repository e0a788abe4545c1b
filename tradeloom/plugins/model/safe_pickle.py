"""Unpickle a model file with an allow-list of the globals it may name.

A pickle runs code as it loads: every global it names is imported and may be called.
The registry's real protection is the SHA-256 checked before this runs (see
`tradeloom.plugins.model.loading`); this is the second line, for a file whose hash was
taken from a place an attacker could also have edited (a run directory's index).

It is not a sandbox. It refuses every global outside numpy, scipy, scikit-learn and the
estimator's own package, and inside them everything but classes (and the few functions
their pickles reconstruct arrays and random states with), from modules that do not
read or write files. What the allowed classes do when built is trusted.
"""

from __future__ import annotations

import importlib
import io
import pickle
import sys
from typing import Any

__all__ = ["BASE_PACKAGES", "RefusedGlobalError", "restricted_loads"]

BASE_PACKAGES = frozenset({"numpy", "scipy", "sklearn"})
"""Top-level packages whose classes a model pickle may name."""

_BUILTINS = {
    ("builtins", name)
    for name in (
        "bool",
        "bytearray",
        "bytes",
        "complex",
        "dict",
        "float",
        "frozenset",
        "int",
        "list",
        "object",
        "range",
        "set",
        "slice",
        "str",
        "tuple",
    )
} | {
    ("copyreg", "_reconstructor"),
    ("collections", "OrderedDict"),
    ("collections", "defaultdict"),
}
"""Globals outside the packages that pickles of numpy arrays and estimators may need."""

_RECONSTRUCTORS = frozenset(
    {
        "_reconstruct",  # numpy.ndarray
        "scalar",  # numpy scalars
        "_frombuffer",  # numpy arrays pickled with protocol 5
        "__randomstate_ctor",  # numpy.random state objects
        "__bit_generator_ctor",
        "__generator_ctor",
        "newObj",  # scikit-learn's Cython trees and distance metrics
    }
)
"""Functions (not classes) of the packages that their pickles call to rebuild objects."""

_REFUSED_MODULE_PARTS = frozenset(
    {
        "_datasource",
        "_npyio_impl",
        "_pytesttester",
        "_testing",
        "conftest",
        "ctypeslib",
        "datasets",
        "distutils",
        "externals",
        "f2py",
        "io",
        "npyio",
        "testing",
        "tests",
    }
)
"""Module name parts under which nothing is allowed: file I/O, downloads, test helpers."""

_REFUSED_NAMES = frozenset({"memmap", "DataSource", "NpzFile"})
"""Classes of the packages whose construction opens or creates a file."""


class RefusedGlobalError(pickle.UnpicklingError):
    """The pickle names a global the allow-list refuses.

    Attributes:
        name: ``module.name`` of the refused global.
    """

    def __init__(self, name: str, why: str) -> None:
        self.name = name
        super().__init__(f"refused global {name} ({why})")


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, packages: frozenset[str]) -> None:
        super().__init__(file)
        self._packages = packages

    def find_class(self, module: str, name: str) -> Any:
        full = f"{module}.{name}"
        if (module, name) in _BUILTINS:
            return super().find_class(module, name)
        parts = module.split(".")
        if parts[0] not in self._packages:
            raise RefusedGlobalError(full, f"not in {', '.join(sorted(self._packages))}")
        if _REFUSED_MODULE_PARTS.intersection(parts) or name in _REFUSED_NAMES:
            raise RefusedGlobalError(full, "file access or test helpers")
        if "." in name:
            raise RefusedGlobalError(full, "a nested attribute")
        # Only the module is imported here; the name is read from it, never called.
        obj = getattr(importlib.import_module(module), name, None)
        if obj is None:
            raise RefusedGlobalError(full, "no such name")
        if isinstance(obj, type):
            owner = str(getattr(obj, "__module__", "")).split(".")[0]
            if owner not in self._packages:
                raise RefusedGlobalError(full, f"a class of {owner or 'unknown'}")
            return obj
        if name in _RECONSTRUCTORS or name.startswith("__pyx_unpickle_"):
            return obj
        raise RefusedGlobalError(full, "not a class")


def restricted_loads(data: bytes, *, extra_package: str | None = None) -> Any:
    """Unpickle ``data`` allowing only the globals described in this module's docstring.

    Args:
        data: The pickle's bytes (already checked against their SHA-256).
        extra_package: The estimator's own top-level package (for a third-party estimator);
            ignored when it is part of Python's standard library or ``builtins``, which
            would open the allow-list to ``os`` or ``subprocess``.

    Raises:
        RefusedGlobalError: The pickle names a global the allow-list refuses.
        pickle.UnpicklingError, EOFError, ValueError, ...: The bytes are not a valid pickle.
    """
    packages = set(BASE_PACKAGES)
    if extra_package and extra_package not in sys.stdlib_module_names:
        packages.add(extra_package)
    packages.discard("builtins")
    return _RestrictedUnpickler(io.BytesIO(data), frozenset(packages)).load()
