"""``--walk-forward``: walk-forward optimisation over a sweep's variants, on the batched core.

`tradeloom.sweep.walk_forward.walk_forward` asks for the variants' objective on bars
``[start, stop)``; here each variant runs through the compiled core on exactly those
bars (a fresh account at ``start``), over its group's cached series: its features and
predictions were made walk-forward by the model (a bar's prediction from a fold trained
on earlier bars), so no bar at or after ``stop`` reaches the answer.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tradeloom.core.state import BarInputs
from tradeloom.engine.core_spec import core_spec
from tradeloom.errors import UserError
from tradeloom.sweep.batch import run_batch
from tradeloom.sweep.stage_cache import StageCache
from tradeloom.sweep.stages import Series, load_series
from tradeloom.sweep.variants import CheckedVariant
from tradeloom.sweep.walk_forward import Evaluation, WalkForwardResult, walk_forward

if TYPE_CHECKING:
    from tradeloom.sweep.settings import Settings

__all__ = ["WalkForwardRun", "run_walk_forward", "window"]


@dataclass(frozen=True)
class WalkForwardRun:
    """The optimisation's result and its summary lines."""

    result: WalkForwardResult
    lines: list[str]


def window(series: Series, start: int, stop: int) -> Series:
    """Return ``series`` cut to the bars ``[start, stop)`` (bar ``start`` becomes bar 0)."""
    inputs = series.inputs
    cut = BarInputs(
        np.ascontiguousarray(inputs.px[:, start:stop]),
        np.ascontiguousarray(inputs.flags[:, start:stop]),
        np.ascontiguousarray(inputs.score[start:stop]),
        np.ascontiguousarray(inputs.time_ns[start:stop]),
        np.ascontiguousarray(inputs.trainings[start:stop]),
    )
    return replace(series, inputs=cut, index=series.index[start:stop])


def run_walk_forward(
    settings: Settings, checked: Sequence[CheckedVariant], keys: Sequence[str], out: Path
) -> WalkForwardRun:
    """Run the walk-forward optimisation of ``settings`` over the variants.

    Raises:
        UserError: A variant the batched core cannot run, or variants over other bars.
    """
    from tradeloom.sweep.results import ResultStore

    spec = settings.walk_forward
    assert spec is not None
    store = ResultStore(out, settings.identity())
    cache = StageCache(settings.cache_dir or out / "cache")
    series_of: dict[str, Series] = {}
    runs: list[tuple[Series, Any]] = []
    for key, variant in zip(keys, checked, strict=True):
        inputs_key = store.rows[key].get("hash.inputs") or ""
        if not inputs_key:
            raise UserError(
                "--walk-forward: a variant runs as a whole backtest (a plugin's "
                "component, acting health rules or several symbols); not supported"
            )
        if inputs_key not in series_of:
            loaded = load_series(cache, inputs_key)
            if loaded is None:
                raise UserError(f"--walk-forward: the stage cache lost {inputs_key}; run again")
            series_of[inputs_key] = loaded
        series = series_of[inputs_key]
        core = core_spec(
            variant.pipeline,
            series.timeframe_seconds,
            periods_per_year=series.sizing_year,
            monitors=False,
        )
        runs.append((series, core))
    lengths = {len(s.index) for s, _ in runs}
    if len(lengths) != 1:
        raise UserError("--walk-forward: the variants' bars differ (a data setting is swept)")
    first = runs[0][0]
    n_bars = len(first.index)
    if spec.in_sample + spec.out_of_sample > n_bars:
        raise UserError(
            f"--walk-forward: in_sample + out_of_sample = {spec.in_sample + spec.out_of_sample} "
            f"bars, the data has {n_bars}"
        )
    sign = 1.0 if settings.direction == "maximize" else -1.0
    goal = settings.goal

    def evaluate(start: int, stop: int, variants: Sequence[Hashable]) -> list[Evaluation]:
        answers: dict[Hashable, Evaluation] = {}
        by_series: dict[int, list[int]] = {}
        for v in variants:
            by_series.setdefault(id(runs[int(v)][0]), []).append(int(v))  # type: ignore[call-overload]
        for members in by_series.values():
            cut = window(runs[members[0]][0], start, stop)
            result = run_batch(cut, [runs[v][1] for v in members])
            # no prediction on these bars (the model's first fold predicts later)
            empty = bool(np.isnan(cut.inputs.px[5]).all())
            for k, v in enumerate(members):
                metrics = result.metrics[k]
                number = goal.value_of(metrics)
                if settings.rejected(metrics):
                    number = float("nan")  # never chosen in-sample
                answers[v] = Evaluation(sign * number, result.returns[k], empty)
        return [answers[v] for v in variants]

    params: dict[Hashable, dict[str, Any]] = {
        i: c.variant.params(settings.space.axes) for i, c in enumerate(checked)
    }
    result = walk_forward(
        n_bars,
        in_sample=spec.in_sample,
        out_of_sample=spec.out_of_sample,
        step=spec.step,
        variants=list(range(len(checked))),
        evaluate=evaluate,
        objective=settings.objective,
        params=params,
        timestamps=first.index,
    )
    chosen = ", ".join("-" if w.empty else str(w.chosen) for w in result.windows)
    total = float(np.prod(1.0 + result.returns) - 1.0) if len(result.returns) else float("nan")
    lines = [
        f"walk-forward: {len(result.windows)} windows (in-sample {spec.in_sample}, "
        f"out-of-sample {spec.out_of_sample} bars); chosen rows per window: {chosen}; "
        f"out-of-sample return {total:.4%}; the choice changed {result.stability.changes} "
        f"times ({result.stability.distinct} distinct variants)"
    ]
    empty = [w.window.index + 1 for w in result.windows if w.empty]
    if empty:
        lines.append(
            f"walk-forward: {len(empty)} windows had no prediction in-sample (windows "
            f"{', '.join(map(str, empty))}): nothing was chosen there and their "
            f"out-of-sample bars were not traded (-)"
        )
    return WalkForwardRun(result, lines)
