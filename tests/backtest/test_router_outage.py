"""NO_ROUTE counted on a two-venue router with an outage (issue 65, item 5).

Four weeks of hourly EUR/USD (closed at weekends) traded through a router over two
modelled venues: the buy goes to ``cheap``, which is then down for 17 days; every exit
meanwhile (the signal's, and the stop-loss's once the price falls through it) finds no
venue holding the euros (``deep`` has none) and is cancelled ``NO_ROUTE``. The run is the
real CLI's; each surface a user looks at counts the same refusals, by code and purpose,
and warns of the exits refused: the printed summary, ``metrics.json`` (and its honest
``unfilled_orders``), ``report.html``, ``tradeloom status`` and the console's run page.
The counts are checked against the journal's own rows, joined here by hand.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import structlog

from tests.builders import PRECOMPUTED, REPORTED, strategy_text
from tradeloom.cli.main import main
from tradeloom.console.runs import RunIndex
from tradeloom.engine.status_rows import read_status
from tradeloom.engine.status_text import format_status
from tradeloom.journal import read_frame

OUTAGE = ("2024-01-01T03:00:00Z", "2024-01-18T03:00:00Z")
"""17 days of ``cheap`` down, from just after the buy filled there."""

ROUTER = {
    "kind": "router",
    "fill": "next_open",
    "venues": [
        {
            "name": "cheap",
            "kind": "simulated",
            "initial_cash": 60_000,
            "fee_bps": 4,
            "slippage_bps": 2,
            "outages": [{"start": OUTAGE[0], "end": OUTAGE[1]}],
        },
        {
            "name": "deep",
            "kind": "simulated",
            "initial_cash": 40_000,
            "fee_bps": 2,
            "slippage_bps": 6,
        },
    ],
}


def _eurusd(path: Path) -> pd.DataFrame:
    """Write four weeks of hourly EUR/USD, closed from Friday 22:00 to Sunday 22:00 UTC:
    flat at 1.10 with a buy signal at the first bar and sell signals on its second day,
    then a fall of 1.5% on its third (through a 1% stop), then flat again."""
    times = pd.date_range("2024-01-01T00:00Z", periods=24 * 28, freq="1h")
    day, hour = times.day_of_week, times.hour
    times = times[~(((day == 4) & (hour >= 22)) | (day == 5) | ((day == 6) & (hour < 22)))]
    n = len(times)
    since = (times - times[0]) / pd.Timedelta(hours=1)
    close = np.where(since < 48, 1.1, 1.1 * 0.985).round(5)
    p_up = np.full(n, 0.5)
    p_up[0] = 0.9  # the buy, filled at the next open on cheap
    p_up[(since >= 24) & (since < 30)] = 0.1  # six sell signals: the exits no venue takes
    open_ = np.r_[close[0], close[:-1]]
    frame = pd.DataFrame(
        {
            "timestamp": times.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "open": open_,
            "high": np.maximum(open_, close) + 0.0002,
            "low": np.minimum(open_, close) - 0.0002,
            "close": close,
            "volume": 1000.0,
            "p_up": p_up,
        }
    )
    frame.to_csv(path, index=False)
    return frame


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("outage")
    _eurusd(folder / "eurusd.csv")
    text = strategy_text(
        PRECOMPUTED,
        REPORTED,  # its report.html names the refusals
        name="eurusd_router_outage",
        data={
            "kind": "csv",
            "path": str(folder / "eurusd.csv"),
            "symbol": "EUR/USD",
            "timeframe": "1h",
            "calendar": "forex",
        },
        signal={"kind": "threshold", "threshold": 0.1, "min_interval": 1},
        risk={"sizing": {"kind": "fixed_fraction", "fraction": 0.2}, "stop_loss": 0.01},
        execution=ROUTER,
    )
    (folder / "s.yaml").write_text(text)
    out = folder / "run"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):
        code = main(["--quiet", "run", str(folder / "s.yaml"), "--out", str(out)])
    structlog.reset_defaults()
    assert code == 0
    return out, printed.getvalue()


def _journal_refusals(run: Path) -> Counter[tuple[str, str]]:
    """The journal's cancellations by reason and the reason of their order, joined by hand."""
    orders = read_frame(run / "journal.sqlite", "order").set_index("id")["reason"]
    cancelled = read_frame(run / "journal.sqlite", "order_cancelled")
    return Counter(
        (str(reason), str(orders[order_id]))
        for order_id, reason in zip(cancelled["order_id"], cancelled["reason"], strict=True)
    )


def test_no_route_is_counted_by_purpose_in_metrics_json(outage: tuple[Path, str]) -> None:
    run, _ = outage
    journal = _journal_refusals(run)
    assert set(journal) == {("NO_ROUTE", "EXIT_SIGNAL"), ("NO_ROUTE", "EXIT_STOP_LOSS")}
    signal, stop = journal[("NO_ROUTE", "EXIT_SIGNAL")], journal[("NO_ROUTE", "EXIT_STOP_LOSS")]
    assert signal == 6 and stop > 100  # each bar's stop, for two weeks
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["refusals"] == {
        "rejected": {},
        "cut": {},
        "cancelled": {"NO_ROUTE": {"EXIT_SIGNAL": signal, "EXIT_STOP_LOSS": stop}},
    }
    assert metrics["refusals_total"] == signal + stop
    assert metrics["exits_refused"] == {"EXIT_SIGNAL": signal, "EXIT_STOP_LOSS": stop}
    # every one of them an order that never filled in full: none is hidden as 0
    assert metrics["unfilled_orders"] == signal + stop == metrics["orders"] - metrics["fills"]
    # each one while cheap was down, the only venue holding the euros
    cancelled = read_frame(run / "journal.sqlite", "order_cancelled")
    start, end = (pd.Timestamp(t) for t in OUTAGE)
    assert cancelled["timestamp"].between(start, end).all()


def test_the_summary_counts_them_and_warns_of_the_stops(outage: tuple[Path, str]) -> None:
    run, printed = outage
    journal = _journal_refusals(run)
    signal, stop = journal[("NO_ROUTE", "EXIT_SIGNAL")], journal[("NO_ROUTE", "EXIT_STOP_LOSS")]
    lines = printed.splitlines()
    assert f"  refusals                  {signal + stop} (" in printed
    (row,) = [x for x in lines if x.startswith("    NO_ROUTE ")]
    assert row.split(None, 1)[1] == (
        f"{signal + stop} cancelled: {stop} EXIT_STOP_LOSS, {signal} EXIT_SIGNAL"
    )
    (warning,) = [x for x in lines if x.startswith("  WARNING ")]
    assert warning.split(None, 1)[1] == (
        f"{signal + stop} exits refused ({stop} EXIT_STOP_LOSS, {signal} EXIT_SIGNAL; "
        f"{signal + stop} NO_ROUTE): each left open the position it was to close"
    )


def test_the_report_names_no_route_and_warns(outage: tuple[Path, str]) -> None:
    run, _ = outage
    text = (run / "report.html").read_text(encoding="utf-8")
    section = text.split("<section id='refusals'>", 1)[1].split("</section>", 1)[0]
    journal = _journal_refusals(run)
    stop = journal[("NO_ROUTE", "EXIT_STOP_LOSS")]
    assert "<td>cancelled</td><td>NO_ROUTE</td>" in section
    assert f"<td class='exit protective'>{stop:,}</td>" in section
    (alert,) = re.findall(r"<div class='alert'>([^<]*exits refused[^<]*)</div>", text)
    assert alert.endswith(
        "NO_ROUTE): each left open the position it was to close (see Refusals by code and purpose)."
    )
    assert '"y":["cancelled: NO_ROUTE"]' in text  # the chart's bar


def test_status_and_the_console_show_the_same_table(outage: tuple[Path, str]) -> None:
    run, _ = outage
    metrics = json.loads((run / "metrics.json").read_text())
    status = read_status(run)
    assert status.refusals == metrics["refusals"]
    shown = format_status(status)
    journal = _journal_refusals(run)
    signal, stop = journal[("NO_ROUTE", "EXIT_SIGNAL")], journal[("NO_ROUTE", "EXIT_STOP_LOSS")]
    assert (
        f"           NO_ROUTE  {signal + stop} cancelled: {stop} EXIT_STOP_LOSS, "
        f"{signal} EXIT_SIGNAL"
    ) in shown.splitlines()
    assert any(x.startswith("WARNING    ") and "NO_ROUTE" in x for x in shown.splitlines())
    index = RunIndex([run.parent])
    detail = index.detail(index.resolve(f"0/{run.name}"))
    assert detail["refusals"] == [
        {
            "stage": "cancelled",
            "code": "NO_ROUTE",
            "purpose": "EXIT_STOP_LOSS",
            "count": stop,
            "exit": True,
            "protective": True,
        },
        {
            "stage": "cancelled",
            "code": "NO_ROUTE",
            "purpose": "EXIT_SIGNAL",
            "count": signal,
            "exit": True,
            "protective": False,
        },
    ]
    assert detail["exits_refused"].startswith(f"{signal + stop} exits refused")
