"""A paper run of a backtest's strategy, ticked bar by bar over the backtest's own bars.

Imported by the driver parity tests (`tests.engine.paper_replay`). `paper_run` runs the real
`LiveRunner` in paper mode (its journal, warm-up, `LiveSession.step`, the
simulated venue in the compiled core, the restart from the journal) with two
stand-ins for what would talk to an exchange:

- `ReplayedFeed`, a `LiveFeed` over the strategy's loaded bars: the first ``warm``
  bars are the history at the start, then one bar closes per tick, on a simulated
  clock (the open of the bar in progress);
- `ServedModel`, a `LiveModel` and `LiveAnomalyGate` around the strategy's model
  (``precomputed`` or the ``flagged`` test model) that answers each live bar with
  the probability and anomaly score the backtest gets for that bar.

No exchange, no emulator, no HTTP: a hypothesis example can afford one.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradeloom.domain import OHLCV, Bars, Universe
from tradeloom.engine.wiring import Pipeline, build_pipeline
from tradeloom.live.tick.runner import LiveRunner
from tradeloom.schemas import load_strategy

__all__ = ["PAPER_ONLY", "ReplayedFeed", "ServedModel", "paper_run"]

_LATEST_CLOSE_DELAY = pd.Timedelta(seconds=300)
"""The largest ``live.close_delay_seconds``: the runner takes a bar this long after its close."""

PAPER_ONLY = frozenset({"warm_up", "live_bar", "restarted"})
"""Kinds only a paper run journals: how it started, the model's verdict per bar, a restart."""


class ReplayedFeed:
    """The bars of ``bars`` as an exchange would serve them: ``closed`` of them so far."""

    def __init__(self, bars: Bars, closed: int) -> None:
        self.bars = bars
        self.closed = closed
        self.length = pd.Timedelta(seconds=bars.timeframe_seconds)
        # the columns a venue serves, taken once: selecting them per tick copied the frame
        self._ohlcv = bars.frame[list(OHLCV)]

    def now(self) -> pd.Timestamp:
        """The clock: the open time of the bar in progress, past any ``close_delay_seconds``."""
        return self.bars.frame.index[0] + self.closed * self.length + _LATEST_CLOSE_DELAY

    def advance(self) -> None:
        """Close the bar in progress."""
        self.closed += 1

    def load(self) -> Bars:
        frame = self.bars.frame.iloc[: self.closed]
        return dataclasses.replace(self.bars, frame=frame, repaired=(), gaps=())

    def load_universe(self) -> Universe:
        bars = self.load()
        return Universe((bars,), bars.frame.index)

    def closed_bars_of(
        self, symbol: str, last_seen: pd.Timestamp, now: pd.Timestamp
    ) -> pd.DataFrame:
        index = self._ohlcv.index  # sorted: the bars after last_seen that closed by now
        first = index.searchsorted(last_seen, side="right")
        end = index.searchsorted(now - self.length, side="right")
        return self._ohlcv.iloc[first:end]

    def bar_stream_of(self, symbol: str, *, grace_seconds: float, clock: Any) -> None:
        return None  # polled, as live.stream: poll


class ServedModel:
    """The strategy's model, answering live bars with the backtest's predictions.

    ``index()`` is the bar being predicted (the runner's history ends with it).
    """

    def __init__(self, model: Any, probability: npt.NDArray[np.float64], score: Any) -> None:
        self.model = model
        self.horizon = model.horizon
        self.probability = probability
        self.score = score
        self.runner: LiveRunner | None = None

    def fit_predict_universe(self, universe: Universe, features: Any) -> Any:
        return self.model.fit_predict_universe(universe, features)

    def _index(self) -> int:
        assert self.runner is not None
        return len(self.runner.session_or_fail.history) - 1

    def predict_row(self, values: npt.NDArray[np.float64]) -> float:
        return float(self.probability[self._index()])

    def anomaly_score_row(self, values: npt.NDArray[np.float64]) -> float:
        return np.nan if self.score is None else float(self.score[self._index()])


def _runner(path: Path, run_dir: Path, feed: ReplayedFeed, served: ServedModel) -> LiveRunner:
    config, plugins = load_strategy(path, ())
    pipeline: Pipeline = dataclasses.replace(
        build_pipeline(config),
        data=feed,  # type: ignore[arg-type]
        model=served,  # type: ignore[arg-type]
    )
    runner = LiveRunner(
        pipeline, plugins, mode="paper", run_dir=run_dir, clock=feed.now, watch_file=False
    )
    served.runner = runner
    return runner


def paper_run(path: Path, run_dir: Path, *, warm: int, restart_at: int | None = None) -> Path:
    """Paper-trade the strategy file ``path`` over its own data; return the journal.

    The run starts with the first ``warm`` bars closed and ticks once per bar after
    them. With ``restart_at``, the process "dies" after the tick that closed bar
    ``restart_at`` (its journal committed, the runner dropped) and a new runner
    restarts from the journal (`tradeloom.live.recovery.restart`) and carries on.
    """
    config, _ = load_strategy(path, ())
    pipeline = build_pipeline(config)
    bars = pipeline.data.load()
    features = pd.DataFrame(index=bars.frame.index)
    output = pipeline.model.fit_predict(bars, features)
    score = None if output.anomaly_score is None else output.anomaly_score.to_numpy(np.float64)
    served = ServedModel(pipeline.model, output.probability.to_numpy(np.float64), score)
    feed = ReplayedFeed(bars, warm)
    runner = _runner(path, run_dir, feed, served)
    runner.start()
    try:
        while feed.closed < len(bars):
            feed.advance()
            runner.tick()
            if restart_at is not None and feed.closed - 1 == restart_at:
                _die(runner)
                runner = _runner(path, run_dir, feed, served)
                runner.start()
    finally:
        runner.stop("replayed every bar")
    return run_dir / "journal.sqlite"


def _die(runner: LiveRunner) -> None:
    """Drop the runner as kill -9 would after a committed tick: no stop row."""
    assert runner.journal is not None
    runner.journal.flush()
    runner.journal._db.close()
    runner.link.journal = None
    runner.inbox.release_pid()
