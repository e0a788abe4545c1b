"""The plugin module: what tradeloom registers through the entry point ``example``.

``pyproject.toml`` points the entry-point group ``tradeloom`` here. tradeloom imports
this module at start-up and registers it: every function below named ``tradeloom_*``
must carry ``@hookimpl`` and be one of tradeloom's hooks (a misspelt
name fails at start-up, it is never ignored).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from tradeloom.plugin import Component, Halt, RunInfo, hookimpl

from tradeloom_example import future_return, max_volatility, range_position

__all__ = ["tradeloom_components", "tradeloom_halt", "tradeloom_run_finished"]

_log = structlog.get_logger("tradeloom_example")


@hookimpl
def tradeloom_components() -> list[Component]:
    """Return the components of this package: two features and one risk rule."""
    return [
        Component(
            "features",
            "range_position",
            range_position.RangePositionParams,
            range_position.build,
            "where the close sits in the high-low range of the last window bars, 0..1",
        ),
        Component(
            "features",
            "future_return",
            future_return.FutureReturnParams,
            future_return.build,
            "LEAKY on purpose: the next bars' log return, for tradeloom check-lookahead",
        ),
        Component(
            "risk",
            "max_volatility",
            max_volatility.MaxVolatilityParams,
            max_volatility.build,
            "block new exposure while a volatility feature is above a limit",
        ),
    ]


# Observers: they see events and never change a decision; whatever they return is
# ignored. An implementation takes only the arguments it needs (here, no ``run``).
@hookimpl
def tradeloom_halt(halt: Halt) -> None:
    """Log a halt of trading."""
    _log.warning("example_halt_seen", bar=halt.bar, code=halt.code, message=halt.message)


@hookimpl
def tradeloom_run_finished(run: RunInfo, metrics: Mapping[str, Any]) -> None:
    """Log how often this package's risk rule blocked an intent during the run."""
    rejections = metrics.get("rejections") or {}
    _log.info(
        "example_run_finished",
        run_id=run.run_id,
        max_volatility_rejections=int(rejections.get(max_volatility.CODE, 0)),
    )
