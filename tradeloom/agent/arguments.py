"""The tools' arguments: one pydantic model per tool, strict, each mistake one line."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = [
    "Backtest",
    "CheckLookahead",
    "LivePromote",
    "LiveRun",
    "LiveStart",
    "LiveSwap",
    "Nothing",
    "RunArg",
    "Sweep",
    "Tables",
    "Validate",
    "WriteStrategy",
    "one_line",
]

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")
Path = Annotated[str, Field(min_length=1, max_length=400, description="a path in the workspace")]
Reason = Annotated[str, Field(min_length=1, max_length=300, description="why, one line")]


class _Arguments(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Nothing(_Arguments):
    """No arguments."""


class Validate(_Arguments):
    """A strategy file of the workspace, or a strategy's text (exactly one)."""

    path: Path | None = None
    text: Annotated[str, Field(max_length=256_000)] | None = None


class WriteStrategy(_Arguments):
    """A strategy file to write (validated first, each version kept)."""

    path: Path
    text: Annotated[str, Field(min_length=1, max_length=256_000)]


class Backtest(_Arguments):
    """A strategy file to backtest."""

    path: Path


class Sweep(_Arguments):
    """A strategy file and the axes of its sweep."""

    path: Path
    grid: dict[str, list[float | int | str | bool]] = Field(
        description="key path -> values, e.g. {'signal.threshold': [0.01, 0.02]}"
    )
    objective: Annotated[str, Field(max_length=200)] | None = None
    direction: Annotated[str, Field(pattern="^(maximize|minimize)$")] | None = None
    top: Annotated[int, Field(ge=1, le=50)] = 10

    @field_validator("grid")
    @classmethod
    def _axes(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        if not grid:
            raise ValueError("give one axis or more")
        for key, values in grid.items():
            if not _KEY.match(key):
                raise ValueError(f"{key!r} is not a key path such as signal.threshold")
            if not values:
                raise ValueError(f"{key}: give one value or more")
            if any(isinstance(v, str) and ("," in v or "=" in v) for v in values):
                raise ValueError(f"{key}: a text value holds no ',' or '='")
        return grid


class CheckLookahead(_Arguments):
    """A strategy file to check for look-ahead."""

    path: Path
    points: Annotated[int, Field(ge=1, le=10)] = 3
    seed: Annotated[int, Field(ge=0, le=2**31)] = 0


class RunArg(_Arguments):
    """A run folder of the workspace."""

    run: Path


class Tables(_Arguments):
    """A page of one of a run's tables."""

    run: Path
    table: Annotated[str, Field(pattern="^(trades|orders|fills|equity|positions|features)$")]
    offset: Annotated[int, Field(ge=0)] = 0
    limit: Annotated[int, Field(ge=1, le=500)] = 100


class LiveStart(_Arguments):
    """A strategy file to start live (a human approves)."""

    strategy: Path
    reason: Reason


class LiveSwap(_Arguments):
    """A run and the run whose saved model to swap in (a human approves)."""

    run: Path
    model: Path
    fold: Annotated[int, Field(ge=0)] | None = None
    reason: Reason


class LivePromote(_Arguments):
    """A run and its challenger to promote (a human approves)."""

    run: Path
    challenger: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[\w.-]+$")]
    reason: Reason


class LiveRun(_Arguments):
    """A run to roll back or flatten (a human approves)."""

    run: Path
    reason: Reason


def one_line(exc: ValidationError) -> str:
    """Return a pydantic refusal as one line: each field's problem, ``;`` between."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "arguments"
        message = str(error["msg"]).replace("\n", " ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)
