"""The ``lags`` feature: earlier features' values from k bars ago."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import numpy as np
import pandas as pd
from pydantic import BeforeValidator, Field, WithJsonSchema, field_validator

from tradeloom.domain import Bars
from tradeloom.plugins.component import BuildContext, ParamError, Params
from tradeloom.plugins.features._base import check_new_columns, column_frame
from tradeloom.plugins.registry import did_you_mean

__all__ = ["Lags", "LagsParams", "build_lags", "lag"]

_Column = Annotated[str, Field(min_length=1)]
_Lag = Annotated[int, Field(ge=1, strict=True)]


def _column_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


def _lag_list(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ValueError(f"must be n >= 1 (lags 1..n) or a list of lags >= 1; was {value}")
        return list(range(1, value + 1))
    return value


# Validation sees one list type (one clear error, not one per member of a union);
# editors see both spellings.
_OF_SCHEMA = {
    "anyOf": [
        {"type": "string", "minLength": 1},
        {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
    ]
}
_LAGS_SCHEMA = {
    "anyOf": [
        {"type": "integer", "minimum": 1},
        {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1},
    ]
}


class LagsParams(Params):
    """Keys of ``lags``; the columns are ``{column}_lag_{k}`` for each column and lag.

    ``of`` may be one column or a list; ``lags`` a list of lags or ``n`` for 1..n.
    Both are stored as lists.
    """

    of: Annotated[list[_Column], BeforeValidator(_column_list), WithJsonSchema(_OF_SCHEMA)] = Field(
        description="Feature column(s) defined earlier in the features list."
    )
    lags: Annotated[list[_Lag], BeforeValidator(_lag_list), WithJsonSchema(_LAGS_SCHEMA)] = Field(
        description="Lags in bars: a list such as [1, 2, 5], or n for 1..n."
    )

    @field_validator("of")
    @classmethod
    def _check_of(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must name at least one feature column")
        if len(set(value)) != len(value):
            raise ValueError(f"must not name a column twice; was {value}")
        return value

    @field_validator("lags")
    @classmethod
    def _check_lags(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("must hold at least one lag")
        if len(set(value)) != len(value):
            raise ValueError(f"must not repeat a lag; was {value}")
        return value


def lag(values: np.ndarray, k: int) -> np.ndarray:
    """Return ``values`` shifted down by ``k`` rows; NaN for the first ``k``."""
    out = np.full(len(values), np.nan)
    if len(values) > k:
        out[k:] = values[:-k]
    return out


@dataclass(frozen=True)
class Lags:
    """Compute lagged copies of earlier feature columns.

    Attributes:
        sources: Columns to lag.
        steps: Lags in bars.
    """

    sources: tuple[str, ...]
    steps: tuple[int, ...]

    def columns(self) -> list[str]:
        """Return ``{column}_lag_{k}``, column by column, lag by lag."""
        return [f"{column}_lag_{k}" for column in self.sources for k in self.steps]

    def compute(self, bars: Bars, features: pd.DataFrame) -> pd.DataFrame:
        """Return the lagged columns; row t uses row t - k of an earlier feature."""
        out: dict[str, np.ndarray] = {}
        for column in self.sources:
            values = features[column].to_numpy(dtype=np.float64)
            for k in self.steps:
                out[f"{column}_lag_{k}"] = lag(values, k)
        return column_frame(bars, out)


def build_lags(params: LagsParams, ctx: BuildContext) -> Lags:
    """Return the feature.

    Raises:
        ParamError: On ``of``: a column that no earlier feature defines, or a lagged
            column that an earlier feature already defines.
    """
    known = ctx.feature_columns
    unknown = [column for column in params.of if column not in known]
    if unknown:
        raise ParamError("of", _unknown_message(unknown, known))
    feature = Lags(tuple(params.of), tuple(params.lags))
    check_new_columns(feature.columns(), ctx, "of")
    return feature


def _unknown_message(unknown: list[str], known: tuple[str, ...]) -> str:
    before = (
        f"defined before it: {', '.join(known)}" if known else "no feature is defined before it"
    )
    if len(unknown) == 1:
        return f"unknown feature '{unknown[0]}'; {before}{did_you_mean(unknown[0], known)}"
    named = ", ".join(f"'{column}'{did_you_mean(column, known)}" for column in unknown)
    return f"unknown features {named}; {before}"
