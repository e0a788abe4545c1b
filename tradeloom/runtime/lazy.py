"""Heavy libraries imported on first use, so that a command which never uses them starts fast.

``tradeloom validate`` imports every built-in plugin's module for its params model, and
those modules are written over pandas frames. Importing pandas (and pyarrow behind it)
is most of validate's start-up, yet validate never makes a frame. A module that needs
pandas only inside its functions writes::

    from tradeloom.runtime.lazy import pandas as pd

and ``pd`` is the real module for mypy and for every use: the first attribute read
(``pd.DataFrame``) imports pandas, and later reads go straight to its namespace. The
library is not in ``sys.modules`` until then, which is what the start-up tests check.

numpy is read the same way (``from tradeloom.runtime.lazy import numpy as np``) by the
modules whose components validate builds (their data sources, features, models and
monitors make no array until they run): numpy's import was a quarter of a warm
validate's. A module that does so computes nothing with numpy at import (its constants
are Python values, its array types strings under ``TYPE_CHECKING``); a kernel's
module may too: `tradeloom.kernels.jit` puts numpy itself in the module's globals before
numba compiles one of its kernels (numba types a global by its value).

This is the lazy-loading pattern of the scientific Python stack (SPEC 1,
``lazy_loader``), without its registering a half-loaded module in ``sys.modules``: other
libraries that import pandas themselves get the ordinary import.

A module's logger is one of these too (`logger`): structlog, with the rich tracebacks
and asyncio it imports, took 80 ms of CPU of every command, and most commands log
nothing (``--log-level warning``). structlog is imported at a logger's first call, and
configured as it is imported (`tradeloom.engine.logs.configure_logging`).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

__all__ = [
    "LazyModule",
    "exports",
    "logger",
    "numpy",
    "pandas",
    "pyarrow",
    "pyarrow_parquet",
    "wait_for_structlog",
]


class LazyModule(ModuleType):
    """A module that imports ``name`` when one of its attributes is first read."""

    def __init__(self, name: str) -> None:
        super().__init__(name)

    def __getattr__(self, attribute: str) -> Any:
        # only called for names not yet in this object's namespace: the first read
        module = importlib.import_module(self.__name__)
        self.__dict__.update(module.__dict__)
        return getattr(module, attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self.__name__!r}>"


def exports(package: str, names: dict[str, str]) -> Callable[[str], Any]:
    """Return a package's module ``__getattr__`` (PEP 562) that imports each of
    ``names`` from its submodule at its first read.

    A built-in plugin package re-exports its modules' names (``from
    tradeloom.plugins.model import SklearnParams``) without importing those modules when
    the package is imported, as registering its components does::

        __getattr__ = exports(__name__, {"SklearnParams": "sklearn_model"})

    Args:
        package: The package's name (``__name__``).
        names: Each exported name and the submodule, relative to ``package``, that
            defines it.
    """

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    return __getattr__


_LEVELS = {
    "debug": 10,
    "info": 20,
    "warning": 30,
    "warn": 30,
    "error": 40,
    "exception": 40,
    "critical": 50,
    "fatal": 50,
}
"""structlog's level methods and the level each logs at (its filtering bound loggers')."""

_waiting_level: int | None = None
"""The level structlog will be configured with when it is imported (`wait_for_structlog`);
None once it is imported, or where no configuration waits."""


def wait_for_structlog(level: int | None) -> None:
    """Say which level structlog will be configured with at its import (None: no
    configuration waits, or structlog is imported): `logger`'s calls below it then
    return at once, as structlog's filtering logger would, without importing it."""
    global _waiting_level
    _waiting_level = level


def _nothing(*args: Any, **kwargs: Any) -> None:
    return None


class _LazyLogger:
    """structlog's logger ``name`` (with ``context`` bound), got at its first call that
    logs."""

    __slots__ = ("_context", "_logger", "_name")

    def __init__(self, name: str, context: dict[str, Any] | None = None) -> None:
        self._name = name
        self._context = context
        self._logger: Any = None

    def bind(self, **values: Any) -> Any:
        """Return this logger with ``values`` bound (``BoundLogger.bind``)."""
        if self._logger is None and "structlog" not in sys.modules:
            return _LazyLogger(self._name, {**(self._context or {}), **values})
        return self._resolved().bind(**values)

    def __getattr__(self, attribute: str) -> Any:
        # only called for names that are not slots: a method (info, warning, ...)
        if self._logger is None:
            level = _waiting_level
            if (
                level is not None
                and _LEVELS.get(attribute, level) < level
                and "structlog" not in sys.modules
            ):
                return _nothing  # filtered out by the configuration that waits
        return getattr(self._resolved(), attribute)

    def _resolved(self) -> Any:
        logger = self._logger
        if logger is None:
            import structlog

            # structlog's own lazy proxy: it reads the configuration at each call, as
            # ``structlog.get_logger(name)`` at import did; bound, the logger the
            # configuration makes then, as ``.bind`` on that proxy made it
            logger = structlog.get_logger(self._name)
            if self._context is not None:
                logger = logger.bind(**self._context)
            self._logger = logger
        return logger

    def __repr__(self) -> str:
        return f"<lazy logger {self._name!r}>"


def logger(name: str) -> Any:
    """Return the structlog logger ``name`` (``structlog.get_logger(name)``), without
    importing structlog until it logs a line.

    A module writes ``_log = logger("tradeloom.run")`` where it wrote
    ``_log = structlog.get_logger("tradeloom.run")``; the lines it logs are the same.
    ``bind`` returns such a logger too; a call below the level that waits for structlog's
    import (`wait_for_structlog`) returns at once, as structlog's filtering logger does.
    """
    return _LazyLogger(name)


if TYPE_CHECKING:
    import numpy as numpy
    import pandas as pandas
    import pyarrow as pyarrow
    import pyarrow.parquet as pyarrow_parquet
else:
    numpy = LazyModule("numpy")
    pandas = LazyModule("pandas")
    pyarrow = LazyModule("pyarrow")
    pyarrow_parquet = LazyModule("pyarrow.parquet")
