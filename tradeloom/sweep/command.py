"""Run a resolved sweep and write its directory: results, returns, statistics, report, runs."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradeloom.errors import UserError
from tradeloom.files.writing import OutputFolder
from tradeloom.reporting.outputs import json_safe
from tradeloom.runtime.extras import require
from tradeloom.sweep.engine import run_sweep
from tradeloom.sweep.leaderboard import leaderboard_table, rank
from tradeloom.sweep.objective import Objective
from tradeloom.sweep.overfitting import DSR_THRESHOLD
from tradeloom.sweep.pool import LocalPool
from tradeloom.sweep.results import SWEEP_FILE, SWEEP_OWNED, PartColumns, ResultStore
from tradeloom.sweep.search import optuna_variants
from tradeloom.sweep.settings import Settings
from tradeloom.sweep.stage_cache import StageCache
from tradeloom.sweep.sweep_progress import SweepProgress
from tradeloom.sweep.tasks import execute
from tradeloom.sweep.variants import CheckedVariant, StrategySource, check_variants

__all__ = ["SweepOutcome", "run_settings", "sweep", "sweep_json"]

DSR_MARK = DSR_THRESHOLD
"""The leaderboard marks variants whose deflated Sharpe ratio is under this (0.95)."""

SWEEP_OUTPUTS = (
    SWEEP_FILE,
    "results.parquet",
    "returns.npy",
    "overfitting.json",
    "sweep.html",
    "pareto.html",
)
"""The files a sweep writes into its directory (besides `SWEEP_OWNED`'s folders)."""


class SweepOutcome:
    """What a sweep wrote: its directory, the ranked rows, the statistics, the summary lines."""

    def __init__(
        self, out: Path, ranked: pd.DataFrame, overfitting: dict[str, Any] | None, lines: list[str]
    ) -> None:
        self.out = out
        self.ranked = ranked
        self.overfitting = overfitting
        self.lines = lines


def run_settings(settings: Settings, *, as_json: bool = False) -> int:
    """Run the sweep, print its leaderboard and summary (``as_json``: its JSON object,
    `sweep_json`); return the exit code."""
    outcome = sweep(settings)
    if as_json:
        from tradeloom.reporting.json_output import print_json

        print_json("sweep", sweep_json(outcome, settings))
        return 0
    from rich.console import Console

    console = Console(width=160)
    params = [c for c in outcome.ranked.columns if c.startswith("param.")]
    marked = outcome.ranked["dsr"] < DSR_MARK if "dsr" in outcome.ranked else None
    console.print(
        leaderboard_table(
            outcome.ranked,
            params,
            settings.objective,
            marked=marked,
            objectives=settings.objectives,
        )
    )
    for line in outcome.lines:
        print(line)
    return 0


def sweep_json(outcome: SweepOutcome, settings: Settings) -> dict[str, Any]:
    """Return what ``tradeloom sweep --json`` prints: the sweep directory, how it ranked,
    every variant's row of ``results.parquet`` in rank order (its ``param.*`` values, its
    metrics, ``objective_value``, ``rank``, ``dsr``...), the overfitting statistics
    (``overfitting.json``) and the summary lines."""
    rows = outcome.ranked.drop(columns=["overrides"], errors="ignore").to_dict(orient="records")
    return {
        "out": str(outcome.out),
        "objective": settings.objective,
        "objectives": list(settings.objectives),
        "direction": settings.direction,
        "variants": len(rows),
        "rows": rows,
        "overfitting": outcome.overfitting,
        "summary": outcome.lines,
    }


def sweep(settings: Settings) -> SweepOutcome:
    """Run the sweep of ``settings`` and write its directory (see `tradeloom.sweep.cli`)."""
    # the optional libraries first: a missing extra is told before anything is checked or run
    if settings.search == "optuna":
        require("optuna", "tradeloom sweep --search optuna")
    if settings.scheduler is not None:
        require("distributed", "tradeloom sweep --scheduler")
    source = StrategySource(settings.strategy, settings.overrides)
    space = settings.space
    axes = space.axes
    if settings.problems:
        check_variants(source, axes, [], settings.problems)  # raises them with the axes'
    identity = settings.identity()
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
    name = str(source.document.data.get("name", settings.strategy.stem))
    out = settings.out or Path("sweeps") / f"{name}-{digest}"
    checked: list[CheckedVariant] = []
    if settings.search == "optuna":
        check_variants(source, axes, [])  # the file and each axis value, before any trial
    else:
        variants = (
            list(space.grid())
            if settings.search == "grid"
            else space.sample(settings.count, settings.seed)
        )
        checked = check_variants(source, axes, variants)  # every one, before anything runs
    # made once the variants are valid; a user's file of a name the sweep writes is
    # refused before any variant runs
    folder = OutputFolder(out, owned=SWEEP_OWNED)
    for written in SWEEP_OUTPUTS:
        folder.target(written)
    if settings.cache_dir is not None:
        OutputFolder(settings.cache_dir, option="--cache-dir")
    store = ResultStore(folder, identity)
    cache = StageCache(settings.cache_dir or out / "cache")

    # one local pool for every round of tasks (stages, batches, optuna's rounds)
    pool = LocalPool(settings.workers) if settings.workers > 1 else None

    def executor(tasks: Any, *, on_result: Any, workers: int, scheduler: str | None) -> None:
        execute(
            tasks,
            on_result=on_result,
            workers=workers,
            scheduler=scheduler,
            connect_timeout=settings.scheduler_timeout,
            pool=pool,
        )

    try:
        ran, stage_runs, notes = _measure(settings, source, space, checked, store, cache, executor)
    finally:
        if pool is not None:
            pool.close()
    return _write(settings, source, checked, store, folder, ran, stage_runs, notes)


def _measure(
    settings: Settings,
    source: StrategySource,
    space: Any,
    checked: list[CheckedVariant],
    store: ResultStore,
    cache: StageCache,
    executor: Any,
) -> tuple[int, dict[str, int], list[str]]:
    """Run the variants not yet in ``store`` (``checked`` gets optuna's); return the
    count run, the stages computed and the summary's notes."""
    axes = space.axes
    maximize = settings.direction == "maximize"
    ran = 0
    stage_runs: dict[str, int] = {}
    notes: list[str] = []
    if settings.search == "optuna":
        found, ran, stage_runs, trials = optuna_variants(
            source, space, settings, store, cache, executor
        )
        checked[:] = found
        notes.append(trials)
    else:
        from tradeloom.sweep.engine import variant_key

        source_hash = hashlib.sha256(source.path.read_bytes()).hexdigest()
        done = store.done()
        left = sum(
            variant_key(source_hash, [*source.overrides, *c.overrides]) not in done for c in checked
        )
        with SweepProgress(left, settings.objective, higher_is_better=maximize) as bar:
            swept = run_sweep(
                source,
                axes,
                checked,
                store,
                cache=cache,
                workers=settings.workers,
                scheduler=settings.scheduler,
                on_rows=lambda rows: _advance(bar, rows, settings.goal),
                executor=executor,
            )
        ran, stage_runs = swept.ran, swept.stage_runs
    return ran, stage_runs, notes


def _write(
    settings: Settings,
    source: StrategySource,
    checked: Sequence[CheckedVariant],
    store: ResultStore,
    folder: OutputFolder,
    ran: int,
    stage_runs: dict[str, int],
    notes: Sequence[str] = (),
) -> SweepOutcome:
    from tradeloom.sweep.engine import variant_key

    out = folder.folder
    source_hash = hashlib.sha256(source.path.read_bytes()).hexdigest()
    keys = [variant_key(source_hash, [*source.overrides, *c.overrides]) for c in checked]
    frame = pd.DataFrame([store.rows[k] for k in keys])
    frame.insert(1, "variant", np.arange(len(frame)))
    returns = store.returns(keys)
    lines: list[str] = list(notes)
    overfitting_json: dict[str, Any] | None = None
    periods = float(frame["periods_per_year"].iloc[0]) if len(frame) else None
    ranked = rank(frame, settings.goal, settings.direction, settings.constraints, settings.goals)
    if settings.constraints and len(ranked) and (ranked["rejected"] != "").all():
        raise UserError(_none_meets(settings, frame, out))
    if returns is not None:
        with folder.replacing("returns.npy") as temporary, temporary.open("wb") as file:
            returns.save(file)  # a block of bars at a time, from the parts
        # the DSR of the variant the sweep chose by its objective (else the best Sharpe)
        first = ranked.iloc[0] if len(ranked) else None
        chosen = None
        if first is not None and not math.isnan(first["objective_value"]):
            column = int(first["variant"])
            chosen = column if not np.isnan(returns.column(column)).any() else None
        overfitting_json, dsr, stats = _overfitting(returns, settings.partitions, periods, chosen)
        ranked["dsr"] = dsr[ranked["variant"].to_numpy()]
    else:
        stats = None
        lines.append("overfitting statistics: skipped (the variants' bar counts differ)")
    with folder.replacing("results.parquet") as temporary:
        ranked.sort_values("variant").to_parquet(temporary, index=False)  # in variant order
    if overfitting_json is not None:
        folder.write_text("overfitting.json", json.dumps(overfitting_json, indent=2))
    if store.damaged:
        lines.append(
            f"damaged parts, their variants run again: {len(store.damaged)} ({store.damaged[0]})"
        )
    nan = int(np.isnan(ranked["objective_value"]).sum())
    best = ranked.iloc[0] if len(ranked) else None
    lines.append(
        f"variants: {len(ranked)} ({ran} run now, {len(ranked) - ran} from earlier parts); "
        f"objective {settings.objective} ({settings.direction}); NaN objective: {nan} (ranked last)"
    )
    if settings.constraints:
        refused = int((ranked["rejected"] != "").sum())
        bounds = ", ".join(str(c) for c in settings.constraints)
        lines.append(f"constraints: {bounds}; rejected: {refused} (ranked last)")
    computed = ", ".join(f"{k} {v}" for k, v in sorted(stage_runs.items())) or "none (all cached)"
    lines.append(f"stages computed: {computed}")
    if best is not None:
        params = ", ".join(
            f"{c.removeprefix('param.')}={_plain(best[c])!r}"
            for c in ranked.columns
            if c.startswith("param.")
        )
        lines.append(
            f"best: row {int(best['variant'])} ({params}) "
            f"{settings.objective}={best['objective_value']:.6g}"
        )
    if overfitting_json is not None:
        d = overfitting_json["deflated_sharpe"]
        lines.append(
            f"deflated Sharpe ratio of row {d['variant']}: {d['dsr']:.4f} "
            f"(per-bar Sharpe {d['sharpe']:.4g}, SR0 {d['sr0']:.4g}, {d['n_trials']} trials, "
            f"variance {d['trial_sharpe_variance']:.4g}, "
            f"{d['n_obs']} bars, skew {d['skewness']:.3g}, kurtosis {d['kurtosis']:.3g})"
        )
        p = overfitting_json["pbo"]
        if p is not None:
            lines.append(
                f"probability of backtest overfitting: {p['probability']:.4f} "
                f"({p['n_combinations']} combinations of {p['n_partitions']} partitions, "
                f"{p['n_variants']} variants)"
            )
        else:
            problem = overfitting_json["pbo_problem"]
            lines.append(f"probability of backtest overfitting: not computed ({problem})")
    wf = None
    if settings.walk_forward is not None:
        from tradeloom.sweep.walk_forward_run import run_walk_forward

        wf = run_walk_forward(settings, checked, keys, out)
        lines.extend(wf.lines)
    kept = _keep_runs(settings, source, ranked, out)
    if kept:
        lines.append(f"run directories: {kept} under {out / 'runs'}")
    if settings.objectives:
        from tradeloom.sweep.pareto import pareto_lines, write_pareto_page

        lines.extend(pareto_lines(ranked, settings, overfitting_json))
        page = write_pareto_page(ranked, settings, folder, _plotly_src(settings, folder))
        lines.append(f"Pareto front page: {page}")
    report = _report(settings, ranked, stats, folder, source, wf.result if wf is not None else None)
    lines.append(f"sweep directory: {out}  (results.parquet, sweep.html: {report.name})")
    return SweepOutcome(out, ranked, overfitting_json, lines)


def _overfitting(
    returns: PartColumns, partitions: int, periods: float | None, chosen: int | None
) -> tuple[dict[str, Any], np.ndarray, Any]:
    from tradeloom.sweep.overfitting import overfitting_statistics

    stats = overfitting_statistics(
        returns, chosen=chosen, n_partitions=partitions, periods_per_year=periods
    )
    # every field of the deflated Sharpe ratio, the variant and its dsr first
    deflated = {"variant": stats.best, "dsr": stats.deflated.dsr, **asdict(stats.deflated)}
    pbo = None
    if stats.pbo is not None:
        p = stats.pbo
        pbo = {
            "probability": p.probability,
            "n_partitions": p.n_partitions,
            "n_combinations": p.n_combinations,
            "n_variants": p.n_variants,
            "excluded": list(p.excluded),
            "rows_used": p.rows_used,
            "rows_dropped": p.rows_dropped,
            "metric": p.metric,
            "logits": [float(x) for x in p.logits],
        }
    payload = {
        "deflated_sharpe": deflated,
        "dsr_threshold": DSR_MARK,
        "variants_under_threshold": int(np.sum(stats.variant_dsr < DSR_MARK)),
        "pbo": pbo,
        "pbo_problem": stats.pbo_problem,
    }
    return json_safe(payload), stats.variant_dsr, stats  # NaN, inf: None


def _keep_runs(settings: Settings, source: StrategySource, ranked: pd.DataFrame, out: Path) -> int:
    count = len(ranked) if settings.keep_runs else min(settings.keep_top, len(ranked))
    if not count:
        return 0
    from tradeloom.backtest.run import run_strategy
    from tradeloom.engine.wiring import build_pipeline
    from tradeloom.schemas import load_strategy

    kept = 0
    for _, row in ranked.head(count).iterrows():
        folder = out / "runs" / f"{int(row['variant']):05d}-{row['key']}"
        if (folder / "metrics.json").is_file():
            kept += 1
            continue
        overrides = json.loads(row["overrides"])
        config, plugins = load_strategy(settings.strategy, overrides)
        run_strategy(build_pipeline(config), plugins, out=folder)
        kept += 1
    return kept


def _report(
    settings: Settings,
    ranked: pd.DataFrame,
    stats: Any,
    folder: OutputFolder,
    source: StrategySource,
    walk_forward: Any,
) -> Path:
    from tradeloom.sweep.report import render_sweep_report

    by_variant = ranked.sort_values("variant").reset_index(drop=True)
    params = [c.removeprefix("param.") for c in by_variant.columns if c.startswith("param.")]
    shown = by_variant.rename(columns={f"param.{p}": p for p in params})
    objective = settings.objective
    if objective not in shown:  # an expression: its values under its text
        shown[objective] = shown["objective_value"]
    if settings.direction == "minimize":
        objective = f"-{settings.objective}" if settings.goal.is_metric else f"-({objective})"
        shown[objective] = -pd.to_numeric(shown[settings.objective], errors="coerce")
    name = str(source.document.data.get("name", settings.strategy.stem))
    src = _plotly_src(settings, folder)
    text = render_sweep_report(
        shown,
        params=params,
        objective=objective,
        overfitting=stats,
        walk_forward=walk_forward,
        title=f"sweep of {name}",
        plotly_src=src,
    )
    return folder.write_text("sweep.html", text)


def _plotly_src(settings: Settings, folder: OutputFolder) -> str | None:
    """The plotly.js a page loads (None: embedded, ``--single-file``)."""
    if settings.single_file:
        return None
    from tradeloom.reporting.shared_plotly import shared_plotly

    out = folder.folder  # the kept runs' reports wrote one into runs/
    return shared_plotly(out, out, option="--out", reuse=[out / "runs"])


def _none_meets(settings: Settings, frame: pd.DataFrame, out: Path) -> str:
    """The line of a sweep no variant of which meets its constraints."""
    parts = []
    for c in settings.constraints:
        values = pd.to_numeric(frame[c.metric], errors="coerce").to_numpy(np.float64)
        missed = int((~c.meets(values)).sum())
        known = values[~np.isnan(values)]
        best = (known.max() if c.lower else known.min()) if len(known) else math.nan
        nearest = "largest" if c.lower else "smallest"
        parts.append(f"{c} rejects {missed} ({nearest} {c.metric} {best:.6g})")
    return (
        f"constraints: no variant of {len(frame)} meets them ({'; '.join(parts)}); the "
        f"variants' results are kept in {out}: loosen a bound and run the same command again"
    )


def _advance(bar: SweepProgress, rows: list[dict[str, Any]], objective: Objective) -> None:
    for row in rows:
        bar.advance(_number(objective.value_of(row)))


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number
