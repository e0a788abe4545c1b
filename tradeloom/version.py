"""The package's version, in a module of its own: every layer may read it.

`tradeloom/__init__.py` re-exports it with the Python API (`tradeloom.api`), which sits
above every other layer; a module that needs the version imports it from here, so that it
never depends on the package's public face.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
