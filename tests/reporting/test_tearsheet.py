"""The tearsheet's figures in metrics.json, checked against quantstats and empyrical on the
same equity curve, with the same annualisation (the run's periods per year)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.reference_libraries import Reference
from tradeloom.cli.main import main
from tradeloom.reporting import tearsheet_view
from tradeloom.reporting.report import write_report
from tradeloom.reporting.statistics import drawdown_duration
from tradeloom.reporting.tearsheet import (
    Rolling,
    bar_returns,
    calendar_periods,
    drawdowns,
    rolling_figures,
    rolling_window,
    run_rolling,
    tail_figures,
    tearsheet,
)

# imported by the tests that use them (`reference_libraries`)
empyrical = Reference("empyrical")
qs = Reference("quantstats")

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.xdist_group("report_runs")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tearsheet") / "run"
    args = ["run", str(ROOT / "strategies" / "btc_rf.yaml"), "--out", str(out), "--quiet"]
    for override in (
        "data.bars=3000",
        "model.walk_forward.train_window=1000",
        "model.walk_forward.retrain_every=1000",
        "model.params.n_estimators=20",
        "model.params.n_jobs=1",
        "signal.threshold=0.1",
    ):
        args += ["--set", override]
    assert main(args) == 0
    return out


def _curve(run_dir: Path) -> tuple[pd.Series, pd.Series, dict]:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    frame = pd.read_csv(run_dir / "equity.csv", parse_dates=["timestamp"]).set_index("timestamp")
    return frame["equity"], frame["close"], metrics


def test_metrics_json_holds_the_tearsheet_of_its_own_equity(run_dir: Path) -> None:
    equity, close, metrics = _curve(run_dir)
    sheet = metrics["tearsheet"]
    assert metrics["trades"] > 5 and sheet["drawdowns"], "a run with trades and drawdowns"
    again = tearsheet(
        equity,
        close,
        initial_cash=metrics["initial_cash"],
        periods_per_year=metrics["periods_per_year"],
        benchmark="buy and hold",
    )
    assert sheet["periods_per_year"] == metrics["periods_per_year"] == pytest.approx(8760)
    assert sheet["rolling_window_bars"] == rolling_window(8760) == 720
    assert sheet["drawdowns"] == again["drawdowns"]
    assert sheet["yearly_returns"] == pytest.approx(again["yearly_returns"])
    assert sheet["beta"] == pytest.approx(again["beta"])


def _quantstats_tail(returns: pd.Series) -> dict[str, float]:
    stats = qs.stats
    return {
        "var_95": float(returns.quantile(0.05)),  # the threshold of quantstats' historical CVaR
        "cvar_95": stats.conditional_value_at_risk(
            returns, confidence=0.95, method="historical", prepare_returns=False
        ),
        "var_95_normal": stats.value_at_risk(returns, confidence=0.95, prepare_returns=False),
        "skew": stats.skew(returns, prepare_returns=False),
        "kurtosis": stats.kurtosis(returns, prepare_returns=False),
    }


def test_tail_risk_matches_quantstats(run_dir: Path) -> None:
    """Historical VaR and CVaR at 95%, the normal (variance-covariance) VaR, skew and
    excess kurtosis of the bar returns, as quantstats computes them."""
    equity, _, metrics = _curve(run_dir)
    returns = bar_returns(equity, metrics["initial_cash"])
    sheet = metrics["tearsheet"]
    theirs = _quantstats_tail(returns)
    for key, value in theirs.items():
        assert sheet[key] == pytest.approx(value, rel=1e-9, abs=1e-15), key
    assert sheet["var_95"] < 0 and sheet["cvar_95"] < sheet["var_95"]  # a loss, the tail worse


def test_tail_risk_of_fat_tails_is_not_the_normal_laws() -> None:
    """Student-t returns: the historical figures see the fat tails the normal VaR misses,
    and scipy's bias-corrected moments agree with the skew and kurtosis."""
    from scipy import stats

    rng = np.random.default_rng(7)
    returns = pd.Series(rng.standard_t(3, 5000) * 0.01 - 0.0002)
    ours = tail_figures(returns)
    theirs = _quantstats_tail(returns)
    assert ours == pytest.approx(theirs, rel=1e-9)
    assert ours["var_95"] == pytest.approx(np.percentile(returns, 5), rel=1e-12)
    assert ours["cvar_95"] == pytest.approx(returns[returns <= np.percentile(returns, 5)].mean())
    assert ours["skew"] == pytest.approx(stats.skew(returns, bias=False), rel=1e-9)
    assert ours["kurtosis"] == pytest.approx(stats.kurtosis(returns, bias=False), rel=1e-9)
    assert ours["kurtosis"] > 3  # fat tails: excess kurtosis far above a normal law's 0
    assert ours["cvar_95"] < ours["var_95"]
    assert tail_figures(pd.Series([0.01])) == dict.fromkeys(ours)  # too few: no figure


def test_rolling_sharpe_and_volatility_match_quantstats(run_dir: Path) -> None:
    equity, _, metrics = _curve(run_dir)
    ppy, window = metrics["periods_per_year"], metrics["tearsheet"]["rolling_window_bars"]
    returns = bar_returns(equity, metrics["initial_cash"])
    ours = rolling_figures(returns, window, ppy)
    sharpe = qs.stats.rolling_sharpe(
        returns, rolling_period=window, periods_per_year=ppy, prepare_returns=False
    )
    volatility = qs.stats.rolling_volatility(
        returns, rolling_period=window, periods_per_year=ppy, prepare_returns=False
    )
    known = ours["sharpe"].notna()
    assert known.sum() > 1000
    np.testing.assert_allclose(ours["sharpe"][known], sharpe[known], rtol=1e-9)
    np.testing.assert_allclose(ours["volatility"].dropna(), volatility.dropna(), rtol=1e-9)
    summary = metrics["tearsheet"]["rolling_sharpe"]
    assert summary["last"] == pytest.approx(sharpe.dropna().iloc[-1], rel=1e-9)
    assert summary["min"] == pytest.approx(sharpe.min(), rel=1e-9)
    assert summary["max"] == pytest.approx(sharpe.max(), rel=1e-9)
    assert metrics["tearsheet"]["rolling_volatility"]["median"] == pytest.approx(
        volatility.median(), rel=1e-9
    )


def test_the_worst_drawdowns_match_quantstats(run_dir: Path) -> None:
    """quantstats reads a drawdown's start, valley and end as days: the same equity, one
    bar a day, with the starting cash as a first price (a zero return the day before)."""
    equity, _, metrics = _curve(run_dir)
    returns = bar_returns(equity, metrics["initial_cash"])
    days = pd.date_range("2000-01-01", periods=len(returns) + 1, freq="D")
    padded = pd.Series(np.r_[0.0, returns.to_numpy()], index=days)
    details = qs.stats.drawdown_details(qs.stats.to_drawdown_series(padded))
    theirs = details.sort_values("max drawdown").head(5).reset_index(drop=True)
    ours = drawdowns(pd.Series(equity.to_numpy(), index=days[1:]), metrics["initial_cash"])
    assert len(ours) == len(theirs) == min(5, len(details)) and len(ours) >= 3
    for mine, (_, row) in zip(ours, theirs.iterrows(), strict=True):
        assert mine["depth"] == pytest.approx(-row["max drawdown"] / 100, rel=1e-9)
        assert pd.Timestamp(mine["start"]).date() == pd.Timestamp(row["start"]).date()
        assert pd.Timestamp(mine["trough"]).date() == pd.Timestamp(row["valley"]).date()
        last_under = days.get_loc(pd.Timestamp(row["end"]))  # quantstats: its last day under
        # quantstats counts the days under water; ours run from the bar at the peak to
        # the recovery's (the summary's rule): one more for a drawdown that recovered,
        # but from the starting cash, which stands at the first bar
        if mine["recovery"] is None:
            assert last_under == len(days) - 1
            assert mine["bars"] == int(row["days"])
        else:
            assert pd.Timestamp(mine["recovery"]).date() == days[last_under + 1].date()
            from_cash = pd.Timestamp(mine["start"]) == days[1]
            assert mine["bars"] == int(row["days"]) + (0 if from_cash else 1)
    # and metrics.json lists the same drawdowns, at the bars' own times
    listed = metrics["tearsheet"]["drawdowns"]
    assert [d["depth"] for d in listed] == [d["depth"] for d in ours]
    assert [d["bars"] for d in listed] == [d["bars"] for d in ours]


def test_yearly_and_monthly_returns_match_empyrical(run_dir: Path) -> None:
    equity, _, metrics = _curve(run_dir)
    returns = bar_returns(equity, metrics["initial_cash"])
    sheet = metrics["tearsheet"]
    yearly = empyrical.aggregate_returns(returns, "yearly")
    assert sheet["yearly_returns"] == pytest.approx({str(y): v for y, v in yearly.items()})
    monthly = empyrical.aggregate_returns(returns, "monthly")
    expected = {f"{y}-{m:02d}": v for (y, m), v in monthly.items()}
    assert len(expected) >= 4 and sheet["monthly_returns"] == pytest.approx(expected)


def test_alpha_beta_and_correlation_match_empyrical(run_dir: Path) -> None:
    equity, close, metrics = _curve(run_dir)
    returns = bar_returns(equity, metrics["initial_cash"])
    market = close.pct_change().fillna(0.0)
    ppy = metrics["periods_per_year"]
    alpha, beta = empyrical.alpha_beta(returns, market, annualization=ppy)
    sheet = metrics["tearsheet"]
    assert sheet["benchmark"] == "buy and hold"
    assert sheet["beta"] == pytest.approx(beta, rel=1e-9) and sheet["beta"] != 0
    assert sheet["alpha"] == pytest.approx(alpha, rel=1e-9)
    assert sheet["correlation"] == pytest.approx(returns.corr(market), rel=1e-9)


def test_a_drawdown_never_recovered_and_one_from_the_first_bar() -> None:
    index = pd.date_range("2024-01-01", periods=7, freq="h", tz="UTC")
    equity = pd.Series([90.0, 95.0, 100.0, 101.0, 99.0, 97.0, 98.0], index=index)
    found = drawdowns(equity, 100.0)
    assert found == [
        {
            "start": index[0].isoformat(),
            "trough": index[0].isoformat(),
            "recovery": index[2].isoformat(),
            "depth": pytest.approx(0.10),
            "bars": 2,
            "days": 2 / 24,
        },
        {
            "start": index[4].isoformat(),
            "trough": index[5].isoformat(),
            "recovery": None,
            "depth": pytest.approx(1 - 97 / 101),
            "bars": 3,
            "days": 3 / 24,  # from the peak at 03:00 to the last bar at 06:00
        },
    ]


def test_a_recovered_drawdown_has_the_summarys_bars_in_the_table() -> None:
    """From the bar at the peak (10) to the bar back at it (335): 325 bars in the table
    of metrics.json as in the summary's duration (the table counted 324, the bars under
    water, before both called one function)."""
    index = pd.date_range("2024-01-01", periods=400, freq="D", tz="UTC")
    values = np.r_[np.linspace(100.0, 110.0, 11), np.full(324, 90.0), np.full(65, 111.0)]
    equity = pd.Series(values, index=index)
    sheet = tearsheet(
        equity, equity, initial_cash=100.0, periods_per_year=365.0, benchmark="buy and hold"
    )
    [row] = sheet["drawdowns"]
    assert (row["start"], row["recovery"]) == (index[11].isoformat(), index[335].isoformat())
    assert (row["bars"], row["days"]) == (325, 325.0)
    assert drawdown_duration(equity, 100.0) == (325, pd.Timedelta(days=325))


@pytest.mark.parametrize(
    "index",
    [
        # hourly forex bars: Sunday 22:00 to Friday 22:00 UTC, the weekend closed
        pd.DatetimeIndex(
            [
                t
                for t in pd.date_range("2024-03-03T22:00Z", periods=24 * 7 * 3, freq="1h")
                if not (t.weekday() == 4 and t.hour >= 22)
                and t.weekday() != 5
                and not (t.weekday() == 6 and t.hour < 22)
            ]
        ),
        # daily stock bars: weekdays only
        pd.bdate_range("2024-01-01", periods=300, freq="B", tz="UTC"),
    ],
    ids=["forex_1h", "stock_1d"],
)
def test_the_drawdown_table_measures_durations_as_the_summary(index: pd.DatetimeIndex) -> None:
    """Each listed drawdown's days run from its peak bar's time to its recovery's (or the
    last bar's): the longest equals ``max_drawdown_duration_days`` over closures too."""
    rng = np.random.default_rng(4)
    equity = pd.Series(10_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, len(index)))), index=index)
    sheet = tearsheet(
        equity, equity, initial_cash=10_000.0, periods_per_year=252.0, benchmark="buy and hold"
    )
    listed = drawdowns(equity, 10_000.0, top=1_000)
    bars, longest = drawdown_duration(equity, 10_000.0)
    assert max(row["days"] for row in listed) == pytest.approx(
        longest.total_seconds() / 86_400.0, rel=1e-12
    )
    assert max(row["bars"] for row in listed) == bars
    # the closures count: bars times the bar length (the table's old rule) falls short
    bar_days = (index[1] - index[0]).total_seconds() / 86_400.0
    assert any(row["days"] > (row["bars"] + 1) * bar_days for row in sheet["drawdowns"])


def _pandas_rolling(returns: pd.Series, window: int, periods: float) -> pd.DataFrame:
    rolling = returns.rolling(window)
    std = rolling.std(ddof=1)
    scale = np.sqrt(periods)
    sharpe = (rolling.mean() / std.where(std > 0)) * scale
    return pd.DataFrame({"sharpe": sharpe, "volatility": std * scale}, index=returns.index)


def test_rolling_figures_are_those_of_the_returns_asked_about() -> None:
    # computed afresh at each call: no answer of another call (one bar's sign, another
    # window or other periods) is given back, and a caller's frame is its own
    rng = np.random.default_rng(7)
    index = pd.date_range("2024-01-01", periods=400, freq="h", tz="UTC")
    base = pd.Series(rng.normal(0.0, 0.01, len(index)), index=index)
    base.iloc[::7] = 0.0
    flipped = base.copy()
    flipped.iloc[351] = -base.iloc[351]
    calls = [
        (base, 30, 8760.0),
        (flipped, 30, 8760.0),
        (flipped, 30, 8760.0),
        (base, 30, 8760.0),
        (base, 31, 8760.0),
        (base, 31, 8760.5),
    ]
    for returns, window, periods in calls:
        got = rolling_figures(returns, window, periods)
        want = _pandas_rolling(returns, window, periods)
        pd.testing.assert_frame_equal(got, want, check_exact=True)
        got.iloc[:, :] = 0.0


def test_a_run_computes_its_rolling_figures_once_and_its_report_draws_them(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    equity, _, metrics = _curve(run_dir)
    ppy, cash = metrics["periods_per_year"], metrics["initial_cash"]
    given = run_rolling(equity, cash, ppy)
    assert given.window == metrics["tearsheet"]["rolling_window_bars"]
    with_given = tearsheet(
        equity, equity, initial_cash=cash, periods_per_year=ppy, benchmark="x", rolling=given
    )
    assert with_given == tearsheet(
        equity, equity, initial_cash=cash, periods_per_year=ppy, benchmark="x"
    )
    calls: list[int] = []
    computed = tearsheet_view.rolling_figures

    def counted(*args: Any) -> pd.DataFrame:
        calls.append(1)
        return computed(*args)

    monkeypatch.setattr(tearsheet_view, "rolling_figures", counted)
    folder = tmp_path / "run"
    shutil.copytree(run_dir, folder)
    page = (folder / "report.html").read_text()
    write_report(folder, rolling=given)  # the run's own figures: drawn, not computed
    assert calls == [] and (folder / "report.html").read_text() == page
    other = Rolling(given.window + 1, ppy, given.figures)  # not the metrics' window
    write_report(folder, rolling=other)
    assert calls == [1] and (folder / "report.html").read_text() == page
    zeros = Rolling(given.window, ppy, given.figures * 0.0)  # what was handed is drawn
    write_report(folder, rolling=zeros)
    assert calls == [1] and (folder / "report.html").read_text() != page


def test_calendar_periods_are_numpys_months_and_years() -> None:
    rng = np.random.default_rng(3)
    for unit in ("ns", "s", "m", "D"):
        scale = {"ns": 10**13, "s": 10**4, "m": 10**2, "D": 1}[unit]
        times = np.sort(rng.integers(-40_000 * scale // 3, 40_000 * scale, 5_000))
        times = times.astype(f"datetime64[{unit}]")
        if unit == "m":  # many bars a day, across months and a year's end
            times = pd.date_range("2023-11-20", "2024-03-02", freq="7min").to_numpy()
        months = times.astype("datetime64[M]").astype(np.int64)
        with_nat = times.copy()
        with_nat[[0, 17, 18]] = np.datetime64("NaT")
        periods = calendar_periods(times)
        assert periods is not None
        for freq, keys in (("M", months), ("Y", months // 12)):
            found = periods[freq]
            spans = [stop - start for _, start, stop in found]
            assert [start for _, start, _ in found] == np.cumsum([0, *spans[:-1]]).tolist()
            assert all(spans)  # a period without bars is left out
            np.testing.assert_array_equal(np.repeat([k for k, _, _ in found], spans), keys)
        assert calendar_periods(with_nat) is None  # NaT: the callers group with pandas
        assert calendar_periods(with_nat[1:]) is None
        assert calendar_periods(times[::-1]) is None
        assert calendar_periods(times[:0]) == {"M": [], "Y": []}
    outside = np.array(["0999-12-31", "1000-01-01"], "datetime64[D]")
    assert calendar_periods(outside) is None  # years 1000 to 9999 only: pandas' path
    assert calendar_periods(outside[1:]) is not None
