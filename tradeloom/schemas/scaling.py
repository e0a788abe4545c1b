"""Scaling in and out (``risk.scaling``): partial take-profits, pyramiding and DCA adds.

The compiled core applies them in every mode (`tradeloom.core.scaling`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

from pydantic import Field, model_validator

from tradeloom.core.layout import MAX_TP_LEVELS
from tradeloom.plugins.component import Params

__all__ = ["ScaleIn", "Scaling", "TakeProfitLevel", "scaling_problems"]


class TakeProfitLevel(Params):
    """One partial take-profit: a stop order resting at ``gain`` from the entry price."""

    gain: float = Field(
        gt=0,
        description="Move in the position's favour from its average entry price that "
        "triggers the level, during the bar (0.02 = 2%).",
    )
    close: float = Field(
        gt=0,
        le=1,
        description="Share of the trade's largest size so far the level closes (0.5 = "
        "half); a rest that would be dust is closed with it.",
    )


class ScaleIn(Params):
    """Adds to a held position, each sized by the sizing rule for the signal."""

    kind: Literal["pyramid", "dca"] = Field(
        description="pyramid: add when the close moved step in the position's favour "
        "from the last leg; dca: when it moved step against it."
    )
    step: float = Field(
        gt=0,
        lt=1,
        description="Move of the close from the last leg's price (the entry's, then each "
        "add's decision close) that lets a signal in the held direction add (0.01 = 1%).",
    )
    max_adds: int = Field(ge=1, le=100, description="Most adds a trade takes (1 .. 100).")
    max_position: float = Field(
        gt=0,
        description="Cap on the whole position after an add, as a fraction of equity (as "
        "the sizing's fraction); an add is cut to the room left, none left: SCALE_IN_CAP.",
    )


class Scaling(Params):
    """Partial take-profits and adds; both off by default."""

    take_profit_levels: list[TakeProfitLevel] = Field(
        default_factory=list,
        max_length=MAX_TP_LEVELS,
        description="Partial take-profits, gains ascending (at most 8); their closes add "
        "up to at most 1. Each is taken once per trade (TAKE_PROFIT_PARTIAL).",
    )
    scale_in: ScaleIn | None = Field(
        default=None,
        description="Pyramiding or DCA: a signal in the held direction adds to the "
        "position (SCALE_IN); null: it is a hold.",
    )

    @model_validator(mode="after")
    def _check_levels(self) -> Scaling:
        gains = [level.gain for level in self.take_profit_levels]
        for k in range(1, len(gains)):
            if not gains[k] > gains[k - 1]:
                raise ValueError(
                    f"take_profit_levels: gains must rise level by level, level {k + 1} "
                    f"has gain {gains[k]:g} after {gains[k - 1]:g}"
                )
        total = sum(level.close for level in self.take_profit_levels)
        if total > 1.0 + 1e-9:
            raise ValueError(
                f"take_profit_levels: the closes add up to at most 1 (the whole position), "
                f"were {total:g}"
            )
        return self


def scaling_problems(
    scaling: Scaling,
    take_profit: float | None,
    portfolio: bool,
    document: Mapping[Any, Any],
) -> Iterator[tuple[str, str]]:
    """Yield ``(key path, message)`` for each setting ``risk.scaling`` cannot go with.

    Args:
        scaling: ``risk.scaling``.
        take_profit: ``risk.take_profit``: every level's gain must be below it.
        portfolio: ``risk.portfolio`` or ``signal.top_k`` is set: adds are not ranked.
        document: The whole file (``execution.orders.stops``, whatever the venue's kind).
    """
    levels = scaling.take_profit_levels
    for k, level in enumerate(levels):
        if take_profit is not None and level.gain >= take_profit:
            yield (
                f"risk.scaling.take_profit_levels.{k}.gain",
                f"must be below risk.take_profit ({take_profit:g}), which closes the rest; "
                f"was {level.gain:g}",
            )
    if scaling.scale_in is not None and portfolio:
        yield (
            "risk.scaling.scale_in",
            "not available with risk.portfolio or signal.top_k: adds are neither ranked nor "
            "checked against the portfolio limits",
        )
    execution = document.get("execution")
    orders = execution.get("orders") if isinstance(execution, Mapping) else None
    if levels and isinstance(orders, Mapping) and orders.get("stops") == "bar_close":
        yield (
            "risk.scaling.take_profit_levels",
            "not available with execution.orders.stops: bar_close: each level is a stop "
            "order resting at the venue (use stops: exchange)",
        )
