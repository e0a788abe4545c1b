"""The reference libraries tests compare tradeloom with, imported at their first use.

Every pytest-xdist worker imports every test module to collect it, whatever tests it then
runs: a module-level ``import vectorbt`` cost each worker 2.1 s of CPU, quantstats 0.8 s,
backtesting.py 0.4 s, for tests that run on one worker. A module writes
``vbt = Reference("vectorbt")`` instead; the library is imported when a test reads a
public attribute (``vbt.Portfolio``). Private names are refused without importing:
pytest reads some (``_pytestfixturefunction``...) of every module-level object while it
collects, which `tradeloom.runtime.lazy.LazyModule` would answer by importing.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any

import pytest

__all__ = ["ON_VECTORBTS_WORKER", "Reference", "package_folder"]

ON_VECTORBTS_WORKER = pytest.mark.xdist_group("vectorbt")
"""The mark of every test that runs vectorbt: they share one worker. vectorbt compiles
its simulators uncached (they take functions) at their first call in a process, and the
portfolio's records and accessors with them: `test_reference_accounting`,
`test_dust`'s and `test_fill_sequence`'s comparisons took 10.5, 12.7 and 5.3 s of CPU
each in a process of their own, 17.6 s in one."""


class Reference:
    """The module ``name``, imported when one of its public attributes is first read."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("_"):
            raise AttributeError(attribute)
        return getattr(importlib.import_module(self._name), attribute)

    def __repr__(self) -> str:
        return f"<reference library {self._name!r}>"


def package_folder(name: str) -> Path | None:
    """Return the folder of the installed package ``name`` (without importing it), or None."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent
