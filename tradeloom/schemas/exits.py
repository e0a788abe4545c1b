"""The exits that follow a position (``risk.trailing_stop``, ``risk.break_even``), the
cooldown after an exit (``risk.cooldown_bars``) and the time-of-day exit (``risk.exit_time``).

The compiled core runs them in every mode (`tradeloom.core.exits`); this module holds
the keys' shapes and reads ``exit_time``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Discriminator, Field, Tag, WithJsonSchema

from tradeloom.bounds import MAX_WINDOW
from tradeloom.plugins.component import Params

__all__ = [
    "EXIT_TIME_PATTERN",
    "ExitTime",
    "TrailingAtr",
    "TrailingStop",
    "check_exit_time",
    "exit_time_ns",
]

EXIT_TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
"""A time of day, ``HH:MM`` on the 24-hour clock (UTC)."""

_MINUTE_NS = 60_000_000_000


class TrailingAtr(Params):
    """A trailing stop ``multiple`` average true ranges away from the best price."""

    atr: int = Field(
        ge=1,
        le=MAX_WINDOW,
        description="Window of the average true range (Wilder's, as the atr feature "
        "computes it), in bars (1 .. 1,000,000); until it has that many bars after the "
        "first, the trailing stop waits.",
    )
    multiple: float = Field(
        gt=0,
        description="How many ATRs below a long's highest high since the entry (above a "
        "short's lowest low) the stop sits (3.0: a chandelier exit of 3 ATRs).",
    )


def _trailing_form(value: Any) -> str:
    return "an ATR distance" if isinstance(value, dict | TrailingAtr) else "a fraction"


TrailingStop = Annotated[
    Annotated[Annotated[float, Field(gt=0, lt=1)], Tag("a fraction")]
    | Annotated[TrailingAtr, Tag("an ATR distance")],
    Discriminator(_trailing_form),
]
"""``risk.trailing_stop``: a fraction of the best price, or ``{atr, multiple}``. A mapping
is read as the ATR form only, so that its errors are the ATR form's alone."""


def check_exit_time(text: str) -> str:
    """Return ``text`` if it is a time of day ``HH:MM``.

    Raises:
        ValueError: It is not, saying what is expected.
    """
    if re.match(EXIT_TIME_PATTERN, text) is None:
        raise ValueError(
            f"expected a UTC time of day HH:MM on the 24-hour clock (00:00 .. 23:59), was {text!r}"
        )
    return text


ExitTime = Annotated[
    str,
    AfterValidator(check_exit_time),
    WithJsonSchema({"type": "string", "pattern": EXIT_TIME_PATTERN}),
]
"""``risk.exit_time``: a time of day, ``HH:MM`` (UTC)."""


def exit_time_ns(text: str) -> int:
    """Return a validated ``HH:MM`` as nanoseconds since midnight."""
    hours, minutes = check_exit_time(text).split(":")
    return (int(hours) * 60 + int(minutes)) * _MINUTE_NS
