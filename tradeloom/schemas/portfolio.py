"""The portfolio limits (``risk.portfolio``): open positions, exposures, concentration,
group caps and the correlation limit.

The compiled core checks them after each position is sized, in the rank order of the
bar's candidates (`tradeloom.core.portfolio`), in every mode.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Annotated, Any

from pydantic import Field, model_validator

from tradeloom.bounds import MAX_NAME_LENGTH, MAX_WINDOW
from tradeloom.plugins.component import Params
from tradeloom.suggestions import did_you_mean

__all__ = ["MAX_CORRELATION_WINDOW", "CorrelationLimit", "PortfolioRisk", "unknown_group_symbols"]

MAX_CORRELATION_WINDOW = 10_000
"""Longest correlation window: the core keeps ``window`` returns of every symbol."""

_GroupName = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH)]
_Symbol = Annotated[str, Field(min_length=1)]


class CorrelationLimit(Params):
    """Refuse a candidate too correlated with a position held or accepted before it."""

    max: float = Field(
        gt=0,
        lt=1,
        description="Largest correlation of a candidate's returns with a held position's "
        "(or a candidate accepted before it this bar), signed by the two directions: a long "
        "against a short on correlated markets is a hedge and passes (0 < max < 1).",
    )
    window: int = Field(
        ge=3,
        le=MAX_CORRELATION_WINDOW,
        description="Close-to-close returns of consecutive bars the correlation is "
        "computed over, the last ones up to the bar (3 .. 10,000); it needs at least "
        "max(3, half the window) bars where both symbols have a return, else the pair "
        "passes.",
    )


class PortfolioRisk(Params):
    """Limits on the whole book, checked on each bar's entries and reversals in rank order.

    Weights are signed fractions of equity: a candidate's is its sized fraction, a held
    position's its value at the last close over the equity; a limit left out is not
    checked, and a value exactly at a limit passes.
    """

    max_open_positions: int | None = Field(
        default=None,
        ge=1,
        le=MAX_WINDOW,
        description="Most positions held at once, counting this bar's accepted entries "
        "(1 .. 1,000,000); an entry beyond it is refused MAX_OPEN_POSITIONS.",
    )
    max_gross_exposure: float | None = Field(
        default=None,
        gt=0,
        description="Largest sum of |weight| over every position after an entry "
        "(1.0 = the equity); MAX_GROSS_EXPOSURE.",
    )
    max_net_exposure: float | None = Field(
        default=None,
        gt=0,
        description="Largest |sum of weight| (longs minus shorts) after an entry; "
        "MAX_NET_EXPOSURE.",
    )
    max_weight: float | None = Field(
        default=None,
        gt=0,
        description="Largest |weight| of one position (concentration; 0.25 = a quarter of "
        "the equity); MAX_WEIGHT.",
    )
    groups: dict[_GroupName, Annotated[list[_Symbol], Field(min_length=1)]] = Field(
        default_factory=dict,
        max_length=1000,
        description="Named groups of symbols, {name: [symbols]}, each capped by "
        "max_group_exposure; a symbol is in one group at most.",
    )
    max_group_exposure: float | None = Field(
        default=None,
        gt=0,
        description="Largest sum of |weight| of a group's positions after an entry; "
        "GROUP_EXPOSURE (required with groups).",
    )
    correlation: CorrelationLimit | None = Field(
        default=None,
        description="The correlation limit (null: none); CORRELATION.",
    )

    @model_validator(mode="after")
    def _check_groups(self) -> PortfolioRisk:
        if self.groups and self.max_group_exposure is None:
            raise ValueError("groups need max_group_exposure, the cap of each group's exposure")
        if self.max_group_exposure is not None and not self.groups:
            raise ValueError("max_group_exposure needs groups: {name: [symbols]} to cap")
        seen: dict[str, str] = {}
        for name, symbols in self.groups.items():
            for symbol in symbols:
                if symbol in seen:
                    where = "twice" if seen[symbol] == name else f"and in {seen[symbol]!r}"
                    raise ValueError(
                        f"symbol {symbol!r} is in group {name!r} {where}; a symbol may be "
                        "in one group only"
                    )
                seen[symbol] = name
        return self

    def group_of(self, symbols: Sequence[str]) -> tuple[int, ...]:
        """Return each symbol's group index, in file order of the groups (-1: none)."""
        if not self.groups:
            return ()
        index = {s: k for k, members in enumerate(self.groups.values()) for s in members}
        return tuple(index.get(symbol, -1) for symbol in symbols)


def unknown_group_symbols(
    portfolio: PortfolioRisk, data: Mapping[Any, Any]
) -> Iterator[tuple[str, str]]:
    """Yield ``(key path, message)`` for each group symbol the data section does not list.

    The data section's ``symbols`` (or its single ``symbol``) are the universe; a data
    section with neither (a component that chooses its own) is not checked here.
    """
    listed = data.get("symbols")
    if not isinstance(listed, list):
        single = data.get("symbol")
        listed = [single] if isinstance(single, str) else None
    if listed is None:
        return
    known = [s for s in listed if isinstance(s, str)]
    for name, symbols in portfolio.groups.items():
        for k, symbol in enumerate(symbols):
            if symbol not in known:
                hint = did_you_mean(symbol, known)
                yield (
                    f"risk.portfolio.groups.{name}.{k}",
                    f"unknown symbol {symbol!r}{hint}; the data's symbols are "
                    f"{', '.join(repr(s) for s in known)}",
                )
