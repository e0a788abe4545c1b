"""The run's own rows: its start and end, the data it loaded, a paper or live run's warm-up and
the bars it processed.

One frozen dataclass per kind (`tradeloom.journal.events`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from tradeloom.journal.events.base import Event, kind
from tradeloom.runtime.lazy import pandas as pd

_NAN = math.nan

__all__ = [
    "RUN_KINDS",
    "DataLoaded",
    "LiveBar",
    "RunFailed",
    "RunFinished",
    "RunStarted",
    "RunStopped",
    "SymbolAbsent",
    "WarmUp",
]


@kind("run_started", read_by=("restart", "status", "lifecycle", "live_timeline"))
@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    """A run started (the first row of a journal).

    Attributes:
        mode: ``backtest``, ``paper`` or ``live``.
        strategy: The strategy's name.
        source: The strategy file.
        tradeloom: The tradeloom version.
        wall_time: When it started.
        run_key: A paper or live run's key (client order ids carry it); '' for a backtest.
        capital: A paper or live run's starting cash (NaN: a backtest).
        document: The strategy document a paper or live run trades under (None: not kept).
        base_at_start: A live run's base currency balance at its first start.
        fee_rate: A live run's taker fee.
        dust: A live run's smallest tradeable quantity.
        clock: ``simulated``: the run's clock is not the wall clock (``--clock
            simulated``, an emulator's market time), so its staleness is judged by
            the run's own clock, journaled with each live bar; ``wall`` (or '', a
            journal from before the field): the wall clock.
    """

    mode: str
    strategy: str
    source: str
    tradeloom: str
    wall_time: pd.Timestamp
    run_key: str = ""
    capital: float = _NAN
    document: dict[str, Any] | None = None
    base_at_start: float = _NAN
    fee_rate: float = _NAN
    dust: float = _NAN
    clock: str = field(default="", metadata={"added": True})


@kind("run_finished", read_by=("status",))
@dataclass(frozen=True, kw_only=True)
class RunFinished(Event):
    """A backtest finished and wrote its outputs."""

    wall_time: pd.Timestamp
    seconds: float


@kind("run_failed", read_by=("status", "status_error"))
@dataclass(frozen=True, kw_only=True)
class RunFailed(Event):
    """A run ended with an error (``Type: message``)."""

    error: str
    wall_time: pd.Timestamp


@kind("run_stopped", read_by=("status", "live_timeline"))
@dataclass(frozen=True, kw_only=True)
class RunStopped(Event):
    """A paper or live run stopped (a signal, the operator): why, after how many bars."""

    reason: str
    bars: int
    wall_time: pd.Timestamp


RUN_KINDS: frozenset[str] = frozenset({"run_started", "run_finished", "run_failed", "run_stopped"})
"""Run bookkeeping, with wall-clock times: left out of `journal_digest`."""


@kind("data_loaded", read_by=("status",))
@dataclass(frozen=True, kw_only=True)
class DataLoaded(Event):
    """The market data of a backtest, validated.

    Attributes:
        timeframe: The bar length as written in the strategy.
        bars: How many bars.
        first: The first bar's time.
        last: The last bar's time.
        repaired: The issues ``validation: repair`` fixed (``code``, ``count``,
            ``first``, ``rows``), as `tradeloom.domain.DataIssue` fields.
        gaps: The gaps kept.
    """

    timeframe: str
    bars: int
    first: pd.Timestamp
    last: pd.Timestamp
    repaired: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)


@kind("symbol_absent")
@dataclass(frozen=True, kw_only=True)
class SymbolAbsent(Event):
    """A stretch of the common clock where one symbol of a universe has no bar.

    The symbol gets no signal and no fill there (not listed yet, delisted, halted);
    journaled once per stretch, at its first bar (``bar``, ``timestamp``, ``symbol``).

    Attributes:
        last: The time of the stretch's last bar of the clock.
        bars: How many bars of the clock it spans.
    """

    last: pd.Timestamp
    bars: int


@kind("warm_up", read_by=("restart", "status"))
@dataclass(frozen=True, kw_only=True)
class WarmUp(Event):
    """The history a paper or live run warmed up on (a restart checks its SHA-256)."""

    bars: int
    first: pd.Timestamp
    last: pd.Timestamp
    sha256: str


@kind("live_bar", read_by=("restart", "status", "live_timeline"))
@dataclass(frozen=True, kw_only=True)
class LiveBar(Event):
    """A bar a paper or live run processed, with the model's verdict (a restart replays it)."""

    open: float
    high: float
    low: float
    close: float
    volume: float
    probability: float
    anomalous: bool
    anomaly_score: float
    wall_time: pd.Timestamp
