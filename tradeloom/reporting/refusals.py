"""Every refusal of a run, counted once: by stage, code and the purpose of what was refused.

A refusal is an intent or an order that did not do what it was for: every rejection
(the risk layer refused a signal's intent, or a pre-trade check an order), and every
cancellation but the engine's own (`tradeloom.core.codes.refusal_stage`): an order the
venue's cash or minimum cut (``INSUFFICIENT_CASH``, ``BELOW_MINIMUM``), one no venue of
a router could take (``NO_ROUTE``), one a restart found decided and never sent
(``NOT_SENT``), one a venue refused (``REJECTED CODE``) or expired... A code that
appears nowhere in tradeloom (a venue's, a plugin's) is counted all the same.

`count_refusals` is the one computation: from the journal's rejections (code and
purpose) and cancellations (order and reason), and the orders' reasons, it returns the
`RefusalTable` every surface shows: ``metrics.json`` (`refusal_metrics`), the printed
summary and ``tradeloom status`` (`refusal_lines`, `exits_warning`), ``report.html``
and the console (the table's `RefusalTable.rows`). A run's recorder feeds it what it
kept (`tradeloom.engine.events.Recorder.refusals`); a reader of the journal, its frames
(`refusals_of_frames`).

The purpose is the order reason: an order's own (``EXIT_STOP_LOSS``...), a refused
signal's ``ENTRY``, ``REVERSE`` or ``SCALE_IN`` (`tradeloom.core.intent.signal_purpose`);
``UNKNOWN`` where the journal does not say (a rejection journaled before rejections
carried their purpose, a cancellation of an order the journal does not hold).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tradeloom.core.codes import PROTECTIVE_REASONS, refusal_stage, refused_exit
from tradeloom.runtime.lazy import logger
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd

__all__ = [
    "STAGES",
    "UNKNOWN",
    "RefusalRow",
    "RefusalTable",
    "count_refusals",
    "exits_warning",
    "refusal_lines",
    "refusal_metrics",
    "refusals_of_frames",
    "unfilled_orders",
    "warn_refused_exits",
]

_log = logger("tradeloom.run")

STAGES = ("rejected", "cut", "cancelled")
"""The stages of a refusal, in the table's order (`tradeloom.domain.Refusal.stage`)."""

UNKNOWN = "UNKNOWN"
"""The purpose of a refusal the journal does not say what it was for."""

_SHOWN_PURPOSES = 6
"""Purposes named on one line of a code; the rest are summed (metrics.json has them all)."""


@dataclass(frozen=True)
class RefusalRow:
    """One cell of the table: how many refusals of one code, for one purpose, at one stage.

    Attributes:
        stage: ``rejected``, ``cut`` or ``cancelled``.
        code: The rejection's code or the cancellation's reason.
        purpose: The order reason of what was refused (`UNKNOWN`: not known).
        count: How many.
        exit: They left a position open that they were to close
            (`tradeloom.core.codes.refused_exit`).
    """

    stage: str
    code: str
    purpose: str
    count: int
    exit: bool

    @property
    def protective(self) -> bool:
        """Whether they are protective exits (a stop, a halt's exit, the kill's flatten)."""
        return self.exit and self.purpose in PROTECTIVE_REASONS


@dataclass(frozen=True)
class RefusalTable:
    """A run's refusals by stage, code and purpose.

    Attributes:
        rows: Each (stage, code, purpose) counted, in stage order (`STAGES`), then by
            code and purpose.
    """

    rows: tuple[RefusalRow, ...] = ()

    @property
    def total(self) -> int:
        """Return how many refusals there are in all."""
        return sum(r.count for r in self.rows)

    def by_stage(self) -> dict[str, int]:
        """Return how many refusals each stage holds (every stage, 0 included)."""
        counts = dict.fromkeys(STAGES, 0)
        for r in self.rows:
            counts[r.stage] += r.count
        return counts

    def by_code(self, stage: str) -> dict[str, int]:
        """Return how many refusals of ``stage`` each code counts, by code."""
        counts: dict[str, int] = {}
        for r in self.rows:
            if r.stage == stage:
                counts[r.code] = counts.get(r.code, 0) + r.count
        return counts

    def nested(self) -> dict[str, dict[str, dict[str, int]]]:
        """Return ``{stage: {code: {purpose: count}}}``, every stage present
        (``metrics.json``'s ``refusals``)."""
        out: dict[str, dict[str, dict[str, int]]] = {stage: {} for stage in STAGES}
        for r in self.rows:
            out[r.stage].setdefault(r.code, {})[r.purpose] = r.count
        return out

    def as_rows(self) -> list[dict[str, Any]]:
        """Return the rows as JSON objects (``stage``, ``code``, ``purpose``, ``count``,
        ``exit``, ``protective``), most first within each stage (the console's)."""
        ranked = sorted(self.rows, key=lambda r: (STAGES.index(r.stage), -r.count, r.code))
        return [
            {
                "stage": r.stage,
                "code": r.code,
                "purpose": r.purpose,
                "count": r.count,
                "exit": r.exit,
                "protective": r.protective,
            }
            for r in ranked
        ]

    def exits(self) -> tuple[RefusalRow, ...]:
        """Return the rows of exits refused (`RefusalRow.exit`)."""
        return tuple(r for r in self.rows if r.exit)

    def exits_by_purpose(self) -> dict[str, int]:
        """Return the exits refused by purpose, protective ones first, then by count."""
        counts: dict[str, int] = {}
        for r in self.exits():
            counts[r.purpose] = counts.get(r.purpose, 0) + r.count
        return dict(sorted(counts.items(), key=_exit_order))

    @classmethod
    def of_metrics(cls, metrics: Mapping[str, Any]) -> RefusalTable:
        """Return the table of a run's ``metrics.json``: its ``refusals``; for one written
        before them, its ``rejections`` and ``cut_orders`` by code (purpose `UNKNOWN`)."""
        if "refusals" in metrics:
            return cls.from_nested(metrics["refusals"])
        older = {
            stage: {code: {UNKNOWN: n} for code, n in (metrics.get(key) or {}).items()}
            for stage, key in (("rejected", "rejections"), ("cut", "cut_orders"))
        }
        return cls.from_nested(older)

    @classmethod
    def from_nested(cls, nested: Any) -> RefusalTable:
        """Return the table ``nested`` holds (`nested`'s shape: ``metrics.json``'s); an
        empty one for anything else (a ``metrics.json`` written before the table)."""
        counts: dict[tuple[str, str, str], int] = {}
        if isinstance(nested, Mapping):
            for stage, by_code in nested.items():
                if stage not in STAGES or not isinstance(by_code, Mapping):
                    continue
                for code, by_purpose in by_code.items():
                    if not isinstance(by_purpose, Mapping):
                        continue
                    for purpose, count in by_purpose.items():
                        if isinstance(count, int) and not isinstance(count, bool) and count > 0:
                            counts[(str(stage), str(code), str(purpose))] = count
        return _table(counts)


def count_refusals(
    rejections: Mapping[tuple[str, str], int],
    cancelled_ids: Sequence[str] | np.ndarray,
    cancelled_reasons: Sequence[str] | np.ndarray,
    order_ids: Sequence[str] | np.ndarray,
    order_reasons: Sequence[str] | np.ndarray,
) -> RefusalTable:
    """Count a run's refusals (the one computation every surface shows).

    Args:
        rejections: How many rejections of each ``(code, purpose)`` the journal holds
            (purpose '': not known).
        cancelled_ids: Each cancellation's order id, in journal order.
        cancelled_reasons: Each cancellation's reason.
        order_ids: Every order's id (the purposes of the cancelled ones are theirs).
        order_reasons: Each order's reason.
    """
    counts: dict[tuple[str, str, str], int] = {}
    for (code, purpose), n in rejections.items():
        if n > 0:
            key = ("rejected", str(code), str(purpose) or UNKNOWN)
            counts[key] = counts.get(key, 0) + int(n)
    if len(cancelled_ids):
        # an order id journaled twice (a restart's) has its last reason
        reasons = dict(zip((str(i) for i in order_ids), order_reasons, strict=True))
        pairs: dict[tuple[str, str], int] = {}
        for order_id, reason in zip(cancelled_ids, cancelled_reasons, strict=True):
            pair = (str(reason), str(reasons.get(str(order_id), UNKNOWN)))
            pairs[pair] = pairs.get(pair, 0) + 1
        for (reason, purpose), n in pairs.items():
            stage = refusal_stage(reason, cancelled=True)
            if stage is not None:
                key = (stage, reason, purpose or UNKNOWN)
                counts[key] = counts.get(key, 0) + n
    return _table(counts)


def refusals_of_frames(frames: Mapping[str, pd.DataFrame]) -> RefusalTable:
    """Count the refusals of a journal read as frames (``rejection``, ``order_cancelled``
    and ``order``, as `tradeloom.journal.FrameFollower` reads them)."""
    rejected = frames["rejection"]
    purposes = rejected["purpose"] if "purpose" in rejected else pd.Series("", index=rejected.index)
    pairs = pd.DataFrame({"code": rejected["code"], "purpose": purposes.fillna("")})
    rejections = {
        (str(code), str(purpose)): int(n)
        for (code, purpose), n in pairs.value_counts(sort=False).items()
    }
    cancelled, orders = frames["order_cancelled"], frames["order"]
    return count_refusals(
        rejections,
        cancelled["order_id"].astype(str).to_numpy(object),
        cancelled["reason"].astype(str).to_numpy(object),
        orders["id"].astype(str).to_numpy(object),
        orders["reason"].astype(str).to_numpy(object),
    )


def unfilled_orders(
    cancelled_ids: Iterable[str],
    remaining: Iterable[float],
    expired_ids: Iterable[str] = (),
) -> int:
    """Return how many orders ended short of their quantity: cancelled with a quantity
    left (for any reason, the engine's own included), or left working when the data
    ended (``expired_ids``)."""
    short = {str(i) for i, left in zip(cancelled_ids, remaining, strict=True) if left > 0.0}
    return len(short | {str(i) for i in expired_ids})


def refusal_metrics(table: RefusalTable) -> dict[str, Any]:
    """Return the ``metrics.json`` keys of the table.

    ``refusals``: ``{stage: {code: {purpose: count}}}`` (every stage, even empty);
    ``refusals_total``; ``exits_refused``: ``{purpose: count}`` of the exits refused;
    ``rejections`` and ``cut_orders``: the rejected and cut stages by code, as before.
    """
    return {
        "refusals": table.nested(),
        "refusals_total": table.total,
        "exits_refused": table.exits_by_purpose(),
        "rejections": dict(sorted(table.by_code("rejected").items())),
        "cut_orders": dict(sorted(table.by_code("cut").items())),
    }


def refusal_lines(table: RefusalTable) -> list[tuple[str, str]]:
    """Return the table as ``(label, text)`` lines: its total by stage, then a line per
    stage and code with its count by purpose (``NO_ROUTE``, ``70 cancelled: 57
    EXIT_SIGNAL, 13 EXIT_STOP_LOSS``), most first."""
    if not table.rows:
        return [("refusals", "none")]
    stages = table.by_stage()
    said = ", ".join(f"{n:,} {stage}" for stage, n in stages.items() if n)
    lines = [("refusals", f"{table.total:,} ({said}) by code and purpose")]
    groups: dict[tuple[str, str], list[RefusalRow]] = {}
    for r in table.rows:
        groups.setdefault((r.stage, r.code), []).append(r)
    ranked = sorted(
        groups.items(),
        key=lambda item: (STAGES.index(item[0][0]), -sum(r.count for r in item[1]), item[0][1]),
    )
    for (stage, code), rows in ranked:
        rows = sorted(rows, key=lambda r: (-r.count, r.purpose))
        named = [f"{r.count:,} {r.purpose}" for r in rows[:_SHOWN_PURPOSES]]
        rest = sum(r.count for r in rows[_SHOWN_PURPOSES:])
        if rest:
            named.append(f"{rest:,} more")
        lines.append((f"  {code}", f"{sum(r.count for r in rows):,} {stage}: {', '.join(named)}"))
    return lines


def exits_warning(table: RefusalTable) -> str | None:
    """Return the warning line of the exits refused (None: none was).

    ``70 exits refused (13 EXIT_STOP_LOSS, 57 EXIT_SIGNAL; 70 NO_ROUTE): each left open
    the position it was to close``
    """
    exits = table.exits()
    if not exits:
        return None
    purposes = ", ".join(f"{n:,} {p}" for p, n in table.exits_by_purpose().items())
    by_code: dict[str, int] = {}
    for r in exits:
        by_code[r.code] = by_code.get(r.code, 0) + r.count
    codes = ", ".join(f"{n:,} {c}" for c, n in sorted(by_code.items(), key=lambda i: -i[1]))
    total = sum(r.count for r in exits)
    return (
        f"{total:,} exit{'s' if total != 1 else ''} refused ({purposes}; {codes}): each left "
        "open the position it was to close"
    )


def warn_refused_exits(metrics: Mapping[str, Any]) -> None:
    """Log a finished run's exits refused (``metrics``: its ``metrics.json``), one warning
    line, as its summary says them (nothing when none was)."""
    table = RefusalTable.of_metrics(metrics)
    warning = exits_warning(table)
    if warning is not None:
        _log.warning(
            "exits_refused",
            message=warning,
            exits=sum(r.count for r in table.exits()),
            protective=sum(r.count for r in table.exits() if r.protective),
        )


def _exit_order(item: tuple[str, int]) -> tuple[bool, int, str]:
    purpose, n = item
    return (purpose not in PROTECTIVE_REASONS, -n, purpose)


def _table(counts: Mapping[tuple[str, str, str], int]) -> RefusalTable:
    rows = [
        RefusalRow(
            stage,
            code,
            purpose,
            n,
            refused_exit(code, purpose, cancelled=stage != "rejected"),
        )
        for (stage, code, purpose), n in counts.items()
    ]
    rows.sort(key=lambda r: (STAGES.index(r.stage), r.code, r.purpose))
    return RefusalTable(tuple(rows))
