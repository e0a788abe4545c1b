"""``tradeloom status`` in words (`tradeloom.engine.status_text.format_status`): what a
person reads of a run that ended, and rows that line up."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradeloom.engine.status_text import format_status
from tradeloom.engine.status_values import RunStatus


def _status(**changes: Any) -> RunStatus:
    base = RunStatus(
        run_dir="runs/demo", strategy="demo", mode="backtest", process="running",
        process_detail="pid 7", pid=7, state="ACTIVE", state_code="", state_reason="",
        state_since=None, symbol="BTC/USDT", timeframe="1h", last_bar=9,
        last_bar_time="2024-05-04T23:00:00Z", last_bar_close_time="2024-05-05T00:00:00Z",
        last_bar_age_seconds=None, last_close=100.0, bars=10, stale=None, staleness="-",
        capital=1000.0, cash=1000.0, equity=1000.0, total_return=0.0, day=None,
        day_pnl=None, day_return=None,
    )  # fmt: skip
    return replace(base, **changes)


def _line(status: RunStatus, head: str) -> str:
    return next(line for line in format_status(status).splitlines() if line.startswith(head))


def test_the_state_of_an_ended_run_says_it_ended() -> None:
    assert _line(_status(), "state") == "state      ACTIVE"
    finished = _status(process="finished", process_detail="in 25.6 s", pid=None)
    assert _line(finished, "state") == "state      ACTIVE, when it finished"
    failed = _status(process="failed", process_detail="MissingExtra: x", pid=None, last_bar=None)
    assert _line(failed, "state") == "state      none: the run failed before its first bar"


def test_errors_line_up_with_the_other_rows() -> None:
    one = {"kind": "run_failed", "bar": None, "time": "2024-05-05T00:00:01Z", "message": "x"}
    lines = format_status(_status(errors=[one])).splitlines()
    assert lines[-1] == "errors     2024-05-05T00:00:01Z run_failed: x"
    two = [{**one, "time": None, "message": "y"}, one]
    lines = format_status(_status(errors=two)).splitlines()
    assert lines[-3:] == [
        "errors     the last 2, oldest first:",
        "           run_failed: y",
        "           2024-05-05T00:00:01Z run_failed: x",
    ]
    values = {line[11] for line in lines if line[:11].strip()}  # each row's value: column 12
    assert " " not in values


def test_a_finished_backtest_shows_the_last_day_of_its_data_not_the_day_after() -> None:
    from tradeloom.engine.status_figures import _day_start as frames_day
    from tradeloom.engine.status_rows import _day_start as rows_day

    times = pd.date_range("2024-05-04T23:00Z", periods=4, freq="15min")  # closes at midnight
    curve = np.array([100.0, 101.0, 102.0, 103.0])
    ns = [int(t.value) for t in times]
    bars = pd.DataFrame({"timestamp": times})
    assert rows_day(ns, curve, 100.0, 900) == frames_day(bars, curve, 100.0, 900)
    assert rows_day(ns, curve, 100.0, 900) == ("2024-05-05", 103.0)  # live: today, no P&L
    ended = rows_day(ns, curve, 100.0, 900, ended=True)
    assert ended == frames_day(bars, curve, 100.0, 900, ended=True) == ("2024-05-04", 100.0)
    finished = _status(process="finished", day="2024-05-04", day_pnl=3.0, day_return=0.03)
    assert _line(finished, "last day") == "last day   2024-05-04: P&L +3.00 (+3.00%)"
    assert "today" not in format_status(finished)


def test_health_names_every_declared_monitor(tmp_path: Path) -> None:
    from tradeloom.engine.status import _Status

    (tmp_path / "strategy.yaml").write_text(
        "monitoring:\n  - kind: rolling_auc\n  - kind: calibration\n"
        "  - kind: feature_drift\n    name: drift\n"
    )
    status = _Status.__new__(_Status)
    status.run_dir = tmp_path
    monitors = status._with_declared({"rolling_auc": "WARNING"})
    assert monitors == {"calibration": "HEALTHY", "drift": "HEALTHY", "rolling_auc": "WARNING"}
    healthy = dict.fromkeys(monitors, "HEALTHY")
    line = _line(_status(health="HEALTHY", health_worst=list(healthy), monitors=healthy), "health")
    assert line == "health     HEALTHY, all 3 monitors (calibration, drift, rolling_auc)"
    worst = _status(health="WARNING", health_worst=["rolling_auc"], monitors=monitors)
    assert _line(worst, "health") == (
        "health     WARNING at rolling_auc "
        "(calibration HEALTHY, drift HEALTHY, rolling_auc WARNING)"
    )


def test_the_summary_names_the_monitor_and_the_time_of_the_worst_health() -> None:
    from tradeloom.domain import HealthChange
    from tradeloom.engine.health import worst_health_at
    from tradeloom.reporting.summary import format_summary

    def change(bar: int, status: str, previous: str, value: float) -> HealthChange:
        stamp = pd.Timestamp("2024-03-01T00:00Z") + pd.Timedelta(hours=bar)
        return HealthChange(bar, stamp, "rolling_auc", status, previous, "auc", value)  # type: ignore[arg-type]

    changes = [
        change(5, "WARNING", "HEALTHY", 0.51),
        change(9, "CRITICAL", "WARNING", 0.4791),
        change(12, "CRITICAL", "HEALTHY", 0.47),
        change(20, "HEALTHY", "CRITICAL", 0.6),
    ]
    at = worst_health_at(changes, ["HEALTHY"], None)
    assert at == {"health_worst_at": "rolling_auc at 2024-03-01 09:00 (bar 9, auc 0.4791)"}
    assert worst_health_at(changes, ["CRITICAL"], None) == {}  # the end says it
    line = next(
        x
        for x in format_summary(
            {"health": "HEALTHY", "health_worst": "CRITICAL", **at}
        ).splitlines()
        if "health" in x
    )
    assert line.split(None, 1)[1] == (
        "HEALTHY at the end, CRITICAL at worst: rolling_auc at 2024-03-01 09:00 (bar 9, auc 0.4791)"
    )
