"""The ``health:`` section: rules that turn a monitor's metric into an action.

Each rule watches one metric of one monitor, ``<monitor name>.<metric>``, and acts when
it goes above or below a threshold. What exists (the monitor, its metric, a model
that can retrain) depends on the installed plugins and the built strategy; that is
checked by `tradeloom.engine.health.check_health_rules` when the strategy is built.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tradeloom.domain import HealthActionKind
from tradeloom.plugins.component import bars_key

__all__ = ["HealthRule"]


class HealthRule(BaseModel):
    """One rule: when ``metric`` goes above (or below) a threshold, take ``action``.

    Edge-triggered: the rule fires at the bar its condition becomes true, then not again
    until the condition has been false at some bar (a NaN metric counts as false) and
    ``cooldown`` bars have passed since it fired.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str = Field(
        description="<monitor name>.<metric>, e.g. calibration.brier or feature_drift.psi_max."
    )
    above: float | None = Field(
        default=None, allow_inf_nan=False, description="Fire when the metric goes above this."
    )
    below: float | None = Field(
        default=None, allow_inf_nan=False, description="Fire when the metric goes below this."
    )
    action: HealthActionKind = Field(
        description="warn: journal and log it; retrain: train a new fold at this bar's close "
        "on past data; halt: close the position and stop trading (HEALTH_HALT)."
    )
    cooldown: int = bars_key(0, 0, "Bars after firing before the rule may fire again", strict=False)

    @field_validator("metric")
    @classmethod
    def _monitor_and_metric(cls, value: str) -> str:
        monitor, dot, metric = value.partition(".")
        if not (monitor and dot and metric):
            raise ValueError(
                f"expected '<monitor name>.<metric>' such as 'calibration.brier', was '{value}'"
            )
        return value

    @model_validator(mode="after")
    def _one_threshold(self) -> Self:
        if (self.above is None) == (self.below is None):
            given = "both" if self.above is not None else "neither"
            raise ValueError(f"set exactly one of above and below, was {given}")
        return self

    @property
    def condition(self) -> Literal["above", "below"]:
        """Return ``above`` or ``below``, whichever the rule sets."""
        return "above" if self.above is not None else "below"

    @property
    def threshold(self) -> float:
        """Return the rule's threshold."""
        value = self.above if self.above is not None else self.below
        assert value is not None  # one of them is set (validated)
        return value
