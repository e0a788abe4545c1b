"""A sweep's settings: the command line's options over a sweep file's, checked together.

Every problem of the axes is reported at once (one line each, exit 2), then the count
of variants is checked against ``--max-variants`` before anything is validated or run.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tradeloom.errors import ConfigError, Problem, UserError
from tradeloom.files.writing import check_out_text
from tradeloom.schemas.file_kind import is_sweep_document
from tradeloom.schemas.yaml_loader import load_yaml
from tradeloom.sweep.leaderboard import check_objective
from tradeloom.sweep.limits import DEFAULT_MAX_VARIANTS
from tradeloom.sweep.objective import Constraint, Objective, parse_constraints, parse_objective
from tradeloom.sweep.space import Axis, Space, axis_from_text, repeated_axes
from tradeloom.sweep.sweep_file import SweepFile, load_sweep_file
from tradeloom.sweep.walk_forward import WalkForwardSpec

__all__ = ["DEFAULT_MAX_VARIANTS", "Settings", "check_scheduler_address", "resolve_settings"]

_ADDRESS = re.compile(r"(?:([A-Za-z][A-Za-z0-9+.-]*)://)?(\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]@]+):(\d+)")


@dataclass(frozen=True)
class Settings:
    """Everything a sweep run needs, resolved."""

    strategy: Path
    overrides: tuple[str, ...]
    space: Space
    search: Literal["grid", "random", "optuna"]
    count: int
    objective: str
    direction: Literal["maximize", "minimize"]
    seed: int
    max_variants: int
    out: Path | None
    cache_dir: Path | None
    keep_top: int
    keep_runs: bool
    workers: int
    scheduler: str | None
    scheduler_timeout: float
    partitions: int
    walk_forward: WalkForwardSpec | None
    problems: tuple[Problem, ...] = ()
    """Axes that could not be read; the sweep reports them with the other axes' problems."""
    single_file: bool = False
    """``sweep.html`` embeds plotly.js rather than load the copy shared beside it."""
    constraints: tuple[Constraint, ...] = ()
    """Bounds that reject a variant (ranked last)."""
    objectives: tuple[str, ...] = ()
    """Two or more objectives, each maximized (the Pareto front); ``objective`` is the first."""

    @property
    def goal(self) -> Objective:
        """Return the objective ranked by (the first of ``objectives``, if given)."""
        return parse_objective(self.objective)

    @property
    def goals(self) -> tuple[Objective, ...]:
        """Return the parsed ``objectives`` (empty: one objective)."""
        return tuple(parse_objective(text) for text in self.objectives)

    def rejected(self, metrics: dict[str, Any]) -> bool:
        """Return whether a variant's metrics miss a constraint."""
        import numpy as np

        return any(
            not bool(c.meets(np.array([_float(metrics.get(c.metric))]))[0])
            for c in self.constraints
        )

    def identity(self) -> dict[str, Any]:
        """Return what makes two sweeps the same sweep (their directory's ``sweep.json``)."""
        import hashlib

        return {
            "strategy": str(self.strategy),
            "strategy_sha256": hashlib.sha256(self.strategy.read_bytes()).hexdigest(),
            "overrides": list(self.overrides),
            "axes": [[a.key, list(a.values)] for a in self.space.axes],
            "search": self.search,
            "count": self.count,
            "seed": self.seed,
        }


def resolve_settings(args: argparse.Namespace) -> Settings:
    """Return the settings of ``tradeloom sweep``'s arguments (and the sweep file, if FILE is one).

    Raises:
        UserError: A bad option, axis or sweep file; too many variants.
    """
    path: Path = args.file
    from_file: SweepFile | None = None
    file_axes: tuple[Axis, ...] = ()
    if is_sweep_document(load_yaml(path).data):
        from_file, space, strategy = load_sweep_file(path)
        file_axes = space.axes
    else:
        strategy = path
    problems: list[Problem] = []
    axes = list(file_axes)
    for text in args.grid:
        axis = axis_from_text(text)
        if isinstance(axis, Problem):
            problems.append(axis)
        else:
            axes = [a for a in axes if a.key != axis.key or a.where.startswith("--grid")]
            axes.append(axis)
    problems.extend(repeated_axes(axes))
    if not axes and problems:
        raise ConfigError(problems)
    if not axes:
        raise UserError(f"{path}: nothing to sweep; give --grid KEY.PATH=V1,V2,... (repeatable)")
    space = Space(tuple(axes))

    def pick(name: str, default: Any) -> Any:
        value = getattr(args, name, None)
        if value is not None:
            return value
        if from_file is not None:
            return getattr(from_file, name)
        return default

    search_name = pick("search", "grid")
    random_count = pick("random", None)
    trials = pick("trials", None)
    if search_name == "optuna":
        if trials is None:
            raise UserError("--search optuna needs --trials N")
        if random_count is not None:
            raise UserError("--random and --search optuna exclude each other; give one")
        search: Literal["grid", "random", "optuna"] = "optuna"
        count = trials
    elif trials is not None:
        raise UserError("--trials applies to --search optuna only")
    elif random_count is not None:
        search, count = "random", min(random_count, space.size)
    else:
        search, count = "grid", space.size
    objectives = _objectives(args, from_file)
    objective = check_objective(pick("objective", "sharpe"))
    if objectives:
        if getattr(args, "objective", None) is not None:
            raise UserError("--objective and --objectives exclude each other; give one")
        if pick("direction", "maximize") != "maximize":
            raise UserError(
                "--objectives are each maximized; write -METRIC to minimise one, not --direction"
            )
        objective = objectives[0]
    constraints = dict((from_file.constraints or {}) if from_file is not None else {})
    for text in getattr(args, "constraint", None) or []:
        key, sep, value = text.partition("=")
        try:
            bound = float(value)
        except ValueError:
            bound = None
        if not sep or bound is None:
            raise UserError(f"--constraint {text}: expected min_METRIC=NUMBER or max_METRIC=NUMBER")
        constraints[key.strip()] = bound
    parsed = tuple(parse_constraints(constraints, "--constraint"))
    max_variants = pick("max_variants", DEFAULT_MAX_VARIANTS)
    if count > max_variants and not problems:
        what = "trials" if search == "optuna" else "variants"
        sizes = " x ".join(str(len(a.values)) for a in space.axes)
        grid = f" (a grid of {sizes})" if search == "grid" else ""
        raise UserError(
            f"the sweep has {count:,} {what}{grid}, more than --max-variants {max_variants:,}; "
            "narrow the axes, use --random N, or raise --max-variants"
        )
    partitions = args.partitions
    if partitions % 2 or partitions < 2:
        raise UserError(f"--partitions must be even and >= 2, was {partitions}")
    if args.workers > 1 and args.scheduler:
        raise UserError(
            "--workers and --scheduler exclude each other: the cluster's workers run it"
        )
    if args.scheduler is not None:
        check_scheduler_address(args.scheduler)
    return Settings(
        strategy=strategy,
        overrides=tuple(args.overrides),
        space=space,
        search=search,
        count=count,
        objective=objective,
        direction=pick("direction", "maximize"),
        seed=pick("seed", 0),
        max_variants=max_variants,
        out=_folder(args.out, "--out"),
        cache_dir=_folder(args.cache_dir, "--cache-dir"),
        keep_top=pick("keep_top", 0),
        keep_runs=bool(args.keep_runs),
        workers=args.workers,
        scheduler=args.scheduler,
        scheduler_timeout=args.scheduler_timeout,
        partitions=partitions,
        walk_forward=args.walk_forward,
        problems=tuple(problems),
        single_file=bool(getattr(args, "single_file", False)),
        constraints=parsed,
        objectives=objectives,
    )


def _objectives(args: argparse.Namespace, from_file: SweepFile | None) -> tuple[str, ...]:
    given = getattr(args, "objectives", None)
    if given is not None:
        texts = tuple(t.strip() for t in given.split(","))
        if len(texts) < 2:
            raise UserError(f"--objectives {given}: give two or more, separated by commas")
        for text in texts:
            parse_objective(text, "--objectives")
        return texts
    if from_file is not None and from_file.objectives:
        return tuple(from_file.objectives)
    return ()


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _folder(given: str | Path | None, option: str) -> Path | None:
    # an empty --out would be the current folder: refused (`check_out_text`)
    return None if given is None else check_out_text(str(given), option)


def check_scheduler_address(address: str) -> None:
    """Refuse a ``--scheduler`` that is not ``[SCHEME://]HOST:PORT`` with a port of 1 to
    65535, in one line, before anything runs (Dask's own messages would name its parser).

    The scheme (``tcp``, ``tls``...) is left to Dask, whose message lists those it knows.

    Raises:
        UserError: The address is malformed.
    """
    match = _ADDRESS.fullmatch(address)
    if match is None or not 1 <= int(match.group(3)) <= 65535:
        raise UserError(
            f"--scheduler: expected a Dask scheduler's address tcp://HOST:PORT with a port"
            f" from 1 to 65535 (e.g. tcp://127.0.0.1:8786), was {address!r}"
        )
