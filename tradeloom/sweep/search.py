"""``--search optuna``: the variants optuna's TPE sampler proposes (NSGA-II with several
objectives), measured as a sweep's.

The sampler is seeded (``--seed``); each axis is a distribution: a list of values is
categorical, a range is an integer or float range with its step (so every value
proposed is one the grid has). Trials are asked in rounds of ``max(1, workers)`` (the
round runs like any sweep: shared stages, one batched call) and told their objective;
a NaN objective, or a variant a constraint rejects, is told as a failed trial. A
resumed sweep replays the same seeded proposals, finds their results in the sweep
directory, and tells them without running.
A trial that proposes a variant already measured (TPE repeats itself on a small
space) is told that variant's result and not run again: ``--trials 30`` may run fewer
variants, and the summary says how many trials repeated one and how many failed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tradeloom.runtime.extras import require
from tradeloom.sweep.engine import run_sweep
from tradeloom.sweep.results import ResultStore
from tradeloom.sweep.space import Axis, Space, Variant
from tradeloom.sweep.stage_cache import StageCache
from tradeloom.sweep.sweep_progress import SweepProgress
from tradeloom.sweep.variants import CheckedVariant, StrategySource, check_variants

if TYPE_CHECKING:
    from tradeloom.sweep.settings import Settings

__all__ = ["optuna_variants"]


def optuna_variants(
    source: StrategySource,
    space: Space,
    settings: Settings,
    store: ResultStore,
    cache: StageCache,
    executor: Callable[..., None],
) -> tuple[list[CheckedVariant], int, dict[str, int], str]:
    """Run ``settings.count`` optuna trials; return the distinct variants, the count run
    now, the stages computed, and the summary's line on the trials."""
    require("optuna", "a sweep's optuna search")
    import optuna

    from tradeloom.engine.logs import route_library_logs
    from tradeloom.sweep.engine import variant_key

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    route_library_logs("optuna")  # its warnings as the command's JSON lines
    direction = settings.direction
    goals = settings.goals
    if goals:  # several objectives: NSGA-II, each maximized
        sampler: Any = optuna.samplers.NSGAIISampler(seed=settings.seed)
        study = optuna.create_study(directions=["maximize"] * len(goals), sampler=sampler)
    else:
        sampler = optuna.samplers.TPESampler(seed=settings.seed)
        study = optuna.create_study(direction=direction, sampler=sampler)
    goal = settings.goal
    axes = space.axes
    check_variants(source, axes, [])  # the base file and each axis value, before any trial
    seen: dict[tuple[Any, ...], CheckedVariant] = {}
    ran = 0
    stage_runs: dict[str, int] = {}
    round_size = max(1, settings.workers)
    asked = 0
    repeated = failed = rejected = 0
    import hashlib

    source_hash = hashlib.sha256(source.path.read_bytes()).hexdigest()
    with SweepProgress(
        settings.count, settings.objective, higher_is_better=direction == "maximize"
    ) as bar:
        while asked < settings.count:
            trials = [study.ask() for _ in range(min(round_size, settings.count - asked))]
            asked += len(trials)
            variants = [Variant(tuple(_suggest(t, a) for a in axes)) for t in trials]
            fresh = [v for v in dict.fromkeys(variants) if v.values not in seen]
            repeated += len(variants) - len(fresh)
            checked = check_variants(source, axes, fresh)
            for item in checked:
                seen[item.variant.values] = item
            done = run_sweep(
                source, axes, checked, store, cache=cache, workers=settings.workers,
                scheduler=settings.scheduler, executor=executor,
            )  # fmt: skip
            ran += done.ran
            for name, count in done.stage_runs.items():
                stage_runs[name] = stage_runs.get(name, 0) + count
            for trial, variant in zip(trials, variants, strict=True):
                item = seen[variant.values]
                key = variant_key(source_hash, [*source.overrides, *item.overrides])
                row = store.rows[key]
                value = _float(goal.value_of(row))
                values = [_float(g.value_of(row)) for g in goals] if goals else [value]
                if settings.rejected(row):
                    rejected += 1
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                elif any(v is None for v in values):
                    failed += 1
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                else:
                    told = [v for v in values if v is not None]
                    study.tell(trial, told if goals else told[0])
                bar.advance(value)
    line = (
        f"optuna: {asked} trials, {len(seen)} distinct variants; {repeated} "
        f"proposed a variant already measured (told its result, not run again); {failed} "
        f"failed (a NaN {', '.join(settings.objectives) or settings.objective}, told as failed)"
    )
    if settings.constraints:
        line += f"; {rejected} rejected by the constraints (told as failed)"
    if goals:
        line += f"; NSGA-II over {len(goals)} objectives"
    return list(seen.values()), ran, stage_runs, line


def _suggest(trial: Any, axis: Axis) -> Any:
    if axis.is_range:
        assert axis.low is not None and axis.high is not None and axis.step is not None
        if all(isinstance(v, int) for v in axis.values):
            return trial.suggest_int(
                axis.key, int(axis.low), int(axis.values[-1]), step=int(axis.step)
            )
        value = trial.suggest_float(axis.key, axis.low, float(axis.values[-1]), step=axis.step)
        return min(axis.values, key=lambda v: abs(v - value))  # the grid's own float
    index = trial.suggest_categorical(axis.key, list(range(len(axis.values))))
    return axis.values[index]


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if number != number else number
