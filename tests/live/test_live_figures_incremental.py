"""A live run's ``metrics.json``, written bar by bar by `LiveOutputs` with its state
kept between refreshes (the trade ledger, the journal's ledgers, the records handed
over as they grow), equals at every bar the batch figures of the whole curve so far:
`account_figures` over every trade and fill, and `tearsheet`."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.domain import Trade
from tradeloom.journal import RunIdentity, open_journal
from tradeloom.live.outputs.record_copies import RecordCopies
from tradeloom.live.outputs.refresh import LiveOutputs, Snapshot
from tradeloom.reporting.account_figures import account_figures
from tradeloom.reporting.outputs import json_safe
from tradeloom.reporting.statistics import trade_statistics
from tradeloom.reporting.tearsheet import tearsheet
from tradeloom.reporting.trades import trade_frame
from tradeloom.time.timeframes import periods_per_year

HOUR = 3600
FACTS = {
    "strategy": "s", "mode": "paper", "run_dir": "r", "updated": "now", "symbol": "BTC/USDT",
    "timeframe": "1h", "state": "ACTIVE",
}  # fmt: skip


@st.composite
def runs(draw: st.DrawFn) -> dict[str, Any]:
    """A curve of hourly bars with round trips: a buy and a sell fill per trade."""
    n = draw(st.integers(1, 120))
    start = pd.Timestamp(draw(st.sampled_from(["2024-01-31 12:00", "2023-12-31 20:00"])), tz="UTC")
    moves = draw(st.lists(st.floats(-0.03, 0.03), min_size=n, max_size=n))
    close = 100.0 * np.cumprod(1.0 + np.array(moves))
    equity = 10_000.0 * np.cumprod(1.0 + np.array(moves) * draw(st.floats(-2.0, 2.0)))
    position = np.array(
        draw(st.lists(st.sampled_from([0.0, 0.0, 1.5, -1.0]), min_size=n, max_size=n))
    )
    times = (start + pd.to_timedelta(np.arange(n), "h")).as_unit("ns").asi8
    closes = sorted(set(draw(st.lists(st.integers(1, n), max_size=8))))
    trades, fills, orders = [], [], []
    for k, bar in enumerate(closes):  # trade k closes at bar ``bar``
        qty, price = draw(st.floats(0.1, 2.0)), float(close[bar - 1])
        for side, oid in ((1, f"b{k}"), (-1, f"s{k}")):
            orders.append(SimpleNamespace(id=oid, reason="EXIT" if side < 0 else "ENTRY"))
            fills.append((bar, SimpleNamespace(order_id=oid, side=side, quantity=qty, price=price)))
        at = pd.Timestamp(times[bar - 1], tz="UTC")
        trades.append((bar, Trade(1, bar - 1, at, bar - 1, at, qty, price, price * 1.01,
                                  0.1, draw(st.floats(-50.0, 50.0)))))  # fmt: skip
    return {"times": times, "close": close, "equity": equity, "position": position,
            "trades": trades, "fills": fills, "orders": orders}  # fmt: skip


def _batch(run: dict[str, Any], n: int) -> dict[str, Any]:
    index = pd.DatetimeIndex(run["times"][:n].view("datetime64[ns]"), tz="UTC")
    curve = pd.Series(run["equity"][:n], index=index)
    close = pd.Series(run["close"][:n], index=index)
    trades = [t for bar, t in run["trades"] if bar <= n]
    fills = [f for bar, f in run["fills"] if bar <= n]
    account = SimpleNamespace(initial_cash=10_000.0, trades=trades, fees=1.5)
    frame = trade_frame(trades, run["orders"], fills)
    figures = account_figures(
        curve, pd.Series(run["position"][:n], index=index), close, account,
        timeframe_seconds=HOUR, fills=fills, trade_figures=trade_statistics(frame, HOUR),
    )  # fmt: skip
    sheet = tearsheet(
        curve, close, initial_cash=10_000.0, periods_per_year=periods_per_year(HOUR),
        benchmark="buy and hold",
    )  # fmt: skip
    return json_safe({"bars": n, **figures, "tearsheet": sheet})


# each example refreshes metrics.json at every few bars of a run of up to hundreds (1.8 s
# an example on the loaded 2-core machine): 8 in the suite, the 20 declared in a hunt
# (scripts/hunt.sh tests/live/test_live_figures_incremental.py)
@settings(
    max_examples=examples(20, suite=8),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(run=runs(), step=st.integers(1, 9))
def test_metrics_at_every_bar_are_the_batch_figures_of_the_curve_so_far(
    tmp_path: Path, run: dict[str, Any], step: int
) -> None:
    run_dir = Path(tempfile.mkdtemp(dir=tmp_path))
    open_journal(run_dir / "journal.sqlite", RunIdentity("s", "run-1", "paper")).close()
    outputs, records = LiveOutputs(run_dir), RecordCopies()
    trades: list[Trade] = []
    fills: list[Any] = []
    n_all = len(run["times"])
    for n in [*range(1, n_all, step), n_all]:
        trades[:] = [t for bar, t in run["trades"] if bar <= n]
        fills[:] = [f for bar, f in run["fills"] if bar <= n]
        curve = np.column_stack([run["position"][:n], np.zeros(n), run["equity"][:n]])
        snapshot = Snapshot(
            times=run["times"][:n], close=run["close"][:n], curve=curve, positions=None,
            trades=records.view("trades", trades), orders=run["orders"],
            fills=records.view("fills", fills), order_symbols=None, facts=dict(FACTS),
            initial_cash=10_000.0, fees=1.5, timeframe_seconds=HOUR, document={},
            report=False, report_seconds=60.0, generation=1,
        )  # fmt: skip
        outputs.write_files(snapshot)
        written = json.loads((run_dir / "metrics.json").read_text())
        expected = _batch(run, n)
        got = {k: written[k] for k in expected}
        assert _close(got, json.loads(json.dumps(expected))), n
    outputs._journal.close()


def _close(a: Any, b: Any) -> bool:
    """Equal, floats to 1e-12 relative (they are in fact equal: the same arithmetic)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_close, a, b))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)
    return a == b and type(a) is type(b)
