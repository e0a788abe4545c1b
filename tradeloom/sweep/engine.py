"""Run a sweep: validate every variant, share the stages, batch the core, persist each result.

The work is two rounds of tasks (`tradeloom.sweep.tasks.execute`, so a local pool or a
Dask cluster runs them as it runs one):

1. one *stage* task per group of variants that share everything upstream of the
   signal (`tradeloom.sweep.stages.upstream_key`): load the data, compute or read the
   features and the model's predictions, cache them (on a Dask cluster the worker
   sends the series back, and this process caches it and sends it with the tasks);
2. *batch* tasks of up to ``chunk`` variants of one group (fewer over long series,
   `task_size`; at least `MIN_TASKS` where there are enough variants and bars, each dealt
   variants from all over the grid so that the tasks cost alike), run over the group's
   series one variant at a time (`tradeloom.sweep.batch.run_batch`). A variant
   the batched core cannot run (a plugin's component, health rules that act, a
   universe of several symbols) runs as a whole backtest instead
   (`tradeloom.sweep.full_run`), with the same metrics.

Each finished task's part (its rows and returns) is persisted at once
(`tradeloom.sweep.results`) and let go: a batch task on this machine writes its part
itself, where it ran, and hands back its rows alone; so does a Dask worker that shares
the sweep directory (the same machine, a shared disk: it finds this run's token there,
`tradeloom.sweep.results.sees_folder`), and one elsewhere hands back the part's bytes,
made there, for this process to write. This process holds the variants' rows,
never their returns, so a sweep's memory does not grow with its variants times its
bars, and the work that only this process can do is small beside the tasks'. A sweep
started again with the same command runs only what is missing.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from tradeloom.core.params import CoreSpec
from tradeloom.engine.book_checks import book_of
from tradeloom.engine.core_spec import core_spec
from tradeloom.files.writing import OutputFolder
from tradeloom.plugins.protocols import MultiVenue
from tradeloom.sweep.batch import run_batch
from tradeloom.sweep.full_run import run_full
from tradeloom.sweep.results import (
    SWEEP_OWNED,
    Part,
    ResultStore,
    pack_part,
    sees_folder,
    write_part,
)
from tradeloom.sweep.space import Axis, Variant
from tradeloom.sweep.stage_cache import MemoryCache, StageCache
from tradeloom.sweep.stages import STAGE_RUNS, Series, load_series, prepare_series, upstream_key
from tradeloom.sweep.tasks import Task, execute
from tradeloom.sweep.variants import CheckedVariant, StrategySource

__all__ = [
    "BatchTask",
    "SweepRun",
    "batch_task",
    "deal",
    "run_sweep",
    "stage_task",
    "task_size",
    "variant_key",
]

_T = TypeVar("_T")

DEFAULT_CHUNK = 256
"""Variants per batch task at most: large enough to amortise a task, small enough to spread."""

MIN_TASKS = 16
"""Batch tasks a group is dealt into at least, when it has `MIN_TASK_VARIANTS` for each."""

MIN_TASK_VARIANTS = 16
"""Variants a batch task holds at least when a group is dealt into `MIN_TASKS`: a task's
own cost (sending it, its result and its part) stays a few percent of its variants'."""

MIN_TASK_WORK = 5_000_000
"""Variant-bars (variants times bars) a batch task holds at least when a group is dealt
into `MIN_TASKS`: about a third of a second of a batched variant's work (0.6-1.3 ms per
20,000 bars). A Dask task costs its worker and the scheduler 10 to 35 ms besides
(measured, 2 workers on 2 cores): 16 tasks of 1,000 variants of 20,000 bars (80 ms
each) spent a quarter of the sweep's CPU on it, 4 tasks of 250 a twentieth."""

RETURNS_BUDGET = 1 << 23
"""Bar returns a batch task hands back at most (8,388,608 float32 values: 32 MiB): a
task of long series holds fewer variants (80 of 100,000 bars), so that what a worker
sends and the parent writes stays bounded whatever the bars."""


@dataclass(frozen=True)
class SweepRun:
    """What `run_sweep` did.

    Attributes:
        keys: Every variant's key, in the variants' order.
        ran: Variants measured by this call (the others were done before).
        stage_runs: Stages this process computed (not read from the cache), by name.
        seconds: Wall time of this call.
    """

    keys: tuple[str, ...]
    ran: int
    stage_runs: dict[str, int]
    seconds: float


@dataclass(frozen=True)
class BatchTask:
    """A batch task's input: the variants of one group, as core parameters, and what
    their rows hold besides their metrics.

    Attributes:
        key: The task's key (its part's name, `tradeloom.sweep.results.Part`).
        cache_root, inputs_key: Where the group's series is cached, and its key.
        keys, specs: Each variant's key and core parameters.
        params: Each variant's ``param.<axis>`` columns.
        overrides: Each variant's overrides (its row's ``overrides``).
        hashes: The group's stage hashes (each row's ``hash.<stage>``).
        sweep_dir: The sweep directory the task writes its part into; None: the part's
            bytes go back to the command, which writes them.
        token: None: the task runs on the command's machine (serially, on the pool)
            and writes into ``sweep_dir``. Else (a Dask worker, which may run elsewhere)
            it writes there only when it finds this token in the folder
            (`tradeloom.sweep.results.sees_folder`), and sends the bytes back otherwise.
    """

    key: str
    cache_root: str
    inputs_key: str
    keys: tuple[str, ...]
    specs: tuple[CoreSpec, ...]
    params: tuple[dict[str, Any], ...]
    overrides: tuple[tuple[str, ...], ...]
    hashes: dict[str, str]
    sweep_dir: str | None
    token: str | None = None


def variant_key(source_hash: str, overrides: Sequence[str]) -> str:
    """Return a variant's stable key: the strategy file's content and its overrides."""
    text = json.dumps([source_hash, list(overrides)])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def stage_task(
    path: str, overrides: tuple[str, ...], cache_root: str | None, text: str | None = None
) -> dict[str, Any] | None:
    """Prepare a group's stages (a task); return its inputs' key and timeframe, or None.

    None: the data is a universe of several symbols (its variants run as backtests).

    Args:
        path: The strategy file (absolute: its relative data paths resolve against it).
        overrides: The group's overrides.
        cache_root: The stage cache's folder; None on a Dask worker, which reads and
            writes nothing of the sweep's on its disk: the stages are computed in memory
            and the result holds the series' cache entry (``"entry"``: arrays, metadata)
            for the client to cache and send to the batch tasks.
        text: The strategy file's text (None: read from ``path``).
    """
    before = dict(STAGE_RUNS)
    pipeline = StrategySource(Path(path), text=text).build(overrides)
    cache = MemoryCache() if cache_root is None else StageCache(Path(cache_root))
    series = prepare_series(pipeline, cache)
    if series is None:
        return None
    computed = {k: n - before.get(k, 0) for k, n in STAGE_RUNS.items() if n != before.get(k, 0)}
    result: dict[str, Any] = {
        "inputs_key": series.hashes.inputs,
        "bars": len(series.inputs),
        "timeframe_seconds": series.timeframe_seconds,
        "sizing_year": series.sizing_year,
        "hashes": vars(series.hashes),
        "computed": computed,
    }
    if cache_root is None:
        entry = cache.get("inputs", series.hashes.inputs)
        assert entry is not None  # just prepared
        result["entry"] = (dict(entry.arrays), dict(entry.meta))
    return result


def batch_task(task: BatchTask, series: Series | None = None) -> Part:
    """Run a batch task; return its part of the results (`tradeloom.sweep.results.Part`),
    written into ``task.sweep_dir`` when it names one.

    ``series``: the group's series, sent as data (a Dask cluster's tasks); None: read
    from the stage cache, once per process and group (`_cached_series`).
    """
    started = time.perf_counter()
    if series is None:
        series = _cached_series(task.cache_root, task.inputs_key)
    result = run_batch(series, task.specs, returns_dtype=np.float32)
    seconds = (time.perf_counter() - started) / len(task.keys)
    rows = [
        _row(key, params, overrides, metrics, task.hashes, seconds)
        for key, params, overrides, metrics in zip(
            task.keys, task.params, task.overrides, result.metrics, strict=True
        )
    ]
    part = pack_part(task.key, rows, result.returns)
    if task.sweep_dir is None:
        return part
    if task.token is None:
        return write_part(OutputFolder(Path(task.sweep_dir), owned=SWEEP_OWNED), part)
    if not sees_folder(task.sweep_dir, task.token):
        return part
    try:
        return write_part(OutputFolder(Path(task.sweep_dir), owned=SWEEP_OWNED), part)
    except OSError:  # seen but not writable by this worker (another user): the command writes
        return part


_last_series: tuple[tuple[str, str], Series] | None = None
"""The series this process read last, by cache folder and key: a worker runs a group's
tasks one after another, and reads its series from disk once, not once per task."""


def _cached_series(cache_root: str, inputs_key: str) -> Series:
    global _last_series
    if _last_series is not None and _last_series[0] == (cache_root, inputs_key):
        return _last_series[1]
    series = load_series(StageCache(Path(cache_root)), inputs_key)
    if series is None:
        raise RuntimeError(f"the stage cache lost the series {inputs_key}; run the sweep again")
    _last_series = ((cache_root, inputs_key), series)
    return series


def run_sweep(
    source: StrategySource,
    axes: Sequence[Axis],
    checked: Sequence[CheckedVariant],
    store: ResultStore,
    *,
    cache: StageCache,
    workers: int = 1,
    scheduler: str | None = None,
    chunk: int = DEFAULT_CHUNK,
    on_rows: Callable[[list[dict[str, Any]]], None] | None = None,
    executor: Callable[..., None] = execute,
) -> SweepRun:
    """Measure every variant of ``checked`` not yet in ``store``; persist each result.

    Args:
        source: The strategy file (its path and base overrides).
        axes: The axes (each row records its values).
        checked: The validated variants.
        store: Where results go and what is done.
        cache: The stage cache.
        workers, scheduler: Where tasks run (`tradeloom.sweep.tasks.execute`).
        chunk: Variants per batch task.
        on_rows: Told each finished task's rows (the progress bar).
        executor: Runs the tasks (`execute`, or a wrapper adding keywords).
    """
    started = time.perf_counter()
    source_hash = hashlib.sha256(source.path.read_bytes()).hexdigest()
    keyed = [(variant_key(source_hash, [*source.overrides, *c.overrides]), c) for c in checked]
    done = store.done()
    pending = [(k, c) for k, c in keyed if k not in done]
    groups: dict[str, list[tuple[str, CheckedVariant]]] = {}
    for key, variant in pending:
        groups.setdefault(upstream_key(variant.pipeline), []).append((key, variant))
    stage_runs: dict[str, int] = {}
    stages: dict[str, dict[str, Any] | None] = {}
    sent: dict[str, Series] = {}  # on a cluster: each group's series, sent with its tasks

    def staged(task: Task, result: dict[str, Any] | None) -> None:
        if result is not None and "entry" in result:  # computed by a cluster's worker
            arrays, meta = result.pop("entry")
            cache.put("inputs", result["inputs_key"], arrays, meta)
            series = load_series(cache, result["inputs_key"])
            assert series is not None  # just written
            sent[task.key] = series
        stages[task.key] = result
        for name, count in (result or {}).get("computed", {}).items():
            stage_runs[name] = stage_runs.get(name, 0) + count

    path = str(source.path.resolve())
    cache_root = str(cache.root.resolve())
    # A cluster's workers may run elsewhere: the file's text and the series go as data,
    # and nothing of the sweep's is read or written on their disks (but data files).
    remote = scheduler is not None
    text = source.text if remote else None
    stage_tasks = [
        Task(
            f"stage-{group}",
            stage_task,
            (
                path,
                (*source.overrides, *members[0][1].overrides),
                None if remote else cache_root,
                text,
            ),
        )
        for group, members in groups.items()
    ]
    executor(stage_tasks, on_result=staged, workers=workers, scheduler=scheduler)
    # A cluster's worker that shares the sweep directory (this machine, a shared disk)
    # writes its part there, as the pool's do; one elsewhere sends the part's bytes.
    token = store.open_to_workers() if remote else None
    tasks: list[Task] = []
    for group, members in groups.items():
        stage = stages[f"stage-{group}"]
        batched: list[tuple[str, CheckedVariant, CoreSpec]] = []
        for key, variant in members:
            spec = _batched_spec(variant, stage)
            if spec is None:
                overrides = (*source.overrides, *variant.overrides)
                tasks.append(Task(f"run-{key}", run_full, (path, overrides, key, text)))
            else:
                batched.append((key, variant, spec))
        if not batched:
            continue
        assert stage is not None  # a variant is batched only over a prepared series
        series = sent.get(f"stage-{group}")
        bars = int(stage["bars"])
        for part in deal(batched, task_size(chunk, bars), bars):
            keys = tuple(k for k, _, _ in part)
            task_key = "batch-" + hashlib.sha256("".join(keys).encode()).hexdigest()[:20]
            spec_task = BatchTask(
                task_key,
                cache_root,
                str(stage["inputs_key"]),
                keys,
                tuple(s for _, _, s in part),
                tuple(_params(v.variant, axes) for _, v, _ in part),
                tuple(tuple(v.overrides) for _, v, _ in part),
                dict(stage["hashes"]),
                str(store.folder.root),
                token,
            )
            args = (spec_task,) if series is None else (spec_task, series)
            tasks.append(Task(task_key, batch_task, args))
    by_key = {k: c for k, c in pending}

    def measured(task: Task, result: Any) -> None:
        if task.function is run_full:
            metrics, returns, seconds, hashes = result
            key = task.args[2]
            variant = by_key[key]
            params = _params(variant.variant, axes)
            row = _row(key, params, variant.overrides, metrics, hashes, seconds)
            result = pack_part(task.key, [row], returns)
        store.keep(result)
        if on_rows is not None:
            on_rows(result.rows)

    executor(tasks, on_result=measured, workers=workers, scheduler=scheduler)
    return SweepRun(
        keys=tuple(k for k, _ in keyed),
        ran=len(pending),
        stage_runs=stage_runs,
        seconds=time.perf_counter() - started,
    )


def task_size(chunk: int, bars: int) -> int:
    """Return the variants of a batch task over ``bars`` bars: ``chunk`` at most, fewer
    when their returns would pass `RETURNS_BUDGET`, one at least."""
    return max(1, min(chunk, RETURNS_BUDGET // max(1, bars)))


def deal(batched: Sequence[_T], size: int, bars: int) -> list[list[_T]]:
    """Deal a group's variants of ``bars`` bars into batch tasks of ``size`` at most,
    alike in cost.

    At least `MIN_TASKS` tasks where the group has `MIN_TASK_VARIANTS` variants and
    `MIN_TASK_WORK` variant-bars for each, so that every worker of a pool or a cluster has
    several, none waits at the end for a last long one, and no task is so short that a
    cluster's cost of a task is a large part of it; and dealt in turn (task ``j`` takes
    variants ``j``, ``j + k``, ``j + 2k``...), so that each task holds variants from all
    over the grid: a grid's neighbours cost alike (a low signal threshold trades, and costs,
    several times a high one), and consecutive slices were up to 2.5x apart. Which task runs
    a variant changes none of its numbers, nor any output's order (the results follow the
    variants).
    """
    n = len(batched)
    least = min(MIN_TASKS, n // MIN_TASK_VARIANTS, n * bars // MIN_TASK_WORK)
    count = max(-(-n // size), least)
    return [list(batched[j::count]) for j in range(count)]


def _batched_spec(variant: CheckedVariant, stage: dict[str, Any] | None) -> CoreSpec | None:
    """Return the variant's core parameters if the batched core can run it (else None).

    A router's venues are modelled one order at a time, so its variants run as
    backtests. The monitors are left out: without health rules they only observe (their figures
    are not a sweep's metrics); health rules that act run the variant as a backtest.
    """
    if stage is None or variant.pipeline.config.health:
        return None
    if isinstance(variant.pipeline.venue, MultiVenue):
        return None  # each venue modelled in Python (`run_backtest`), not the batched core
    if book_of(variant.pipeline.venue) is not None:
        return None  # filled against its recorded book in Python (`run_backtest`)
    spec = core_spec(
        variant.pipeline,
        int(stage["timeframe_seconds"]),
        periods_per_year=float(stage["sizing_year"]),
        monitors=False,
    )
    return spec if spec.compiled else None


def _params(variant: Variant, axes: Sequence[Axis]) -> dict[str, Any]:
    """Return a variant's ``param.<axis>`` columns."""
    return {f"param.{a.key}": v for a, v in zip(axes, variant.values, strict=True)}


def _row(
    key: str,
    params: dict[str, Any],
    overrides: Sequence[str],
    metrics: dict[str, Any],
    hashes: dict[str, str],
    seconds: float,
) -> dict[str, Any]:
    row: dict[str, Any] = {"key": key}
    row.update(params)
    for name, value in metrics.items():
        if isinstance(value, dict):
            value = json.dumps(value, sort_keys=True)
        elif isinstance(value, float) and math.isinf(value):
            value = float(value)
        row[name] = value
    row.update({f"hash.{k}": v for k, v in hashes.items()})
    row["seconds"] = seconds
    row["overrides"] = json.dumps(list(overrides))
    return row
