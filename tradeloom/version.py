"""The package's version, in a module of its own: every layer may read it.

`tradeloom/__init__.py` re-exports it with the Python API (`tradeloom.api`), which sits
above every other layer; a module that needs the version imports it from here, so that it
never depends on the package's public face.

The version comes from git (hatch-vcs, pyproject.toml's ``[tool.hatch.version]``): each
build and each editable install writes it to ``tradeloom/_version.py`` (not in git). A
release is a tag ``vX.Y.Z``; a build between tags carries its commit
(``0.1.dev592+gafdcb69``), so the journals, model files, the Prometheus info metric and the
Dask workers' check, which all stamp this one ``__version__``, tell two builds apart. An
editable install keeps the version of the commit it was installed at until it is installed
again. A tree that no build has touched (``PYTHONPATH=clone``) reads the fallback.
"""

from __future__ import annotations

__all__ = ["__version__"]

FALLBACK = "0.1.dev0"
"""The version of a source tree without ``_version.py``: pyproject.toml's fallback-version."""

try:
    from tradeloom._version import __version__
except ImportError:  # never built nor installed
    __version__ = FALLBACK
