"""Risk rule ``max_volatility``: no new exposure while a volatility feature is too high.

The rule reads one feature column at the bar's close (``volatility_24``, say) and
blocks every intent that opens or grows a position while the value is above
``limit``. Exits always pass: the engine asks a rule only about intents that increase
exposure, and the rule checks that flag too. It never halts trading.

A value that is not known yet (NaN, during the feature's warm-up) blocks as well: a
risk rule that cannot tell whether its limit holds says no.
"""

from __future__ import annotations

import math

from pydantic import Field
from tradeloom.plugin import (
    BuildContext,
    Halt,
    OrderIntent,
    ParamError,
    Params,
    Rejection,
    RiskContext,
    did_you_mean,
)

__all__ = ["CODE", "MaxVolatility", "MaxVolatilityParams", "build"]

CODE = "MAX_VOLATILITY"
"""The reason code of this rule's rejections."""


class MaxVolatilityParams(Params):
    """Keys of a ``risk.rules`` entry with ``kind: max_volatility``."""

    feature: str = Field(min_length=1, description="Feature column to watch, e.g. volatility_24.")
    limit: float = Field(gt=0, description="Block new exposure while the column is above this.")


class MaxVolatility:
    """Block exposure-increasing intents while ``feature`` is above ``limit``.

    Args:
        params: The validated keys.
    """

    def __init__(self, params: MaxVolatilityParams) -> None:
        self.feature = params.feature
        self.limit = params.limit

    def check(self, intent: OrderIntent, context: RiskContext) -> Rejection | None:
        """Return MAX_VOLATILITY when the column is above the limit (or not known yet)."""
        if not intent.increases_exposure:
            return None
        value = float(context.features[self.feature])
        if math.isnan(value):
            message = f"{self.feature} is not known yet (NaN), limit={self.limit:g}"
        elif value > self.limit:
            message = f"{self.feature}={value:.6g} > limit={self.limit:g}"
        else:
            return None
        return Rejection(
            bar=intent.bar,
            timestamp=intent.timestamp,
            code=CODE,
            message=message,
            values={self.feature: value, "limit": self.limit},
        )

    def on_bar(self, context: RiskContext) -> Halt | None:
        """Never halt: this rule only blocks new exposure."""
        return None


def build(params: MaxVolatilityParams, ctx: BuildContext) -> MaxVolatility:
    """Build the rule, once the strategy's feature columns are known.

    Raises:
        ParamError: ``feature`` names no feature column of the strategy.
    """
    if params.feature not in ctx.feature_columns:
        listed = ", ".join(ctx.feature_columns) or "none"
        raise ParamError(
            "feature",
            f"no feature column '{params.feature}'"
            f"{did_you_mean(params.feature, ctx.feature_columns)}; columns: {listed}",
        )
    return MaxVolatility(params)
