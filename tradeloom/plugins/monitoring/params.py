"""The keys every built-in monitor shares: its name, and a rolling window with a minimum."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from tradeloom.bounds import MAX_WINDOW
from tradeloom.plugins.component import Params

__all__ = ["MONITOR_NAME_PATTERN", "MonitorParams", "WindowParams"]

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


class WindowParams(MonitorParams):
    """A monitor over the last ``window`` observations, silent before ``min_samples``."""

    window: int = Field(
        default=500,
        ge=10,
        le=MAX_WINDOW,
        description="Observations in the rolling window (10 .. 1,000,000).",
    )
    min_samples: int = Field(
        default=100,
        ge=1,
        le=MAX_WINDOW,
        description="Observations needed before a metric has a value (1 .. 1,000,000).",
    )

    @model_validator(mode="after")
    def _min_samples_fit_window(self) -> Self:
        if self.min_samples > self.window:
            raise ValueError(
                f"min_samples must be <= window, was {self.min_samples} > {self.window}"
            )
        return self
