"""tradeloom: run AI trading strategies written as YAML.

The Python API (`tradeloom.api`) is imported on first use, so that ``import tradeloom``
stays fast and prints nothing::

    import tradeloom

    run = tradeloom.load("strategies/btc_rf.yaml").backtest()
    run.stats, run.trades, run.plot()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tradeloom.version import __version__

if TYPE_CHECKING:
    from tradeloom.api import ConfigError, Run, Strategy, UserError, load, open_run

__all__ = ["ConfigError", "Run", "Strategy", "UserError", "__version__", "load", "open_run"]

_API = frozenset(__all__) - {"__version__"}


def __getattr__(name: str) -> Any:
    # PEP 562: the API module (and pandas behind it) loads when a name of it is first read
    if name in _API:
        from tradeloom import api

        return getattr(api, name)
    raise AttributeError(f"module 'tradeloom' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
