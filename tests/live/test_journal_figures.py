"""`JournalFigures` follows a live run's journal: after every refresh its blocks are
exactly the batch `journal_execution_quality` and `journal_venue_accounts` of the
journal so far, and a new run key starts them again from the first row."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradeloom.journal import (
    Event,
    FillEvent,
    OrderEvent,
    RouteDecision,
    RunIdentity,
    VenueFill,
    journal_path,
    open_journal,
)
from tradeloom.live.outputs.journal_figures import JournalFigures
from tradeloom.reporting.execution_quality import journal_execution_quality
from tradeloom.reporting.venue_accounts import journal_venue_accounts

T0 = pd.Timestamp("2024-01-01", tz="UTC")
DOCUMENT = {"execution": {"kind": "simulated"}}


def _at(bar: int) -> pd.Timestamp:
    return T0 + pd.Timedelta(hours=bar)


@st.composite
def _bar_events(draw: st.DrawFn, k: int) -> list[Event]:
    """One bar's events: maybe an order, routed to a venue, filled there in parts."""
    if not draw(st.booleans()):
        return []
    oid, side = f"o{k}", draw(st.sampled_from([1, -1]))
    qty, ref = draw(st.floats(0.5, 10.0)), draw(st.floats(50.0, 150.0))
    venue = draw(st.sampled_from(["a", "b"]))
    events: list[Event] = [
        OrderEvent(
            id=oid, bar=k, timestamp=_at(k), side=side, quantity=qty, reason="ENTRY",
            reference_price=ref, correlation_id=k,
        ),
        RouteDecision(
            order_id=f"{oid}-r0", parent_id=oid, venue=venue, quantity=qty,
            expected_price=ref, expected_cost_bps=1.0, candidates="[]",
        ),
    ]  # fmt: skip
    for part in draw(st.lists(st.floats(0.1, 0.5), max_size=2)):
        price = ref * draw(st.floats(0.98, 1.02))
        liquidity = draw(st.sampled_from(["maker", "taker"]))
        fill = {"bar": k, "timestamp": _at(k), "side": side, "quantity": qty * part}
        fill |= {"price": price, "fee": 0.01, "slippage": 0.0, "liquidity": liquidity}
        venue_fill = {"trade_id": f"t{k}", "venue_order_id": None, "fee_cost": 0.01}
        events.append(VenueFill(order_id=f"{oid}-r0", fee_currency=None, **venue_fill, **fill))
        events.append(FillEvent(order_id=oid, **fill))
    return events


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_the_blocks_after_each_refresh_are_the_batch_figures_of_the_journal_so_far(
    tmp_path: Path, data: st.DataObject
) -> None:
    run_dir = Path(tempfile.mkdtemp(dir=tmp_path))
    path = run_dir / "journal.sqlite"
    journal = open_journal(path, RunIdentity("s", "run-1", "paper"))
    figures = JournalFigures(run_dir)
    assert journal_path(run_dir) == path
    for k in range(data.draw(st.integers(1, 12))):
        for event in data.draw(_bar_events(k)):
            journal.append(event)
        journal.flush()
        quality, venues = figures.blocks(1, DOCUMENT)
        assert json.dumps(quality) == json.dumps(journal_execution_quality(path, DOCUMENT))
        assert venues == journal_venue_accounts(path)
    read = figures.events
    quality, venues = figures.blocks(2, DOCUMENT)  # another run: read again from the start
    assert figures.events == read
    assert json.dumps(quality) == json.dumps(journal_execution_quality(path, DOCUMENT))
    figures.close()
    journal.close()
