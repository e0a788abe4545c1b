"""A strategy traded live (or on paper) against the loopback emulator, on its clock.

Imported by the live tests (`tests.live.live_emulated`). The emulator's market clock drives the run:
`EmulatedRun.clock` is the open time of the bar in progress, so a bar is closed
once the emulator has moved past it, exactly as on an exchange. The emulator keeps
the wall clock for request signatures and serves closed klines only, so the data
source's history download stops at the last closed bar too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import structlog

from tests.builders import walk_bars
from tradeloom.engine.wiring import build_pipeline
from tradeloom.journal import read_rows
from tradeloom.live.lifecycle.challenger_stages import Promotions
from tradeloom.live.lifecycle.model_swap import restart_document
from tradeloom.live.lifecycle.parity_monitor import ParityMonitor
from tradeloom.live.lifecycle.parity_stage import ParityStage
from tradeloom.live.lifecycle.promotion_stage import PromotionStage
from tradeloom.live.lifecycle.stages import StageOptions
from tradeloom.live.tick.runner import LiveRunner, Mode
from tradeloom.plugins.data.ccxt_client import use_client_factory
from tradeloom.plugins.data.ccxt_stream import use_pro_client_factory
from tradeloom.plugins.protocols_orders.order_state import TRANSITIONS, OrderState
from tradeloom.schemas import load_strategy
from tradeloom.schemas.yaml_loader import load_yaml
from tradeloom.testing import DEFAULT_API_KEY, DEFAULT_SECRET, ExchangeEmulator

SYMBOL = "BTC/USDT"
HISTORY = 100
"""Bars closed when the run starts: fewer than the first walk-forward fold needs."""

STRATEGY = """\
name: live_rf
seed: 3
data:
  kind: ccxt
  exchange: binance
  symbol: BTC/USDT
  timeframe: 1h
  start: "2024-01-01"
  cache_dir: cache
  api_key: ${EMU_API_KEY}
  secret: ${EMU_API_SECRET}
features:
  - {kind: log_return, period: 1}
  - {kind: log_return, period: 6}
  - {kind: rsi, window: 14}
model:
  kind: sklearn
  estimator: sklearn.ensemble.RandomForestClassifier
  params: {n_estimators: 15, max_depth: 4, min_samples_leaf: 10, n_jobs: 1}
  label: {horizon: 3}
  walk_forward: {train_window: 120, retrain_every: 40}
signal: {kind: threshold, threshold: 0.04, min_interval: 2}
risk:
  sizing: {kind: fixed_fraction, fraction: 0.5}
execution: {kind: simulated, fee_bps: 10, initial_cash: 50000}
outputs: {report: false}
live:
  stream: poll
  close_delay_seconds: 0
  capital: 50000
  stale_after_bars: null
"""
"""The strategy of most live tests. No report.html (``outputs: {report: false}``): drawing
it at a run's first refresh and at its stop was a fifth of a short run's time, and only
the tests of the live outputs read it; they trade `STRATEGY_REPORTED`."""

STRATEGY_REPORTED = STRATEGY.replace("outputs: {report: false}\n", "")
"""`STRATEGY` drawing its report.html as a user's run does (the tests of the live outputs:
test_live_status, test_journal_outage)."""

REGISTRY = """\
name: challenger
seed: 11
data:
  kind: synthetic
  symbol: BTC/USDT
  timeframe: 1h
  bars: 320
  start: "2023-01-01T00:00:00Z"
features:
  - {kind: log_return, period: 1}
  - {kind: log_return, period: 6}
  - {kind: rsi, window: 14}
model:
  kind: sklearn
  estimator: sklearn.ensemble.RandomForestClassifier
  params: {n_estimators: 12, max_depth: 3, min_samples_leaf: 5, n_jobs: 1}
  label: {horizon: 3}
  walk_forward: {train_window: 150, retrain_every: 100}
signal: {kind: threshold, threshold: 0.04}
risk:
  sizing: {kind: fixed_fraction, fraction: 0.5}
execution: {kind: simulated}
"""
"""Trains a model `STRATEGY` can swap in (the model registry): its features and label,
another forest, trained on another market; its folds are saved in ``models/``."""


def trained_registry(folder: Path, text: str = REGISTRY) -> Path:
    """Backtest ``text`` (`REGISTRY`) into ``folder``; return its run directory (its saved
    folds)."""
    from tradeloom.backtest.run import run_strategy

    path = folder / "challenger.yaml"
    path.write_text(text, encoding="utf-8")
    config, plugins = load_strategy(path)
    saved = structlog.get_config()
    try:
        run_strategy(build_pipeline(config), plugins, out=folder / "challenger")
    finally:
        structlog.configure(**saved)  # a run configures the logs globally
    return folder / "challenger"


def make_bars(n: int = 420, seed: int = 5) -> pd.DataFrame:
    """Hourly bars of a random walk from 2024-01-01, on a 0.01 tick."""
    return walk_bars(n, seed, step=60)


def rows(path: Path, kind: str) -> list[dict[str, Any]]:
    """The fields of one journal event kind (plain values), with their bar."""
    return [{"bar": row.bar, **row.values} for row in read_rows(path, [kind])]


def broken_links(path: Path) -> list[tuple[str, str, str]]:
    """The ``order_state`` rows whose ``previous`` is not the state the row before them
    for the same order entered, as ``(client id, that state, the row's previous)``.

    Each order's rows form a chain: a restart journals what it finds changed at the
    venue, never a restatement of a state the journal holds (its first row moves from
    ``pending``, a restart's from ``unknown`` for an order it found beyond the journal;
    a journal written before wt/orders4 may start one at ``submitted`` when only the
    intent was committed)."""
    entered: dict[str, str] = {}
    broken = []
    for row in read_rows(path, ["order_state"]):
        client_id, previous = row.values["client_id"], row.values["previous"]
        if client_id in entered and entered[client_id] != previous:
            broken.append((client_id, entered[client_id], previous))
        entered[client_id] = row.values["state"]
    return broken


def illegal_moves(path: Path) -> list[tuple[str, str, str]]:
    """The ``order_state`` rows moving where the transition table (`TRANSITIONS`) lets
    no order move, as ``(client id, previous, state)``: out of a state that finished the
    order, or (a restart reading an acknowledged order as never placed) ``accepted ->
    rejected``. A restart's ``adopted`` row reads as ``unknown``, which it is."""

    def state(value: str) -> OrderState:
        return OrderState.UNKNOWN if value == "adopted" else OrderState(value)

    illegal = []
    for row in read_rows(path, ["order_state"]):
        client_id, previous, entered = (
            row.values["client_id"],
            row.values["previous"],
            row.values["state"],
        )
        if entered == "adopted" and state(previous) in (OrderState.SUBMITTED, OrderState.UNKNOWN):
            continue
        if state(entered) not in TRANSITIONS[state(previous)]:
            illegal.append((client_id, previous, entered))
    return illegal


def journal_tuples(path: Path) -> list[tuple[Any, ...]]:
    """Every row as ``(seq, bar, timestamp, kind, correlation_id, values)``."""
    return [
        (r.seq, r.bar, r.timestamp, r.kind, r.correlation_id, r.values) for r in read_rows(path)
    ]


def tick_bars(run: EmulatedRun, runner: LiveRunner, bars: int) -> None:
    """Close ``bars`` bars on the emulator's clock, ticking the runner after each."""
    for _ in range(bars):
        run.emulator.advance()
        runner.tick()


def tick_until(run: EmulatedRun, runner: LiveRunner, until: int) -> None:
    """Close bars on the emulator's clock up to bar ``until``, ticking after each."""
    while run.emulator.exchange.position < until:
        run.emulator.advance()
        runner.tick()


def crash(runner: LiveRunner) -> None:
    """Drop the runner as kill -9 would: uncommitted rows are lost, the pid lock freed."""
    if runner.journal is not None:
        runner.journal._buffer.clear()
        runner.journal._buffered = 0
        runner.journal._db.close()
    runner.inbox.release_pid()


@dataclass
class EmulatedRun:
    """An emulator playing ``bars`` and a strategy file pointed at it."""

    emulator: ExchangeEmulator
    strategy: Path
    bars: pd.DataFrame

    def clock(self) -> pd.Timestamp:
        """The emulator's market time: the open of the bar in progress."""
        return pd.Timestamp(self.emulator.exchange.now_ms(), unit="ms", tz="UTC")

    def runner(
        self,
        run_dir: Path,
        mode: Mode = "live",
        overrides: tuple[str, ...] = (),
        *,
        watch_file: bool = False,
        **options: Any,
    ) -> LiveRunner:
        """Return a runner of the strategy on the emulator's clock (not started).

        ``options`` go to `LiveRunner` (``echo``, ``refresh``); ``live.parity`` runs the
        command line's check (`check_apart`) unless ``stage_options`` says otherwise.
        """
        options.setdefault("stage_options", StageOptions(parity_check=_check_apart))
        document = restart_document(load_yaml(self.strategy), run_dir)  # as the CLI does
        config, plugins = load_strategy(self.strategy, overrides, document=document)
        return LiveRunner(
            build_pipeline(config),
            plugins,
            mode=mode,
            run_dir=run_dir,
            clock=self.clock,
            overrides=overrides,
            watch_file=watch_file,
            **options,
        )


@contextmanager
def emulated_run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    bars: pd.DataFrame | None = None,
    text: str = STRATEGY,
    history: int = HISTORY,
    quote: str = "100000",
    symbol: str = SYMBOL,
    **emulator: Any,
) -> Iterator[EmulatedRun]:
    """Start an emulator at bar ``history`` and route every ``binance`` client to it
    (its one market: ``symbol``, a perpetual swap when ``BASE/QUOTE:QUOTE``)."""
    bars = make_bars() if bars is None else bars
    monkeypatch.setenv("EMU_API_KEY", DEFAULT_API_KEY)
    monkeypatch.setenv("EMU_API_SECRET", DEFAULT_SECRET)
    strategy = tmp_path / "strategy.yaml"
    strategy.write_text(text)
    with ExitStack() as stack:
        emu = stack.enter_context(
            ExchangeEmulator(
                {symbol: bars},
                {"USDT": Decimal(quote)},
                start=history,
                include_open_kline=False,
                **emulator,
            )
        )
        stack.enter_context(
            use_client_factory("binance", lambda s: emu.client(**{**s, "enableRateLimit": False}))
        )
        stack.enter_context(use_pro_client_factory("binance", None))
        yield EmulatedRun(emu, strategy, bars)


def _check_apart(run_dir: Path, until_bar: int, window_bars: int, limit: float) -> dict[str, Any]:
    """The command line's parity check (imported when a check runs, as the CLI does)."""
    from tradeloom.diagnostics.live_parity import check_apart

    return check_apart(run_dir, until_bar, window_bars, limit)


def parity_monitor(runner: LiveRunner) -> ParityMonitor:
    """Return the live parity monitor of ``runner`` (its ``live.parity`` stage's)."""
    stage = runner.stage(ParityStage)
    assert stage is not None, "the run has no live.parity"
    return stage.monitor


def promotions_of(runner: LiveRunner) -> PromotionStage | None:
    """Return the promotion stage of ``runner``'s challengers (None: it has none)."""
    stage = runner.stage(Promotions)
    return None if stage is None else stage.promotions
