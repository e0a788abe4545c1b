"""What a journal store does, whatever holds it (SQLite today, PostgreSQL later).

A store appends events of one run, in sequence order, each chained to the one
before it (`tradeloom.journal.chain`). It has two write paths:

- `JournalStore.append`: one event (paper, live, the per-bar driver). It is
  buffered until `JournalStore.flush` commits it; a caller that must not act before
  the event is durable (an order about to be sent) flushes first.
- `JournalStore.write_columns`: a backtest's events in bulk, as column arrays per
  kind (`ColumnBatch`), hashed in compiled code and written without a Python
  object per event; committed before it returns.

A bulk write of a compiled core's event arrays (``rows``: the positions of the fills
among all the events of this write, in the run's order)::

    store.write_columns([
        ColumnBatch(FillEvent, fill_rows, {
            "bar": bar, "timestamp": times_ns[bar], "symbol": "BTC/USDT",
            "correlation_id": decision_bar,
            "order_id": ids,                      # list[str] (or one str for all rows)
            "side": side, "quantity": qty, "price": price, "fee": fee, "slippage": slip,
        }),
        ColumnBatch(SignalEvent, signal_rows, {...}),
    ])

Texts from a small vocabulary are cheapest as a ``pd.Categorical`` (each distinct text
is redacted, encoded and measured once); a constant text as one ``str``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from tradeloom.journal.events.base import Event
from tradeloom.runtime.lazy import pandas as pd

__all__ = ["ColumnBatch", "JournalStore", "Reconnecting", "RunIdentity"]


@dataclass(frozen=True)
class RunIdentity:
    """Whose journal it is; recorded when it is created, checked when it is reopened.

    Attributes:
        strategy: The strategy's name.
        run_id: The run's id (its directory's name).
        mode: ``backtest``, ``paper``, ``live`` or ``check-lookahead``.
        strategy_sha256: The SHA-256 of the resolved strategy document the run writes
            as its ``strategy.yaml`` (`tradeloom.journal.owner.strategy_digest`); bound
            into a new journal's chain ('': none).
        folder_key: The key of the run folder (`tradeloom.journal.owner`), bound into
            a new journal's chain ('': none); `tradeloom.journal.open_store` makes it.
    """

    strategy: str
    run_id: str
    mode: str
    strategy_sha256: str = ""
    folder_key: str = ""


@dataclass(frozen=True)
class ColumnBatch:
    """Events of one kind as columns, for `JournalStore.write_columns`.

    Attributes:
        kind: The event class (``FillEvent``...).
        positions: Each row's place in this write, 0-based, over every batch of the
            call: together the batches' positions are ``0 .. rows - 1``, each once.
            Row ``p`` gets sequence number ``last_seq + 1 + p``.
        columns: By field name, one value per row: a numpy array or a sequence, or a
            single value for every row. The header: ``bar`` (int), ``timestamp``
            (int64 ns UTC, ``datetime64``, or a ``DatetimeIndex``), ``symbol`` (text;
            default ''), ``correlation_id`` (int; default -1). Then the kind's fields:
            ints and bools as integer arrays, floats as float64, times like
            ``timestamp``, texts as sequences of ``str`` (or one ``str``, or a
            ``pd.Categorical`` of texts, a missing value being NULL), JSON fields as
            sequences of values. A field with a default may be left out.
    """

    kind: type[Event]
    positions: npt.NDArray[np.int64]
    columns: Mapping[str, Any]

    @classmethod
    def of(cls, events: Sequence[Event], positions: Sequence[int]) -> ColumnBatch:
        """Return the batch of typed ``events`` of one kind (the few rows a bulk write has
        as Python objects: trainings, health changes...) at ``positions``.

        Raises:
            ValueError: No events, events of several kinds, or a position count that differs.
        """
        from tradeloom.journal.schema import Codec, schema_of

        kinds = {type(e) for e in events}
        if len(kinds) != 1 or len(positions) != len(events):
            raise ValueError("ColumnBatch.of: give events of one kind, one position each")
        (kind,) = kinds
        columns: dict[str, Any] = {}
        for column in schema_of(kind.KIND).columns:
            values = [getattr(e, column.name) for e in events]
            if column.codec is Codec.TIME:
                columns[column.name] = np.array(
                    [
                        np.iinfo(np.int64).min if v is None or v is pd.NaT else v.value
                        for v in values
                    ],
                    dtype=np.int64,
                )
            elif column.codec is Codec.FLOAT:
                columns[column.name] = np.array(values, dtype=np.float64)
            elif column.codec.fixed:
                columns[column.name] = np.array(values, dtype=np.int64)
            else:
                columns[column.name] = values
        return cls(kind, np.asarray(positions, dtype=np.int64), columns)


class JournalStore(Protocol):
    """A run's journal: append-only, chained, with a per-event and a bulk write path."""

    @property
    def identity(self) -> RunIdentity:
        """Whose journal it is."""
        ...

    @property
    def last_seq(self) -> int:
        """The sequence number of the last event appended (0: none)."""
        ...

    def append(self, event: Event) -> int:
        """Append ``event`` (buffered until `flush`); return its sequence number."""
        ...

    def flush(self, *, durable: bool = True) -> None:
        """Commit every buffered event.

        Args:
            durable: Survive a crash of the machine (or the database server): the
                commit and every one before it. False: survive a crash of the process
                only; a later durable commit makes it durable too (a paper or live
                tick that sends nothing commits so; see the stores' docstrings).
        """
        ...

    def write_columns(self, batches: Sequence[ColumnBatch], *, durable: bool = True) -> None:
        """Append the rows of ``batches`` in their positions' order, and commit.

        Args:
            batches: The rows, a batch per kind.
            durable: As `flush`'s (False: a later durable commit, a backtest's close,
                makes it durable).
        """
        ...

    def close(self) -> None:
        """Commit and close."""
        ...


@runtime_checkable
class Reconnecting(Protocol):
    """A journal on a database server that can connect again after a lost connection."""

    def reconnect(self) -> tuple[int, int]:
        """Connect again; return the last committed sequence and how many events the
        lost connection dropped."""
        ...
