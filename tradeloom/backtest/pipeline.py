"""The backtest: data, features and the model over the history, then the sequential layers.

The sequential layers (signal, risk, execution, portfolio) run in the compiled core
(`tradeloom.engine.driver.Engine`, `tradeloom.core.bar`), the same step paper and
live trading run. Two drivers give it the bars and journal identical events: the
batch driver hands it every bar at once (it stops only where a plugin's component
or the monitors need Python), the per-bar driver one bar at a time, as live
trading does; the per-bar driver also steps the features bar by bar and checks each
row against the batch features. A decision at t's close uses nothing after t, and
fills no earlier than t's close.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from tradeloom.backtest.retraining import Retrainer
from tradeloom.core import layout as L
from tradeloom.core.columns import BarTimes
from tradeloom.core.funding import FUNDING_ROW
from tradeloom.core.state import BarInputs
from tradeloom.domain import OHLCV, Bar, Bars, ModelOutput, ModelTraining, Order, Universe
from tradeloom.engine.book import Book
from tradeloom.engine.book_checks import book_of, coverage_problem
from tradeloom.engine.driver import Engine
from tradeloom.engine.events import Recorder
from tradeloom.engine.features import (
    SymbolFeatures,
    cross_row,
    universe_features,
)
from tradeloom.engine.frames import curve_out, equity_block, equity_frame
from tradeloom.engine.funding import funding_rates
from tradeloom.engine.regime import regime_codes
from tradeloom.engine.universe import journal_universe, load_universe
from tradeloom.engine.universe_model import fit_universe
from tradeloom.engine.wiring import Pipeline, modelled_venue
from tradeloom.errors import ConfigError
from tradeloom.journal import OrderExpired
from tradeloom.plugins.protocols import CrossSectionalFeature, Monitor, Retrainable
from tradeloom.plugins.protocols_steps import FeatureStepper, StepContext, SteppedFeature
from tradeloom.reporting.tearsheet import simple_returns
from tradeloom.runtime.stage_times import stage

__all__ = [
    "BacktestResult",
    "Curve",
    "Driver",
    "bar_inputs",
    "bars_in_inputs",
    "check_probabilities",
    "journal_unscored",
    "ruled_on",
    "run_backtest",
    "working_orders",
]

Driver = Literal["auto", "batch", "per_bar"]


@dataclass(frozen=True)
class BacktestResult:
    """Everything a backtest produced, for the outputs and the metrics.

    ``bars``, ``features`` and ``probability`` are the first symbol's (the one symbol
    of a one-symbol strategy); ``universe``, ``symbol_features`` and ``probabilities``
    hold every symbol's on the common clock; ``closes`` and ``positions`` are
    ``[bars, symbols]`` (a NaN close: the symbol has no bar). ``monitors`` are every
    symbol's monitors by label (`tradeloom.reporting.monitor_labels`; one market's
    by name).
    """

    bars: Bars
    features: pd.DataFrame
    probability: pd.Series
    equity: pd.DataFrame
    portfolio: Book
    recorder: Recorder
    unfilled: tuple[Order, ...]
    universe: Universe
    symbol_features: SymbolFeatures
    probabilities: pd.DataFrame
    closes: np.ndarray
    positions: np.ndarray
    models: Mapping[str, Any]
    monitors: Mapping[str, Monitor]
    returns: np.ndarray
    """`Curve.returns`."""


@dataclass(frozen=True)
class Curve:
    """A backtest's equity curve, known once its core has run (before its rows are
    journaled): ``equity`` (the equity table's rows, by bar), each bar's ``closes`` and
    ``positions`` ``[bars, symbols]`` of ``symbols``, the cash it started from, and its
    ``returns``."""

    equity: pd.DataFrame
    closes: np.ndarray
    positions: np.ndarray
    symbols: tuple[str, ...]
    initial_cash: float
    returns: np.ndarray
    """Each bar's simple return of the equity, the first against the initial cash
    (`tradeloom.reporting.tearsheet.simple_returns`): every figure's, computed once."""


def run_backtest(
    pipeline: Pipeline,
    recorder: Recorder,
    order_prefix: str,
    *,
    driver: Driver = "auto",
    loaded: Callable[[Universe], object] | None = None,
    curved: Callable[[Curve], object] | None = None,
) -> BacktestResult:
    """Run ``pipeline`` over its data (one symbol, or a universe) and return the result.

    Args:
        pipeline: The built components.
        recorder: Journals and broadcasts the events.
        order_prefix: Start of every client order id (strategy and run key).
        driver: ``auto`` or ``batch`` (every bar in one call of the core) or ``per_bar``
            (one bar per call, the features stepped as live steps them).
        loaded: Called with the bars once they are read and validated, before the run
            goes on (the run writes ``bars.parquet`` beside the rest of its work).
        curved: Called with the equity curve once the core has run, before its rows are
            journaled (the run writes the curve's tables beside that work).

    The result's ``probability`` is what was traded on: a fold retrained by a health
    rule replaces the scheduled predictions of the bars after it.
    """
    with stage("data"):
        universe = load_universe(pipeline)
    _check_book(pipeline, universe)
    if loaded is not None:
        loaded(universe)
    symbols = universe.symbols
    recorder.symbol = symbols[0]
    journal_universe(recorder, universe)
    with stage("features"):
        features = universe_features(pipeline, universe)
    journal_unscored(recorder, pipeline, universe)
    with stage("model"):
        fitted = fit_universe(pipeline, universe, features)
    n, m = len(universe), len(symbols)
    trainings_at: dict[int, list[ModelTraining]] = {}
    for training in fitted.trainings:
        trainings_at.setdefault(training.predict_start, []).append(training)
    with stage("core inputs"):
        inputs = bar_inputs(pipeline, universe, fitted.outputs, trainings_at)
    check_probabilities(inputs.px[5])
    if m > 1:  # each symbol's bars held once, in the core's inputs (500 x 10k: 190 MiB)
        universe = bars_in_inputs(universe, inputs.px)
    index = universe.index
    feats = features.clock[0].to_numpy(np.float64) if m == 1 else features.array()
    p = inputs.px[5, :, 0]  # a view: a retrained fold writes over the bars it predicts
    retrainer = None
    config = pipeline.config
    if any(rule.action == "retrain" for rule in config.health):  # one symbol (checked)
        model = pipeline.model
        assert isinstance(model, Retrainable)  # checked when the strategy was built
        retrainer = _Retrain(
            Retrainer(
                model,
                p,
                trainings_at,
                recorder,
                index,
                (inputs.flags[0, :, 0], inputs.score[:, 0]),
            ),
            inputs,
            trainings_at,
        )
    # a router's venues, each modelled: the venue journals its rows as it goes, so the
    # core's rows are journaled as they come too (not in bulk at the end)
    venue = modelled_venue(pipeline, recorder.record, universe.timeframe_seconds)
    # per bar, each event's time is looked up as it is journaled: from the times boxed
    # once (indexing a DatetimeIndex boxes a Timestamp per call)
    boxed = list(index) if driver == "per_bar" else None
    engine = Engine(
        pipeline,
        recorder,
        lambda seq: f"{order_prefix}-{seq:06d}",
        times=BarTimes(index) if boxed is None else boxed.__getitem__,
        timeframe_seconds=universe.timeframe_seconds,
        calendar=universe.bars[0].calendar,
        features=feats.__getitem__,
        columns=features.columns,
        symbols=symbols,
        retrain=retrainer,
        trainings_at=trainings_at,
        venue=venue,
        bulk=driver != "per_bar" and venue is None,  # per bar, as live: each event as it comes
        order_prefix=order_prefix,
    )
    scales = _scale_bars(pipeline, inputs)
    rules = _rule_bars(pipeline, inputs)
    with stage("core"):
        if boxed is not None:
            _per_bar(engine, universe, features, inputs, boxed, scales, rules)
        else:
            # a parity replay's canaries and promoted rules: each change at its bar's close
            while scales or rules:
                bar = min([s[0] for s in scales[:1]] + [r[0] for r in rules[:1]])
                engine.run(inputs, bar + 1)
                engine.replay_scales(scales, bar)
                _replay_rules(engine, rules, bar)
            engine.run(inputs, n)
    try:
        engine.mark_fills()  # the curve is drawn (its tables written) while rows are journaled
        # the inputs' own closes (a universe's bars are views of them: `bars_in_inputs`)
        close = inputs.px[3] if m > 1 else inputs.px[3].copy()
        with stage("equity curve"):
            # the curve written into the equity frame's own columns, not copied into them
            block = equity_block(n, symbols)
            positions, cash, equity_values = engine.universe_curve(close, curve_out(block, symbols))
            equity = equity_frame(
                universe.index,
                universe.symbols,
                close,
                positions,
                cash,
                equity_values,
                engine.portfolio.initial_cash,
                block,
            )
        initial_cash = engine.portfolio.initial_cash
        returns = simple_returns(equity_values, initial_cash)
        if curved is not None:
            curved(Curve(equity, close, positions, tuple(symbols), initial_cash, returns))
    except BaseException:
        # what the core did is journaled all the same, before the run's failure is journaled
        with contextlib.suppress(Exception):
            engine.finish(inputs.time_ns, symbols[0])
        raise
    with stage("journal rows"):
        engine.finish(inputs.time_ns, symbols[0])
    first = fitted.outputs[0].probability
    if retrainer is not None and retrainer.retrainer.retrained:
        first = pd.Series(p.copy(), index=first.index, name=first.name)
    unfilled = tuple(working_orders(engine))
    for order in unfilled:
        recorder.symbol = recorder.order_symbols.get(order.id, recorder.symbol)
        recorder.record(
            OrderExpired(
                **recorder.at(order.bar, order.timestamp, market=True),
                order_id=order.id,
                reason="no bar left to fill",
            )
        )
    # a universe's: the inputs' own row, as its bars are (one market: a copy, the inputs
    # dropped with the run)
    probability = inputs.px[5] if m > 1 else inputs.px[5].copy()
    probabilities = pd.DataFrame(probability, index=index, columns=list(symbols), copy=False)
    return BacktestResult(
        bars=universe.bars[0],
        features=features.own[0],
        probability=first,
        equity=equity,
        portfolio=engine.portfolio,
        recorder=recorder,
        unfilled=unfilled,
        universe=universe,
        symbol_features=features,
        probabilities=probabilities,
        closes=close,
        positions=positions,
        models=fitted.models,
        monitors=engine.monitors(),
        returns=returns,
    )


def bar_inputs(
    pipeline: Pipeline,
    universe: Universe,
    outputs: tuple[ModelOutput, ...],
    trainings_at: dict[int, list[ModelTraining]],
) -> BarInputs:
    """Return the core's inputs: each symbol's bars and model output on the clock.

    A symbol without a bar at t has a NaN close there (no signal, no fill); its regime
    label is carried from its last bar, so that no regime change is journaled for it.
    """
    n, m = len(universe), len(universe.symbols)
    index = universe.index
    config = pipeline.config
    funding = funding_rates(pipeline.venue, pipeline.data, universe)
    px = np.empty((6 if funding is None else 7, n, m))
    if funding is not None:  # a perpetual's funding rates (`tradeloom.core.funding`)
        px[FUNDING_ROW] = funding
    flags = np.zeros((2, n, m), np.uint8)
    scores = np.full((n, m), np.nan)
    for s, (bars, output) in enumerate(zip(universe.bars, outputs, strict=True)):
        frame = bars.frame if m == 1 else bars.frame.reindex(index)
        for k, column in enumerate(OHLCV):
            px[k, :, s] = frame[column].to_numpy(np.float64)
        px[5, :, s] = output.probability.to_numpy(np.float64)
        anomalous, score = _anomalies(pipeline, output, n)
        if anomalous is not None:  # (none: the zeros and NaNs the arrays start with)
            flags[0, :, s] = anomalous
        if score is not None:
            scores[:, s] = score
        if config.regime is not None:
            own = regime_codes(bars.frame["close"].to_numpy(np.float64), config.regime)
            if m == 1:
                flags[1, :, s] = own
            else:
                codes = pd.Series(own, index=bars.frame.index).reindex(index).ffill()
                flags[1, :, s] = codes.fillna(0).to_numpy(np.uint8)
    counts = np.zeros(n, np.int64)
    for t, trainings in trainings_at.items():
        if 0 <= t < n:
            counts[t] = len(trainings)
    time_ns = np.ascontiguousarray(index.as_unit("ns").asi8, np.int64)  # whatever its unit
    return BarInputs(px, flags, scores, time_ns, counts)


def bars_in_inputs(universe: Universe, px: np.ndarray) -> Universe:
    """Return ``universe`` with each symbol's OHLCV columns views of the core's inputs
    ``px`` (`bar_inputs`'), the same values, rather than a copy of them beside the inputs.

    A symbol with a bar at every time of the clock is shared; a symbol absent from some
    (its own index shorter than the clock) keeps its frame. Other columns (a precomputed
    probability, auxiliary series) and every index are kept as they are.
    """
    index = universe.index
    shared = []
    for s, bars in enumerate(universe.bars):
        frame = bars.frame
        if len(frame.index) != len(index) or not frame.index.equals(index):
            shared.append(bars)
            continue
        rows = {column: k for k, column in enumerate(OHLCV)}
        columns = {c: px[rows[c], :, s] if c in rows else frame[c] for c in frame.columns}
        # copy=False: one block per column, each the inputs' own row (no consolidation)
        view = pd.DataFrame(columns, index=frame.index, columns=frame.columns, copy=False)
        shared.append(replace(bars, frame=view))
    return replace(universe, bars=tuple(shared))


class _Retrain:
    """A health rule's retrain: the model's new fold, journaled at the bar it starts."""

    def __init__(
        self, retrainer: Retrainer, inputs: BarInputs, trainings_at: dict[int, list[ModelTraining]]
    ) -> None:
        self.retrainer = retrainer
        self.inputs = inputs
        self.trainings_at = trainings_at

    def __call__(self, bar: int, reason: str) -> None:
        self.retrainer(bar, reason)
        for start, trainings in self.trainings_at.items():
            self.inputs.trainings[start] = len(trainings)


def working_orders(engine: Engine) -> list[Order]:
    """Return the orders still working after the last bar, in symbol order."""
    if engine.spec.venue is None:
        return list(engine.venue.pending())
    return [
        engine.ctx.order(int(row[L.S_W_SEQ]))
        for row in engine.state.sym
        if row[L.S_W_ACTIVE] != 0.0
    ]


def _scale_bars(pipeline: Pipeline, inputs: BarInputs) -> list[tuple[int, float]]:
    """``Pipeline.scales`` by the bar (of ``inputs``) at whose close each was made: the
    last bar open at its time."""
    return [
        (inputs.base + int(np.searchsorted(inputs.time_ns, time, side="right")) - 1, fraction)
        for time, fraction in pipeline.scales
    ]


def _rule_bars(pipeline: Pipeline, inputs: BarInputs) -> list[tuple[int, Pipeline]]:
    """``Pipeline.signal_rules`` by the bar (of ``inputs``) at whose close each was made, each as
    the pipeline the engine trades (decides and sizes) from the next bar on (`ruled_on`)."""
    return [
        (inputs.base + int(np.searchsorted(inputs.time_ns, time, side="right")) - 1, ruled)
        for time, ruled in ruled_on(pipeline)
    ]


def ruled_on(pipeline: Pipeline) -> list[tuple[int, Pipeline]]:
    """Return each change of ``Pipeline.signal_rules`` with the pipeline traded from it on.

    A section the change leaves as it was (a swap of a model alone, a promotion of a
    sizing alone) keeps its running component, as the run's `rule_in_force` did: a
    Python rule goes on with each symbol's state (`Engine.reconfigure`).
    """
    ruled: list[tuple[int, Pipeline]] = []
    current = pipeline
    for time, rule, sizer, config in pipeline.signal_rules:
        current = replace(
            pipeline,
            signal=current.signal if config.signal == current.config.signal else rule,
            sizer=current.sizer if config.sizing == current.config.sizing else sizer,
            config=config,
            signal_rules=(),
        )
        ruled.append((time, current))
    return ruled


def _replay_rules(engine: Engine, rules: list[tuple[int, Pipeline]], bar: int) -> None:
    """Trade the signal rule and sizing of each change of ``rules`` made at or before
    ``bar`` from the next bar on, as a run's promotion did (`Engine.reconfigure`)."""
    while rules and rules[0][0] <= bar:
        engine.reconfigure(rules.pop(0)[1])


def _per_bar(
    engine: Engine,
    universe: Universe,
    features: SymbolFeatures,
    inputs: BarInputs,
    times: list[pd.Timestamp],
    scales: list[tuple[int, float]],
    rules: list[tuple[int, Pipeline]],
) -> None:
    """Drive the bars of the clock one at a time, as live trading does.

    When every per-symbol feature has a per-bar driver, each symbol's features are
    stepped over its own bars too (one stepper per symbol; the cross-sectional columns
    from the stepped rows of the symbols present at the bar) and each row must equal
    the batch row: a difference is a bug in a feature, raised with its column and bar.
    """
    own = [f for f in engine.p.features if not isinstance(f, CrossSectionalFeature)]
    crossing = [f for f in engine.p.features if isinstance(f, CrossSectionalFeature)]
    steppers = None
    if all(isinstance(f, SteppedFeature) for f in own):
        pairs = universe.informative_bars()
        steppers = [FeatureStepper(own, StepContext.of(bars, pairs)) for bars in universe.bars]
    clock = features.array()
    present = universe.present()
    columns = features.columns
    width = len(columns) - sum(len(f.columns()) for f in crossing)
    symbols = universe.symbols  # a tuple built per call: once, not per bar
    m = len(symbols)
    ohlcv = inputs.px[:5].transpose(1, 2, 0)  # [bars, symbols, 5]: a bar in one read
    names = [engine.symbol(s) for s in range(m)]
    here = None if present.all() else present.tolist()
    if steppers is not None and m == 1 and here is None and not crossing:
        _per_bar_one(
            engine, inputs, steppers[0], ohlcv, clock, times, columns, symbols, scales, rules
        )
        return
    row = np.full((m, len(columns)), np.nan)
    for t, stamp in enumerate(times):
        if steppers is not None:
            if m > 1:
                row[:] = np.nan
            for s, stepper in enumerate(steppers):
                if here is None or here[t][s]:
                    o, h, lo, c, v = ohlcv[t, s].tolist()
                    row[s, :width] = stepper.step(Bar(t, stamp, o, h, lo, c, v, names[s]))
            if crossing:
                cross_row(crossing, columns, row, present[t])
            _check_row(row, clock[t], columns, t, symbols)
        engine.run(inputs, t + 1)
        engine.replay_scales(scales, t)
        _replay_rules(engine, rules, t)


def _per_bar_one(
    engine: Engine,
    inputs: BarInputs,
    stepper: FeatureStepper,
    ohlcv: np.ndarray,
    clock: np.ndarray,
    times: list[pd.Timestamp],
    columns: tuple[str, ...],
    symbols: tuple[str, ...],
    scales: list[tuple[int, float]],
    rules: list[tuple[int, Pipeline]],
) -> None:
    """`_per_bar` over the universe of one (a bar at every clock bar, no cross-sectional
    column): the stepped row is the symbol's whole row, checked as it comes."""
    name = engine.symbol(0)
    run = engine.run
    for t, stamp in enumerate(times):
        o, h, lo, c, v = ohlcv[t, 0].tolist()
        stepped = stepper.step(Bar(t, stamp, o, h, lo, c, v, name))
        _check_row(stepped[None], clock[t], columns, t, symbols)
        run(inputs, t + 1)
        if scales:
            engine.replay_scales(scales, t)
        if rules:
            _replay_rules(engine, rules, t)


def _check_row(
    row: np.ndarray, batch: np.ndarray, columns: tuple[str, ...], t: int, symbols: tuple[str, ...]
) -> None:
    # the same bytes are the same values (NaN included); else compare as numbers (a NaN
    # of another payload, -0.0 against 0.0), which costs ten times as much per bar
    same_bytes = row.shape == batch.shape and row.tobytes() == batch.tobytes()
    if same_bytes or np.array_equal(row, batch, equal_nan=True):
        return
    same = (row == batch) | (np.isnan(row) & np.isnan(batch))
    s, j = (int(k[0]) for k in np.nonzero(~same))
    where = f" of {symbols[s]}" if len(symbols) > 1 else ""
    raise RuntimeError(
        f"feature column {columns[j]}{where} at bar {t}: the per-bar driver "
        f"gives {float(row[s, j])!r}, the batch driver {float(batch[s, j])!r}"
    )


def _anomalies(
    pipeline: Pipeline, output: ModelOutput, n: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Return the model's anomaly flags (bool) and scores (NaN: none) per bar, each None
    where the model gives none (no flag, no score at any bar).

    Raises:
        RuntimeError: The model returned flags or scores for another number of bars.
    """
    flags = scores = None
    for name, series in (("anomalous", output.anomalous), ("anomaly_score", output.anomaly_score)):
        if series is not None and len(series) != n:
            raise RuntimeError(
                f"model ({pipeline.config.model.kind}) returned {len(series)} {name} values "
                f"for {n} bars"
            )
    if output.anomalous is not None:
        flags = output.anomalous.to_numpy(dtype=bool, na_value=False)
    if output.anomaly_score is not None:
        scores = output.anomaly_score.to_numpy(dtype=np.float64, na_value=np.nan)
    return flags, scores


def check_probabilities(probability: np.ndarray) -> None:
    """Refuse a probability outside [0, 1] (``[bars, symbols]``; NaN: no prediction)."""
    bad = (probability < 0.0) | (probability > 1.0)  # (a NaN is neither)
    if bad.any():
        t, s = (int(k[0]) for k in np.nonzero(bad))
        raise ValueError(
            f"probability must be in [0, 1] or NaN, was {float(probability[t, s])} at bar {t}"
        )


def journal_unscored(
    recorder: Recorder, pipeline: Pipeline, universe: Universe, strategy: str = ""
) -> None:
    """Journal each document a text feature could not score, with why (never a silent 0);
    ``strategy``: the portfolio file's strategy ``pipeline`` is ('' for one run alone)."""
    from tradeloom.text.run_files import unscored_rows

    documents = {name: d for bars in universe.bars for name, d in bars.documents.items()}
    for row in unscored_rows(pipeline.features, documents, strategy):
        recorder.record(row)


def _check_book(pipeline: Pipeline, universe: Universe) -> None:
    """Refuse a recorded book (``fill: book``) that does not cover the loaded bars.

    Raises:
        ConfigError: At ``execution.book.source`` (`tradeloom.engine.book_checks`).
    """
    book = book_of(pipeline.venue)
    if book is None or len(universe.index) == 0:
        return
    stamps = universe.index
    step = universe.timeframe_seconds * 1_000_000_000
    problem = coverage_problem(
        pipeline.config, book, int(stamps[0].value), int(stamps[-1].value), step
    )
    if problem is not None:
        raise ConfigError([problem])
