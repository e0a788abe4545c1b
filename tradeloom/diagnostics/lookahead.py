"""Look for look-ahead: change or drop the bars after a cut, check that nothing before it moved.

A strategy has no look-ahead when what it computes and decides at bar t depends on
bars <= t only. `check_lookahead` tests that from the outside, for any strategy,
third-party components included:

1. The bars are loaded once through the strategy's data source, and a reference
   backtest runs over all of them.
2. Cut points t are spread over the bars after the first prediction (where every
   layer is at work). With ``allocation:``, up to as many more are the reference's
   rebalance bars (`rebalance_cuts`): a rebalance decided at bar d whose estimation
   window reached past d moves only when a cut falls in ``[d, d + reach)``, so the cuts
   fall on decisions themselves. For each, two altered histories are made: the bars after t
   dropped (*truncated*), and the bars after t replaced by another plausible market
   (*replaced*: a seeded random walk from bar t's close, timestamps kept; columns
   other than OHLCV are kept as they are). In both, the auxiliary series of
   ``data.auxiliary`` are joined again from the values published by bar t's close
   (`tradeloom.plugins.data.auxiliary.rejoin_published_by`): what was not published
   yet is dropped with the future bars, so a value used before its publication
   (a violated ``available_after``) moves a row <= t. The documents of the text sources
   (``data.auxiliary`` kind ``text``) are cut the same way: only those visible by bar
   t's close are kept, so a text feature that reads a document before it is visible
   (its own time instead of its publication, a future headline) moves a row <= t. A
   universe is cut on its common clock: every symbol's bars after the clock's bar t are
   altered (each symbol its own walk), so a cross-sectional feature that looks ahead,
   or a per-symbol one feeding it, moves a row <= t; cuts fall where every symbol has
   been listed. The markets of informative pairs (``features[].symbol``) are altered
   after the cut too, each its own walk, so a pair joined before its bar closed moves a
   row <= t.
3. Nothing at a bar <= t may move. Compared in this order, the first difference is
   reported and the check stops:

   * every feature component, in file order, over every cut: its columns at rows
     <= t, bit for bit (NaN equals NaN). A later feature that consumes a leaky
     column is not blamed: the first one is;
   * then, cut by cut, the model's probabilities at rows <= t;
   * and the journal rows at bars <= t: the allocation layer's decisions (weights,
     inputs' hash, solver status), signals, risk decisions, orders, fills,
     halts, cancellations, model trainings, health changes, regime changes (so the
     regime labels of ``regime:`` are checked too, as are the signals they filter
     and the entries the anomaly gate rejects). A decision at t's close
     fills at t+1's open at the earliest, so a fill at bar <= t belongs to a decision
     at a bar <= t. Left out: ``run`` and ``data_loaded`` rows, and rows journaled
     after the last bar (orders that expire or are cancelled because the data ended);
     a training fold's ``predict_end`` is compared clipped to t.

Each run rebuilds every component from the validated strategy (components hold
state) and runs the public engine, `run_backtest`, with its own journal in a
temporary folder. Observers are not called: they never change a decision.

Features are compared exactly. Model probabilities and journal numbers are compared
to a relative 1e-9: an estimator's arithmetic may depend on how many rows it
predicts at once (BLAS kernels block a matrix product by its size), and truncating
the bars shortens the last fold's batch, which can move the last bit of a
probability; a look-ahead moves values far more.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd
import pluggy
import structlog

from tradeloom.backtest.pipeline import run_backtest
from tradeloom.domain import OHLCV, Bars, RunInfo, Universe
from tradeloom.engine.events import Recorder
from tradeloom.engine.features import universe_features
from tradeloom.engine.health import HEALTH_HALT
from tradeloom.engine.universe import load_universe
from tradeloom.engine.wiring import Pipeline, build_pipeline
from tradeloom.errors import UserError
from tradeloom.journal import RUN_KINDS, RunIdentity, open_journal, read_rows
from tradeloom.plugins import hookspecs
from tradeloom.plugins.data.auxiliary import AuxiliarySeries, rejoin_published_by
from tradeloom.plugins.protocols import AuxiliaryData
from tradeloom.runtime import progress as progress_bars
from tradeloom.schemas.config import ComponentConfig, StrategyConfig
from tradeloom.time.timeframes import format_timestamp

__all__ = [
    "ALTERATIONS",
    "END_OF_DATA_ROW_TYPES",
    "IGNORED_ROW_TYPES",
    "Finding",
    "LookaheadReport",
    "check_lookahead",
    "cut_points",
    "rebalance_cuts",
    "replace_after",
    "truncate_after",
]

ALTERATIONS: tuple[str, ...] = ("truncated", "replaced")
"""How the bars after a cut are altered, in the order they are checked."""

IGNORED_ROW_TYPES: frozenset[str] = RUN_KINDS | {"data_loaded"}
"""Journal rows that are run bookkeeping, never compared."""

END_OF_DATA_ROW_TYPES: frozenset[str] = frozenset({"order_expired", "order_cancelled"})
"""Journal rows that the end of the data causes when they come after the last bar's rows
(a cancellation only for the reason ``EXPIRED``: one the venue decided at a bar, such as
``INSUFFICIENT_CASH``, may be a run's last row and is compared)."""

RELATIVE_TOLERANCE = 1e-9
"""How far a probability or a journal number may move (relative) and count as unchanged."""

ABSOLUTE_TOLERANCE = 1e-12
"""The same for values near 0."""

_log = structlog.get_logger("tradeloom.lookahead")

_ABSENT = "<absent>"


@dataclass(frozen=True)
class Finding:
    """The first thing at a bar <= t that moved when the bars after t were altered.

    Attributes:
        layer: ``features``, ``model`` or ``journal``.
        component: The component as the message names it, e.g.
            ``features.2 (kind future_return, plugin example)``; for a journal row,
            the component(s) that journal rows of its type come from.
        subject: What moved: ``column NAME``, ``probability`` or ``journal row TYPE``.
        bar: The bar it moved at (<= ``cut``).
        timestamp: That bar's time.
        change: How it moved: ``changed from A to B``, ``changed (key from A to B)``,
            ``disappeared`` or ``appeared``.
        cut: The last bar kept as it was.
        alteration: ``truncated`` or ``replaced``.
    """

    layer: str
    component: str
    subject: str
    bar: int
    timestamp: pd.Timestamp
    change: str
    cut: int
    alteration: str

    @property
    def message(self) -> str:
        """Return the one line that reports the finding."""
        return (
            f"look-ahead: {self.component} {self.subject} at bar {self.bar} "
            f"({format_timestamp(self.timestamp)}) {self.change} "
            f"when bars after {self.cut} were {self.alteration}"
        )


@dataclass(frozen=True)
class LookaheadReport:
    """What `check_lookahead` checked and what it found.

    Attributes:
        cuts: The cut points, ascending.
        components: How many components were checked (all but the data source).
        lines: One line per check done, as printed.
        finding: The first look-ahead found, or None.
    """

    cuts: tuple[int, ...]
    components: int
    lines: tuple[str, ...]
    finding: Finding | None

    @property
    def summary(self) -> str:
        """Return the last line: the finding, or that none was found."""
        if self.finding is not None:
            return self.finding.message
        cuts = _count(len(self.cuts), "cut point")
        return f"no look-ahead found ({cuts}, {_count(self.components, 'component')})"


def cut_points(n_bars: int, first: int, points: int) -> list[int]:
    """Return up to ``points`` distinct cut points spread evenly over ``first .. n_bars - 2``.

    Every cut leaves at least one bar after it to alter. Deterministic: the same
    arguments give the same points.

    Args:
        n_bars: Number of bars.
        first: The earliest bar worth cutting at (the first prediction).
        points: How many cut points are wanted (>= 1).

    Raises:
        ValueError: ``points`` is below 1.
        UserError: No bar from ``first`` on has a bar after it.
    """
    if points < 1:
        raise ValueError(f"points must be >= 1, was {points}")
    span = n_bars - 1 - first
    if span < 1:
        raise UserError(
            f"check-lookahead: the data has {n_bars:,} bars and the first prediction is at "
            f"bar {first}; no bar after it is left to alter (use more bars)"
        )
    return sorted({first + (i + 1) * span // (points + 1) for i in range(points)})


def truncate_after(bars: Bars, cut: int) -> Bars:
    """Return the bars up to and including bar ``cut``."""
    return replace(bars, frame=bars.frame.iloc[: cut + 1].copy())


def replace_after(bars: Bars, cut: int, rng: np.random.Generator) -> Bars:
    """Return the bars with every bar after ``cut`` replaced by another plausible market.

    The close follows a random walk from bar ``cut``'s close with the volatility of
    the bars up to ``cut``; opens gap slightly from the previous close; highs and lows
    envelope open and close; volumes are drawn from the volumes up to ``cut``. The
    timestamps, and any column other than OHLCV, are kept.

    Args:
        bars: The bars.
        cut: The last bar kept as it was.
        rng: The source of randomness.
    """
    frame = bars.frame
    n = len(frame) - cut - 1
    if n <= 0:
        return bars
    close_before = frame["close"].to_numpy(np.float64)[: cut + 1]
    returns = np.diff(np.log(close_before))
    returns = returns[np.isfinite(returns)]
    sigma = float(np.std(returns)) if len(returns) > 1 else 0.0
    if not (math.isfinite(sigma) and sigma > 0.0):
        sigma = 0.01
    close = close_before[-1] * np.exp(np.cumsum(rng.normal(0.0, sigma, n)))
    previous = np.r_[close_before[-1], close[:-1]]
    open_ = previous * np.exp(rng.normal(0.0, sigma / 10.0, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, sigma / 2.0, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, sigma / 2.0, n)))
    volumes = frame["volume"].to_numpy(np.float64)[: cut + 1]
    volumes = volumes[np.isfinite(volumes) & (volumes > 0.0)]
    base = rng.choice(volumes, n) if len(volumes) else np.ones(n)
    volume = base * np.exp(rng.normal(0.0, 0.25, n))
    altered = frame.copy()
    future = {"open": open_, "high": high, "low": low, "close": close, "volume": volume}
    for column in OHLCV:
        position = altered.columns.get_loc(column)
        altered.iloc[cut + 1 :, position] = future[column]
    return replace(bars, frame=altered)


def rebalance_cuts(rebalances: Sequence[int], n_bars: int, first: int, points: int) -> list[int]:
    """Return up to ``points`` of the ``rebalances`` bars, spread evenly over those from
    ``first`` to ``n_bars - 2`` (each leaves a bar after it to alter).

    Args:
        rebalances: The bars the allocation layer decided a rebalance at, ascending.
        n_bars: Number of bars.
        first: The earliest bar worth cutting at.
        points: How many are wanted (>= 1).
    """
    eligible = sorted({b for b in rebalances if first <= b <= n_bars - 2})
    if len(eligible) <= points:
        return eligible
    return sorted({eligible[(i + 1) * len(eligible) // (points + 1)] for i in range(points)})


def check_lookahead(
    config: StrategyConfig,
    *,
    points: int = 3,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> LookaheadReport:
    """Check ``config`` for look-ahead; see the module docstring for how.

    Args:
        config: The validated strategy.
        points: How many cut points (>= 1).
        seed: Seeds the replacement markets.
        progress: Called with each line of `LookaheadReport.lines` as soon as it is known.

    Returns:
        The report; ``finding`` is the first look-ahead found, or None.

    Raises:
        ValueError: ``points`` is below 1.
        ConfigError: A component's factory refused its params.
        UserError: The data cannot be loaded, or is too short to cut.
        RuntimeError: A component failed on altered bars (the message names which).
    """
    if points < 1:
        raise ValueError(f"points must be >= 1, was {points}")
    pipeline = build_pipeline(config)
    data = pipeline.data
    universe = load_universe(pipeline)
    series: tuple[AuxiliarySeries, ...] = (
        data.auxiliary_series() if isinstance(data, AuxiliaryData) else ()
    )
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        if progress is not None:
            progress(line)

    # every component but the data source: the features, the model, the signal rule, the
    # sizing, the risk rules, the venue and the monitors
    components = len(config.features) + 4 + len(config.risk_rules) + len(config.monitoring)
    components += config.allocation is not None
    with tempfile.TemporaryDirectory(prefix="tradeloom-lookahead-") as folder:
        runner = _Runner(config, Path(folder))
        reference = runner.run(universe, "reference")
        # every symbol has a bar at or before each cut: a cut keeps each symbol's past
        first = max(_first_prediction(reference), _every_symbol_listed(universe))
        times = universe.index
        cuts = cut_points(len(times), first, points)
        decided = [row.bar for row in reference.rows if row.type == "allocation_decided"]
        at_rebalances = rebalance_cuts(decided, len(times), first, points)
        cuts = sorted(set(cuts) | set(at_rebalances))
        listed = "" if len(universe.bars) == 1 else f" of {len(universe.bars)} symbols"
        rebalancing = (
            f" ({', '.join(map(str, at_rebalances))} at rebalances)" if at_rebalances else ""
        )
        say(
            f"reference: {len(times):,} bars{listed}, first prediction at bar {first}; "
            f"cut points {', '.join(map(str, cuts))}{rebalancing}"
        )
        variants = [
            _Variant(cut, alteration, _alter(universe, cut, alteration, seed, series))
            for cut in cuts
            for alteration in ALTERATIONS
        ]

        def done(finding: Finding | None) -> LookaheadReport:
            return LookaheadReport(tuple(cuts), components, tuple(lines), finding)

        # Features first, for every cut: they are cheap, and a leak there is the most common.
        def features_of(variant: _Variant) -> npt.NDArray[np.float64]:
            return universe_features(build_pipeline(config), variant.universe).array()

        frames = []
        with progress_bars.task("check-lookahead: features", total=len(variants)) as shown:
            for variant in variants:
                frames.append(_on_altered(variant, features_of))
                shown.advance()
        finding = _compare_features(config, reference, variants, frames, universe)
        if finding is not None:
            return done(finding)
        n_columns = reference.features.shape[2]
        with progress_bars.task("check-lookahead: runs", total=len(variants)) as shown:
            for variant in variants:
                run = _on_altered(variant, lambda v: runner.run(v.universe, _describe(v)))
                shown.advance()
                finding = _compare_model(config, reference, run, variant, universe)
                if finding is None:
                    finding = _compare_journal(config, reference, run, variant, times)
                if finding is not None:
                    return done(finding)
                t = variant.cut
                predictions = int(np.isfinite(reference.probability[: t + 1]).sum())
                rows = len(_until(reference.rows, t))
                say(
                    f"bars after {t} ({format_timestamp(times[t])}) {variant.alteration}: "
                    f"{_count(n_columns, 'feature column')}, "
                    f"{_count(predictions, 'prediction')} "
                    f"and {_count(rows, 'journal row')} at bars <= {t} unchanged"
                )
        return done(None)


# --- runs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Variant:
    cut: int
    alteration: str
    universe: Universe


@dataclass(frozen=True)
class _Row:
    type: str
    bar: int
    ts: str | None
    payload: Any


@dataclass(frozen=True)
class _Output:
    pipeline: Pipeline
    features: npt.NDArray[np.float64]  # [bars, symbols, columns] on the clock
    probability: npt.NDArray[np.float64]  # [bars, symbols]
    rows: tuple[_Row, ...]


class _FixedSource:
    """A data source that returns the universe it was given."""

    def __init__(self, universe: Universe) -> None:
        self.universe = universe

    def load(self) -> Bars:
        return self.universe.bars[0]

    def load_universe(self) -> Universe:
        return self.universe

    def informative_refusal(self, symbol: str) -> str | None:
        return None

    def load_informative(self, symbol: str) -> Bars:
        return self.universe.informative_bars()[symbol]


class _Runner:
    def __init__(self, config: StrategyConfig, folder: Path) -> None:
        self.config = config
        self.folder = folder
        self.count = 0
        # Observers never change a decision; a check must not alert anyone either.
        manager = pluggy.PluginManager(hookspecs.PROJECT)
        manager.add_hookspecs(hookspecs)
        self.hook = manager.hook

    def run(self, universe: Universe, label: str) -> _Output:
        self.count += 1
        pipeline = replace(build_pipeline(self.config), data=_FixedSource(universe))
        name = self.config.name
        path = self.folder / f"run-{self.count}.sqlite"
        run = RunInfo(
            run_id=f"{name}-lookahead-{self.count}",
            strategy=name,
            mode="check-lookahead",
            run_dir=str(self.folder),
        )
        journal = open_journal(path, RunIdentity(name, run.run_id, run.mode), flush_every=100_000)
        _log.info("lookahead_run", run=label, bars=len(universe))
        try:
            with structlog.contextvars.bound_contextvars(lookahead_run=label):
                result = run_backtest(pipeline, Recorder(journal, self.hook, run), f"{name}-check")
        finally:
            journal.close()
        rows = [
            _decision(row.kind, row.bar, row.timestamp, row.values)
            for row in read_rows(path)
            if row.kind not in IGNORED_ROW_TYPES and row.bar >= 0
        ]
        while rows and _ended_with_the_data(rows[-1]):
            rows.pop()
        return _Output(
            pipeline=pipeline,
            features=result.symbol_features.array(),
            probability=result.probabilities.to_numpy(np.float64),
            rows=tuple(rows),
        )


_T = TypeVar("_T")


def _decision(kind: str, bar: int, ts: str | None, values: dict[str, Any]) -> _Row:
    """A rejection is compared as the risk decision it is, so that a signal accepted in one
    run and rejected in the other reads as one decision that changed its outcome."""
    if kind == "rejection":
        return _Row("risk_decision", bar, ts, {"outcome": "rejected", **values})
    return _Row(kind, bar, ts, values)


def _ended_with_the_data(row: _Row) -> bool:
    if row.type == "order_cancelled":
        return bool(row.payload.get("reason") == "EXPIRED")
    return row.type in END_OF_DATA_ROW_TYPES


def _on_altered(variant: _Variant, work: Callable[[_Variant], _T]) -> _T:
    try:
        return work(variant)
    except Exception as exc:  # a component failed on altered bars: say on which
        raise RuntimeError(
            f"check-lookahead: with the {_describe(variant)}: {type(exc).__name__}: {exc}"
        ) from exc


def _describe(variant: _Variant) -> str:
    return f"bars after {variant.cut} {variant.alteration}"


def _alter(
    universe: Universe,
    cut: int,
    alteration: str,
    seed: int,
    series: Sequence[AuxiliarySeries] = (),
) -> Universe:
    """Alter every symbol's bars after the clock's bar ``cut``; see the module docstring."""
    last = universe.index[cut]
    altered = []
    for s, bars in enumerate(universe.bars):
        mine = int(bars.frame.index.searchsorted(last, side="right")) - 1  # its bar <= last
        if alteration == "truncated":
            one = truncate_after(bars, mine)
        else:
            # symbol 0's walk is seeded as a one-symbol strategy's always was
            rng = np.random.default_rng([seed, cut] if s == 0 else [seed, cut, s])
            one = replace_after(bars, mine, rng)
        altered.append(rejoin_published_by(one, series, mine))
    # an informative pair's bars after the cut are the future too: altered the same way
    pairs = []
    for k, bars in enumerate(universe.informative):
        mine = int(bars.frame.index.searchsorted(last, side="right")) - 1
        if alteration == "truncated":
            pairs.append(truncate_after(bars, mine))
        else:
            rng = np.random.default_rng([seed, cut, _INFORMATIVE_STREAM, k])
            pairs.append(replace_after(bars, mine, rng))
    index = universe.index[: cut + 1] if alteration == "truncated" else universe.index
    return Universe(tuple(altered), index, tuple(pairs))


_INFORMATIVE_STREAM = 2**32  # no symbol index reaches it


def _every_symbol_listed(universe: Universe) -> int:
    """Return the first clock bar at which every symbol has had a bar."""
    return max(int(universe.index.searchsorted(b.frame.index[0])) for b in universe.bars)


def _first_prediction(reference: _Output) -> int:
    predicted = np.flatnonzero(np.isfinite(reference.probability).any(axis=1))
    if len(predicted):
        return int(predicted[0])
    features = reference.features.reshape(len(reference.features), -1)
    complete = np.flatnonzero(np.isfinite(features).all(axis=1))
    return int(complete[0]) if len(complete) else 0


# --- comparisons -------------------------------------------------------------------------


def _label(item: ComponentConfig) -> str:
    return f"{item.path} (kind {item.kind}, plugin {item.registered.plugin.name})"


def _compare_features(
    config: StrategyConfig,
    reference: _Output,
    variants: Sequence[_Variant],
    frames: Sequence[npt.NDArray[np.float64]],
    universe: Universe,
) -> Finding | None:
    times = universe.index
    names = list(reference.pipeline.feature_columns)
    for item, feature in zip(config.features, reference.pipeline.features, strict=True):
        columns = feature.columns()
        at = [names.index(c) for c in columns]
        for variant, frame in zip(variants, frames, strict=True):
            t = variant.cut
            before = reference.features[: t + 1][:, :, at]
            after = frame[: t + 1][:, :, at]
            moved = ~((before == after) | (np.isnan(before) & np.isnan(after)))
            if not moved.any():
                continue
            row, symbol, column = (int(i) for i in np.argwhere(moved)[0])
            old, new = before[row, symbol, column], after[row, symbol, column]
            return Finding(
                layer="features",
                component=_label(item),
                subject=f"column {columns[column]}{_of(universe, symbol)}",
                bar=row,
                timestamp=times[row],
                change=f"changed {_from_to(old, new)}",
                cut=t,
                alteration=variant.alteration,
            )
    return None


def _of(universe: Universe, symbol: int) -> str:
    """Name the symbol in a finding when the strategy trades several."""
    return "" if len(universe.bars) == 1 else f" of {universe.symbols[symbol]}"


def _compare_model(
    config: StrategyConfig,
    reference: _Output,
    run: _Output,
    variant: _Variant,
    universe: Universe,
) -> Finding | None:
    t = variant.cut
    before, after = reference.probability[: t + 1], run.probability[: t + 1]
    same = np.isclose(
        before, after, rtol=RELATIVE_TOLERANCE, atol=ABSOLUTE_TOLERANCE, equal_nan=True
    )
    if same.all():
        return None
    row, symbol = (int(i) for i in np.argwhere(~same)[0])
    return Finding(
        layer="model",
        component=_label(config.model),
        subject=f"probability{_of(universe, symbol)}",
        bar=row,
        timestamp=universe.index[row],
        change=f"changed {_from_to(before[row, symbol], after[row, symbol])}",
        cut=t,
        alteration=variant.alteration,
    )


def _until(rows: Sequence[_Row], t: int) -> list[_Row]:
    kept = []
    for row in rows:
        if row.bar > t:
            continue
        if row.type == "model_trained" and isinstance(row.payload.get("predict_end"), int):
            row = replace(
                row, payload={**row.payload, "predict_end": min(row.payload["predict_end"], t)}
            )
        kept.append(row)
    return kept


def _compare_journal(
    config: StrategyConfig,
    reference: _Output,
    run: _Output,
    variant: _Variant,
    times: pd.DatetimeIndex,
) -> Finding | None:
    before, after = _until(reference.rows, variant.cut), _until(run.rows, variant.cut)
    for i in range(max(len(before), len(after))):
        old = before[i] if i < len(before) else None
        new = after[i] if i < len(after) else None
        if old is not None and new is not None:
            if (old.type, old.bar, old.ts) == (new.type, new.bar, new.ts):
                difference = _difference(old.payload, new.payload)
                if difference is None:
                    continue
                row, change = old, f"changed ({difference})"
            elif new.bar < old.bar or (
                new.bar == old.bar and i + 1 < len(after) and after[i + 1] == old
            ):
                row, change = new, "appeared"
            else:
                row, change = old, "disappeared"
        elif old is not None:
            row, change = old, "disappeared"
        else:
            assert new is not None
            row, change = new, "appeared"
        return Finding(
            layer="journal",
            component=_source(config, reference.pipeline, row),
            subject=f"journal row {row.type}",
            bar=row.bar,
            timestamp=times[row.bar],
            change=change,
            cut=variant.cut,
            alteration=variant.alteration,
        )
    return None


def _source(config: StrategyConfig, pipeline: Pipeline, row: _Row) -> str:
    """Name the component(s) that journal rows of this type come from."""
    if row.type == "allocation_decided" and config.allocation is not None:
        return _label(config.allocation)
    if row.type == "signal":
        return _label(config.signal)
    if row.type == "model_trained":
        return _label(config.model)
    if row.type in ("fill", "order_cancelled", "order_expired"):
        return _label(config.execution)
    if row.type == "regime_changed":
        return "the regime labels (regime:)"
    if row.type == "risk_decision" and row.payload.get("outcome") == "filtered":
        return "the regime filter (signal.regimes)"
    if row.type == "risk_decision" and row.payload.get("code") == "ANOMALY":
        return f"{_label(config.model)} anomaly detector"
    if row.type == "risk_decision":
        return " or ".join(_label(item) for item in (config.sizing, *config.risk_rules))
    if row.type == "halt" and row.payload.get("code") == HEALTH_HALT:
        return f"the health rules ({row.payload.get('message', '')})"
    if row.type == "halt" and config.risk_rules:
        return " or ".join(_label(item) for item in config.risk_rules)
    if row.type == "health":
        name = row.payload.get("monitor")
        for item, monitor in zip(config.monitoring, pipeline.monitors, strict=True):
            if monitor.name == name:
                return _label(item)
        return "monitoring"
    if row.type == "health_action":
        rule = f"health.{row.payload.get('rule')}"
        name = str(row.payload.get("metric", "")).partition(".")[0]
        for item, monitor in zip(config.monitoring, pipeline.monitors, strict=True):
            if monitor.name == name:
                return f"{rule} on {_label(item)}"
        return rule
    return "the engine"


def _difference(old: Any, new: Any, path: str = "") -> str | None:
    """Return ``key from A to B`` for the first value that differs, or None."""
    if isinstance(old, dict) and isinstance(new, dict):
        # keys both rows have first: "outcome from accepted to rejected" says more than
        # "code from <absent> to PEEKED"
        common = sorted(set(old) & set(new), key=str)
        for key in [*common, *sorted(set(old) ^ set(new), key=str)]:
            below = f"{path}.{key}" if path else str(key)
            if key in common:
                found = _difference(old[key], new[key], below)
                if found is not None:
                    return found
            else:
                return f"{below} {_from_to(old.get(key, _ABSENT), new.get(key, _ABSENT))}"
        return None
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            found = _difference(a, b, f"{path}[{i}]")
            if found is not None:
                return found
        return None
    if _same(old, new):
        return None
    where = f"{path} " if path else ""
    return f"{where}{_from_to(old, new)}"


def _same(old: Any, new: Any) -> bool:
    numbers = (int, float)
    if (
        isinstance(old, numbers)
        and isinstance(new, numbers)
        and not isinstance(old, bool)
        and not isinstance(new, bool)
    ):
        return math.isclose(old, new, rel_tol=RELATIVE_TOLERANCE, abs_tol=ABSOLUTE_TOLERANCE)
    return bool(type(old) is type(new) and old == new)


def _from_to(old: Any, new: Any) -> str:
    a, b = _show(old), _show(new)
    if a == b:  # too close to tell apart at 6 digits
        a, b = repr(old), repr(new)
    return f"from {a} to {b}"


def _show(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return "nan" if math.isnan(value) else f"{float(value):.6g}"
    if value is None:
        return "null"
    return str(value)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"
