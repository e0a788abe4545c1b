"""A sweep written as a file next to the strategy file, read and validated like one.

```yaml
strategy: btc_rf.yaml          # the strategy file, relative to this file
grid:                          # one axis per key path: a list, or a range (stop inclusive)
  signal.threshold: [0.1, 0.2, 0.3]
  risk.sizing.fraction: {start: 0.1, stop: 0.5, step: 0.1}
random: 20                     # optional: 20 distinct combinations instead of the grid
search: optuna                 # optional: optuna's TPE sampler instead (with trials:)
trials: 50
objective: sharpe - 0.5 * max_drawdown   # a metric or an expression; default sharpe
direction: maximize            # or minimize
constraints:                   # optional: a variant missing one is rejected (ranked last)
  min_trades: 20
  max_drawdown: 0.3
objectives: [sharpe, -max_drawdown]   # optional, instead of objective: a Pareto front
seed: 0
max_variants: 100000
keep_top: 3
```

A file is a sweep file when its top level has ``strategy:`` or a key only a sweep file
has (`tradeloom.schemas.file_kind`). Problems are reported
together, at ``FILE:LINE:COL`` (an axis's at its key), with the strategy loader's
messages (unknown keys get a did-you-mean).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tradeloom.errors import ConfigError, Problem
from tradeloom.schemas.loader import validate_model
from tradeloom.schemas.yaml_loader import load_yaml
from tradeloom.sweep.objective import ObjectiveError, parse_constraints, parse_objective
from tradeloom.sweep.space import Axis, Space, axis_from_values, range_axis, repeated_axes

__all__ = ["SweepFile", "load_sweep_file"]


class _Range(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: float
    stop: float
    step: float


class SweepFile(BaseModel):
    """A sweep file: the strategy file it varies and its axes, how variants are drawn and
    ranked (`tradeloom sweep FILE`)."""

    model_config = ConfigDict(extra="forbid")
    strategy: str = Field(description="The strategy file, relative to the sweep file.")
    grid: dict[str, list[Any] | _Range] = Field(description="The axes, by key path.")
    random: int | None = Field(None, ge=1, description="Distinct random combinations.")
    search: Literal["grid", "optuna"] = Field("grid", description="grid or optuna.")
    trials: int | None = Field(None, ge=1, description="optuna's trials.")
    objective: str = Field(
        "sharpe", description="The metric or expression ranked by (`tradeloom.sweep.objective`)."
    )
    objectives: list[str] | None = Field(
        None,
        min_length=2,
        description="Two or more objectives, each maximized: the Pareto front (NSGA-II).",
    )
    constraints: dict[str, float] | None = Field(
        None, description="Bounds that reject a variant: min_<metric> or max_<metric>."
    )
    direction: Literal["maximize", "minimize"] = Field("maximize", description="Of the objective.")
    seed: int = Field(0, ge=0, description="Seed of the random draw and of optuna's sampler.")
    max_variants: int = Field(100_000, ge=1, description="Refuse a larger sweep.")
    keep_top: int = Field(0, ge=0, description="Run directories kept for the best K.")


def _objective_problems(
    model: SweepFile, data: Mapping[Any, Any], source_map: Any
) -> list[Problem]:
    """The objective's, the objectives' and the constraints' problems, each at its line."""
    problems: list[Problem] = []
    texts: list[tuple[str, str]] = []
    if "objective" in data:
        texts.append(("objective", model.objective))
    for k, text in enumerate(model.objectives or ()):
        texts.append((f"objectives.{k}", text))
    if "objective" in data and model.objectives:
        where = source_map.locate("objectives")
        problems.append(Problem(where, "objectives", "give objective: or objectives:, not both"))
    for key, text in texts:
        try:
            parse_objective(text, key)
        except ObjectiveError as error:
            problems.append(Problem(source_map.locate(key), key, error.message))
    for key, bound in (model.constraints or {}).items():
        try:
            parse_constraints({key: bound})
        except ObjectiveError as error:
            where = source_map.locate_key(f"constraints.{key}")
            problems.append(Problem(where, f"constraints.{key}", error.message))
    return problems


def load_sweep_file(path: Path) -> tuple[SweepFile, Space, Path]:
    """Return the sweep file's settings, its axes and the strategy file's path.

    Raises:
        ConfigError: Every problem of the file.
    """
    document = load_yaml(path)
    source_map = document.source_map
    problems: list[Problem] = []
    model = validate_model(SweepFile, document.data, "", source_map, problems)
    if model is None:
        raise ConfigError(problems)
    assert isinstance(model, SweepFile)
    axes: list[Axis] = []
    raw_grid = document.data.get("grid") or {}
    for key, spec in model.grid.items():
        where = source_map.locate_key(f"grid.{key}")
        raw = raw_grid.get(key)
        if isinstance(spec, _Range) and isinstance(raw, Mapping):
            axis = range_axis(key, raw["start"], raw["stop"], raw["step"], where)
        else:
            axis = axis_from_values(key, list(spec) if isinstance(spec, list) else [], where)
        if isinstance(axis, Problem):
            problems.append(axis)
        else:
            axes.append(axis)
    problems.extend(repeated_axes(axes))
    problems.extend(_objective_problems(model, document.data, source_map))
    if model.search == "optuna" and model.trials is None:
        where = source_map.locate("search")
        problems.append(Problem(where, "trials", "search: optuna needs trials: N"))
    strategy = path.parent / model.strategy
    if not strategy.is_file():
        where = source_map.locate("strategy")
        problems.append(Problem(where, "strategy", f"no strategy file at {strategy}"))
    if problems:
        raise ConfigError(problems)
    return model, Space(tuple(axes)), strategy
