"""What changes how a paper or live run trades: its trading state, the kill switch, the
operator's requests, hot reloads and model swaps.

One frozen dataclass per kind (`tradeloom.journal.events`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from tradeloom.journal.events.base import Event, kind
from tradeloom.runtime.lazy import pandas as pd

_NAN = math.nan

__all__ = [
    "ConfigReloadRefused",
    "ConfigReloaded",
    "ControlRequest",
    "KillCancel",
    "ModelSwapRefused",
    "ModelSwapped",
    "TradingStateChanged",
]


@kind("trading_state", read_by=("restart", "status", "timeline", "alert"))
@dataclass(frozen=True, kw_only=True)
class TradingStateChanged(Event):
    """The trading state moved (ACTIVE, REDUCING, HALTED).

    Attributes:
        previous: The state before.
        state: The state after.
        code: Why, as a reason code (``DAILY_LOSS``, ``KILL_SWITCH``, ``RESUME``...).
        message: Why, in words.
        at: When (the run's clock).
    """

    previous: str
    state: str
    code: str
    message: str
    at: pd.Timestamp


@kind("kill_cancel", read_by=("restart",))
@dataclass(frozen=True, kw_only=True)
class KillCancel(Event):
    """The kill switch cancelled what was pending (a restart cancels at the same bar)."""


@kind("control_request", read_by=("restart", "live_timeline"))
@dataclass(frozen=True, kw_only=True)
class ControlRequest(Event):
    """An operator's request (``kill``, ``flatten`` or ``resume``), before it is acted on.

    Attributes:
        action: What was asked.
        reason: Why, as the operator gave it.
        by: Who asked (`tradeloom.engine.control.ControlRequest.by`).
        request: The mailbox's request file it answers (its name in ``control/``); ''
            for the ``RUN_DIR/KILL`` file, a signal's request held in memory, and a
            journal written before the field was (a restart answers those again).
        key: The sender's idempotency key ('' for none: ``<kind>:<chat>:<update id>``
            for a chat's command): a request of a key journaled already, asked again
            after the sender crashed, is neither carried out nor journaled again.
    """

    action: str
    reason: str
    by: str
    request: str = field(default="", metadata={"added": True})
    key: str = field(default="", metadata={"added": True})


@kind("config_reloaded", read_by=("restart", "status", "lifecycle", "live_timeline"))
@dataclass(frozen=True, kw_only=True)
class ConfigReloaded(Event):
    """An edited strategy file was swapped in after this bar.

    Attributes:
        changed: The top-level sections that changed.
        changes: Each change in words.
        document: The strategy document traded from the next bar on.
    """

    changed: list[str]
    changes: list[str]
    document: dict[str, Any]


@kind("config_reload_refused", read_by=("status", "status_error", "live_timeline"))
@dataclass(frozen=True, kw_only=True)
class ConfigReloadRefused(Event):
    """An edited strategy file was refused; the run trades on under the old one."""

    errors: list[str]


@kind("model_swapped", read_by=("restart", "status", "lifecycle", "live_timeline"))
@dataclass(frozen=True, kw_only=True)
class ModelSwapped(Event):
    """Another model decides from the bar after this one (a swap at the bar boundary).

    The row is the source of truth a restart honours: it runs the model of the last one,
    from the copy kept in the run directory (``file``), never from where it came from.

    Attributes:
        by: Who asked: ``cli``, ``console``, ``api`` (the mailbox) or ``reload`` (the
            strategy file's ``model`` section changed).
        reason: Why, as the operator gave it.
        source: Where the model came from, as asked (a run directory and its fold, a file).
        previous: The model that decided until this bar, in words.
        previous_sha256: Its file's SHA-256 ('' for a model trained in this run).
        sha256: The new model's file's SHA-256.
        file: The copy of that file kept in the run directory (relative to it).
        model: The model section a restart builds the model in force from (``file``,
            ``sha256`` and the packages it trusts).
        request: The mailbox's request file it answers ('' for a hot reload): a request
            a restart finds still there (the process died before it was done) was
            answered, and is not again.
        strategy: The portfolio file's strategy whose model it swapped ('' for a
            strategy run alone); a restart runs each member's last.
        signal: The signal section in force from the next bar, as JSON: a promoted
            challenger's own (`tradeloom.live.lifecycle.promoted_signal`); '' the
            strategy file's (every other swap's, and every row of an older journal).
        sizing: The sizing section in force from the next bar, as JSON: a promoted
            challenger's own ``sizing:``; '' the strategy file's ``risk.sizing`` (every
            other swap's, and every row of an older journal).
    """

    by: str
    reason: str
    source: str
    request: str
    previous: str
    previous_sha256: str
    sha256: str
    file: str
    model: dict[str, Any]
    strategy: str = field(default="", metadata={"added": True})
    signal: str = field(default="", metadata={"added": True})
    sizing: str = field(default="", metadata={"added": True})


@kind("model_swap_refused", read_by=("restart", "status", "status_error", "live_timeline"))
@dataclass(frozen=True, kw_only=True)
class ModelSwapRefused(Event):
    """A model swap was refused before it happened; the run trades on with its model.

    Attributes:
        by: Who asked (as `ModelSwapped`).
        reason: Why they asked.
        source: The model asked for.
        request: The mailbox's request file it answers (as `ModelSwapped`).
        errors: Why it was refused, one line each.
        strategy: The portfolio file's strategy it was asked for (as `ModelSwapped`).
    """

    by: str
    reason: str
    source: str
    request: str
    errors: list[str]
    strategy: str = field(default="", metadata={"added": True})
