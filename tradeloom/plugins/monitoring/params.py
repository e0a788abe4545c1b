"""The keys every built-in monitor shares: its name, and a rolling window with a minimum."""

from __future__ import annotations

from typing import Any, Self

from pydantic import Field, model_validator

from tradeloom.plugins.component import Params, bars_key

__all__ = [
    "MONITOR_NAME_PATTERN",
    "MonitorParams",
    "WindowParams",
    "min_samples_field",
    "window_field",
]

MONITOR_NAME_PATTERN = r"^[A-Za-z0-9_-]+$"
"""A monitor's name: no dot, since a health rule's metric is ``<monitor name>.<metric>``."""


class MonitorParams(Params):
    """Keys of every built-in monitor."""

    name: str | None = Field(
        default=None,
        pattern=MONITOR_NAME_PATTERN,
        description="The monitor's name in health rules (<name>.<metric>) and in "
        "metrics.json (default: its kind); two monitors may not share one.",
    )


def window_field(default: int, what: str) -> Any:
    """Return a monitor's ``window`` field: ``what`` it holds, 10 .. `MAX_WINDOW` of them.

    A monitor's params model redeclares ``window`` through it to change the default or
    say what the window holds; the bounds, and the description's statement of them, stay
    the ones every monitor has.
    """
    return bars_key(default, 10, what, strict=False)


def min_samples_field(default: int, what: str, *, least: int = 1) -> Any:
    """Return a monitor's ``min_samples`` field: ``what`` it needs, ``least`` ..
    `MAX_WINDOW` of them (`window_field` says why)."""
    return bars_key(default, least, what, strict=False)


class WindowParams(MonitorParams):
    """A monitor over the last ``window`` observations, silent before ``min_samples``."""

    window: int = window_field(500, "Observations in the rolling window")
    min_samples: int = min_samples_field(100, "Observations needed before a metric has a value")

    @model_validator(mode="after")
    def _min_samples_fit_window(self) -> Self:
        if self.min_samples > self.window:
            raise ValueError(
                f"min_samples must be <= window, was {self.min_samples} > {self.window}"
            )
        return self
