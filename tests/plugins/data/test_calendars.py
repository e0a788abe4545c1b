"""Trading calendars on real data: backtesting.py's EURUSD (forex) and GOOG (an exchange).

Under ``validation: reject`` the markets' closures (weekends, nights, holidays) are not
gaps, a bar removed on a trading day is, and metrics are annualized over the calendar's
year instead of 365 days of bars.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.reference_libraries import package_folder
from tradeloom.cli.main import main
from tradeloom.time.calendars import CRYPTO, FOREX, get_calendar

_BACKTESTING = package_folder("backtesting")  # not imported (`reference_libraries`)
if _BACKTESTING is None:
    pytest.skip("needs the data files of backtesting.py", allow_module_level=True)
DATA = _BACKTESTING / "test"

STRATEGY = """\
name: {name}
data:
  kind: csv
  path: {file}
  calendar: {calendar}
features:
  - kind: log_return
    period: 1
  - kind: rsi
    window: 14
model:
  kind: sklearn
  estimator: sklearn.linear_model.LogisticRegression
  label:
    horizon: 1
  walk_forward:
    train_window: 500
    retrain_every: 250
signal:
  kind: threshold
  threshold: 0.05
risk:
  sizing:
    kind: fixed_fraction
    fraction: 0.5
execution:
  kind: simulated
  initial_cash: 10000
"""


def strategy(tmp_path: Path, file: str, calendar: str, *, drop: str | None = None) -> Path:
    """Copy a backtesting.py data file (without one row, ``drop``) and a strategy on it."""
    target = tmp_path / file
    if drop is None:
        shutil.copy(DATA / file, target)
    else:
        lines = (DATA / file).read_text().splitlines(keepends=True)
        kept = [line for line in lines if not line.startswith(drop)]
        assert len(kept) == len(lines) - 1
        target.write_text("".join(kept))
    path = tmp_path / f"{file}.yaml"
    path.write_text(STRATEGY.format(name=Path(file).stem.lower(), file=file, calendar=calendar))
    return path


def line_of(path: Path, start: str) -> int:
    """The 1-based line of the file that starts with ``start``."""
    lines = path.read_text().splitlines()
    return next(i for i, line in enumerate(lines, start=1) if line.startswith(start))


def run(path: Path, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(["run", str(path), "--out", str(path.parent / f"run{len(args)}"), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def metrics(path: Path, args: int = 0) -> dict:
    return json.loads((path.parent / f"run{args}" / "metrics.json").read_text())


def test_forex_weekends_and_holidays_are_not_gaps(tmp_path: Path, capsys) -> None:
    """EURUSD's file has an unnamed index column and 42 closures, Christmas and New Year's
    Day among them: a run under reject accepts them all."""
    path = strategy(tmp_path, "EURUSD.csv", "forex")
    code, _, err = run(path, capsys)
    assert (code, err) == (0, ""), err
    m = metrics(path)
    assert (m["bars"], m["calendar"]) == (5000, "forex")
    # 24 bars a trading day, 52.18 weeks of 5 days, less 2 holidays on 5 of 7 days
    year = 24 * (365.25 / 7 * 5 - 2 * 5 / 7)
    assert m["periods_per_year"] == pytest.approx(year)
    equity = pd.read_csv(path.parent / "run0" / "equity.csv")["equity"].to_numpy()
    assert m["cagr"] == pytest.approx((equity[-1] / 10_000) ** (year / 5000) - 1, rel=1e-12)
    returns = np.diff(np.concatenate(([10_000.0], equity))) / np.concatenate(
        ([10_000.0], equity[:-1])
    )
    assert m["sharpe"] == pytest.approx(
        returns.mean() / returns.std(ddof=1) * math.sqrt(year), rel=1e-9
    )


def test_forex_refuses_a_bar_missing_midweek(tmp_path: Path, capsys) -> None:
    path = strategy(tmp_path, "EURUSD.csv", "forex", drop="2017-05-10 13:00:00")
    code, out, err = run(path, capsys)
    assert (code, out) == (2, "")
    assert err == (
        f"data: {tmp_path / 'EURUSD.csv'}: 1 gap in the 1h bars, 1 bar missing "
        "(first at 2017-05-10T13:00Z, before line "
        f"{line_of(tmp_path / 'EURUSD.csv', '2017-05-10 14:00')}); fill it or set "
        "data.validation: repair to keep it\n"
    )


def test_crypto_calls_the_weekends_gaps(tmp_path: Path, capsys) -> None:
    path = strategy(tmp_path, "EURUSD.csv", "crypto")
    code, _, err = run(path, capsys)
    assert code == 2
    assert err.startswith(f"data: {tmp_path / 'EURUSD.csv'}: 42 gaps in the 1h bars")


def test_an_exchange_calendar_knows_the_holidays(tmp_path: Path, capsys) -> None:
    """GOOG's 2,148 daily bars are exactly the NYSE's sessions from 2004 to 2013, with its
    holidays and special closures (Ford's funeral in 2007, hurricane Sandy in 2012)."""
    path = strategy(tmp_path, "GOOG.csv", "XNYS")
    code, _, err = run(path, capsys)
    assert (code, err) == (0, ""), err
    m = metrics(path)
    assert (m["bars"], m["calendar"]) == (2148, "XNYS")
    sessions = pd.bdate_range("2004-01-01", "2013-12-31")  # weekdays, less the holidays:
    assert 245 < m["periods_per_year"] < len(sessions) / 10
    equity = pd.read_csv(path.parent / "run0" / "equity.csv")["equity"].to_numpy()
    years = 2148 / m["periods_per_year"]
    assert m["cagr"] == pytest.approx((equity[-1] / 10_000) ** (1 / years) - 1, rel=1e-12)


def test_an_exchange_calendar_refuses_a_missing_session(tmp_path: Path, capsys) -> None:
    path = strategy(tmp_path, "GOOG.csv", "XNYS", drop="2012-10-31")  # after Sandy
    code, out, err = run(path, capsys)
    assert (code, out) == (2, "")
    assert err == (
        f"data: {tmp_path / 'GOOG.csv'}: 1 gap in the 1d bars, 1 bar missing "
        "(first at 2012-10-31T00:00Z, before line "
        f"{line_of(tmp_path / 'GOOG.csv', '2012-11-01')}); fill it or set "
        "data.validation: repair to keep it\n"
    )


def test_an_unknown_calendar_lists_the_installed_ones(tmp_path: Path, capsys) -> None:
    path = strategy(tmp_path, "GOOG.csv", "XNYZ")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"{path}:5:13 data.calendar: unknown calendar 'XNYZ' (did you mean 'XNYS'?); "
        "installed: crypto, forex, "
    ), err
    assert ", XLON, " in err and err.endswith(
        ", or a mapping of timezone, weekdays, open, close and holidays, was 'XNYZ'\n"
    )


def test_a_session_calendar_of_ones_own() -> None:
    calendar = get_calendar(
        {
            "timezone": "Europe/London",
            "weekdays": ["mon", "tue", "wed", "thu", "fri"],
            "open": "08:00",
            "close": 990,  # YAML 1.1 reads an unquoted 16:30 as 990
            "holidays": ["2024-12-25"],
        }
    )
    hourly = 3600 * 10**9
    stamps = (
        pd.DatetimeIndex(
            [
                "2024-07-01 06:00",  # 07:00 in London (BST): before the open
                "2024-07-01 07:00",  # 08:00: the first bar
                "2024-07-01 15:00",  # 16:00: the last bar, which the 16:30 close cuts
                "2024-07-01 16:00",  # 17:00: closed
                "2024-12-25 10:00",  # a holiday
                "2024-12-24 08:00",  # 08:00 GMT: open
                "2024-07-06 10:00",  # a Saturday
            ],
            tz="UTC",
        )
        .as_unit("ns")
        .asi8
    )
    assert calendar.expected(stamps, hourly).tolist() == [
        False,
        True,
        True,
        False,
        False,
        True,
        False,
    ]
    assert calendar.periods_per_year(3600) == pytest.approx(
        (365.25 / 7 * 5 - 1) * 9  # 8.5 hours: 9 hourly bars
    )
    assert calendar.periods_per_year(86_400) == pytest.approx(365.25 / 7 * 5 - 1)


def test_forex_follows_new_york_through_daylight_saving() -> None:
    hourly = 3600 * 10**9
    stamps = (
        pd.DatetimeIndex(
            [
                "2017-11-03 20:00",  # Friday 16:00 EDT: the week's last bar
                "2017-11-03 21:00",  # 17:00 EDT: closed
                "2017-11-05 21:00",  # Sunday 16:00 EST: closed
                "2017-11-05 22:00",  # 17:00 EST: the week opens
                "2017-12-25 12:00",  # Christmas
                "2017-12-25 22:00",  # 17:00 on Christmas: the next trading day opens
            ],
            tz="UTC",
        )
        .as_unit("ns")
        .asi8
    )
    assert FOREX.expected(stamps, hourly).tolist() == [True, False, False, True, False, True]
    assert CRYPTO.expected(stamps, hourly).all()
    assert CRYPTO.periods_per_year(3600) == 365 * 24


def test_bad_calendar_mappings_say_what_is_wrong() -> None:
    cases = {
        "days": "unknown calendar key days; expected timezone, weekdays, open, close, holidays",
    }
    with pytest.raises(ValueError, match=rf"^{cases['days']}$"):
        get_calendar({"days": ["mon"]})
    with pytest.raises(ValueError, match=r"^timezone: unknown time zone 'Mars/Olympus' "):
        get_calendar({"timezone": "Mars/Olympus"})
    with pytest.raises(ValueError, match=r"^weekdays: 'funday' is not a day \(mon, tue, "):
        get_calendar({"weekdays": ["funday"]})
    with pytest.raises(ValueError, match=r"^open: expected a time such as 09:30, was 'noon'$"):
        get_calendar({"open": "noon"})


@pytest.mark.parametrize(
    ("name", "start", "end"),
    [
        ("XNYS", "2024-03-20", "2024-04-10"),  # Good Friday inside
        ("XNYS", "2023-12-20", "2024-01-12"),  # across a year: two years' calendar
        ("XLON", "2020-12-18", "2021-01-08"),  # Christmas and boxing day, observed
        ("XTKS", "2019-04-20", "2019-05-12"),  # ten days of Golden Week closures
        ("XNYS", "2024-06-01", "2024-06-02"),  # a weekend: no session, refused alike
        ("XNYS", "2031-01-01", "2031-02-01"),  # past the calendar's bound, refused alike
    ],
)
def test_a_span_cut_from_the_years_calendar_is_the_spans_own_calendar(
    name: str, start: str, end: str
) -> None:
    pytest.importorskip("exchange_calendars")
    from tradeloom.time import calendars

    first, last = calendars._bounded(name, pd.Timestamp(start).date(), pd.Timestamp(end).date())
    try:  # the calendar of the span alone, as it was built for every span
        own = calendars._calendar_of(name, first, last)
    except Exception as exc:  # the span's own calendar refuses it: so does the cut
        with pytest.raises(type(exc)):
            calendars._exchange(name, pd.Timestamp(start).date(), pd.Timestamp(end).date())
        return
    cut = calendars._exchange(name, pd.Timestamp(start).date(), pd.Timestamp(end).date())
    assert cut.sessions.equals(own.sessions)
    assert cut.opens.equals(own.opens) and cut.closes.equals(own.closes)
    assert str(cut.tz) == str(own.tz)
