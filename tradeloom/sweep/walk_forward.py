"""Walk-forward optimisation: choose in-sample, trade out-of-sample, stitch the results.

The bars are cut into windows of ``in_sample`` bars followed by ``out_of_sample`` bars,
each window ``step`` bars (default ``out_of_sample``) after the previous one; the last
window's out-of-sample part may be shorter when the data ends. ``step`` may exceed
``out_of_sample`` (the bars between are not traded) but not fall short of it (the
out-of-sample parts would overlap).

For each window, `walk_forward` asks the caller's ``evaluate`` for every variant's
objective on the in-sample bars, chooses the best (the highest; NaN last; ties go to the
variant that comes first in ``variants``), then asks for the chosen variant alone on the
out-of-sample bars. The out-of-sample returns of every window, in order, are the
stitched curve. No out-of-sample bar can reach a choice: the choice is made from the
in-sample call's answer before the out-of-sample call is made.

A window whose in-sample bars hold no prediction for any variant (the model's first
fold predicts later) is *empty*: there is nothing to choose by, so no variant is chosen
(``chosen`` None), its out-of-sample bars are not traded (flat: zero returns), and it
counts in no measure of the choice's stability; the summary and the report name it.

The ``evaluate`` protocol: ``evaluate(start, stop, variants)`` returns one `Evaluation`
per variant, in the order of ``variants`` (opaque keys, hashable), for the bars
``[start, stop)``: the objective on those bars and the per-bar returns (``stop - start``
of them; optional in-sample, required out-of-sample). It may read bars before ``start``
(warm-up, model training) and must not read bars at or after ``stop``.
"""

from __future__ import annotations

import argparse
import itertools
import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tradeloom.errors import UserError
from tradeloom.suggestions import did_you_mean

__all__ = [
    "Evaluation",
    "ParamStability",
    "Stability",
    "WalkForwardResult",
    "WalkForwardSpec",
    "Window",
    "WindowResult",
    "parse_walk_forward",
    "walk_forward",
    "walk_forward_argument",
]

_FORM = "in_sample=N,out_of_sample=M[,step=K]"
_KEYS = ("in_sample", "out_of_sample", "step")


@dataclass(frozen=True)
class Evaluation:
    """What ``evaluate`` answers for one variant on bars ``[start, stop)``.

    Attributes:
        objective: The objective on those bars (higher is better; NaN ranks last).
        returns: The per-bar returns on those bars (``stop - start``); may be None for an
            in-sample evaluation.
        empty: The variant had no prediction on those bars: its objective measures nothing.
    """

    objective: float
    returns: np.ndarray | None = None
    empty: bool = False


Evaluate = Callable[[int, int, Sequence[Hashable]], Sequence[Evaluation]]


@dataclass(frozen=True)
class Window:
    """One window's bars: in-sample ``[in_start, in_stop)``, out-of-sample
    ``[in_stop, out_stop)``."""

    index: int
    in_start: int
    in_stop: int
    out_stop: int

    @property
    def out_start(self) -> int:
        """Return the first out-of-sample bar (the bar after the in-sample ones)."""
        return self.in_stop


@dataclass(frozen=True)
class WalkForwardSpec:
    """Window lengths in bars; ``step`` defaults to ``out_of_sample``."""

    in_sample: int
    out_of_sample: int
    step: int | None = None

    def __post_init__(self) -> None:
        for key in _KEYS:
            value = getattr(self, key)
            if value is None and key == "step":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{key} must be a whole number > 0, was {value!r}")
        if self.step is not None and self.step < self.out_of_sample:
            raise ValueError(
                f"step ({self.step}) must be at least out_of_sample ({self.out_of_sample}): "
                "out-of-sample windows would overlap"
            )

    @property
    def stride(self) -> int:
        """Return the bars from one window's start to the next one's."""
        return self.step if self.step is not None else self.out_of_sample

    def windows(self, n_bars: int) -> list[Window]:
        """Return the windows over ``n_bars`` bars.

        Raises:
            UserError: Fewer bars than one window needs, with both counts.
        """
        need = self.in_sample + self.out_of_sample
        if n_bars < need:
            raise UserError(
                f"--walk-forward in_sample={self.in_sample},out_of_sample="
                f"{self.out_of_sample} needs {need} bars, the data has {n_bars}"
            )
        out: list[Window] = []
        start = 0
        while start + self.in_sample < n_bars:
            stop = start + self.in_sample
            out.append(Window(len(out), start, stop, min(stop + self.out_of_sample, n_bars)))
            start += self.stride
        return out


@dataclass(frozen=True)
class WindowResult:
    """One window of a walk-forward optimisation.

    Attributes:
        window: Its bars.
        chosen: The variant chosen in-sample (None: an empty window, nothing chosen).
        chosen_index: Its position in ``variants`` (-1: an empty window).
        in_sample_objective: Its in-sample objective.
        out_of_sample_objective: Its out-of-sample objective.
        in_sample_times: First and last in-sample bar's timestamps (None without them).
        out_of_sample_times: First and last out-of-sample bar's timestamps.
        nan_objectives: Variants whose in-sample objective was NaN.
        empty: No variant had a prediction in-sample: nothing was chosen or traded.
    """

    window: Window
    chosen: Hashable
    chosen_index: int
    in_sample_objective: float
    out_of_sample_objective: float
    in_sample_times: tuple[Any, Any] | None = None
    out_of_sample_times: tuple[Any, Any] | None = None
    nan_objectives: int = 0
    empty: bool = False


@dataclass(frozen=True)
class ParamStability:
    """How one parameter's chosen value moved from window to window.

    Attributes:
        name: The parameter's dotted key.
        values: The chosen value in each window.
        distinct: Different values chosen.
        changes: Windows whose value differs from the previous window's.
        std: Standard deviation (ddof 0) of the chosen values (numbers only, else None).
        relative_spread: ``std`` over the range of the values the variants offered (0:
            the same value in every window; None for non-numbers or a single value).
    """

    name: str
    values: tuple[Any, ...]
    distinct: int
    changes: int
    std: float | None
    relative_spread: float | None


@dataclass(frozen=True)
class Stability:
    """How stable the choice was: of the variant and of each parameter.

    Attributes:
        changes: Windows whose chosen variant differs from the previous chosen one's
            (empty windows are skipped).
        change_rate: ``changes`` over the chances (the windows with a choice, less one;
            0 with one or none).
        distinct: Different variants chosen.
        params: One entry per parameter (when ``params`` were given).
        empty: Windows with no prediction in-sample (nothing chosen, not traded).
    """

    changes: int
    change_rate: float
    distinct: int
    params: tuple[ParamStability, ...]
    empty: int = 0


@dataclass(frozen=True, eq=False)
class WalkForwardResult:
    """A walk-forward optimisation: each window's choice and the stitched out-of-sample run.

    Attributes:
        windows: One per window, in time order.
        bars: The bar index of each stitched out-of-sample return.
        returns: The chosen variants' out-of-sample returns, stitched.
        equity: ``initial_equity`` compounded by ``returns`` (after each bar).
        objective: Name of the objective the choices were made by.
        stability: How often and how far the choice moved.
        timestamps: The timestamps of ``bars`` (None when not given).
        initial_equity: Equity before the first out-of-sample bar.
    """

    windows: tuple[WindowResult, ...]
    bars: np.ndarray
    returns: np.ndarray
    equity: np.ndarray
    objective: str
    stability: Stability
    timestamps: np.ndarray | None = None
    initial_equity: float = 1.0


def walk_forward(
    n_bars: int,
    *,
    in_sample: int,
    out_of_sample: int,
    step: int | None = None,
    variants: Sequence[Hashable],
    evaluate: Evaluate,
    objective: str = "objective",
    params: Mapping[Hashable, Mapping[str, Any]] | None = None,
    timestamps: Sequence[Any] | np.ndarray | None = None,
    initial_equity: float = 1.0,
) -> WalkForwardResult:
    """Choose the best variant on each in-sample window and trade it on the next bars.

    Args:
        n_bars: Bars in the data.
        in_sample: Bars each choice is made on.
        out_of_sample: Bars each choice is traded on.
        step: Bars between windows' starts (default ``out_of_sample``).
        variants: The variants (opaque, hashable keys), in the order ties are broken by.
        evaluate: ``evaluate(start, stop, variants)`` (the module's protocol).
        objective: The objective's name, for the report.
        params: Each variant's parameters (dotted key -> value), for the stability.
        timestamps: The ``n_bars`` bars' timestamps, for the windows' bounds.
        initial_equity: Equity before the first out-of-sample bar.

    Raises:
        ValueError: Bad window lengths, no variant, or an ``evaluate`` answer that breaks
            the protocol (a count, a length, NaN returns).
        UserError: Fewer bars than one window needs.
    """
    spec = WalkForwardSpec(in_sample, out_of_sample, step)
    if not variants:
        raise ValueError("walk_forward needs at least one variant")
    if timestamps is not None and len(timestamps) != n_bars:
        raise ValueError(f"timestamps has {len(timestamps)} entries for {n_bars} bars")
    results = []
    stitched_bars, stitched = [], []
    for window in spec.windows(n_bars):
        answers = _checked(evaluate, window.in_start, window.in_stop, variants, need_returns=False)
        scores = np.array([a.objective for a in answers], dtype=np.float64)
        stitched_bars.append(np.arange(window.in_stop, window.out_stop))
        if all(a.empty for a in answers):  # nothing to choose by: flat, no choice
            stitched.append(np.zeros(window.out_stop - window.in_stop))
            results.append(
                WindowResult(
                    window=window,
                    chosen=None,
                    chosen_index=-1,
                    in_sample_objective=math.nan,
                    out_of_sample_objective=math.nan,
                    in_sample_times=_times(timestamps, window.in_start, window.in_stop),
                    out_of_sample_times=_times(timestamps, window.in_stop, window.out_stop),
                    nan_objectives=int(np.isnan(scores).sum()),
                    empty=True,
                )
            )
            continue
        # a variant without a prediction there ranks with the NaN objectives
        scores[[a.empty for a in answers]] = math.nan
        best = int(np.argmax(np.where(np.isnan(scores), -np.inf, scores)))
        (traded,) = _checked(
            evaluate, window.in_stop, window.out_stop, [variants[best]], need_returns=True
        )
        assert traded.returns is not None
        stitched.append(np.asarray(traded.returns, dtype=np.float64))
        results.append(
            WindowResult(
                window=window,
                chosen=variants[best],
                chosen_index=best,
                in_sample_objective=float(scores[best]),
                out_of_sample_objective=float(traded.objective),
                in_sample_times=_times(timestamps, window.in_start, window.in_stop),
                out_of_sample_times=_times(timestamps, window.in_stop, window.out_stop),
                nan_objectives=int(np.isnan(scores).sum()),
            )
        )
    returns = np.concatenate(stitched)
    bars = np.concatenate(stitched_bars)
    return WalkForwardResult(
        windows=tuple(results),
        bars=bars,
        returns=returns,
        equity=initial_equity * np.cumprod(1.0 + returns),
        objective=objective,
        stability=_stability(results, variants, params),
        timestamps=None if timestamps is None else np.asarray(timestamps)[bars],
        initial_equity=float(initial_equity),
    )


def parse_walk_forward(text: str) -> WalkForwardSpec:
    """Return the windows of a ``--walk-forward in_sample=N,out_of_sample=M[,step=K]`` value.

    Raises:
        ValueError: The value's problem, in one line (without the option's name).
    """
    values: dict[str, int] = {}
    for part in text.split(","):
        key, sep, value = (p.strip() for p in part.partition("="))
        if not sep or not key:
            raise ValueError(f"expected {_FORM}, was '{text}'")
        if key not in _KEYS:
            hint = did_you_mean(key, _KEYS)
            raise ValueError(f"unknown key '{key}'{hint}; expected {_FORM}")
        if key in values:
            raise ValueError(f"{key} is given twice")
        if not value.isascii() or not value.isdigit() or int(value) <= 0:
            raise ValueError(f"{key} must be a whole number > 0, was '{value}'")
        values[key] = int(value)
    for key in _KEYS[:2]:
        if key not in values:
            raise ValueError(f"{key} is missing; expected {_FORM}")
    return WalkForwardSpec(values["in_sample"], values["out_of_sample"], values.get("step"))


def walk_forward_argument(text: str) -> WalkForwardSpec:
    """Parse ``--walk-forward`` for argparse (``type=walk_forward_argument``): a bad value
    is reported as ``argument --walk-forward: <problem>``, exit 2."""
    try:
        return parse_walk_forward(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _checked(
    evaluate: Evaluate,
    start: int,
    stop: int,
    variants: Sequence[Hashable],
    *,
    need_returns: bool,
) -> list[Evaluation]:
    answers = list(evaluate(start, stop, variants))
    if len(answers) != len(variants):
        raise ValueError(
            f"evaluate returned {len(answers)} evaluations for {len(variants)} variants "
            f"on bars [{start}, {stop})"
        )
    for variant, answer in zip(variants, answers, strict=True):
        if answer.returns is None:
            if need_returns:
                raise ValueError(
                    f"evaluate returned no returns for {variant!r} on bars [{start}, {stop})"
                )
            continue
        returns = np.asarray(answer.returns, dtype=np.float64)
        if returns.shape != (stop - start,):
            raise ValueError(
                f"evaluate returned {returns.size} returns for {variant!r} on bars "
                f"[{start}, {stop}), expected {stop - start}"
            )
        if need_returns and np.isnan(returns).any():
            raise ValueError(
                f"evaluate returned NaN returns for {variant!r} on bars [{start}, {stop})"
            )
    return answers


def _times(
    timestamps: Sequence[Any] | np.ndarray | None, start: int, stop: int
) -> tuple[Any, Any] | None:
    if timestamps is None:
        return None
    return timestamps[start], timestamps[stop - 1]


def _stability(
    results: Sequence[WindowResult],
    variants: Sequence[Hashable],
    params: Mapping[Hashable, Mapping[str, Any]] | None,
) -> Stability:
    made = [r for r in results if not r.empty]
    chosen = [r.chosen_index for r in made]
    changes = sum(a != b for a, b in itertools.pairwise(chosen))
    per_param = []
    if params is not None:
        names = sorted({name for variant in variants for name in params[variant]})
        for name in names:
            values = tuple(None if r.empty else params[r.chosen].get(name) for r in results)
            offered = [params[v].get(name) for v in variants]
            per_param.append(_param_stability(name, values, offered))
    return Stability(
        changes=changes,
        change_rate=changes / (len(made) - 1) if len(made) > 1 else 0.0,
        distinct=len(set(chosen)),
        params=tuple(per_param),
        empty=len(results) - len(made),
    )


def _param_stability(name: str, values: tuple[Any, ...], offered: list[Any]) -> ParamStability:
    """``values``: one per window, None for an empty window (left out of every measure)."""
    made = [v for v in values if v is not None]
    changes = sum(a != b for a, b in itertools.pairwise(made))
    distinct = len({repr(v) for v in made})
    numeric = bool(made) and all(_is_number(v) for v in (*made, *offered))
    std = spread = None
    if numeric:
        std = float(np.std(np.asarray(made, dtype=np.float64)))
        span = float(np.ptp(np.asarray(offered, dtype=np.float64)))
        spread = std / span if span > 0 else None
    return ParamStability(name, values, distinct, changes, std, spread)


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )
