"""``tradeloom status`` in words (`tradeloom.engine.status_text.format_status`): what a
person reads of a run that ended, and rows that line up."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

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
