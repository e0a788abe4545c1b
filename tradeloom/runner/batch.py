"""The batch driver: signal, risk, execution and the portfolio for every bar in one compiled loop.

`run_core` is the compiled mirror of `tradeloom.runner.engine.BarEngine.on_bar`,
step for step, calling the same kernels (`threshold_step`, `kelly_size`,
`stop_exit`, `holding_expired`, `sizing_quantity`, `fill_order`, `apply_fill`,
`mark_equity`, and the regime labels of `regime_step`). It records every regime
change, signal, decision, rejection, halt, order, fill, cancellation and closed trade
as a row of a float64 event array; `replay_events`
turns the rows into the same domain objects, in the same order, that the per-bar
driver journals, interleaved with the model's trainings and the monitors.
It runs when every sequential component offers a kernel (`kernel_specs`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tradeloom.domain import OHLCV, Bar, Cancellation, Fill, ModelTraining, Order, Signal
from tradeloom.jit import kernel
from tradeloom.plugins.execution.simulated import DONE_FRACTION, fill_order, sizing_quantity
from tradeloom.plugins.kernel_specs import (
    CompiledComponent,
    DrawdownKernel,
    SizingKernel,
    ThresholdKernel,
    VenueKernel,
)
from tradeloom.plugins.risk.drawdown_halt import drawdown_halt
from tradeloom.plugins.risk.kelly import kelly_no_edge, kelly_size
from tradeloom.plugins.signal.regime import RegimeParams, regime_codes, regime_mask
from tradeloom.plugins.signal.threshold import new_threshold_state, threshold_step
from tradeloom.runner.engine import (
    anomaly_rejection,
    filtered_decision,
    halted_rejection,
    hold_reason,
    ignored_reason,
    no_equity_rejection,
    regime_changed,
    short_not_allowed,
)
from tradeloom.runner.events import Recorder
from tradeloom.runner.exits import holding_expired, stop_exit
from tradeloom.runner.portfolio import (
    CASH,
    CLOSED,
    ENTRY_BAR,
    ENTRY_PRICE,
    PEAK,
    POSITION,
    TRADE_FIELDS,
    Portfolio,
    Trade,
    apply_fill,
    mark_equity,
    new_portfolio_state,
)
from tradeloom.runner.watch import FeatureRow, Watch
from tradeloom.runner.wiring import Pipeline

__all__ = ["CoreParams", "CoreResult", "core_params", "execute_core", "replay_events", "run_core"]

# Event rows: kind, bar, phase (0: before the monitors, 1: after), then up to 8 values.
_WIDTH = 11
SIGNAL, DECISION, REJECT, HALT, ORDER, FILL, CANCEL, TRADE, REGIME = 1, 2, 3, 4, 5, 6, 7, 8, 9
_ACCEPTED, _HOLD, _IGNORED, _FILTERED = 0, 1, 2, 3
_REASONS = (
    "",
    "ENTRY",
    "REVERSE",
    "EXIT_SIGNAL",
    "EXIT_MAX_HOLDING",
    "EXIT_HALT",
    "EXIT_STOP_LOSS",
    "EXIT_TAKE_PROFIT",
)
_ENTRY, _REVERSE, _EXIT_SIGNAL, _EXIT_MAX_HOLDING, _EXIT_HALT = 1, 2, 3, 4, 5
_EXIT_STOP = 5  # + stop_exit's code: 6 stop-loss, 7 take-profit
_KELLY_NO_EDGE, _HALTED, _SHORT_NOT_ALLOWED, _NO_EQUITY, _ANOMALY = 1, 2, 3, 4, 5
_CANCEL_REASONS = ("", "REPLACED", "PROTECTIVE_EXIT", "INSUFFICIENT_CASH")
_REPLACED, _PROTECTIVE_EXIT, _INSUFFICIENT_CASH = 1, 2, 3
_SIZING_KINDS = {"fixed_fraction": 0, "kelly": 1}
_MAX_EVENTS_PER_BAR = 32  # at most 16: fills, trades, cancels, a stop, a regime, a halt...
# The working order: active, sequence, decision bar, side, remaining, quantity.
_ACTIVE, _SEQ, _BAR, _SIDE, _REMAINING, _QTY = 0, 1, 2, 3, 4, 5


@dataclass(frozen=True)
class CoreParams:
    """The kernels' parameters, gathered from the components' `kernel_spec`."""

    signal: ThresholdKernel
    sizing: SizingKernel
    drawdown_limits: tuple[float, ...]
    venue: VenueKernel
    max_holding_bars: int
    stop_loss: float
    take_profit: float
    regime: RegimeParams | None = None
    """Label the bars and journal regime changes (None: no regime section or filter)."""
    regime_filter: int = 0
    """`regime_mask` of ``signal.regimes`` (0: every regime)."""


@dataclass(frozen=True)
class CoreResult:
    """What the compiled loop returns: event rows, the equity columns and the final state."""

    events: np.ndarray
    position: np.ndarray
    cash: np.ndarray
    equity: np.ndarray
    portfolio: np.ndarray
    working: np.ndarray


def core_params(pipeline: Pipeline) -> CoreParams | None:
    """Return the kernels' parameters, or None if a sequential layer has no kernel."""
    parts = (pipeline.signal, pipeline.sizer, pipeline.venue, *pipeline.rules)
    if not all(isinstance(part, CompiledComponent) for part in parts):
        return None
    signal = pipeline.signal.kernel_spec()  # type: ignore[attr-defined]
    sizing = pipeline.sizer.kernel_spec()  # type: ignore[attr-defined]
    venue = pipeline.venue.kernel_spec()  # type: ignore[attr-defined]
    rules = [rule.kernel_spec() for rule in pipeline.rules]  # type: ignore[attr-defined]
    if not (
        isinstance(signal, ThresholdKernel)
        and isinstance(sizing, SizingKernel)
        and isinstance(venue, VenueKernel)
        and all(isinstance(rule, DrawdownKernel) for rule in rules)
    ):
        return None
    config = pipeline.config
    return CoreParams(
        signal=signal,
        sizing=sizing,
        drawdown_limits=tuple(rule.limit for rule in rules),
        venue=venue,
        max_holding_bars=config.max_holding_bars or 0,
        stop_loss=math.nan if config.stop_loss is None else config.stop_loss,
        take_profit=math.nan if config.take_profit is None else config.take_profit,
        regime=config.regime,
        regime_filter=regime_mask(config.signal_regimes),
    )


@kernel
def _emit(
    ev: np.ndarray,
    count: np.ndarray,
    kind: int,
    bar: int,
    phase: int,
    v0: float,
    v1: float,
    v2: float,
    v3: float,
    v4: float,
    v5: float,
    v6: float,
    v7: float,
) -> None:
    i = count[0]
    ev[i, 0] = kind
    ev[i, 1] = bar
    ev[i, 2] = phase
    ev[i, 3] = v0
    ev[i, 4] = v1
    ev[i, 5] = v2
    ev[i, 6] = v3
    ev[i, 7] = v4
    ev[i, 8] = v5
    ev[i, 9] = v6
    ev[i, 10] = v7
    count[0] = i + 1


@kernel
def _execute(
    ev: np.ndarray,
    count: np.ndarray,
    port: np.ndarray,
    work: np.ndarray,
    trade: np.ndarray,
    bar: int,
    phase: int,
    price_now: float,
    volume: float,
    slippage: float,
    fee_rate: float,
    max_volume_fraction: float,
    spot: bool,
) -> None:
    """Fill what can be filled of the order in ``work`` (SimulatedVenue.match, one order)."""
    side = int(work[_SIDE])
    quantity, price, fee, slipped, limited = fill_order(
        side,
        work[_REMAINING],
        price_now,
        volume,
        slippage,
        fee_rate,
        max_volume_fraction,
        port[CASH],
        spot,
    )
    if quantity > 0.0:
        flags = apply_fill(port, bar, side, quantity, price, fee, trade)
        work[_REMAINING] -= quantity
        _emit(
            ev, count, FILL, bar, phase, work[_SEQ], side, quantity, price, fee, slipped,
            work[_BAR], 0.0,
        )  # fmt: skip
        if flags & CLOSED:
            _emit(
                ev, count, TRADE, bar, phase, trade[0], trade[1], trade[2], trade[3], trade[4],
                trade[5], trade[6], trade[7],
            )  # fmt: skip
    if work[_REMAINING] <= work[_QTY] * DONE_FRACTION:
        work[_ACTIVE] = 0.0
    elif limited:
        _emit(
            ev, count, CANCEL, bar, phase, work[_SEQ], work[_REMAINING], _INSUFFICIENT_CASH,
            work[_BAR], 0.0, 0.0, 0.0, 0.0,
        )  # fmt: skip
        work[_ACTIVE] = 0.0


@kernel
def _cancel(
    ev: np.ndarray, count: np.ndarray, work: np.ndarray, bar: int, phase: int, reason: int
) -> None:
    if work[_ACTIVE] != 0.0:
        _emit(
            ev, count, CANCEL, bar, phase, work[_SEQ], work[_REMAINING], reason, work[_BAR],
            0.0, 0.0, 0.0, 0.0,
        )  # fmt: skip
        work[_ACTIVE] = 0.0


@kernel
def run_core(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    probability: np.ndarray,
    threshold: float,
    min_interval: int,
    sizing_kind: int,
    fraction: float,
    payoff: float,
    max_position: float,
    drawdown_limits: np.ndarray,
    fill_at_close: bool,
    slippage: float,
    fee_rate: float,
    allow_short: bool,
    max_volume_fraction: float,
    max_holding: int,
    stop_loss: float,
    take_profit: float,
    regime: np.ndarray,
    journal_regime: bool,
    regime_filter: int,
    anomalous: np.ndarray,
    start: int,
    ev: np.ndarray,
    count: np.ndarray,
    scalars: np.ndarray,
    port: np.ndarray,
    signal_state: np.ndarray,
    work: np.ndarray,
    position_out: np.ndarray,
    cash_out: np.ndarray,
    equity_out: np.ndarray,
) -> int:
    """Run the sequential layers from bar ``start``; see the module and `BarEngine.on_bar`.

    Every state lives in the arrays passed in, so that a run can stop before a bar
    whose events might not fit in ``ev`` and resume there with a larger buffer.

    Args:
        regime: Each bar's regime code (`regime_codes`); read only with
            ``journal_regime`` or a ``regime_filter``.
        journal_regime: Record a row when a bar's regime differs from the previous one's.
        regime_filter: `regime_mask` of ``signal.regimes``; 0 filters nothing.
        anomalous: 1 on the bars where no position may be opened (uint8).
        start: The first bar to run.
        ev: The event rows; ``count[0]`` of them are used.
        scalars: ``[order sequence, halted, halting rule, working order's direction,
            previous bar's regime]``.
        port, signal_state, work: The portfolio, signal rule and working order.
        position_out, cash_out, equity_out: Receive each bar's row of the equity curve.

    Returns:
        The bar to resume at: ``len(close)`` when every bar ran.
    """
    n = len(close)
    trade = np.zeros(8)
    spot = not allow_short
    protect = not (math.isnan(stop_loss) and math.isnan(take_profit))
    seq = int(scalars[0])
    halted = scalars[1] != 0.0
    halt_rule = int(scalars[2])
    working_direction = int(scalars[3])
    previous_regime = int(scalars[4])
    capacity = ev.shape[0]
    for t in range(start, n):
        if count[0] + _MAX_EVENTS_PER_BAR > capacity:
            scalars[0] = seq
            scalars[1] = 1.0 if halted else 0.0
            scalars[2] = halt_rule
            scalars[3] = working_direction
            scalars[4] = previous_regime
            return t
        c = close[t]
        # 1. fills due at the open
        if not fill_at_close and work[_ACTIVE] != 0.0 and work[_BAR] < t:
            _execute(
                ev, count, port, work, trade, t, 0, open_[t], volume[t], slippage, fee_rate,
                max_volume_fraction, spot,
            )  # fmt: skip
        # 2. stop-loss and take-profit during the bar
        held_quantity = port[POSITION]
        if protect and held_quantity != 0.0:
            direction = 1 if held_quantity > 0 else -1
            code, level = stop_exit(
                direction, port[ENTRY_PRICE], open_[t], high[t], low[t], stop_loss, take_profit
            )
            if code != 0:
                _cancel(ev, count, work, t, 0, _PROTECTIVE_EXIT)
                seq += 1
                _emit(
                    ev, count, ORDER, t, 0, seq, -direction, abs(held_quantity), _EXIT_STOP + code,
                    level, 1.0, level, 0.0,
                )  # fmt: skip
                work[_ACTIVE] = 1.0
                work[_SEQ] = seq
                work[_BAR] = t
                work[_SIDE] = -direction
                work[_REMAINING] = abs(held_quantity)
                work[_QTY] = abs(held_quantity)
                _execute(
                    ev, count, port, work, trade, t, 0, level, volume[t], slippage, fee_rate,
                    -1.0, spot,
                )  # fmt: skip
        # 3. mark to the close
        equity = mark_equity(port, c)
        peak = port[PEAK]
        drawdown = 0.0 if peak <= 0 else 1.0 - equity / peak
        position = port[POSITION]
        if journal_regime and regime[t] != previous_regime:
            _emit(
                ev, count, REGIME, t, 1, regime[t], previous_regime, 0.0, 0.0, 0.0, 0.0, 0.0,
                0.0,
            )  # fmt: skip
            previous_regime = int(regime[t])
        # 4. halts, 5. holding limit
        intent_reason = 0
        intent_direction = 0
        intent_target = 0.0
        exposed = position != 0.0 or work[_ACTIVE] != 0.0
        halted_now = False
        if not halted:
            for k in range(len(drawdown_limits)):
                if not drawdown < drawdown_limits[k]:
                    halted = True
                    halted_now = True
                    halt_rule = k
                    _emit(
                        ev, count, HALT, t, 1, k, drawdown, drawdown_limits[k], 0.0, 0.0, 0.0,
                        0.0, 0.0,
                    )  # fmt: skip
                    if exposed:
                        intent_reason = _EXIT_HALT
                    break
        if (
            not halted_now
            and position != 0.0
            and holding_expired(t, int(port[ENTRY_BAR]), max_holding)
        ):
            intent_reason = _EXIT_MAX_HOLDING
        # 6. the signal and the decision
        p = probability[t]
        wanted, confidence = threshold_step(signal_state, t, p, threshold, min_interval)
        if wanted != 0:
            _emit(ev, count, SIGNAL, t, 1, wanted, confidence, p, 0.0, 0.0, 0.0, 0.0, 0.0)
            if work[_ACTIVE] != 0.0:
                held = working_direction
            else:
                held = 1 if position > 0 else (-1 if position < 0 else 0)
            if regime_filter != 0 and (regime[t] & regime_filter) == 0:
                _emit(
                    ev, count, DECISION, t, 1, _FILTERED, regime[t], 0.0, 0.0, 0.0, 0.0, 0.0,
                    0.0,
                )  # fmt: skip
            elif halted:
                _emit(ev, count, REJECT, t, 1, _HALTED, halt_rule, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
            elif wanted == -1 and not allow_short and held <= 0:
                _emit(
                    ev, count, REJECT, t, 1, _SHORT_NOT_ALLOWED, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
                    0.0,
                )  # fmt: skip
            elif held == wanted:
                if intent_reason == 0:
                    _emit(ev, count, DECISION, t, 1, _HOLD, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
                else:
                    _emit(
                        ev, count, DECISION, t, 1, _IGNORED, intent_reason, 0.0, 0.0, 0.0, 0.0,
                        0.0, 0.0,
                    )  # fmt: skip
            else:
                exiting = held != 0
                fallback = _EXIT_SIGNAL if exiting and intent_reason == 0 else intent_reason
                if exiting and wanted == -1 and not allow_short:
                    intent_reason = fallback
                    intent_direction = 0
                elif anomalous[t] != 0:
                    _emit(ev, count, REJECT, t, 1, _ANOMALY, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
                    intent_reason = fallback
                    intent_direction = 0
                elif equity <= 0.0:
                    _emit(ev, count, REJECT, t, 1, _NO_EQUITY, equity, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
                    intent_reason = fallback
                    intent_direction = 0
                else:
                    if sizing_kind == 0:
                        size = fraction
                        full = 0.0
                        p_win = 0.0
                    else:
                        size, full, p_win = kelly_size(p, wanted, fraction, payoff, max_position)
                    if size == 0.0:
                        _emit(
                            ev, count, REJECT, t, 1, _KELLY_NO_EDGE, full, p_win, payoff, 0.0,
                            0.0, 0.0, 0.0,
                        )  # fmt: skip
                        intent_reason = fallback
                        intent_direction = 0
                    else:
                        intent_reason = _REVERSE if exiting else _ENTRY
                        intent_direction = wanted
                        intent_target = wanted * size
                        _emit(
                            ev, count, DECISION, t, 1, _ACCEPTED, intent_reason, intent_target,
                            0.0, 0.0, 0.0, 0.0, 0.0,
                        )  # fmt: skip
        # 7. the order: cancel the working one, send the new one
        if intent_reason != 0:
            _cancel(ev, count, work, t, 1, _REPLACED)
            if intent_target == 0.0:
                delta = -position
            else:
                notional = abs(intent_target) * equity
                delta = intent_direction * sizing_quantity(notional, c, slippage, fee_rate)
                delta -= position
            working_direction = intent_direction
            if delta != 0.0:
                seq += 1
                side = 1 if delta > 0 else -1
                _emit(
                    ev, count, ORDER, t, 1, seq, side, abs(delta), intent_reason, c, 0.0,
                    math.nan, 0.0,
                )  # fmt: skip
                work[_ACTIVE] = 1.0
                work[_SEQ] = seq
                work[_BAR] = t
                work[_SIDE] = side
                work[_REMAINING] = abs(delta)
                work[_QTY] = abs(delta)
        # fills at the close
        if fill_at_close and work[_ACTIVE] != 0.0 and work[_BAR] <= t:
            _execute(
                ev, count, port, work, trade, t, 1, c, volume[t], slippage, fee_rate,
                max_volume_fraction, spot,
            )  # fmt: skip
        position_out[t] = port[POSITION]
        cash_out[t] = port[CASH]
        equity_out[t] = port[CASH] + port[POSITION] * c
    return n


def execute_core(
    params: CoreParams,
    frame: pd.DataFrame,
    probability: np.ndarray,
    *,
    anomalous: np.ndarray | None = None,
    capacity: int = 0,
) -> CoreResult:
    """Run `run_core` over the bars of ``frame`` with ``params``.

    Args:
        params: The kernels' parameters; with ``params.regime`` the bars are labelled
            first (`regime_codes`).
        frame: The bars.
        probability: The model's probability per bar.
        anomalous: Per bar, whether the model's anomaly detector flags it (None: never).
        capacity: Event rows to start with (default: grows from ``len(frame) / 16``).
    """
    o, h, lo, c, v = (frame[k].to_numpy(np.float64) for k in OHLCV)
    n = len(c)
    venue = params.venue
    ev = np.empty((max(_MAX_EVENTS_PER_BAR, capacity or n // 16), _WIDTH))
    count = np.zeros(1, np.int64)
    scalars = np.array([0.0, 0.0, -1.0, 0.0, 0.0])
    regime = np.zeros(n, np.uint8) if params.regime is None else regime_codes(c, params.regime)
    flagged = np.zeros(n, np.uint8) if anomalous is None else anomalous.astype(np.uint8)
    port = new_portfolio_state(venue.initial_cash)
    signal_state = new_threshold_state(-1)
    work = np.zeros(6)
    position, cash, equity = np.empty(n), np.empty(n), np.empty(n)
    p = np.ascontiguousarray(probability, dtype=np.float64)
    limits = np.array(params.drawdown_limits, dtype=np.float64)
    start = 0
    while True:
        start = run_core(
            o,
            h,
            lo,
            c,
            v,
            p,
            params.signal.threshold,
            params.signal.min_interval,
            _SIZING_KINDS[params.sizing.kind],
            params.sizing.fraction,
            params.sizing.payoff,
            params.sizing.max_position,
            limits,
            venue.fill_at_close,
            venue.slippage,
            venue.fee_rate,
            venue.allow_short,
            venue.max_volume_fraction or -1.0,
            params.max_holding_bars,
            params.stop_loss,
            params.take_profit,
            regime,
            params.regime is not None,
            params.regime_filter,
            flagged,
            start,
            ev,
            count,
            scalars,
            port,
            signal_state,
            work,
            position,
            cash,
            equity,
        )
        if start == n:
            break
        grown = np.empty((2 * ev.shape[0], _WIDTH))
        grown[: count[0]] = ev[: count[0]]
        ev = grown
    return CoreResult(ev[: count[0]], position, cash, equity, port, work)


def replay_events(
    result: CoreResult,
    *,
    pipeline: Pipeline,
    frame: pd.DataFrame,
    probability: np.ndarray,
    trainings_at: dict[int, list[ModelTraining]],
    recorder: Recorder,
    order_prefix: str,
    anomaly_score: np.ndarray | None = None,
    features: pd.DataFrame | None = None,
) -> tuple[Portfolio, list[Order]]:
    """Journal the events of `run_core` as the per-bar driver would, bar by bar.

    Trainings come first in their bar, the monitors between the fills of the open
    (phase 0) and the decisions at the close (phase 1). ``anomaly_score`` (per bar)
    gives the score an ``ANOMALY`` rejection carries (None: NaN). ``features`` are
    what the monitors see of each bar (None: no columns). Health rules run here only
    when none of them acts beyond a warning (`tradeloom.runner.health.ACTING`).

    Returns:
        The final portfolio and the orders still working after the last bar.
    """
    replay = _Replay(
        pipeline,
        frame,
        probability,
        trainings_at,
        recorder,
        order_prefix,
        anomaly_score,
        features=features,
    )
    replay.box_times(result.events)
    for row in result.events:
        replay.event(row)
    replay.finish()
    portfolio = Portfolio(pipeline.venue.initial_cash, state=result.portfolio, trades=replay.trades)
    unfilled = []
    if result.working[_ACTIVE] != 0.0:
        unfilled.append(replay.orders[int(result.working[_SEQ])])
    return portfolio, unfilled


class _Replay:
    def __init__(
        self,
        pipeline: Pipeline,
        frame: pd.DataFrame,
        probability: np.ndarray,
        trainings_at: dict[int, list[ModelTraining]],
        recorder: Recorder,
        order_prefix: str,
        anomaly_score: np.ndarray | None = None,
        *,
        features: pd.DataFrame | None = None,
    ) -> None:
        self.rec = recorder
        self.prefix = order_prefix
        self.monitors = pipeline.monitors
        self.watch = Watch(pipeline.monitors, pipeline.config.health, recorder)
        if features is None:
            features = pd.DataFrame(index=frame.index)
        self.features = features.to_numpy(np.float64)
        self.columns = {str(name): j for j, name in enumerate(features.columns)}
        self.horizon = max(int(pipeline.model.horizon), 1)
        self.index = frame.index
        self.last = len(frame) - 1
        self.times: dict[int, pd.Timestamp] = {}
        self.ohlcv = [frame[k].to_numpy(np.float64) for k in OHLCV]
        self.close = self.ohlcv[3]
        self.probability = probability
        self.trainings_at = trainings_at
        self.training_bars = sorted(trainings_at)
        self.next_training = 0
        self.monitored = -1
        self.orders: dict[int, Order] = {}
        self.trades: list[Trade] = []
        self.signals: dict[int, Signal] = {}
        self.allowed_regimes = pipeline.config.signal_regimes
        self.anomaly_score = anomaly_score
        self.payoff = float(getattr(pipeline.sizer.kernel_spec(), "payoff", 1.0))  # type: ignore[attr-defined]
        self.limits = [rule.kernel_spec().limit for rule in pipeline.rules]  # type: ignore[attr-defined]

    def box_times(self, events: np.ndarray) -> None:
        """Turn the timestamps to journal into Timestamps once (boxing all 1M costs seconds)."""
        if self.monitors:
            needed = np.arange(self.last + 1)
        else:
            needed = np.unique(np.r_[events[:, 1], self.training_bars].astype(np.int64))
        self.times = dict(zip(needed.tolist(), self.index[needed], strict=True))

    def event(self, row: np.ndarray) -> None:
        kind, t, phase = int(row[0]), int(row[1]), int(row[2])
        self._advance(t, phase)
        ts = self.times[t]
        v = row[3:]
        if kind == SIGNAL:
            signal = Signal(t, ts, int(v[0]), float(v[1]), float(v[2]))
            self.signals[t] = signal
            self.rec.signal(signal)
        elif kind == DECISION:
            self._decision(t, ts, int(v[0]), int(v[1]), float(v[2]))
        elif kind == REJECT:
            self._rejection(t, ts, int(v[0]), v)
        elif kind == HALT:
            k = int(v[0])
            self.rec.halted(drawdown_halt(t, ts, float(v[1]), self.limits[k]))
        elif kind == ORDER:
            stop = v[5] == 1.0
            order = Order(
                id=f"{self.prefix}-{int(v[0]):06d}",
                bar=t,
                timestamp=ts,
                side=int(v[1]),
                quantity=float(v[2]),
                reason=_REASONS[int(v[3])],
                reference_price=float(v[4]),
                kind="stop" if stop else "market",
                stop_price=float(v[6]),
            )
            self.orders[int(v[0])] = order
            self.rec.order(order)
        elif kind == FILL:
            order = self.orders[int(v[0])]
            fill = Fill(
                order.id, t, ts, int(v[1]), float(v[2]), float(v[3]), float(v[4]), float(v[5])
            )
            self.rec.fill(fill, int(v[6]))
        elif kind == CANCEL:
            order = self.orders[int(v[0])]
            reason = _CANCEL_REASONS[int(v[2])]
            self.rec.cancelled(Cancellation(order.id, t, ts, float(v[1]), reason), int(v[3]))
        elif kind == REGIME:
            self.rec.note(
                "regime_changed", regime_changed(int(v[0]), int(v[1])), bar=t, timestamp=ts
            )
        elif kind == TRADE:
            values = np.asarray(v[: len(TRADE_FIELDS)])
            entry = self.times[int(values[1])]
            self.trades.append(Trade.from_kernel(values, entry, ts))

    def finish(self) -> None:
        self._advance(self.last, 1)

    def _advance(self, t: int, phase: int) -> None:
        """Journal the trainings and monitors due before an event of bar ``t`` in ``phase``."""
        while self.next_training < len(self.training_bars):
            bar = self.training_bars[self.next_training]
            if bar > t:
                break
            if self.monitors:
                self._monitor_until(bar - 1)
            for training in self.trainings_at[bar]:
                self.rec.training(training, self.times[bar])
            self.next_training += 1
        if self.monitors:
            self._monitor_until(t if phase == 1 else t - 1)

    def _monitor_until(self, last: int) -> None:
        h = self.horizon
        close = self.close
        probability = self.probability
        o, hi, lo, c, v = self.ohlcv
        for t in range(self.monitored + 1, last + 1):
            bar = Bar(
                t, self.times[t], float(o[t]), float(hi[t]), float(lo[t]), float(c[t]), float(v[t])
            )
            p = float(probability[t])
            full = t >= h
            then_p = float(probability[t - h]) if full else math.nan
            up = full and bool(close[t] > close[t - h])
            row = FeatureRow(self.columns, self.features[t])
            for action in self.watch.on_bar(bar, p, then_p, up, row):
                if action.action != "warn":  # run_backtest sends these to the per-bar driver
                    raise RuntimeError(f"{action.reason}: {action.action} under the batch driver")
        self.monitored = max(self.monitored, last)

    def _decision(self, t: int, ts: pd.Timestamp, outcome: int, reason: int, target: float) -> None:
        if outcome == _FILTERED:
            payload: dict[str, object] = dict(filtered_decision(reason, self.allowed_regimes))
        elif outcome == _HOLD:
            payload = {"outcome": "hold", "reason": hold_reason()}
        elif outcome == _IGNORED:
            payload = {"outcome": "ignored", "reason": ignored_reason(_REASONS[reason])}
        else:
            payload = {"outcome": "accepted", "reason": _REASONS[reason], "target_fraction": target}
        self.rec.note("risk_decision", payload, bar=t, timestamp=ts)

    def _rejection(self, t: int, ts: pd.Timestamp, code: int, v: np.ndarray) -> None:
        if code == _KELLY_NO_EDGE:
            self.rec.rejection(
                kelly_no_edge(self.signals[t], float(v[1]), float(v[2]), self.payoff)
            )
        elif code == _HALTED:
            self.rec.rejection(halted_rejection(t, ts, "MAX_DRAWDOWN_HALT"))
        elif code == _SHORT_NOT_ALLOWED:
            self.rec.rejection(short_not_allowed(t, ts))
        elif code == _ANOMALY:
            scores = self.anomaly_score
            score = math.nan if scores is None else float(scores[t])
            self.rec.rejection(anomaly_rejection(t, ts, score))
        else:
            self.rec.rejection(no_equity_rejection(t, ts, float(v[1])))
