"""The journal's kinds declared: the base of every event, the registry of kinds, and
who reads each.

A kind is one declaration: its frozen dataclass, registered by `kind` with its name,
its table and the readers that read it (`Reader`): the restart's replay compares the
rows the engine writes, ``tradeloom status`` and its errors, a run's lifecycle and its
timeline all take their kinds from these declarations (`kinds_read_by`), never from a
list of their own. Each reader that does something of its own with each kind it reads
(the restart's fold, status's errors, the timeline's entries) does it through one table
(`dispatch`), checked at import against the kinds declared read by it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar, get_args

from tradeloom.runtime.lazy import pandas as pd

# ``NO_TIME`` is left out of ``__all__``: a star import would read it, and import pandas
__all__ = [
    "FORMAT_VERSION",
    "KINDS",
    "NO_BAR",
    "READERS",
    "READ_FORMATS",
    "Event",
    "Reader",
    "correlation",
    "dispatch",
    "event_class",
    "kind",
    "kinds_read_by",
    "table_of",
]

Reader = Literal[
    "restart",
    "replayed",
    "status",
    "status_error",
    "lifecycle",
    "timeline",
    "live_timeline",
    "alert",
    "metrics",
]
"""Who reads a kind:

- ``restart``: a paper or live restart folds it into the state it starts from
  (`tradeloom.live.recovery.journal_state`).
- ``replayed``: the engine writes it; a restart's replay of the journal's bars must write
  the same rows (`tradeloom.live.recovery.replay`).
- ``status``: ``tradeloom status`` and the console read it (`tradeloom.engine.status`).
- ``status_error``: status lists its last rows among the run's errors, in one line each.
- ``lifecycle``: a run's lifecycle (the model in force, the canary and the watch, the
  challengers dropped or promoted) is read from it (`tradeloom.live.lifecycle.rules`);
  the console's promote buttons change only with a row of one.
- ``timeline``: a run's timeline of events shows it, in every mode
  (`tradeloom.reporting.run_events`).
- ``live_timeline``: the timeline shows it for a paper or live run.
- ``alert``: the alerts observer may send an alert of it (`tradeloom.live.outputs.alerts`).
- ``metrics``: the Prometheus metrics count or measure it (`tradeloom.live.outputs.metrics`).
"""

READERS: tuple[Reader, ...] = get_args(Reader)
"""Every `Reader`."""

FORMAT_VERSION = 3
"""The journal format this tradeloom writes (1: the JSON ``events`` table; 2: a table
per kind; 3: and a SQLite file's bulk rows in typed blocks, `tradeloom.journal.blocks`)."""

READ_FORMATS = frozenset({2, FORMAT_VERSION})
"""The formats this tradeloom reads (a format-2 file reopened to append stays format 2)."""

NO_BAR = -1
"""``bar`` and ``correlation_id`` of an event that belongs to no bar (NULL in SQL)."""

if TYPE_CHECKING:
    NO_TIME: pd.Timestamp = pd.NaT
    """``timestamp`` of an event that belongs to no bar (NULL in SQL): ``pd.NaT``."""


def __getattr__(name: str) -> Any:
    # PEP 562: ``NO_TIME`` is pandas' NaT, read on first use, so that reading a journal's
    # rows without their times (`tradeloom.journal.verify`) does not import pandas
    if name == "NO_TIME":
        return pd.NaT
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _no_time() -> pd.Timestamp:
    return pd.NaT


KINDS: dict[str, type[Event]] = {}
"""Kind name -> event class, for every kind a journal can hold."""

_TABLES: dict[str, str] = {}

_E = TypeVar("_E", bound="type[Event]")
H = TypeVar("H")


def kind(name: str, *, table: str | None = None, read_by: Iterable[Reader] = ()) -> Any:
    """Register the decorated event class as kind ``name`` (stored in ``table``), read
    by ``read_by`` (`Reader`) besides the restart."""

    def register(cls: _E) -> _E:
        if name in KINDS:
            raise ValueError(f"journal kind {name!r} registered twice")
        cls.KIND = name
        cls.READ_BY = frozenset(read_by)
        KINDS[name] = cls
        _TABLES[name] = table or name
        return cls

    return register


def event_class(kind: str) -> type[Event]:
    """Return the event class of ``kind``.

    Raises:
        KeyError: No such kind.
    """
    return KINDS[kind]


def kinds_read_by(*readers: Reader) -> tuple[str, ...]:
    """Return the kinds that any of ``readers`` reads, in the order they were declared."""
    return tuple(name for name, cls in KINDS.items() if cls.READ_BY.intersection(readers))


def dispatch(handlers: Mapping[type[Event], H], *readers: Reader) -> dict[str, H]:
    """Return ``handlers`` by kind name: a reader's one dispatch over the journal's kinds.

    The kinds handled are exactly those declared read by ``readers`` (`kind`'s
    ``read_by``), so a kind declared for a reader fails, at import, the reader's
    dispatch that does not say what it does with it (as `tradeloom.core.records.dispatch`
    does for the core's rows).

    Raises:
        ValueError: A kind declared read and not handled, or handled and not declared.
    """
    wanted = kinds_read_by(*readers)
    handled = {cls.KIND for cls in handlers}
    missing = [name for name in wanted if name not in handled]
    extra = sorted(handled.difference(wanted))
    if missing or extra:
        raise ValueError(
            f"a dispatch over the journal's kinds read by {', '.join(readers)}: "
            f"{', '.join(missing) or 'none'} unhandled, {', '.join(extra) or 'none'} "
            "handled but not declared read by it"
        )
    by_kind = {cls.KIND: handler for cls, handler in handlers.items()}
    return {name: by_kind[name] for name in wanted}


def table_of(kind: str) -> str:
    """Return the SQL table that holds the events of ``kind``."""
    return _TABLES[kind]


def correlation(bar: int | None) -> int:
    """Return the correlation id of a decision made at ``bar`` (-1: none)."""
    return NO_BAR if bar is None else bar


@dataclass(frozen=True, kw_only=True)
class Event:
    """What every journal row carries.

    Attributes:
        bar: The bar the event belongs to (-1: none, e.g. a run's start).
        timestamp: That bar's open time, UTC (NaT: none); a venue's fill carries the
            trade's time.
        symbol: The market ('' where the event concerns no single market).
        correlation_id: The bar of the decision the event belongs to (a fill carries
            its order's decision bar; -1: none). Logs print it as ``bar-N``.
    """

    KIND: ClassVar[str] = ""
    READ_BY: ClassVar[frozenset[Reader]] = frozenset()

    bar: int = NO_BAR
    timestamp: pd.Timestamp = field(default_factory=_no_time)  # NO_TIME
    symbol: str = ""
    correlation_id: int = NO_BAR
