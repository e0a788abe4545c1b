"""Every shape a live run takes, against the emulator, under fault schedules and crashes.

The harness of `test_fault_schedules` (one market) and `test_fault_shapes` (a universe,
a portfolio file, a router, TWAP slicing, a perpetual): a `Shape` says what the run
trades and on which venues; `shape_run` starts its emulators and points the strategy
files at them; `drive` plays the run bar by bar under a schedule of request faults,
killing the process (`crash`) where the schedule says, damaging its journal as a kill
-9 can (a cut write-ahead log) or as an operator might (the tail record deleted or
replaced), and starting it again with the same files; `check` asserts what must hold
of the finished run:

1. no client order id reached any venue twice, and none reached two venues;
2. no trade was counted twice, every trade the venues made for the run was counted, the
   engine applied no more fills than were counted and no order ended twice;
3. each market's position in the journal is what each venue holds (the fills counted
   but not yet reported to the engine aside), every order a venue has is in the journal,
   none journaled as refused, and no order is left unknown;
4. no emulator saw an internal error (a fault is not an error);
5. an allocating run decided no rebalance twice (a restart takes the journal's), and
   sent its rebalance orders only at its decisions.

A restart refused for damage it must refuse (a journal whose tail record is gone or is
another run's) must send nothing; the harness then puts the journal back as the kill
left it and starts again. Waits between read attempts are recorded, not slept; the
venues' and the intent journal's clocks are the emulator's market clock, so a restart
compares times of one clock (``settle_seconds``, one bar).
"""

from __future__ import annotations

import atexit
import itertools
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pandas as pd
import pytest
from hypothesis import currently_in_test_context
from hypothesis import note as _hypothesis_note
from hypothesis import strategies as st
from scipy import stats

from tests.live.live_emulated import (
    REGISTRY,
    STRATEGY_REPORTED,
    broken_links,
    crash,
    illegal_moves,
    make_bars,
    promotions_of,
    rows,
    trained_registry,
)
from tests.live.test_portfolio_live import MEMBER as PORTFOLIO_MEMBER
from tests.live.test_portfolio_live import PORTFOLIO
from tests.live.test_universe_paper import STRATEGY_REPORTED as UNIVERSE_STRATEGY
from tradeloom.engine.control_files import _write_request
from tradeloom.engine.wiring import build_pipeline
from tradeloom.errors import ConfigError
from tradeloom.journal import JournalStore, read_rows
from tradeloom.journal.errors import JournalError
from tradeloom.journal.sqlite import SqliteJournal
from tradeloom.journal.tail import tail_path
from tradeloom.live.accounts import router_venue, venues
from tradeloom.live.accounts.router_venue import RouterVenue
from tradeloom.live.lifecycle.challenger_stages import MemberChallengers, ShadowChallengers
from tradeloom.live.orders import order_journal
from tradeloom.live.orders.ccxt_venue import CcxtVenue
from tradeloom.live.orders.exchange_venue import ExchangeVenue
from tradeloom.live.orders.order_journal import JournalOrders
from tradeloom.live.recovery.reconcile import RestartRefused
from tradeloom.live.tick.runner import LiveRunner
from tradeloom.plugins.data.ccxt_client import use_client_factory
from tradeloom.plugins.data.ccxt_retry import ExchangeUnavailable
from tradeloom.plugins.data.ccxt_stream import use_pro_client_factory
from tradeloom.plugins.manager import load_plugins
from tradeloom.plugins.protocols_orders.order_events import VenueEvent, VenueOrder
from tradeloom.plugins.protocols_orders.order_state import OrderState, Transition
from tradeloom.runtime.retrying import RetriesExhausted
from tradeloom.schemas import load_strategy
from tradeloom.testing import (
    DEFAULT_API_KEY,
    DEFAULT_SECRET,
    DropConnection,
    ExchangeEmulator,
    Fault,
    Latency,
    PartialFill,
    RateLimited,
    Reject,
    ServerError,
    Timeout,
)
from tradeloom.testing.emulator import MarketRules

HISTORY = 100
"""Bars closed when a run first starts (fewer than the first walk-forward fold needs)."""

END = HISTORY + 65
"""Faults and crashes happen up to this bar."""

QUIET = 3
"""Bars without faults at the end: unknown orders are looked up and settled."""

SETTLE_SECONDS = 3600.0
"""One bar of market time: an order not found a bar after it was sent never arrived.

True here only because `ShapeRun.advance` lets every request the run gave up on reach
the emulator, and be served, before the bar moves on. The emulator takes a request up
to ``recvWindow`` (10 s) of wall time after it was signed, as Binance does; a bar here
lasts a fraction of a second. A request the client stopped waiting for at its 250 ms
timeout but that a loaded machine served later (a POST, its order then created) could
otherwise land after the next bar's lookup had found nothing and journaled the order
never arrived: the venue then held an order, and its fills, the journal had not
(seed 65, a timeout after the venue accepted). A live run's window is the wall clock's
``recvWindow`` + 5 s, which the venue's refusal of late requests makes true."""

SETTLE_WAIT = 10.0
"""Wall seconds a request the client gave up on is waited for before a bar moves on."""

TIMEOUT_MS = 250
"""The ccxt client's timeout: what a swallowed request costs in wall time. A loopback
request is answered in milliseconds, so 250 ms still tells a swallowed one from a slow
one on a loaded machine."""

BARS = END + QUIET + 10
"""Bars each market's series holds."""

LOG_ENV = "TRADELOOM_FAULT_LOG"
"""A file a long hunt names: each example that passed appends a line to it."""


def note(text: str) -> None:
    """Note ``text`` for Hypothesis's report of a failing example; print it in a hunt."""
    if currently_in_test_context():
        _hypothesis_note(text)
    else:
        print(text)


# --- the shapes ------------------------------------------------------------------------


def _edited(text: str, *changes: tuple[str, str]) -> str:
    """Return ``text`` with each ``(old, new)`` made once (each ``old`` is there once)."""
    for old, new in changes:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


FAST_FOLDS = "walk_forward: {train_window: 80, retrain_every: 30}"
"""The first fold predicts from before the live bars."""

TIMEOUT = (
    "  secret: ${EMU_API_SECRET}\n",
    f"  secret: ${{EMU_API_SECRET}}\n  config: {{timeout: {TIMEOUT_MS}}}\n",
)

# One market, trading often (a low threshold sends 20 to 30 orders in 68 bars).
ONE = _edited(
    STRATEGY_REPORTED,  # a kill may land while the writer draws the report: kept drawn
    ("walk_forward: {train_window: 120, retrain_every: 40}", FAST_FOLDS),
    ("threshold: 0.04, min_interval: 2", "threshold: 0.02, min_interval: 1"),
    TIMEOUT,
)
# One market, a torch network (a small LSTM) in place of the forest: each fold trains at a
# bar's close, where a kill can strike (`TRAINING_KILL`).
TORCH = _edited(
    ONE,
    (
        "  kind: sklearn\n  estimator: sklearn.ensemble.RandomForestClassifier\n"
        "  params: {n_estimators: 15, max_depth: 4, min_samples_leaf: 10, n_jobs: 1}\n",
        "  kind: torch\n  network: lstm\n  params: {hidden: 6}\n  window: 8\n"
        "  training: {epochs: 2, batch_size: 64}\n",
    ),
)
UNIVERSE = _edited(
    UNIVERSE_STRATEGY,
    ("POOLING", "pooled"),
    ("walk_forward: {train_window: 120, retrain_every: 40}", FAST_FOLDS),
    ("threshold: 0.04, min_interval: 2", "threshold: 0.02, min_interval: 1"),
    TIMEOUT,
)
# The universe with a bar's orders sent as one batch (``execution.orders.batch``): Binance
# spot cannot batch, so each goes by itself after the batch's intents were committed
# together (`tradeloom.live.orders.order_batch`; the batch's own requests and kills between
# its children: `test_fault_schedules`'s batch property).
UNIVERSE_BATCHED = _edited(
    UNIVERSE,
    (
        "execution: {kind: simulated, fee_bps: 10, initial_cash: 50000}",
        "execution: {kind: simulated, fee_bps: 10, initial_cash: 50000, orders: {batch: true}}",
    ),
)
# The universe rebalanced by risk parity every 5 bars from its first live bar (every
# rebalance trades: no minimum trade), the signal then unused.
ALLOCATING = _edited(
    UNIVERSE,
    (
        "risk:\n",
        "allocation:\n  kind: risk_parity\n  covariance: ledoit_wolf\n  window: 30\n"
        "  constraints: {net_exposure: 0.9}\n  rebalance: {every: 5}\nrisk:\n",
    ),
)
MEMBER = _edited(
    PORTFOLIO_MEMBER,
    ("plugins: [tests.live.live_child]\n", ""),
    ("cache_dir: CACHE", "cache_dir: cache"),
    ("  options: {recvWindow: 10000}\n", f"  config: {{timeout: {TIMEOUT_MS}}}\n"),
    ("walk_forward: {train_window: 100, retrain_every: 30}", FAST_FOLDS),
    ("threshold: 0.03, min_interval: 2", "threshold: 0.02, min_interval: 1"),
    ("  poll_seconds: 0.02\n", ""),
)

REGISTRY_RUN = "REGISTRY_RUN"
"""Stands in a shape's file for the registry's run directory (`registry`), written in
when the file is."""

PROMOTION_GATE = "{min_bars: 35, alpha: 0.5}"
"""A low bar: promoted at the first close from the 35th on where the challenger's mean
per-bar return is above the champion's (on these bars, at bar `PROMOTED_AT` of a run
left alone: the champion trades often from bar 120 and pays its fees, the challenger
seldom)."""

PROMOTED_AT = HISTORY + 34
"""The bar the gate promotes the challenger at in a run left alone (kills are drawn
around it; faults and kills may move it)."""

# One market with a gated challenger (the registry's model, trading seldom) that its gate
# promotes inside the run: its model is then the champion's, deciding on ONE's signal.
PROMOTING = (
    ONE
    + f"""\
challengers:
  - name: saved
    model: {{kind: saved, from_run: {REGISTRY_RUN}}}
    signal: {{kind: threshold, threshold: 0.3}}
    promote_when: {PROMOTION_GATE}
"""
)

CANARY_PARITY_GAP = 0.01
"""The canary's parity-gap limit: 1% of equity, beyond what a clean canary's fills lose
against its replay (its fees on half the size), within what some fault schedules do."""

WATCH_ROLLBACK = "{max_drawdown: 0.0001}"
"""A watch's rule that fires at its first losing close: the watch rolls back."""

WATCH_PASS = "{max_parity_gap: 0.05}"
"""A watch's rule no close of these runs reaches: the watch passes."""

CANARY_ROLLBACK = f"{{max_parity_gap: {CANARY_PARITY_GAP}, max_drawdown: 0.0001}}"
"""A canary's rules of which the second fires at its first losing close: the canary
rolls back, its watch never starts."""


SAVED_CHAMPION = (
    "model:\n"
    "  kind: sklearn\n"
    "  estimator: sklearn.ensemble.RandomForestClassifier\n"
    "  params: {n_estimators: 15, max_depth: 4, min_samples_leaf: 10, n_jobs: 1}\n"
    "  label: {horizon: 3}\n"
    f"  {FAST_FOLDS}\n",
    f"model: {{kind: saved, from_run: {REGISTRY_RUN}, fold: 0}}\n",
)
"""ONE's model made the registry's first fold: a canary's or a watch's rollback swaps
the champion's file back in (a model trained in the run has none)."""


HELD_FOR = (
    "  sizing: {kind: fixed_fraction, fraction: 0.5}\n",
    "  sizing: {kind: fixed_fraction, fraction: 0.5}\n  max_holding_bars: 2\n",
)
"""Positions closed after 2 bars: the saved champion's signal is long a third of the bars
and never exits by itself on a long-only venue (one order a run): so it trades."""


def _watched(rollback_when: str, canary: str = f"{{max_parity_gap: {CANARY_PARITY_GAP}}}") -> str:
    """`PROMOTING` whose champion is the registry's first fold (`SAVED_CHAMPION`),
    holding each position 2 bars (`HELD_FOR`), and whose gate promotes through a canary
    of half the size for 4 bars (its parity-gap rule read against the run's replay), then
    watches the full promotion for 6 bars under ``rollback_when`` (a rollback swaps the
    previous champion back); ``canary``: the canary's rules."""
    gate = (
        "{min_bars: 35, alpha: 0.5,\n"
        f"      canary: {{fraction: 0.5, bars: 4, rollback_when: {canary}}},\n"
        f"      watch: {{bars: 6, rollback_when: {rollback_when}}}}}"
    )
    return _edited(
        PROMOTING,
        SAVED_CHAMPION,
        HELD_FOR,
        (f"promote_when: {PROMOTION_GATE}", f"promote_when: {gate}"),
    )


WATCHED_ROLLED = _watched(WATCH_ROLLBACK)
WATCHED_PASSED = _watched(WATCH_PASS)
CANARY_ROLLED = _watched(WATCH_PASS, CANARY_ROLLBACK)

WATCHED_PROMOTED_AT = HISTORY + 46
"""The bar the gate of `WATCHED_ROLLED` and ``WATCHED_PASSED`` promotes at in a run left
alone; its canary passes 4 bars later, its watch rolls back a bar after that (or passes
6 bars after)."""

MEMBER_PROMOTED_AT = PROMOTED_AT
"""The bar the gate of `MEMBER_PROMOTING`'s challenger promotes it at in a run left alone."""

PROMOTED_MEMBER = "trend_btc"
"""The portfolio file's strategy whose challenger its gate promotes (`MEMBER_PROMOTING`)."""

ROUTER = f"""\
execution:
  kind: router
  venues:
    - name: dear
      kind: ccxt
      exchange: binance
      api_key: ${{EMU_DEAR_KEY}}
      secret: ${{EMU_API_SECRET}}
      config: {{timeout: {TIMEOUT_MS}}}
      fee_bps: 30
      initial_cash: 25000
    - name: cheap
      kind: ccxt
      exchange: binance
      api_key: ${{EMU_CHEAP_KEY}}
      secret: ${{EMU_API_SECRET}}
      config: {{timeout: {TIMEOUT_MS}}}
      fee_bps: 5
      initial_cash: 25000
"""

SLICED = "execution: {kind: simulated, fee_bps: 10, initial_cash: 50000, orders: " + (
    "{slicing: {kind: twap, children: 3, every_bars: 1}}}"
)

PERP_EXECUTION = """\
execution:
  kind: simulated
  market: swap
  funding: funding
  fee_bps: 5
  initial_cash: 50000
  margin: {initial: 0.5, maintenance: 0.01, leverage: 2}
"""

SIMULATED = "execution: {kind: simulated, fee_bps: 10, initial_cash: 50000}\n"
SWAP = "BTC/USDT:USDT"


@dataclass(frozen=True)
class Venue:
    """One emulated venue of a shape: its name (the API key's prefix), its quote balance
    and its taker fee."""

    name: str
    quote: int
    taker_fee: Decimal = Decimal("0.001")


@dataclass(frozen=True)
class Shape:
    """What a run trades, and where.

    Attributes:
        name: The shape's name (the test's id).
        files: File name -> text; the first is the file the run is started with.
        markets: Each market's symbol (the emulators list every one).
        venues: The emulated venues (one: a strategy's own exchange).
        swap: The markets are USD-M perpetual swaps (orders go to ``/fapi``).
        portfolio: The first file is a portfolio file.
    """

    name: str
    files: Mapping[str, str]
    markets: tuple[str, ...]
    venues: tuple[Venue, ...] = (Venue("main", 100_000),)
    swap: bool = False
    portfolio: bool = False

    @property
    def looks_up_cut_journals(self) -> bool:
        """Whether a restart takes a journal that lost committed rows, asking its one
        market what was sent beyond it; a universe, a portfolio and a router refuse it."""
        return len(self.markets) == 1 and len(self.venues) == 1 and not self.portfolio

    @property
    def order_route(self) -> str:
        """The route an order submission takes."""
        return "POST /fapi/v1/order" if self.swap else "POST /api/v3/order"

    @property
    def reads(self) -> tuple[str, ...]:
        """The routes of the reads a run makes (faults are planned on them)."""
        if self.swap:
            return (
                "GET /fapi/v1/order",
                "GET /fapi/v1/userTrades",
                "GET /fapi/v1/openOrders",
                "DELETE /fapi/v1/order",
                "GET /fapi/v1/klines",
                "GET /fapi/v3/positionRisk",
                "GET /fapi/v2/balance",
                "GET /api/v3/time",
                "GET /fapi/v1/exchangeInfo",
            )
        return (
            "GET /api/v3/order",
            "GET /api/v3/myTrades",
            "GET /api/v3/openOrders",
            "DELETE /api/v3/order",
            "GET /api/v3/klines",
            "GET /api/v3/account",
            "GET /api/v3/time",
            "GET /api/v3/exchangeInfo",
        )

    @property
    def calls(self) -> dict[str, int]:
        """Request numbers faults are planned on, per route, after the first start.

        About what a run makes: a market order fills when it arrives, so orders are
        polled (trades, open orders, lookups) only while one works on (a partial fill)
        or is unknown; account, time and markets are read by a restart; klines once a
        bar per market.
        """
        markets = len(self.markets)
        counts = {self.order_route: 26}
        for route in self.reads:
            counts[route] = 4 if route.endswith(("/order", "/time", "/exchangeInfo")) else 6
        for route in self.reads:
            if "klines" in route:
                counts[route] = 70 * markets
            if "Trades" in route:
                counts[route] = 8
            if route.endswith(("/account", "/balance", "/positionRisk")):
                counts[route] = 2
        return counts


def _portfolio_files() -> dict[str, str]:
    files = {"pair.yaml": PORTFOLIO}
    for name, symbol, seed in (("trend_btc", "BTC/USDT", 11), ("swing_eth", "ETH/USDT", 5)):
        files[f"{name}.yaml"] = (
            MEMBER.replace("NAME", name).replace("SYMBOL", symbol).replace("SEED", str(seed))
        )
    return files


def _member_promoting_files() -> dict[str, str]:
    """`_portfolio_files` whose first strategy has `PROMOTING`'s gated challenger."""
    files = _portfolio_files()
    challenger = PROMOTING[len(ONE) :]
    assert challenger.startswith("challengers:")
    files[f"{PROMOTED_MEMBER}.yaml"] += challenger
    return files


def _router_text() -> str:
    text = ONE.replace(SIMULATED, ROUTER).replace(
        "api_key: ${EMU_API_KEY}", "api_key: ${EMU_DEAR_KEY}"
    )
    assert "kind: router" in text and "EMU_DEAR_KEY" in text
    return text


UNIVERSE_REGISTRY_RUN = "UNIVERSE_REGISTRY_RUN"
"""Stands in a shape's file for the universe's registry run (`universe_registry`)."""

UNIVERSE_CHALLENGER = f"""\
challengers:
  - name: saved
    model: {{kind: saved, from_run: {UNIVERSE_REGISTRY_RUN}}}
    signal: {{kind: threshold, threshold: 0.3}}
    promote_when: {PROMOTION_GATE}
"""
"""`PROMOTING`'s challenger for `UNIVERSE`: the universe registry's model (one market's
has not the universe's features), trading seldom."""


def _perp_text() -> str:
    text = (
        ONE.replace("symbol: BTC/USDT\n", f"symbol: {SWAP}\n")
        .replace(
            "  secret: ${EMU_API_SECRET}\n",
            "  secret: ${EMU_API_SECRET}\n"
            "  auxiliary:\n"
            "    - {name: funding, kind: funding_rate, available_after: 0s}\n",
        )
        .replace(SIMULATED, PERP_EXECUTION)
    )
    assert "market: swap" in text and "funding_rate" in text
    return text


def _sliced_text() -> str:
    text = ONE.replace(SIMULATED, SLICED + "\n")
    assert "twap" in text
    return text


SHAPES: dict[str, Shape] = {
    shape.name: shape
    for shape in (
        Shape("one", {"strategy.yaml": ONE}, ("BTC/USDT",)),
        Shape("torch", {"strategy.yaml": TORCH}, ("BTC/USDT",)),
        Shape("universe", {"strategy.yaml": UNIVERSE}, ("BTC/USDT", "ETH/USDT", "SOL/USDT")),
        Shape("allocating", {"strategy.yaml": ALLOCATING}, ("BTC/USDT", "ETH/USDT", "SOL/USDT")),
        Shape(
            "universe_batched",
            {"strategy.yaml": UNIVERSE_BATCHED},
            ("BTC/USDT", "ETH/USDT", "SOL/USDT"),
        ),
        Shape(
            "portfolio",
            _portfolio_files(),
            ("BTC/USDT", "ETH/USDT"),
            venues=(Venue("main", 60_000),),
            portfolio=True,
        ),
        # the cheap venue cannot take a whole buy: buys split over both
        Shape(
            "router",
            {"strategy.yaml": _router_text()},
            ("BTC/USDT",),
            venues=(
                Venue("dear", 40_000, Decimal("0.003")),
                Venue("cheap", 12_000, Decimal("0.0005")),
            ),
        ),
        Shape("twap", {"strategy.yaml": _sliced_text()}, ("BTC/USDT",)),
        Shape("promoting", {"strategy.yaml": PROMOTING}, ("BTC/USDT",)),
        Shape(
            "universe_promoting",
            {"strategy.yaml": UNIVERSE + UNIVERSE_CHALLENGER},
            ("BTC/USDT", "ETH/USDT", "SOL/USDT"),
        ),
        Shape("watched_rolled", {"strategy.yaml": WATCHED_ROLLED}, ("BTC/USDT",)),
        Shape("watched_passed", {"strategy.yaml": WATCHED_PASSED}, ("BTC/USDT",)),
        Shape("canary_rolled", {"strategy.yaml": CANARY_ROLLED}, ("BTC/USDT",)),
        Shape(
            "member_promoting",
            _member_promoting_files(),
            ("BTC/USDT", "ETH/USDT"),
            venues=(Venue("main", 60_000),),
            portfolio=True,
        ),
        Shape(
            "perp",
            {"strategy.yaml": _perp_text()},
            (SWAP,),
            venues=(Venue("main", 100_000, Decimal("0.0005")),),
            swap=True,
        ),
    )
}

RULES = {"SOL/USDT": MarketRules(step_size=Decimal("0.01"), min_qty=Decimal("0.01"))}
"""SOL trades in lots of 0.01, the others of 0.00001 (the emulator's default)."""


def _funding() -> pd.Series:
    """A rate every 8 hours over the bars, from -0.1% to +0.1% and back (both signs)."""
    index = pd.date_range("2024-01-01", periods=BARS // 8 + 1, freq="8h", tz="UTC")
    return pd.Series(np.round(0.001 * np.sin(np.arange(len(index)) / 3.0), 6), index=index)


# --- what goes wrong --------------------------------------------------------------------

SUBMIT_FAULTS: list[Fault] = [
    Timeout(after_accept=True, max_seconds=5),
    Latency(2 * TIMEOUT_MS / 1000),  # the venue takes it after the client gave up
    Timeout(max_seconds=5),
    DropConnection(after_accept=True),
    DropConnection(),
    RateLimited(retry_after=2),
    ServerError(500),
    ServerError(503, after_accept=True),
    ServerError(500, code=-1001, msg="Internal error; unable to process your request."),
    Reject(-2010, "Account has insufficient balance for requested action."),
    Reject(-2010, "Duplicate order sent."),
    Reject(-1013, "Filter failure: LOT_SIZE"),
]
"""What can happen to one order submission (besides a partial fill)."""

READ_FAULTS: list[Fault] = [
    Timeout(max_seconds=5),
    DropConnection(),
    RateLimited(retry_after=1),
    RateLimited(retry_after=3),
    ServerError(500),
    ServerError(502),
    ServerError(503),
    ServerError(500, code=-1001, msg="Internal error; unable to process your request."),
]
"""What can happen to one read; a burst of 5 outlasts the venue's and the feed's retries."""

DAMAGES = ("wal_cut", "tail_lost", "tail_foreign")
"""What a kill may leave the journal as: its write-ahead log cut (a crash of the
machine), its tail record deleted, or replaced by another run's (an operator's mistake).
The first is restarted from; the other two are refused (nothing sent) and put back."""


@dataclass(frozen=True)
class Planned:
    """``faults`` on requests ``call`` to ``call + burst - 1`` of ``route`` at ``venue``
    (after start; '' for the shape's first venue)."""

    route: str
    call: int
    burst: int
    faults: tuple[Fault, ...]
    venue: str = ""


@dataclass(frozen=True)
class CrashAt:
    """Kill the process at bar ``bar``: after its ``event``-th journaled venue event
    (None: after the bar), leave it down for ``down`` bars; ``damage`` what the kill did
    to the journal (None: nothing; a cut write-ahead log at ``cut``, a fraction of it).

    ``sent``: kill it instead right after the next order it sends from that bar on (up
    to `END`) is answered, before the answer is journaled. ``read``: at that bar's start
    the run's process reads its journal (as its figures do), then another process
    reads it with Python's ``sqlite3`` and closes it, as a user's reader may at any time
    (the first once dropped the run's SQLite locks, the second's close then deleted the
    run's write-ahead log, and the rows after it were lost at the kill).

    ``model``: kill it instead during the next change of its model from that bar on (a
    swap asked through its mailbox, or a challenger's promotion by its gate; a torch
    model's next fold trained at a bar's close, `TRAINING_KILL`):
    ``journaled``, right after the ``model_swapped`` row was recorded, before its commit
    (the swap is lost with the bar); ``committed``, right after its commit (a swap's
    request file not yet done, a promoted challenger's shadow retired in memory only);
    ``decided``, right after a gate's ``promote`` verdict was recorded (`DECIDED`); or
    during the next stage of a promotion (`STAGE_KILLS`: any stage row, a canary's or
    a watch's too, right after it was recorded or right after its commit).
    """

    bar: int
    event: int | None
    down: int
    damage: str | None = None
    cut: float = 0.5
    sent: bool = False
    read: bool = False
    model: str | None = None


HAND_ACTIONS = ("kill", "flatten", "rollback", "reload", "reload_model")
"""What an operator does by hand during a promotion's stage (`Hand`): ``tradeloom kill``,
``tradeloom kill --flatten``, ``tradeloom rollback``, or an edit of the strategy file the
run hot-reloads: of its risk section (`RELOADED_RISK`: taken at the next bar boundary),
or of its model section (`RELOADED_MODEL`: held while a canary or a watch is in
progress)."""

RELOADED_RISK = ("  max_holding_bars: 2\n", "  max_holding_bars: 3\n")
"""The edit of a hand ``reload`` (`HELD_FOR`'s holding limit)."""

RELOADED_MODEL = ("fold: 0}", "fold: 1}")
"""The edit of a hand ``reload_model`` (`SAVED_CHAMPION`: the registry's other fold):
refused while a canary or a watch is in progress, taken once none is; a restart while
it is held refuses the file (the harness puts the edit back, as its message says)."""


@dataclass(frozen=True)
class Hand:
    """An operator's action (one of `HAND_ACTIONS`) taken once ``after`` closes of a
    promotion's ``stage`` (``canary``, or ``watch``: the watch after a full promotion)
    were reviewed, as soon as the run is seen in it; never, if the run never is (a kill
    or a fault may move the promotion, a canary may roll back before its watch)."""

    action: str
    stage: str
    after: int


def hands(stages: tuple[str, ...] = ("canary", "watch")) -> st.SearchStrategy[Hand]:
    """An operator's action during one of ``stages``, after 0 to 3 of its closes."""
    return st.builds(
        Hand,
        action=st.sampled_from(HAND_ACTIONS),
        stage=st.sampled_from(stages),
        after=st.integers(0, 3),
    )


swaps = st.none() | st.integers(HISTORY + 2, END - 10)
"""The bar a one-market run's model is swapped at (`ask_swap`), or never."""

DECIDED = "decided"
"""A kill (`CrashAt.model`) inside the bar at which a gate decided to promote: right after
its ``challenger_gate`` row of verdict ``promote`` was recorded, before its commit (the
champion's bar committed, the challengers' rows of it and the promotion lost)."""

MODEL_KILLS = ("journaled", "committed", DECIDED)
"""Where a kill during a model change strikes (`CrashAt.model`)."""

STAGE_ROWS = frozenset(
    {
        "model_swapped",
        "canary_started",
        "canary_passed",
        "canary_rolled_back",
        "watch_started",
        "watch_passed",
        "promotion_rolled_back",
    }
)
"""The rows of a promotion's stages: the swap, its canary's and its watch's."""

REQUEST_KILL = "request_committed"
"""A kill (`CrashAt.model`) right after the commit that answered the next mailbox request
(a kill, a flatten, a rollback), before its file was done: the restart finds it again."""

TRAINING_KILL = "training"
"""A kill (`CrashAt.model`) during the next fold the run's torch model trains at a bar's
close: its network trained, the fold not yet its model nor journaled."""

STAGE_KILLS = ("stage_recorded", "stage_committed", DECIDED)
"""Where a kill during a promotion's stages strikes (`CrashAt.model`): right after the
next stage row (`STAGE_ROWS`: a promotion, a canary's start, pass or rollback, a watch's)
was recorded, before its commit; right after the commit that holds it; or right after
the gate's ``promote`` verdict was recorded (`DECIDED`)."""

LOSES = ("journaled", "stage_recorded", DECIDED)
"""The kills (`CrashAt.model`) that lose a decision recorded and not yet committed: a
restart takes it again at the same bar (`check_decisions`)."""


def crashes_around(
    first: int, last: int, *, model_kills: tuple[str, ...] = MODEL_KILLS, most: int = 2
) -> st.SearchStrategy[list[CrashAt]]:
    """Up to ``most`` kills at bars ``first`` to ``last`` (around a swap or a promotion):
    at a venue event or after the bar, at the next order sent, or during the model's
    change (`CrashAt.model`: one of ``model_kills``), each down for up to two bars, its
    journal maybe damaged."""
    return st.lists(
        st.builds(
            CrashAt,
            bar=st.integers(first, last),
            event=st.none() | st.integers(0, 3),
            down=st.integers(0, 2),
            damage=st.none() | st.sampled_from(DAMAGES),
            cut=st.floats(0.0, 1.0),
            sent=st.booleans(),
            model=st.none() | st.sampled_from(model_kills),
        ),
        min_size=1,
        max_size=most,
        unique_by=lambda c: c.bar,
    ).map(lambda found: sorted(found, key=lambda c: c.bar))


@st.composite
def swap_kills(draw: st.DrawFn) -> tuple[int, list[CrashAt]]:
    """The bar a run's model is swapped at, and kills around it (from the bar before to
    the bar after)."""
    swap_at = draw(st.integers(HISTORY + 3, END - 10))
    kills = ("journaled", "committed")  # no gate decides in a swap's shapes
    return swap_at, draw(crashes_around(swap_at - 1, swap_at + 1, model_kills=kills))


partial = st.sampled_from([0.25, 0.4, 0.5]).map(PartialFill)


def schedules(shape: Shape) -> st.SearchStrategy[list[Planned]]:
    """Faults planned on the shape's venues: submissions and bursts of failed reads."""
    calls = shape.calls
    names = st.sampled_from([v.name for v in shape.venues])

    @st.composite
    def submissions(draw: st.DrawFn) -> Planned:
        call = draw(st.integers(1, calls[shape.order_route]))
        fault = draw(st.sampled_from(SUBMIT_FAULTS) | st.none())
        fill = draw(partial if fault is None else partial | st.none())
        faults = tuple(f for f in (fault, fill) if f is not None)
        burst = draw(st.integers(1, 2))
        return Planned(shape.order_route, call, burst, faults, draw(names))

    @st.composite
    def reads(draw: st.DrawFn) -> Planned:
        route = draw(st.sampled_from(shape.reads))
        fault = draw(st.sampled_from(READ_FAULTS))
        burst = draw(st.sampled_from([1, 1, 2, 3, 5, 6]))
        return Planned(route, draw(st.integers(1, calls[route])), burst, (fault,), draw(names))

    return st.lists(submissions() | reads(), min_size=3, max_size=14)


crashes = st.lists(
    st.builds(
        CrashAt,
        bar=st.integers(HISTORY + 2, END - 1),
        event=st.none() | st.integers(0, 3),
        down=st.integers(0, 2),
        damage=st.none() | st.sampled_from(DAMAGES),
        cut=st.floats(0.0, 1.0),
        sent=st.booleans(),
        read=st.booleans(),
    ),
    max_size=2,
    unique_by=lambda c: c.bar,
).map(lambda found: sorted(found, key=lambda c: c.bar))


# --- the harness ------------------------------------------------------------------------


class Crash(BaseException):
    """The process dies here (a BaseException: nothing on the way catches it)."""


class Tripwire:
    """Counts venue events journaled during one bar and kills the process at the n-th,
    or, ``on_send``, at the venue's first answer after an order was sent."""

    def __init__(self) -> None:
        self.countdown: int | None = None
        self.on_send = False
        self._sent = False

    def passed(self) -> None:
        if self.countdown is None:
            return
        if self.countdown == 0:
            self.countdown = None
            raise Crash
        self.countdown -= 1

    def sending(self) -> None:
        self._sent = self.on_send

    def answered(self) -> None:
        if self._sent:
            self._sent = self.on_send = False
            raise Crash


def _journal_orders(trip: Tripwire, clock: Callable[[], float]) -> Callable[..., JournalOrders]:
    class Tripping(JournalOrders):
        def before_send(self, order: VenueOrder) -> None:
            super().before_send(order)
            trip.passed()  # the intent is committed, the request never leaves
            trip.sending()

        def commit_intents(self) -> None:
            had = bool(self._intended)
            super().commit_intents()
            if had:
                trip.passed()  # a batch's intents committed, no request left
                trip.sending()

        def record(self, event: VenueEvent) -> None:
            # the order left and was answered; nothing of it journaled (its ``submitted``
            # state is journaled before it leaves: a kill there sent nothing)
            if not (isinstance(event, Transition) and event.state is OrderState.SUBMITTED):
                trip.answered()
            super().record(event)
            trip.passed()  # the venue answered, the bar is not committed

    def build(
        journal: JournalStore, bar_clock: Callable[[], int], symbol: str = "", **kw: Any
    ) -> Tripping:
        return Tripping(journal, bar_clock, clock, symbol=symbol, **kw)

    return build


def _venue(waits: list[float], clock: Callable[[], float]) -> Callable[..., CcxtVenue]:
    def build(*args: Any, **kwargs: Any) -> CcxtVenue:
        return CcxtVenue(
            *args, **kwargs, sleep=waits.append, clock=clock, settle_seconds=SETTLE_SECONDS
        )

    return build


@dataclass
class ShapeRun:
    """A shape's emulators on one clock, and its files pointed at them.

    Attributes:
        shape: The shape.
        emulators: Each venue's emulator, by the venue's name.
        folder: Where the files are (and the run directory, ``live``).
        waits: The waits the venues and the feed asked for (recorded, not slept).
        trip: Kills the process at a journaled venue event.
        unanswered: The orders and cancels whose answer a client did not get (its
            timeout, a dropped connection): ``(venue, method, path, params)``.
    """

    shape: Shape
    emulators: dict[str, ExchangeEmulator]
    folder: Path
    waits: list[float] = field(default_factory=list)
    trip: Tripwire = field(default_factory=Tripwire)
    unanswered: list[tuple[str, str, str, dict[str, str]]] = field(default_factory=list)
    kills: int = 0
    """The kills -9 so far."""
    watch_file: bool = False
    """Its runners hot-reload the strategy file (a hand ``reload``)."""
    taken: int | None = None
    """The bar in progress when an operator's `Hand` was taken (None: not taken)."""
    edited: tuple[Path, str] | None = None
    """The strategy file a hand ``reload`` edited, and what it wrote (None: none stands)."""
    lost: list[tuple[str, int]] = field(default_factory=list)
    """The decisions kills lost before their commit (`ModelTrap.lost`): kind and bar."""

    @property
    def run_dir(self) -> Path:
        return self.folder / "live"

    @property
    def journal(self) -> Path:
        return self.run_dir / "journal.sqlite"

    @property
    def position(self) -> int:
        """The bar in progress on every venue."""
        return next(iter(self.emulators.values())).exchange.position

    def emulator(self, venue: str = "") -> ExchangeEmulator:
        """Return a venue's emulator ('' the first)."""
        return self.emulators[venue] if venue else next(iter(self.emulators.values()))

    def advance(self, bars: int = 1) -> None:
        """Play ``bars`` bars, once every request sent so far has been served (`settle`)."""
        self.settle()
        for emulator in self.emulators.values():
            emulator.advance(bars)

    def settle(self) -> None:
        """Wait until each order or cancel a client gave up on has reached its venue,
        then until no request is being served: a bar is longer than any request's
        flight (`SETTLE_SECONDS`). A request not received within `SETTLE_WAIT` never
        left the client (a connection that failed as it was sent)."""
        for venue, method, path, params in self.unanswered:
            emulator = self.emulators[venue]
            deadline = time.monotonic() + SETTLE_WAIT
            while not any(
                r.method == method and r.path == path and r.params == params
                for r in emulator.requests(f"{method} {path}")
            ):
                if time.monotonic() > deadline:
                    note(f"{method} {path} {params} never reached {venue}")
                    break
                time.sleep(0.005)
        self.unanswered.clear()
        for name, emulator in self.emulators.items():
            assert emulator.wait_idle(SETTLE_WAIT), f"{name} still serves a request"

    def clock(self) -> pd.Timestamp:
        """The emulators' market time: the open of the bar in progress."""
        return pd.Timestamp(self.emulator().exchange.now_ms(), unit="ms", tz="UTC")

    def runner(self) -> LiveRunner:
        """Return a runner of the shape's first file, live (not started).

        Without its files' thread: a kill here drops the runner, not its threads, and a
        thread still reading a journal whose write-ahead log the harness then cuts would
        die of SIGBUS (kill -9 ends them all; the files are other tests' subject).
        """
        path = self.folder / next(iter(self.shape.files))
        if self.shape.portfolio:
            from tradeloom.live.tick.portfolio_session import LivePortfolio, account_pipeline
            from tradeloom.schemas.portfolio_file import load_portfolio

            portfolio = load_portfolio(path, ())
            pipelines = tuple(build_pipeline(c) for c in portfolio.strategies)
            account = account_pipeline(portfolio, pipelines)
            return LiveRunner(
                account,
                load_plugins(()),
                mode="live",
                run_dir=self.run_dir,
                clock=self.clock,
                watch_file=False,
                portfolio=LivePortfolio(portfolio, pipelines),
                refresh=False,
            )
        config, plugins = load_strategy(path)
        return LiveRunner(
            build_pipeline(config, mode="live"),
            plugins,
            mode="live",
            run_dir=self.run_dir,
            clock=self.clock,
            watch_file=self.watch_file,
            refresh=False,
        )

    def plan(self, schedule: list[Planned]) -> None:
        """Schedule the faults on request numbers counted from now."""
        for item in schedule:
            emulator = self.emulator(item.venue)
            seen = len(emulator.requests(item.route))
            for k in range(item.burst):
                emulator.faults.on_call(item.route, seen + item.call + k, *item.faults)

    def clear_faults(self) -> None:
        for emulator in self.emulators.values():
            emulator.faults.clear()

    def posted(self) -> list[tuple[str, str]]:
        """Every order submission that reached a venue: ``(venue, client id)``."""
        return [
            (name, str(r.params.get("newClientOrderId")))
            for name, emulator in self.emulators.items()
            for r in emulator.requests(self.shape.order_route)
        ]

    def errors(self) -> list[BaseException]:
        return [e for emulator in self.emulators.values() for e in emulator.errors]


@contextmanager
def shape_run(shape: Shape) -> Iterator[ShapeRun]:
    """The shape's emulators from bar `HISTORY`, its files in a fresh folder, every
    ``binance`` client routed to its venue (by its API key's prefix), the venues and the
    intent journal on the emulators' market clock."""
    with (
        tempfile.TemporaryDirectory() as scratch,
        pytest.MonkeyPatch.context() as monkeypatch,
        ExitStack() as stack,
    ):
        folder = Path(scratch)
        monkeypatch.chdir(folder)
        monkeypatch.setenv("EMU_API_KEY", "main-" + DEFAULT_API_KEY)
        monkeypatch.setenv("EMU_API_SECRET", DEFAULT_SECRET)
        for venue in shape.venues:
            monkeypatch.setenv(f"EMU_{venue.name.upper()}_KEY", f"{venue.name}-{DEFAULT_API_KEY}")
        for name, text in shape.files.items():
            if UNIVERSE_REGISTRY_RUN in text:
                text = text.replace(UNIVERSE_REGISTRY_RUN, str(universe_registry()))
            if REGISTRY_RUN in text:
                text = text.replace(REGISTRY_RUN, str(registry()))
            (folder / name).write_text(text)
        markets = {symbol: make_bars(n=BARS, seed=5 + k) for k, symbol in enumerate(shape.markets)}
        emulators = {
            venue.name: stack.enter_context(
                ExchangeEmulator(
                    markets,
                    {"USDT": Decimal(venue.quote)},
                    start=HISTORY,
                    include_open_kline=False,
                    taker_fee=venue.taker_fee,
                    rules={s: r for s, r in RULES.items() if s in markets},
                    funding_rates={SWAP: _funding()} if shape.swap else None,
                )
            )
            for venue in shape.venues
        }

        run = ShapeRun(shape, emulators, folder)

        def client(settings: Mapping[str, Any]) -> Any:
            name = str(settings.get("apiKey") or "").split("-", 1)[0]
            if name not in emulators:
                name = next(iter(emulators))
            keys = {"apiKey": DEFAULT_API_KEY, "secret": DEFAULT_SECRET}
            made = emulators[name].client(**{**settings, **keys, "enableRateLimit": False})
            return noting_unanswered(made, name, run.unanswered)

        stack.enter_context(use_client_factory("binance", client))
        stack.enter_context(use_pro_client_factory("binance", None))

        def market_seconds() -> float:
            return run.emulator().exchange.now_ms() / 1000.0

        build_venue = _venue(run.waits, market_seconds)
        build_orders = _journal_orders(run.trip, market_seconds)
        for module in (venues, router_venue):
            monkeypatch.setattr(module, "CcxtVenue", build_venue)
        for module in (venues, order_journal):  # a router imports it when it opens
            monkeypatch.setattr(module, "JournalOrders", build_orders)
        yield run


def noting_unanswered(
    client: Any, venue: str, unanswered: list[tuple[str, str, str, dict[str, str]]]
) -> Any:
    """``client``, its orders and cancels that got no answer noted in ``unanswered``."""
    fetch = client.fetch

    def fetch_noting(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        try:
            return fetch(url, method, headers, body)
        except Exception:
            if method in ("POST", "DELETE"):
                parts = urlsplit(url)
                pairs = parse_qsl(parts.query, keep_blank_values=True)
                if body:
                    pairs += parse_qsl(str(body), keep_blank_values=True)
                params = {k: v for k, v in pairs if k != "signature"}
                unanswered.append((venue, method, parts.path, params))
            raise

    client.fetch = fetch_noting
    return client


def start(run: ShapeRun) -> LiveRunner:
    """Start (or restart) the run; a start that found a venue unreachable is tried again,
    and so is one killed -9 on the way (`_started`).

    A start may refuse to go on when a read failed every attempt (it cannot reconcile
    without the venue, nor look up what it sent beyond a cut journal); any other
    exception fails the test.
    """
    for _ in range(6):
        runner = run.runner()
        if _started(run, runner):
            return runner
    raise AssertionError("the run could not start six times in a row")


def _started(run: ShapeRun, runner: LiveRunner) -> bool:
    """Start ``runner``; False (it is dropped) when the venue did not answer, or when it
    was killed -9 inside its start: a restart decides again what the bar it restores
    decided at its close (`PromotionStage.decide_again`), journaling as a tick does, and
    a kill armed for that row strikes there as it would in the bar (the process is then
    killed as `kill` does: what its start did not commit is lost, and it starts again
    from the journal)."""
    runner.source.feed.sleep = run.waits.append  # type: ignore[union-attr]
    try:
        runner.start()
    except Crash:
        note("crashed while starting")
        kill(runner, run)
        return False
    except (RetriesExhausted, ExchangeUnavailable) as error:
        note(f"start refused: {error}")
    except RestartRefused as error:
        if "could not ask the venue" not in str(error):
            raise
        note(f"restart refused: {error}")
    except ConfigError as error:
        # a model section edited during a stage (its reload refused) is refused by the
        # restart too, in one line that says to put it back: the operator does
        if run.edited is None or run.edited[1] != RELOADED_MODEL[1]:
            raise
        message = str(error)
        assert "\n" not in message, message
        assert "model.fold: changed since the run last traded" in message, message
        assert "put it back" in message, message
        note(f"restart refused: {message}")
        path, edit = run.edited
        path.write_text(_edited(path.read_text(), (edit, RELOADED_MODEL[0])))
        run.edited = None
    else:
        return True
    crash(runner)
    return False


# --- damage -----------------------------------------------------------------------------


_KILLED = ("journal.sqlite", "journal.sqlite-wal", "journal.sqlite.tail", "sent.mark")


def kill(runner: LiveRunner, run: ShapeRun) -> dict[str, bytes]:
    """Drop ``runner`` as kill -9 would; return its run directory's files as it left them.

    The files (the database, its write-ahead log, the tail record and the sent-id
    mark) are read before the connection closes (closing checkpoints the log) and
    written back after. They hold every row the run committed: a kill -9 loses only
    what was not committed.
    """
    journal = runner.journal
    committed = journal.last_seq - journal._buffered if isinstance(journal, SqliteJournal) else None
    killed = {n: (run.run_dir / n).read_bytes() for n in _KILLED if (run.run_dir / n).exists()}
    crash(runner)
    run.kills += 1
    _put_back(run, killed)
    if committed is not None:
        assert _rows(run.journal) == committed, "the kill lost committed rows"
    return killed


_READ = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("SELECT COUNT(*) FROM events").fetchone()
db.close()
"""


def read_elsewhere(journal: Path) -> None:
    """Read ``journal`` from another process, as a user's reader may, and close it."""
    subprocess.run([sys.executable, "-c", _READ, str(journal)], check=True, timeout=60)


def _put_back(run: ShapeRun, files: Mapping[str, bytes]) -> None:
    for name in _KILLED:
        (run.run_dir / name).unlink(missing_ok=True)
        if name in files:
            (run.run_dir / name).write_bytes(files[name])


def damaged_start(
    run: ShapeRun, crashing: CrashAt, killed: Mapping[str, bytes]
) -> LiveRunner | None:
    """Do ``crashing.damage`` to the journal the kill left and start the run on it.

    A tail record deleted or another run's is refused; so is a cut write-ahead log that
    lost committed rows, but on one market, which asks the venue what was sent beyond
    the journal, and a cut that left no run to restart. A refusal is one line and sends
    nothing; the journal is then put back as the kill left it (None is returned: start
    again). A start that is not refused is returned.
    """
    if "journal.sqlite.tail" not in killed:
        return None  # nothing committed yet: nothing to damage
    record_path = tail_path(run.journal)
    if crashing.damage == "tail_lost":
        record_path.unlink()
    elif crashing.damage == "tail_foreign":  # another run's: the same strategy
        values = json.loads(killed[record_path.name])
        values["run_id"] = "another-run"
        record_path.write_text(json.dumps(values))
    else:
        wal = run.run_dir / "journal.sqlite-wal"
        if wal.exists():
            with wal.open("r+b") as handle:
                handle.truncate(int(wal.stat().st_size * crashing.cut))
    lost = _rows(run.journal) < int(json.loads(killed[record_path.name])["rows"])
    posted = len(run.posted())
    for _ in range(6):
        runner = run.runner()
        try:
            if not _started(run, runner):
                continue
        except JournalError as error:
            crash(runner)
            message = str(error)
            assert "\n" not in message and str(run.journal) in message, message
            assert message.endswith("nothing was sent"), message
            assert len(run.posted()) == posted, "a refused restart sent an order"
            note(f"refused: {message}")
            _put_back(run, killed)
            return None
        assert crashing.damage == "wal_cut", f"{crashing.damage}: the restart was not refused"
        assert run.shape.looks_up_cut_journals or not lost, "a cut journal was not refused"
        return runner
    raise AssertionError("the run could not start six times in a row")


def _rows(journal: Path) -> int:
    """How many rows the journal holds (0: none readable)."""
    try:
        return sum(1 for _ in read_rows(journal))
    except JournalError:
        return 0


def registry() -> Path:
    """The run directory of a backtest whose saved folds one market's strategy can swap
    in (`tests.live.live_emulated.REGISTRY`), trained once per process."""
    global _REGISTRY
    if _REGISTRY is None:
        folder = Path(tempfile.mkdtemp(prefix="tradeloom-registry-"))
        atexit.register(shutil.rmtree, folder, True)
        _REGISTRY = trained_registry(folder)
    return _REGISTRY


_REGISTRY: Path | None = None

UNIVERSE_REGISTRY = _edited(
    REGISTRY,
    ("name: challenger", "name: universe_challenger"),
    ("  symbol: BTC/USDT\n", "  symbols: [BTC/USDT, ETH/USDT, SOL/USDT]\n"),
    (
        "  - {kind: rsi, window: 14}\n",
        "  - {kind: rsi, window: 14}\n  - {kind: cross_rank, of: log_return_6}\n",
    ),
    ("  label: {horizon: 3}\n", "  label: {horizon: 3}\n  pooling: pooled\n"),
)
"""Trains a model `UNIVERSE` can take (its features, pooled), for its challenger."""


def universe_registry() -> Path:
    """The run directory of a backtest of `UNIVERSE_REGISTRY`, trained once per process."""
    global _UNIVERSE_REGISTRY
    if _UNIVERSE_REGISTRY is None:
        folder = Path(tempfile.mkdtemp(prefix="tradeloom-registry-"))
        atexit.register(shutil.rmtree, folder, True)
        _UNIVERSE_REGISTRY = trained_registry(folder, UNIVERSE_REGISTRY)
    return _UNIVERSE_REGISTRY


_UNIVERSE_REGISTRY: Path | None = None


def ask_swap(run: ShapeRun) -> None:
    """Leave a swap request to the registry's model in the run's mailbox, as `tradeloom
    swap` does, without the signal (the process reads its mailbox at every tick; this
    process would take the signal itself)."""
    request = {"model": str(registry()), "fold": None}
    if run.shape.portfolio:  # one strategy's model; the other keeps its own
        request["strategy"] = SWAPPED_MEMBER
    _write_request(run.run_dir, "swap", "the challenger", by="cli", extra=request)


SWAPPED_MEMBER = "trend_btc"
"""The strategy of the portfolio file whose model a swap asks for."""


class ModelTrap:
    """Kills the process during the next change of its model (`CrashAt.model`), once.

    Attributes:
        mode: ``journaled`` or ``committed`` (a swap's or a promotion's row), `DECIDED`,
            or one of `STAGE_KILLS` (any stage row), while armed; None: not armed.
        fired: It killed the process (since it was last armed).
        lost: The decision its kill lost, recorded and not committed (`LOSES`): the
            kind and bar of its row, a gate's as ``challenger_gate``; None: none.
    """

    def __init__(self) -> None:
        self.mode: str | None = None
        self.fired = False
        self.lost: tuple[str, int] | None = None
        self._last: tuple[str, int] | None = None  # the last stage row recorded
        self._uncommitted = False
        self._holding: object | None = None  # the journal holding an uncommitted stage row

    def arm(self, mode: str) -> None:
        self.mode, self.fired, self._uncommitted, self._holding = mode, False, False, None
        self.lost = None

    def staged(self, journal: object, event: Any) -> None:
        """``journal`` just recorded ``event`` (not committed)."""
        kind = event.KIND
        if kind == "challenger_gate" and event.verdict == "promote" and self.mode == DECIDED:
            self._last = (kind, event.bar)
            self._fire()
        if kind not in STAGE_ROWS:
            return
        self._last = (kind, event.bar)
        if self.mode == "stage_recorded":
            self._fire()
        elif self.mode == "stage_committed" and self._holding is None:
            self._holding = journal

    def flushed(self, journal: object) -> None:
        """``journal`` just committed what it had recorded."""
        if self._holding is not None and self._holding is journal:
            self._fire()

    def recorded(self) -> None:
        """A ``model_swapped`` row was just recorded (not committed)."""
        if self.mode == "journaled":
            self._fire()
        self._uncommitted = self.mode == "committed"

    def committed(self) -> None:
        """What recorded it was just committed."""
        if self._uncommitted:
            self._fire()

    def answered(self) -> None:
        """A mailbox request was just answered and committed, its file not yet done."""
        if self.mode == REQUEST_KILL:
            self._fire()

    def trained(self) -> None:
        """A torch model's fold just trained its network (not yet the run's model)."""
        if self.mode == TRAINING_KILL:
            self._fire()

    def _fire(self) -> None:
        if self.mode in LOSES:
            self.lost = self._last
        self.mode, self.fired, self._uncommitted, self._holding = None, True, False, None
        raise Crash


@contextmanager
def model_trap() -> Iterator[ModelTrap]:
    """A `ModelTrap` on the two paths a model changes by: a swap request (journaled, then
    committed before its request file is done) and a gate's promotion; and on the
    journal's rows and commits, for the stages of a promotion (`STAGE_KILLS`)."""
    from tradeloom.engine.control import ControlInbox
    from tradeloom.live.lifecycle import promotion, reload_stage, swap_stage
    from tradeloom.plugins.model import torch_model

    trap = ModelTrap()
    fit_network = torch_model.fit_network

    def fitting(*args: Any, **kwargs: Any) -> Any:
        fitted = fit_network(*args, **kwargs)
        trap.trained()
        return fitted

    def recorded(journal_swap: Callable[..., None]) -> Callable[..., None]:
        def recording(*args: Any, **kwargs: Any) -> None:
            journal_swap(*args, **kwargs)
            trap.recorded()

        return recording

    done, promote = ControlInbox.done, promotion.promote_passed

    def done_committed(inbox: ControlInbox, request: Any) -> None:
        trap.committed()  # the swap's row committed, its request file not yet done
        trap.answered()
        done(inbox, request)

    def promoted(*args: Any, **kwargs: Any) -> Any:
        stage = promote(*args, **kwargs)  # the canary or watch it started: the run holds it
        trap.committed()
        return stage

    append, flush = SqliteJournal.append, SqliteJournal.flush

    def appending(journal: SqliteJournal, event: Any) -> int:
        seq = append(journal, event)
        trap.staged(journal, event)
        return seq

    def flushing(journal: SqliteJournal, *, durable: bool = True) -> None:
        flush(journal, durable=durable)
        trap.flushed(journal)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SqliteJournal, "append", appending)
        patch.setattr(SqliteJournal, "flush", flushing)
        for stage in (swap_stage, reload_stage):  # a request's swap, a reload's
            patch.setattr(stage, "journal_swap", recorded(stage.journal_swap))
        patch.setattr(promotion, "journal_swap", recorded(promotion.journal_swap))
        patch.setattr(ControlInbox, "done", done_committed)
        patch.setattr(promotion, "promote_passed", promoted)
        patch.setattr(torch_model, "fit_network", fitting)
        yield trap


def in_stage(runner: LiveRunner, hand: Hand) -> bool:
    """Whether ``runner`` is in ``hand``'s stage, ``hand.after`` of its closes reviewed."""
    promotions = promotions_of(runner)
    if promotions is None:
        return False
    canary, watch = promotions.canary, promotions.watch
    stage = canary if hand.stage == "canary" else (watch if canary is None else None)
    if stage is None:
        return False
    return len(runner.session_or_fail.history) - 1 - stage.started.bar >= hand.after


def take(run: ShapeRun, hand: Hand) -> None:
    """Do what ``hand`` says, as its command would (the mailbox's request, without the
    signal: the process reads its mailbox at every tick), or edit the strategy file."""
    if hand.action in ("kill", "flatten", "rollback"):
        _write_request(run.run_dir, hand.action, "by hand", by="cli")  # type: ignore[arg-type]
        return
    path = run.folder / next(iter(run.shape.files))
    edit = RELOADED_RISK if hand.action == "reload" else RELOADED_MODEL
    path.write_text(_edited(path.read_text(), edit))
    run.edited = (path, edit[1])


def drive(
    run: ShapeRun,
    schedule: list[Planned],
    crash_points: list[CrashAt],
    swap_at: int | None = None,
    hand: Hand | None = None,
) -> LiveRunner:
    """Run to ``END + QUIET`` under ``schedule``, crashing at ``crash_points``, its model
    swapped at bar ``swap_at`` (None: never), ``hand`` taken by an operator during a
    stage (`take`; the bar it was taken at is `ShapeRun.taken`); stop. After each
    restart, the models in force are the journal's (`check_in_force`).

    Returns:
        The last runner, stopped.
    """
    run.watch_file = hand is not None and hand.action.startswith("reload")
    with model_trap() as trap:
        return _drive(run, trap, schedule, crash_points, swap_at, hand)


def _drive(
    run: ShapeRun,
    trap: ModelTrap,
    schedule: list[Planned],
    crash_points: list[CrashAt],
    swap_at: int | None,
    hand: Hand | None,
) -> LiveRunner:
    runner = start(run)
    run.plan(schedule)
    pending = list(crash_points)
    armed: CrashAt | None = None  # a kill at the next order sent
    changing: CrashAt | None = None  # a kill during the next change of the model
    while run.position < END + QUIET:
        run.advance()
        bar = run.position
        if swap_at is not None and bar >= swap_at:  # at the first bar up after a kill
            ask_swap(run)
            swap_at = None
        if hand is not None and run.taken is None and bar < END and in_stage(runner, hand):
            take(run, hand)
            run.taken = bar
        if bar >= END:
            run.clear_faults()
        crashing = pending.pop(0) if pending and pending[0].bar == bar else None
        if crashing is not None and crashing.read and run.journal.exists():
            _rows(run.journal)
            read_elsewhere(run.journal)
        if crashing is not None and crashing.model is not None:  # replaces one armed before
            changing, crashing = crashing, None
            trap.arm(changing.model)  # type: ignore[arg-type]
        elif crashing is not None and crashing.sent:  # replaces one armed before
            armed, crashing = crashing, None
        run.trip.countdown = None if crashing is None else crashing.event
        run.trip.on_send = armed is not None and bar < END
        try:
            runner.tick()
        except Crash:
            note(f"crashed in bar {bar}: {crashing or changing or armed}")
            if changing is not None and trap.fired:
                crashing, changing = changing, None
                if trap.lost is not None:
                    run.lost.append(trap.lost)
            elif armed is not None and not run.trip.on_send:
                crashing, armed = armed, None
        run.trip.countdown = None
        run.trip.on_send = False
        if crashing is not None:
            killed = kill(runner, run)
            if crashing.down:
                run.advance(crashing.down)
            damaged = damaged_start(run, crashing, killed) if crashing.damage else None
            runner = damaged or start(run)
            if changing is not None and trap.fired:  # it struck inside the restart
                if trap.lost is not None:
                    run.lost.append(trap.lost)
                changing = None
            check_in_force(run, runner)
    # an order sent at the last bar: its trades are counted at the next tick (a swap's
    # market order is acknowledged before it trades)
    for _ in range(5):
        if not runner.session_or_fail.engine.venue.pending():
            break
        run.advance()
        runner.tick()
    runner.stop("test over")
    return runner


# --- the properties ---------------------------------------------------------------------


def _root(client_id: str) -> str:
    """The engine's order a venue order is part of: a router's child ``{id}-r{k}`` and a
    limit order's market fallback ``{id}-f`` are their order's."""
    parts = client_id.rsplit("-", 1)
    if len(parts) == 2 and (parts[1] == "f" or (parts[1][:1] == "r" and parts[1][1:].isdigit())):
        return _root(parts[0])
    return client_id


def _venue_of(journal: Path, shape: Shape) -> dict[str, str]:
    """Each venue order's venue (a router's children: their ``route_decision``'s)."""
    if len(shape.venues) == 1:
        return defaultdict(lambda: shape.venues[0].name)
    return {r["order_id"]: r["venue"] for r in rows(journal, "route_decision")}


def undelivered(runner: LiveRunner) -> dict[tuple[str, str], float]:
    """Per ``(venue, market)``: the fills counted but not yet reported to the engine."""
    account = runner.exchange_venue
    assert account is not None
    out: dict[tuple[str, str], float] = defaultdict(float)
    for symbol, market in account.markets.items():
        if isinstance(market, ExchangeVenue):
            out[("", symbol)] += market.undelivered_position()
        else:
            assert isinstance(market, RouterVenue)
            for name, routed in market.venues.items():
                out[(name, symbol)] += routed.exchange.undelivered_position()
    return out


def check(run: ShapeRun, runner: LiveRunner) -> None:
    """Assert the five properties of a finished run."""
    shape, journal = run.shape, run.journal
    assert run.errors() == []
    # 1. every client order id reached one venue, once
    posted = run.posted()
    assert all(cid for _, cid in posted)
    assert [p for p, n in Counter(posted).items() if n > 1] == []
    ids = [cid for _, cid in posted]
    assert [cid for cid, n in Counter(ids).items() if n > 1] == []
    venue_orders = {
        (name, o.client_order_id): o
        for name, emulator in run.emulators.items()
        for o in emulator.exchange.orders()
    }
    assert len({cid for _, cid in venue_orders}) == len(venue_orders)
    # 2. every trade counted once; every trade of the run counted; no more engine fills
    #    than counted; every order ended once for the engine
    venue_of = _venue_of(journal, shape)
    counted_rows = [{"symbol": r.symbol, **r.values} for r in read_rows(journal, ["venue_fill"])]
    trade_keys = [(venue_of[f["order_id"]], f["symbol"], f["trade_id"]) for f in counted_rows]
    assert [t for t, n in Counter(trade_keys).items() if n > 1] == []
    executed: dict[str, float] = defaultdict(float)
    for f in counted_rows:
        executed[f["order_id"]] += f["quantity"]
    assert {
        cid: (executed[cid], float(o.executed_qty))
        for (_, cid), o in venue_orders.items()
        if abs(executed[cid] - float(o.executed_qty)) > 1e-12
    } == {}
    counted = Counter(_root(f["order_id"]) for f in counted_rows)
    applied = Counter(f["order_id"] for f in rows(journal, "fill"))
    assert {o: n for o, n in applied.items() if n > counted[o]} == {}
    assert rows(journal, "fill_refused") == []
    ended = Counter(r["order_id"] for r in rows(journal, "order_cancelled"))
    assert [o for o, n in ended.items() if n > 1] == []
    # 3. positions: the journal's fills per market are what the venues hold
    _check_positions(run, runner)
    sent = {r["id"] for r in rows(journal, "order_sent")}
    assert {cid for _, cid in venue_orders} <= sent
    last = {r["client_id"]: r["state"] for r in rows(journal, "order_state")}
    assert [cid for _, cid in venue_orders if last.get(cid) == OrderState.REJECTED] == []
    assert [cid for cid, state in last.items() if state == OrderState.UNKNOWN] == []
    # each order's rows are one chain, each state entered once: whatever the kills, a
    # restart journals what it found changed at the venue, never what the journal held
    assert broken_links(journal) == []
    assert illegal_moves(journal) == []
    states = Counter((r["client_id"], r["state"]) for r in rows(journal, "order_state"))
    assert [key for key, n in states.items() if n > 1] == []
    # 5. the allocation layer rebalanced no bar twice, and traded only at its decisions
    decided = Counter(r["bar"] for r in rows(journal, "allocation_decided"))
    assert [bar for bar, n in decided.items() if n > 1] == []
    rebalanced = {r["bar"] for r in rows(journal, "order") if r["reason"] == "REBALANCE"}
    assert rebalanced <= set(decided)


def _check_positions(run: ShapeRun, runner: LiveRunner) -> None:
    """The engine's position in each market (its fills; a portfolio's books' in all) is
    what the venues hold beyond their balance at the first start (a swap: its position),
    and, for a router, each venue's trades net of base fees are what it holds."""
    shape, journal = run.shape, run.journal
    late = undelivered(runner)
    engine: dict[str, float] = defaultdict(float)
    for event in read_rows(journal, ["fill"]):
        market = event.symbol.rsplit(":", 1)[-1] if shape.portfolio else event.symbol
        engine[market or shape.markets[0]] += event.values["side"] * event.values["quantity"]
    held: dict[tuple[str, str], float] = {}
    if shape.swap:
        (venue,) = shape.venues
        for symbol in shape.markets:
            market_id = symbol.split(":")[0].replace("/", "")
            amount = run.emulators[venue.name].exchange.perp_position(market_id).amount
            held[(venue.name, symbol)] = float(amount)
    elif len(shape.venues) > 1:
        at_start = {r["venue"]: r["base_at_start"] for r in rows(journal, "venue_at_start")}
        (symbol,) = shape.markets
        base = symbol.split("/")[0]
        for venue in shape.venues:
            balance = run.emulators[venue.name].exchange.balance(base)
            start_balance = at_start.get(venue.name, 0.0)
            held[(venue.name, symbol)] = float(balance.free + balance.locked) - start_balance
    else:
        at_start = {
            r.symbol: r.values["base_at_start"] for r in read_rows(journal, ["market_at_start"])
        }
        (venue,) = shape.venues
        for symbol in shape.markets:
            balance = run.emulators[venue.name].exchange.balance(symbol.split("/")[0])
            start_balance = at_start.get(symbol, at_start.get("", 0.0))
            if np.isnan(start_balance):
                start_balance = 0.0
            held[(venue.name, symbol)] = float(balance.free + balance.locked) - start_balance
    for symbol in shape.markets:
        venue_total = sum(v for (_, s), v in held.items() if s == symbol)
        late_total = sum(v for (_, s), v in late.items() if s == symbol)
        assert abs(venue_total - engine[symbol] - late_total) <= 1e-8, (
            symbol,
            venue_total,
            engine[symbol],
            late_total,
        )
    if len(shape.venues) > 1:  # each venue's own trades are what it holds
        venue_of = _venue_of(journal, shape)
        traded: dict[str, float] = defaultdict(float)
        for f in rows(journal, "venue_fill"):
            net = f["quantity"]
            if f["side"] > 0 and f.get("fee_currency") == shape.markets[0].split("/")[0]:
                net -= f["fee_cost"]
            traded[venue_of[f["order_id"]]] += f["side"] * net
        for (name, _), amount in held.items():
            assert abs(amount - traded[name]) <= 1e-8, (name, amount, traded[name])


def survive(
    shape: Shape,
    schedule: list[Planned],
    crash_points: list[CrashAt],
    swap_at: int | None = None,
    hand: Hand | None = None,
) -> Survived:
    """Drive a run of ``shape`` under ``schedule`` and ``crash_points`` (its model swapped
    at ``swap_at``, ``hand`` taken during a stage); check it, `check_swapped` and
    `check_hand`; return what it went through.

    A long hunt's log (`LOG_ENV`) gets a line per example as it ends, passed or failed,
    with its schedule: a hunt stopped before its end still says how many it ran, and a
    failure that does not come again (a flaky one) can be replayed as an ``@example``.
    """
    said = "FAILED"
    kills = 0
    try:
        with shape_run(shape) as run:
            try:
                runner = drive(run, schedule, crash_points, swap_at, hand)
            finally:
                kills = run.kills
            check(run, runner)
            check_swapped(run, runner)
            check_books(run)
            check_decisions(run, crash_points)
            if hand is not None:
                check_hand(run, hand, crash_points)
            orders = sum(len(e.exchange.orders()) for e in run.emulators.values())
            faulted = sum(1 for e in run.emulators.values() for r in e.requests() if r.faults)
            swapped = Counter(r["by"] for r in rows(run.journal, "model_swapped"))
            stages = tuple(r.kind for r in read_rows(run.journal, sorted(STAGE_ROWS)))
            said = (
                f"passed: {orders} orders; {faulted} requests faulted; {len(run.waits)} waits; "
                f"{swapped['gate']} promoted; {sum(swapped.values()) - swapped['gate']} swapped"
            )
            note(said)
            return Survived(
                kills, sum(swapped.values()) - swapped["gate"], swapped["gate"], stages, run.taken
            )
    finally:
        log = os.environ.get(LOG_ENV)
        if log:
            with open(log, "a", encoding="utf-8") as file:
                file.write(
                    f"{shape.name}: {kills} kills of {len(crash_points)} planned; {said}; "
                    f"schedule={schedule!r}; crash_points={crash_points!r}; swap_at={swap_at}"
                    f"{'' if hand is None else f'; hand={hand!r}'}\n"
                )


@dataclass(frozen=True)
class Survived:
    """What a run that `survive` checked went through: its kills -9, the swaps asked
    through its mailbox (and its stages' rollbacks) and the promotions by a gate that it
    journaled, and its stages' rows (`STAGE_ROWS`), in the journal's order."""

    kills: int
    swaps: int
    promotions: int
    stages: tuple[str, ...] = ()
    taken: int | None = None
    """The bar an operator's `Hand` was taken at (None: not taken)."""


def check_swapped(run: ShapeRun, runner: LiveRunner) -> None:
    """A swap asked again (its request file outlived a kill) is journaled once; each
    promotion is one ``model_swapped`` row (by ``gate``), in the commit of its gate's
    ``promote`` row, and no challenger is promoted twice; and the last process ran the
    models of the journal's swaps (`check_in_force`; none may be left: a cut write-ahead
    log may lose a swap with the bars after it, and the old model then decides them)."""
    swapped = rows(run.journal, "model_swapped")
    asked = [r for r in swapped if r["by"] != "gate"]
    assert len([r for r in asked if not _rollback(r)]) <= 1, asked
    refused = rows(run.journal, "model_swap_refused")
    assert [r for r in refused if not r["request"].endswith("-rollback.json")] == []
    gated = [r["request"] for r in swapped if r["by"] == "gate"]
    verdicts = rows(run.journal, "challenger_gate")
    promoted = [f"challenger:{v['challenger']}" for v in verdicts if v["verdict"] == "promote"]
    assert sorted(gated) == sorted(promoted), (gated, promoted)
    assert len(set(gated)) == len(gated), gated
    check_stages(run)
    check_in_force(run, runner)


def check_books(run: ShapeRun) -> None:
    """Each challenger's book is compared with the champion's equity at each of its bars,
    once a bar (a restart's replayed bar too: `LiveSession.replayed_equity`), and each
    gate row's figures are those scipy's paired t-test gives over the journal's book rows
    up to its bar (`tradeloom.live.lifecycle.promotion_gate`)."""
    journal = run.journal
    books = rows(journal, "challenger_bar")
    lost = [(r["bar"], r["challenger"]) for r in books if r["champion_equity"] is None]
    assert lost == [], lost  # NaN is stored as null
    twice = Counter((r["bar"], r["challenger"]) for r in books)
    assert [k for k, n in twice.items() if n > 1] == []
    fills = rows(journal, "challenger_fill")
    for gate in rows(journal, "challenger_gate"):
        name, bar = gate["challenger"], gate["bar"]
        book = [r for r in books if r["challenger"] == name and r["bar"] <= bar]
        ours = np.array([r["equity"] for r in book])
        theirs = np.array([r["champion_equity"] for r in book])
        difference = np.diff(ours) / ours[:-1] - np.diff(theirs) / theirs[:-1]
        filled = sum(1 for f in fills if f["challenger"] == name and f["bar"] <= bar)
        assert (gate["bars"], gate["fills"]) == (len(book), filled), (gate, len(book), filled)
        if len(difference) >= 2 and np.ptp(difference) > 0:
            test = stats.ttest_1samp(difference, 0.0, alternative="greater")
            figures = (gate["mean_difference"], gate["t"], gate["p"])
            expected = (difference.mean(), test.statistic, test.pvalue)
            assert figures == pytest.approx(expected, rel=1e-9, abs=1e-15), (gate, expected)


def check_decisions(run: ShapeRun, crash_points: list[CrashAt]) -> None:
    """A decision a kill lost before its commit (`ModelTrap.lost`: a gate's ``promote``
    verdict, a promotion, a stage's start, end or rollback) was taken again by the
    restart at the same bar; unless a cut write-ahead log lost committed bars too."""
    if any(c.damage == "wal_cut" for c in crash_points):
        return
    for kind, bar in run.lost:
        found = [r for r in rows(run.journal, kind) if r["bar"] == bar]
        if kind == "challenger_gate":
            found = [r for r in found if r["verdict"] == "promote"]
        assert found, f"the {kind} a kill lost at bar {bar} was not taken again there"


def check_stages(run: ShapeRun) -> None:
    """Each stage of a gate's promotion is journaled once, in the commit it belongs to: a
    canary starts at its promotion's bar and ends once after it (passed or rolled back;
    rolled back by hand, at that bar too);
    a watch starts where the full promotion is (its canary's pass, or the promotion
    itself) and ends once after it; each rollback is one ``model_swapped`` row at
    its bar, by its stage, swapping back the champion its stage kept; and no other row
    changes the model (one ``model_swapped`` per change)."""
    journal = run.journal
    swapped = rows(journal, "model_swapped")
    promoted = {r["request"].removeprefix("challenger:"): r for r in swapped if r["by"] == "gate"}
    for name, row in promoted.items():  # a portfolio file's: that strategy's model alone
        owner = name.split("/", 1)[0] if "/" in name else ""
        assert row["strategy"] == owner, (name, row["strategy"])
    ends = {kind: rows(journal, kind) for kind in sorted(STAGE_ROWS - {"model_swapped"})}
    for kind, found in ends.items():  # one challenger, one stage of each kind
        twice = [n for n, k in Counter(r["challenger"] for r in found).items() if k > 1]
        assert twice == [], (kind, twice)
    rollbacks = ends["canary_rolled_back"] + ends["promotion_rolled_back"]
    for start, end_kinds in (
        ("canary_started", ("canary_passed", "canary_rolled_back")),
        ("watch_started", ("watch_passed", "promotion_rolled_back")),
    ):
        for started in ends[start]:
            name = started["challenger"]
            assert name in promoted, (start, name, sorted(promoted))
            ended = [r for kind in end_kinds for r in ends[kind] if r["challenger"] == name]
            assert len(ended) <= 1, ended
            for end in ended:  # not bounded by its bars: a kill may hold the run down
                # an operator may roll back before the stage's first close (at its bar)
                first = started["bar"] + (0 if end.get("by") == "cli" else 1)
                assert first <= end["bar"], (started, end)
    for started in ends["canary_started"]:
        assert started["bar"] == promoted[started["challenger"]]["bar"], started
    for started in ends["watch_started"]:
        name = started["challenger"]
        passed = [r["bar"] for r in ends["canary_passed"] if r["challenger"] == name]
        assert [started["bar"]] == (passed or [promoted[name]["bar"]]), (started, passed)
    champions = {
        r["challenger"]: r["champion_sha256"]
        for kind in ("canary_started", "watch_started")
        for r in ends[kind]
    }
    back = [r for r in swapped if _rollback(r)]
    assert sorted(r["bar"] for r in back) == sorted(r["bar"] for r in rollbacks), (
        back,
        rollbacks,
    )
    for rolled in rollbacks:
        (row,) = [r for r in back if r["bar"] == rolled["bar"]]
        assert row["by"] == rolled["by"], (row, rolled)
        assert row["sha256"] == champions[rolled["challenger"]], (row, rolled)


def _stage_spans(journal: Path) -> list[tuple[int, float]]:
    """The bars each canary and watch was in progress, ``[start, end)`` (an end not
    journaled: never)."""
    spans: list[tuple[int, float]] = []
    for start, ends in (
        ("canary_started", ("canary_passed", "canary_rolled_back")),
        ("watch_started", ("watch_passed", "promotion_rolled_back")),
    ):
        for started in rows(journal, start):
            ended = [r["bar"] for kind in ends for r in rows(journal, kind)]
            spans.append((started["bar"], min(ended, default=float("inf"))))
    return spans


def _rollback(swapped: Mapping[str, Any]) -> bool:
    """Whether a ``model_swapped`` row is a stage's rollback: by its rules, or by hand."""
    return swapped["by"] in ("canary", "watch") or swapped["request"].endswith("-rollback.json")


def check_hand(run: ShapeRun, hand: Hand, crash_points: list[CrashAt]) -> None:
    """What an operator did by hand during a stage held through the kills:

    - a kill (or a flatten) is journaled once as the kill switch's halt, and no order was
      decided after the bar it was answered at (a flatten's exits aside); it is answered
      once (one ``control_request`` row), unless a cut write-ahead log lost it;
    - a flatten's exits were decided at one bar, one order a market, and again in a market
      only once its exit had ended without closing it (never two at once), and the run
      ends flat (what the venue holds: `check`);
    - a rollback is one rollback row by hand, put back by one ``model_swapped`` of the
      champion its stage kept (`check_stages`), or refused once, only when a cut log lost
      the stage it was asked during;
    - a reload of the risk section is taken once; one of the model section is refused
      while the stage is in progress, swapped in by a reload only once none is.
    """
    if run.taken is None:
        return
    journal = run.journal
    cut = any(c.damage == "wal_cut" for c in crash_points)
    requests = [r for r in rows(journal, "control_request") if r["action"] == hand.action]
    if hand.action in ("kill", "flatten"):
        assert requests or cut, "the kill was never answered"
        assert len(requests) <= 1, requests  # a restart does not answer it again
        halts = [r for r in rows(journal, "trading_state") if r["code"] == "KILL_SWITCH"]
        assert len(halts) == (1 if requests else 0), halts
        if not requests:
            return
        answered = requests[0]["bar"]
        later = [r for r in read_rows(journal, ["order"]) if r.bar > answered]
        assert [r for r in later if r.values["reason"] != "EXIT_FLATTEN"] == [], later
        flattening = [r for r in later if r.values["reason"] == "EXIT_FLATTEN"]
        if hand.action == "kill":
            assert flattening == []
        else:
            by_market: dict[str, list[Any]] = defaultdict(list)
            for r in flattening:
                by_market[r.symbol].append(r)
            assert len({orders[0].bar for orders in by_market.values()}) <= 1, flattening
            ended = {r["order_id"]: r["bar"] for r in rows(journal, "order_cancelled")}
            for market_orders in by_market.values():
                # decided again only once the one before had ended (`halt_unwinds`)
                for before, after in itertools.pairwise(market_orders):
                    assert ended.get(before.values["id"], math.inf) <= after.bar, flattening
            held: dict[str, float] = defaultdict(float)
            for event in read_rows(journal, ["fill"]):
                held[event.symbol] += event.values["side"] * event.values["quantity"]
            assert all(abs(q) < 1e-4 for q in held.values()), held  # dust below a lot
    elif hand.action == "rollback":
        refused = rows(journal, "model_swap_refused")
        done = [
            r
            for kind in ("canary_rolled_back", "promotion_rolled_back")
            for r in rows(journal, kind)
            if r["by"] == "cli"
        ]
        assert len(done) + len(refused) == 1 or (cut and not done and not refused), (
            done,
            refused,
        )
        assert refused == [] or cut, refused
    else:
        reloaded = rows(journal, "config_reloaded")
        refused = rows(journal, "config_reload_refused")
        by_reload = [r for r in rows(journal, "model_swapped") if r["by"] == "reload"]
        if hand.action == "reload":
            assert refused == [], refused
            assert len(reloaded) == 1 or (cut and not reloaded), reloaded
        else:
            assert refused or cut, "the model's edit was not refused during the stage"
            staged = _stage_spans(journal)
            during = [r for r in by_reload if any(a <= r["bar"] < b for a, b in staged)]
            assert during == [], (during, staged)


def check_in_force(run: ShapeRun, runner: LiveRunner) -> None:
    """The run's models are the journal's last swap's (a universe: every symbol's copy; a
    portfolio file: each strategy's last), loaded from the copy its run directory kept,
    and no promoted challenger shadows on."""
    swapped = rows(run.journal, "model_swapped")
    last = {r["strategy"]: r for r in swapped}
    session = runner.session_or_fail
    for strategy, row in last.items():
        target = session
        if strategy:
            (target,) = [m for m in session.members if m.owner == strategy]  # type: ignore[attr-defined]
        for model in (target.p.model, *target.models):
            assert model.loaded_from["sha256"] == row["sha256"], strategy  # type: ignore[attr-defined]
        assert (run.run_dir / row["file"]).is_file()
    swapped_in = {r["sha256"] for r in swapped}
    for member in getattr(session, "members", ()):  # a strategy never swapped keeps its own
        if member.owner not in last:
            for model in (member.p.model, *member.models):
                loaded = getattr(model, "loaded_from", None) or {}
                assert loaded.get("sha256") not in swapped_in, member.owner
    gated = {r["request"].removeprefix("challenger:") for r in swapped if r["by"] == "gate"}
    single = runner.stage(ShadowChallengers)
    shadows = [] if single is None or single.books is None else list(single.books.shadows)
    members = runner.stage(MemberChallengers)
    if members is not None and members.shadows is not None:  # a portfolio's strategies'
        shadows += [s for m in members.shadows.members for s in m.books.shadows]
    assert gated.isdisjoint(s.name for s in shadows), gated


def random_crashes(seed: int, count: int) -> list[CrashAt]:
    """``count`` crashes at seeded random bars and points (a quick hunt outside Hypothesis)."""
    rng = random.Random(seed)
    bars = sorted(rng.sample(range(HISTORY + 2, END), count))
    return [
        CrashAt(
            bar,
            rng.choice([None, 0, 1, 2, 3]),
            rng.choice([0, 0, 1, 2]),
            rng.choice([None, None, *DAMAGES]),
            rng.random(),
        )
        for bar in bars
    ]
