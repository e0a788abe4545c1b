"""What the built-in features share: the ``name`` key, column checks, frames."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, ClassVar, TypeVar

from pydantic import AfterValidator, Field

from tradeloom.domain import Bars
from tradeloom.plugins.component import BuildContext, ParamError, Params, bars_key
from tradeloom.plugins.protocols import Feature
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd
from tradeloom.suggestions import did_you_mean

__all__ = [
    "ColumnName",
    "OneColumn",
    "ReadsBars",
    "SingleColumnParams",
    "bars_key",
    "check_known_columns",
    "check_name",
    "check_new_columns",
    "column_frame",
    "new_columns",
    "prices",
    "series",
]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_name(value: str | None) -> str | None:
    """Return ``value`` if it may name a column (or is None).

    Raises:
        ValueError: It is not an identifier.
    """
    if value is not None and not _NAME.match(value):
        raise ValueError(
            "must start with a letter or _ and hold only letters, digits and _ "
            f"(e.g. rsi_fast); was '{value}'"
        )
    return value


ColumnName = Annotated[str | None, AfterValidator(check_name)]
"""The type of a ``name`` key: None, or an identifier that names a column (`check_name`)."""


class SingleColumnParams(Params):
    """Keys of a feature with one column: ``name`` renames that column."""

    name: ColumnName = Field(
        default=None, description="Column name instead of the default (e.g. rsi_fast)."
    )

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


_F = TypeVar("_F", bound=Feature)


def new_columns(feature: _F, ctx: BuildContext, key: str = "name") -> _F:
    """Return ``feature`` once `check_new_columns` accepts its columns (a builder's last step).

    Raises:
        ParamError: On ``key``, a column that an earlier feature already defines.
    """
    check_new_columns(feature.columns(), ctx, key)
    return feature


class ReadsBars:
    """Mixin of a built-in feature: it reads the bars' columns its class names in
    ``reads`` (`tradeloom.plugins.protocols.ReadsColumns`, which validation checks
    against the data: tests/plugins/features/test_feature_inputs.py proves every
    built-in names what it reads, by changing each column and seeing what moves)."""

    reads: ClassVar[tuple[str, ...]] = ()

    def input_columns(self) -> tuple[str, ...]:
        """Return the bars' columns it reads."""
        return self.reads


class OneColumn(ReadsBars):
    """Mixin of a feature dataclass with one column, its field ``column``: ``compute``
    returns the `values` a subclass computes (or the subclass overrides ``compute``)."""

    column: str

    def columns(self) -> list[str]:
        """Return the one column."""
        return [self.column]

    def compute(self, bars: Bars, features: pd.DataFrame) -> pd.DataFrame:
        """Return the one column, `values`, indexed like the bars."""
        return column_frame(bars, {self.column: self.values(bars, features)})

    def values(self, bars: Bars, features: pd.DataFrame) -> np.ndarray:
        """Return the column's values, one per bar; row t uses rows <= t only."""
        raise NotImplementedError


def check_known_columns(columns: Sequence[str], ctx: BuildContext, key: str) -> None:
    """Refuse a column that no earlier feature defines, suggesting the near miss.

    Raises:
        ParamError: On ``key``, naming every unknown column and the known ones.
    """
    known = ctx.feature_columns
    unknown = [column for column in columns if column not in known]
    if not unknown or not ctx.features_known:  # (an earlier feature's mistake hides them)
        return
    before = (
        f"defined before it: {', '.join(known)}" if known else "no feature is defined before it"
    )
    if len(unknown) == 1:
        raise ParamError(
            key, f"unknown feature '{unknown[0]}'; {before}{did_you_mean(unknown[0], known)}"
        )
    named = ", ".join(f"'{column}'{did_you_mean(column, known)}" for column in unknown)
    raise ParamError(key, f"unknown features {named}; {before}")


def prices(bars: Bars, column: str) -> np.ndarray:
    """Return a column of the bars as a C-contiguous float64 array (what the kernels take)."""
    return np.ascontiguousarray(bars.frame[column].to_numpy(dtype=np.float64))


def series(features: pd.DataFrame, column: str) -> np.ndarray:
    """Return an earlier feature's column as a C-contiguous float64 array."""
    return np.ascontiguousarray(features[column].to_numpy(dtype=np.float64))


def column_frame(bars: Bars, columns: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Return float64 columns as a frame indexed like the bars."""
    return pd.DataFrame(
        {name: np.asarray(values, dtype=np.float64) for name, values in columns.items()},
        index=bars.frame.index,
    )
