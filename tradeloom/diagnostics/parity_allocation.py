"""Parity of a run that allocates (``allocation:``): its rebalances as the run decided them.

The replay takes each rebalance's journaled ``allocation_decided`` row (its status and
target weights) instead of solving again, as it takes each bar's journaled probability:
it decides at exactly the run's rebalance bars with the run's answers
(`tradeloom.engine.wiring.Pipeline.rebalances`), so a rebalance's orders differ only for
what happened after the decision (a fill, a venue's refusal). A decision the run made
``late`` (its solve passed ``live.allocation_deadline_seconds``: the last weights held,
nothing traded) is solved by the replay as a backtest would have solved it, once the
replay's window is full of the run's bars; its orders are the cause ``late_decision``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from tradeloom.errors import UserError
from tradeloom.journal import journal_path, read_rows

__all__ = ["LATE", "UNSOLVED", "allocation_differences", "late_decisions", "rebalances"]

LATE = "late"
"""An ``allocation_decided`` row's status when its solve passed its deadline."""

UNSOLVED = (
    "not solved by the replay: its window reaches before the run's first journaled bar, "
    "so the replay held the last weights as the run did"
)
"""The code of a late decision the replay could not solve (its difference is unknown)."""


def rebalances(
    rows: Sequence[Any], symbols: Sequence[str], where: Path, named: str = "the run's bars are of"
) -> dict[int, tuple[str, str, list[float] | None]]:
    """Return the run's decisions by their bar's open time (UTC ns): ``(status, message,
    weights)``, the weights in the order of ``symbols`` and only when ``ok`` (a portfolio
    file's run: ``symbols`` its strategies, whose weights its decisions are, ``named``
    says so).

    Raises:
        UserError: A decision over other symbols than the run's bars (strategies).
    """
    given: dict[int, tuple[str, str, list[float] | None]] = {}
    for r in rows:
        v = r.values
        weighed = list(v["symbols"])
        if sorted(weighed) != sorted(symbols):
            raise UserError(
                f"{where}: the allocation_decided row of bar {r.bar} weighs "
                f"{', '.join(weighed)}; {named} {', '.join(symbols)}"
            )
        weights = None
        if v["status"] == "ok":
            of = dict(zip(weighed, (float(w) for w in v["weights"]), strict=True))
            weights = [of[s] for s in symbols]
        given[pd.Timestamp(r.timestamp).value] = (str(v["status"]), str(v["message"]), weights)
    return given


def late_decisions(rows: Sequence[Any]) -> dict[int, str]:
    """Return the run's bars whose decision was late, with the row's message."""
    return {r.bar: str(r.values["message"]) for r in rows if r.values["status"] == LATE}


def allocation_differences(
    rows: Sequence[Any], reference: Path, to_run: Mapping[int, int]
) -> list[tuple[int, str, str, str]]:
    """Return each late decision of the run beside the replay's at its bar: ``(bar,
    run, replay, code)``; the replay's ``ok`` is the weights the run did not trade, its
    ``late`` one it could not solve (`UNSOLVED`)."""
    theirs = {
        to_run.get(r.bar, r.bar): r.values
        for r in read_rows(journal_path(reference), ["allocation_decided"])
    }
    found = []
    for r in rows:
        if r.values["status"] != LATE:
            continue
        replay = theirs.get(r.bar)
        if replay is None:
            continue  # the replay was halted there: its own cause is noted
        mine = f"late {_weights(r.values['weights'])}"
        other = f"{replay['status']} {_weights(replay['weights'])}"
        code = UNSOLVED if replay["status"] == LATE else str(r.values["message"])
        found.append((r.bar, mine, other, code))
    return found


def _weights(weights: Sequence[float]) -> str:
    return "[" + ", ".join(f"{float(w):.6g}" for w in weights) + "]"
