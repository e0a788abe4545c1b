"""The typed journal: what a run decided and did, append-only, one table per kind, chained.

Write (a run does this):

    store = open_store(run_dir, RunIdentity(name, run_id, "live"))   # journal.sqlite
    store = open_store(run_dir, identity, PgTarget(url, "${PG_URL}"))  # PostgreSQL
    store.append(OrderEvent(...)); store.flush()   # durable before the order leaves
    store.write_columns([ColumnBatch(FillEvent, positions, {...}), ...])   # a backtest

Read (anyone; ``path`` is ``journal_path(run_dir)``: journal.sqlite, or journal.json
naming a run in PostgreSQL):

    for event in read_events(path, kinds=[FillEvent, "order"]): ...
    fills = read_frame(path, "fill")          # one DataFrame per kind
    follower = FrameFollower(path, ["fill"])  # a journal being written: each read()
    follower.read(); follower.frames["fill"]  # adds the rows committed since the last
    verify(path)                              # the hash chain, first bad sequence named

Where the rows live in a SQLite file (format 3): the events written one by one (paper,
live, the per-bar driver, a backtest's run bookkeeping) in a table per kind, which SQL
reads as it is (``SELECT * FROM fill``; ``SELECT * FROM events`` lists those rows'
headers and kinds in sequence order); a backtest's bulk rows in the ``segment`` table,
one typed columnar block per kind and write (`tradeloom.journal.blocks` documents the
bytes). Every reader here gives both alike, so for a kind's every row, whichever way it
was written, read ``read_frame(path, "fill")`` (then ``.to_sql``, ``.to_csv``...), not
the table. A PostgreSQL journal holds every row in its kind's table.

Every failure to read a file (missing, a directory, empty, not SQLite, damaged,
another format version, a broken chain) raises a `JournalError` whose message is one
line naming the file and the problem.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tradeloom.journal.errors import (
        ChainBroken,
        JournalDamaged,
        JournalError,
        JournalOwnerError,
        JournalUnavailable,
        JournalVersionError,
    )
    from tradeloom.journal.events import (
        FORMAT_VERSION,
        KINDS,
        NO_BAR,
        NO_TIME,
        RUN_KINDS,
        AllocationDecided,
        BookProblem,
        BookSnapshotTaken,
        CanaryPassed,
        CanaryRolledBack,
        CanaryStarted,
        ChallengerAdded,
        ChallengerBar,
        ChallengerFailed,
        ChallengerFill,
        ChallengerGate,
        ChallengerRemoved,
        ChallengerStarted,
        ConfigReloaded,
        ConfigReloadRefused,
        ControlRefused,
        ControlRequest,
        DataLoaded,
        Event,
        FillEvent,
        FillRefused,
        FundingPayment,
        HaltEvent,
        HealthActionFired,
        HealthChanged,
        JournalReconnected,
        KillCancel,
        Liquidation,
        LiveBar,
        MarketAtStart,
        ModelsSaved,
        ModelSwapped,
        ModelSwapRefused,
        ModelTrained,
        OrderCancelled,
        OrderEvent,
        OrderExpired,
        OrderSent,
        OrderStateChanged,
        ParityChecked,
        ParityGapLost,
        PromotionRolledBack,
        Reconciled,
        RegimeChanged,
        RejectionEvent,
        Restarted,
        RetrainSkipped,
        RiskDecision,
        RouteDecision,
        RouteModel,
        RunFailed,
        RunFinished,
        RunStarted,
        RunStopped,
        SignalEvent,
        SlicedOrder,
        StaleData,
        StopBound,
        StopFellBack,
        StrategyAtStart,
        SymbolAbsent,
        TradingStateChanged,
        VenueAtStart,
        VenueDelivered,
        VenueFill,
        VenueHealth,
        VenueReported,
        VenueUnreachable,
        WarmUp,
        WatchPassed,
        WatchStarted,
        correlation,
        event_class,
    )
    from tradeloom.journal.location import PgTarget, journal_path
    from tradeloom.journal.reader import (
        EventFollower,
        FrameFollower,
        JournalInfo,
        Row,
        Verified,
        journal_digest,
        read_events,
        read_frame,
        read_frames,
        read_info,
        read_rows,
        read_sequenced,
        verify,
        verify_again,
    )
    from tradeloom.journal.schema import JournalValueError
    from tradeloom.journal.sqlite import SqliteJournal, open_journal
    from tradeloom.journal.store import ColumnBatch, JournalStore, Reconnecting, RunIdentity
    from tradeloom.journal.stores import open_store

__all__ = [
    "FORMAT_VERSION",
    "KINDS",
    "NO_BAR",
    "NO_TIME",
    "RUN_KINDS",
    "AllocationDecided",
    "BookProblem",
    "BookSnapshotTaken",
    "CanaryPassed",
    "CanaryRolledBack",
    "CanaryStarted",
    "ChainBroken",
    "ChallengerAdded",
    "ChallengerBar",
    "ChallengerFailed",
    "ChallengerFill",
    "ChallengerGate",
    "ChallengerRemoved",
    "ChallengerStarted",
    "ColumnBatch",
    "ConfigReloadRefused",
    "ConfigReloaded",
    "ControlRefused",
    "ControlRequest",
    "DataLoaded",
    "Event",
    "EventFollower",
    "FillEvent",
    "FillRefused",
    "FrameFollower",
    "FundingPayment",
    "HaltEvent",
    "HealthActionFired",
    "HealthChanged",
    "JournalDamaged",
    "JournalError",
    "JournalInfo",
    "JournalOwnerError",
    "JournalReconnected",
    "JournalStore",
    "JournalUnavailable",
    "JournalValueError",
    "JournalVersionError",
    "KillCancel",
    "Liquidation",
    "LiveBar",
    "MarketAtStart",
    "ModelSwapRefused",
    "ModelSwapped",
    "ModelTrained",
    "ModelsSaved",
    "OrderCancelled",
    "OrderEvent",
    "OrderExpired",
    "OrderSent",
    "OrderStateChanged",
    "ParityChecked",
    "ParityGapLost",
    "PgTarget",
    "PromotionRolledBack",
    "Reconciled",
    "Reconnecting",
    "RegimeChanged",
    "RejectionEvent",
    "Restarted",
    "RetrainSkipped",
    "RiskDecision",
    "RouteDecision",
    "RouteModel",
    "Row",
    "RunFailed",
    "RunFinished",
    "RunIdentity",
    "RunStarted",
    "RunStopped",
    "SignalEvent",
    "SlicedOrder",
    "SqliteJournal",
    "StaleData",
    "StopBound",
    "StopFellBack",
    "StrategyAtStart",
    "SymbolAbsent",
    "TradingStateChanged",
    "VenueAtStart",
    "VenueDelivered",
    "VenueFill",
    "VenueHealth",
    "VenueReported",
    "VenueUnreachable",
    "Verified",
    "WarmUp",
    "WatchPassed",
    "WatchStarted",
    "correlation",
    "event_class",
    "journal_digest",
    "journal_path",
    "open_journal",
    "open_store",
    "read_events",
    "read_frame",
    "read_frames",
    "read_info",
    "read_rows",
    "read_sequenced",
    "verify",
    "verify_again",
]

_SUBMODULES = ("errors", "location", "events", "schema", "reader", "store", "sqlite", "stores")
"""Where the names above live, cheapest first: a name is looked up in this order."""


def __getattr__(name: str) -> Any:
    # PEP 562: a name of this package is imported on first use, so that importing one
    # submodule (``tradeloom.journal.location`` for the ``journal:`` section that
    # `validate` checks) does not import the pandas-backed events and readers too
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in __all__:
        for submodule in _SUBMODULES:
            module = importlib.import_module(f"{__name__}.{submodule}")
            if name in vars(module) or (name == "NO_TIME" and submodule == "events"):
                value = getattr(module, name)  # NO_TIME: the events module's own __getattr__
                globals()[name] = value
                return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
