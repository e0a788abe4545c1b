"""What the built-in features share: the ``name`` key, column checks, frames."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from tradeloom.domain import Bars
from tradeloom.plugins.component import BuildContext, ParamError, Params

__all__ = ["SingleColumnParams", "check_new_columns", "column_frame", "prices"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SingleColumnParams(Params):
    """Keys of a feature with one column: ``name`` renames that column."""

    name: str | None = Field(
        default=None, description="Column name instead of the default (e.g. rsi_fast)."
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str | None) -> str | None:
        if value is not None and not _NAME.match(value):
            raise ValueError(
                "must start with a letter or _ and hold only letters, digits and _ "
                f"(e.g. rsi_fast); was '{value}'"
            )
        return value

    def column(self, default: str) -> str:
        """Return ``name`` if given, else ``default``."""
        return self.name or default


def check_new_columns(columns: Iterable[str], ctx: BuildContext, key: str) -> None:
    """Refuse a column that an earlier feature already defines.

    Raises:
        ParamError: On ``key``, naming the column and the remedy.
    """
    for column in columns:
        if column in ctx.feature_columns:
            raise ParamError(
                key,
                f"column '{column}' is already defined by an earlier feature; "
                "give this one another name with name:",
            )


def prices(bars: Bars, column: str) -> np.ndarray:
    """Return a column of the bars as a float64 array."""
    return bars.frame[column].to_numpy(dtype=np.float64)


def column_frame(bars: Bars, columns: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Return float64 columns as a frame indexed like the bars."""
    return pd.DataFrame(
        {name: np.asarray(values, dtype=np.float64) for name, values in columns.items()},
        index=bars.frame.index,
    )
