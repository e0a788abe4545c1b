"""Heavy libraries imported on first use, so that a command which never uses them starts fast.

``tradeloom validate`` imports every built-in plugin's module for its params model, and
those modules are written over pandas frames. Importing pandas (and pyarrow behind it)
is most of validate's start-up, yet validate never makes a frame. A module that needs
pandas only inside its functions writes::

    from tradeloom.lazy import pandas as pd

and ``pd`` is the real module for mypy and for every use: the first attribute read
(``pd.DataFrame``) imports pandas, and later reads go straight to its namespace. The
library is not in ``sys.modules`` until then, which is what the start-up tests check.

This is the lazy-loading pattern of the scientific Python stack (SPEC 1,
``lazy_loader``), without its registering a half-loaded module in ``sys.modules``: other
libraries that import pandas themselves get the ordinary import.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

__all__ = ["LazyModule", "pandas", "pyarrow", "pyarrow_parquet"]


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


if TYPE_CHECKING:
    import pandas as pandas
    import pyarrow as pyarrow
    import pyarrow.parquet as pyarrow_parquet
else:
    pandas = LazyModule("pandas")
    pyarrow = LazyModule("pyarrow")
    pyarrow_parquet = LazyModule("pyarrow.parquet")
