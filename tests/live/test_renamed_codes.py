"""A journal written before a reason code was renamed still restarts.

``MAX_POSITION`` is ``MAX_POSITION_QUANTITY`` now (after its key,
``risk.limits.max_position_quantity``). A restart replays the journal's bars and
compares the replay's rows with the journal's, so a journal that refused an order as
``MAX_POSITION`` reads as ``MAX_POSITION_QUANTITY``, and a run's codes intern either name
to the same number.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tradeloom.core import codes
from tradeloom.journal import RejectionEvent, RunIdentity, open_journal
from tradeloom.live.recovery.journal_state import read_state
from tradeloom.live.recovery.replay import _compare

AT = pd.Timestamp("2024-01-01T05:00Z")


def rejection(code: str) -> RejectionEvent:
    return RejectionEvent(
        bar=5,
        timestamp=AT,
        symbol="BTC/USDT",
        correlation_id=5,
        code=code,
        message="position_after=2.25, limit=2",
        values={"position": 1.5, "after": 2.25, "limit": 2.0},
    )


def test_a_journals_max_position_reads_as_max_position_quantity(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = open_journal(path, RunIdentity("s", "run-1", "live"))
    journal.append(rejection("MAX_POSITION"))
    journal.append(rejection("ORDER_RATE"))
    journal.close()

    state = read_state(path)

    assert [e.code for e in state.engine_events] == ["MAX_POSITION_QUANTITY", "ORDER_RATE"]  # type: ignore[attr-defined]
    # a replay, which journals the name of today, agrees with the journal
    again = [rejection("MAX_POSITION_QUANTITY"), rejection("ORDER_RATE")]
    assert _compare(state, again) == []


def test_a_run_interns_the_former_name_as_the_code_of_today() -> None:
    table = codes.CodeTable()
    assert codes.RENAMED == {"MAX_POSITION": "MAX_POSITION_QUANTITY"}
    assert table.intern("MAX_POSITION") == codes.MAX_POSITION_QUANTITY
    assert table.intern("MAX_POSITION_QUANTITY") == codes.MAX_POSITION_QUANTITY
    assert table.name(codes.MAX_POSITION_QUANTITY) == "MAX_POSITION_QUANTITY"
