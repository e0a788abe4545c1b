"""The report's parts on their own: words (durations, the open position of a universe),
the settings diff of compare, candles of several bars, the plot metadata of
features.parquet, and the one mode of run files."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.reporting import outputs
from tradeloom.reporting.downsample import _present_ends, candle_buckets
from tradeloom.reporting.execution_table import execution_table
from tradeloom.reporting.exports import read_plots, write_parquet
from tradeloom.reporting.labels import format_duration, format_price, price_decimals
from tradeloom.reporting.settings_diff import differing_settings, flatten, with_defaults
from tradeloom.reporting.summary import format_summary
from tradeloom.reporting.trades_table import trades_table


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.0, "0 s"), (45.0, "45 s"), (900.0, "15.0 minutes"), (86_400.0, "1.0 days")],
)
def test_durations_read_in_human_units(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_the_execution_table_gives_fill_times_in_human_units() -> None:
    overall = {"orders": 2, "seconds_to_first_fill": {"median": 86_400.0, "p90": 5_400.0}}
    block = {"overall": overall, "groups": [{"venue": "sim", "order_type": "market", **overall}]}
    html = execution_table(block)
    assert "<th>time to first fill (median / p90)</th>" in html
    assert "1.0 days / 1.5 hours" in html and "e+" not in html


def _universe_metrics(open_positions: list[float]) -> dict:
    attribution = {
        f"S{i}": {"pnl": 1.0, "fees": 0.1, "exposure": 0.2, "trades": 3, "open_position": p}
        for i, p in enumerate(open_positions)
    }
    return {"symbols": list(attribution), "attribution": attribution, "open_position": 0.0}


def test_a_universe_says_open_by_symbol_only_when_something_is_open() -> None:
    def open_line(metrics: dict) -> str:
        line = next(x for x in format_summary(metrics).splitlines() if "open at the end" in x)
        return line.split("open at the end", 1)[1].strip()

    assert open_line(_universe_metrics([0.0, 0.0])) == "nothing (flat)"
    assert open_line(_universe_metrics([0.0, 0.5])) == "by symbol, above"
    rows = format_summary(_universe_metrics([0.0, 0.5]))
    assert "mean gross exposure 20.00%" in rows and "exposure 20.00%" not in rows.replace(
        "gross exposure 20.00%", ""
    )


def test_settings_that_differ_are_listed_key_by_key() -> None:
    a = {"name": "a", "seed": 1, "features": [{"kind": "rsi", "window": 14}], "risk": {}}
    b = {"name": "b", "seed": 1, "features": [{"kind": "rsi", "window": 7}, {"kind": "ema"}]}
    assert flatten(a) == {
        "name": "a",
        "seed": 1,
        "features.0.kind": "rsi",
        "features.0.window": 14,
        "risk": {},
    }
    assert differing_settings([a, b]) == [
        ("name", ["a", "b"]),
        ("features.0.window", ["14", "7"]),
        ("risk", ["{}", "-"]),
        ("features.1.kind", ["-", "ema"]),
    ]
    assert differing_settings([a, dict(a, description="other words")]) == []


_SMALL = """\
name: small
seed: SEED
data: {kind: synthetic, symbol: BTC/USDT, timeframe: 1h, bars: 600}
features: [{kind: rsi, window: 14}]
model:
  kind: sklearn
  estimator: sklearn.ensemble.RandomForestClassifier
  walk_forward: {train_window: 300, retrain_every: 300WALK}
signal: {kind: threshold, threshold: 0.2}
risk: {sizing: {kind: fixed_fraction, fraction: 0.5}}
execution: {kind: simulated, initial_cash: 10000EXTRA}
"""


def test_a_default_and_the_same_value_written_out_are_not_a_difference(tmp_path: Path) -> None:
    """compare listed a default left out against the same value written as a difference
    (issue 42); a real difference, a default against another value included, stays."""
    import yaml

    def small(seed: int, walk: str = "", extra: str = "") -> str:
        return _SMALL.replace("SEED", str(seed)).replace("WALK", walk).replace("EXTRA", extra)

    texts = {
        "implicit": small(1),
        "explicit": small(1, ", embargo: 0", ", orders: {type: market}")
        + "outputs: {features: true}\n",
        "other": small(2, ", embargo: 3"),
    }
    documents, flats = [], []
    for name, text in texts.items():
        path = tmp_path / name / "strategy.yaml"
        path.parent.mkdir()
        path.write_text(text)
        documents.append(yaml.safe_load(text))
        flats.append(with_defaults(path, documents[-1]))
    assert differing_settings(documents[:2], flats[:2]) == []
    assert [k for k, _ in differing_settings(documents[:2])] == [
        "model.walk_forward.embargo",
        "execution.orders.type",
        "outputs.features",
    ]  # as written, they differed
    assert differing_settings([documents[0], documents[2]], [flats[0], flats[2]]) == [
        ("seed", ["1", "2"]),
        ("model.walk_forward.embargo", ["0", "3"]),  # the default, against 3
    ]
    broken = tmp_path / "broken.yaml"  # no longer valid: compared as written
    broken.write_text("name: x\nbogus: 1\n")
    assert with_defaults(broken, {"name": "x", "bogus": 1}) == {"name": "x", "bogus": 1}


@settings(max_examples=examples(100), deadline=None)
@given(st.integers(1, 400), st.integers(1, 50))
def test_candles_of_several_bars_keep_the_highs_lows_and_volume(n: int, most: int) -> None:
    rng = np.random.default_rng(n)
    close = 100 + rng.standard_normal(n).cumsum()
    ohlcv = np.column_stack(
        (close + rng.normal(0, 0.1, n), close + 1, close - 1, close, rng.uniform(1, 9, n))
    )
    ohlcv[rng.random(n) < 0.1] = np.nan  # bars a symbol lacks
    times = np.arange(n)
    x, candles, k = candle_buckets(times, ohlcv, most)
    assert len(candles) <= max(most, 1) and len(x) == len(candles)
    assert k == 1 if n <= most else k == -(-n // most)
    present = ~np.isnan(ohlcv[:, 3])
    assert np.nansum(candles[:, 4]) == pytest.approx(ohlcv[present, 4].sum())
    if present.any():
        assert np.nanmax(candles[:, 1]) == np.nanmax(ohlcv[:, 1])
        assert np.nanmin(candles[:, 2]) == np.nanmin(ohlcv[:, 2])
        last = np.flatnonzero(present)[-1]
        assert candles[(last // k), 3] == ohlcv[last, 3]  # a candle closes at its last bar


@settings(max_examples=examples(100), deadline=None)
@given(st.integers(1, 400), st.integers(1, 50))
def test_the_buckets_of_a_market_with_every_bar_end_at_their_ends(n: int, k: int) -> None:
    """A market with no missing bar takes each bucket's ends as its first and last bars:
    those the general rule finds."""
    starts = np.arange(0, n, k)
    first, last, empty = _present_ends(np.ones(n, dtype=bool), starts)
    np.testing.assert_array_equal(first, starts)
    np.testing.assert_array_equal(last, np.append(starts[1:] - 1, n - 1))
    assert not empty.any()


def test_features_parquet_says_where_each_column_is_drawn(tmp_path: Path) -> None:
    index = pd.date_range("2024-01-01", periods=3, freq="h", tz="UTC", name="timestamp")
    frame = pd.DataFrame({"ema_20": [1.0, 2.0, 3.0], "rsi_14": [50.0, 60.0, 55.0]}, index=index)
    write_parquet(tmp_path / "f.parquet", frame, {"ema_20": "price", "rsi_14": "panel:f.1"})
    assert read_plots(tmp_path / "f.parquet") == {"ema_20": "price", "rsi_14": "panel:f.1"}
    write_parquet(tmp_path / "g.parquet", frame)
    assert read_plots(tmp_path / "g.parquet") == {}
    assert pd.read_parquet(tmp_path / "f.parquet").columns.tolist() == [
        "timestamp",
        "ema_20",
        "rsi_14",
    ]


def test_run_files_written_atomically_have_the_mode_of_the_others(tmp_path: Path) -> None:
    outputs.write_metrics(tmp_path, {"a": 1})
    outputs.atomic_bytes(tmp_path / "b.bin", b"x")
    (tmp_path / "plain.txt").write_text("x")
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert len(set(modes.values())) == 1, modes
    umask = os.umask(0o022)
    os.umask(umask)
    assert modes["metrics.json"] == 0o666 & ~umask


@pytest.mark.parametrize(
    ("price", "text"),
    [
        (1.19825, "1.19825"),  # EUR/USD: five decimals, once printed as 1.20
        (1.2, "1.20"),
        (151.234, "151.234"),  # USD/JPY
        (43215.123456789, "43,215.12"),  # six significant digits at most, two decimals at least
        (1.1982599400000001, "1.19826"),  # a fill's price after slippage
    ],
)
def test_a_price_is_printed_at_its_markets_precision(price: float, text: str) -> None:
    assert format_price(price) == text


def test_the_summary_and_the_report_print_an_fx_entry_at_five_decimals() -> None:
    from tradeloom.reporting.report import _alerts

    metrics = {
        "open_position": 5000.0,
        "open_position_entry_price": 1.19825,
        "open_position_entry_time": "2024-01-03T10:00:00+00:00",
        "open_position_pnl": 12.5,
    }
    line = next(x for x in format_summary(metrics).splitlines() if "open at the end" in x)
    assert line.endswith("long 5000 since 2024-01-03 10:00 at 1.19825, unrealized +12.50")
    closes = np.round(1.1 + np.random.default_rng(1).normal(0, 0.01, 500), 5)
    assert price_decimals(closes) == 5
    assert "at 1.19825, unrealized +12.50" in _alerts(metrics, price_decimals(closes), halt=True)
    # BTC/USDT's synthetic closes carry every float digit: two decimals of a 20,000 price
    assert price_decimals(20_000 + np.random.default_rng(1).normal(0, 100, 500)) == 2


def test_months_and_years_the_run_could_not_trade_in_say_why() -> None:
    """Before the first prediction and after the halt the run ended in, a month or a year
    returned exactly 0: it says why instead of +0.00% (a year of it was red)."""
    from tradeloom.reporting.idle import Idle
    from tradeloom.reporting.report import _monthly_chart
    from tradeloom.reporting.tearsheet_view import tearsheet_tables

    idle = Idle(
        first_prediction=pd.Timestamp("2024-02-03", tz="UTC"),
        halted=pd.Timestamp("2024-03-10 04:00", tz="UTC"),
    )
    monthly = {"2024-01": 0.0, "2024-02": 0.01, "2024-03": 0.0, "2024-04": 0.0, "2024-05": -0.02}
    chart = _monthly_chart({"monthly_returns": monthly}, idle)
    assert chart is not None
    drawn, grey = chart.data
    # January: before the first prediction; March holds the halt (its own bars traded)
    assert drawn["text"][0][:5] == ["", "+1.00%", "+0.00%", "", "-2.00%"]
    assert grey["text"][0][:5] == ["no prediction yet", "", "", "halted", ""]
    assert drawn["z"][0][0] is None and grey["z"][0][0] == 0.0
    sheet = {"tearsheet": {"yearly_returns": {"2023": 0.0, "2024": 0.01, "2025": 0.0}}}
    html = tearsheet_tables(sheet, Idle(halted=pd.Timestamp("2024-06-01", tz="UTC")))
    assert "<tr><th>2025</th><td class='idle'>halted</td></tr>" in html
    assert "<tr><th>2023</th><td class=''>+0.00%</td></tr>" in html  # flat, not red
    assert "<tr><th>2024</th><td class='pos'>+1.00%</td></tr>" in html
    assert _monthly_chart({"monthly_returns": {"2024-01": 0.0}}, Idle()).data[0]["text"][0][0] == (
        "+0.00%"
    )


def test_the_summary_warns_that_a_short_runs_annual_figures_extrapolate() -> None:
    """55 paper bars printed CAGR +34.25%, Calmar 181.66, Sharpe 7.07 unflagged (issue 42)."""
    metrics = {"bars": 55, "periods_per_year": 8760.0, "cagr": 0.3425, "calmar": 181.66}
    lines = format_summary(metrics).splitlines()
    at = next(i for i, x in enumerate(lines) if x.strip().startswith("Calmar"))
    assert lines[at + 1].split(None, 2)[2] == (
        "the figures above extrapolate 55 bars (2.3 days) to a year"
    )
    year = format_summary({**metrics, "bars": 2190})  # a quarter of a year: no warning
    assert "short run" not in year and "extrapolate" not in year


def test_the_tearsheet_shows_a_bars_tail_risk() -> None:
    from tradeloom.reporting.tearsheet_view import tearsheet_tables

    sheet = {"var_95": -0.0123, "cvar_95": -0.00004, "var_95_normal": -0.011}
    html = tearsheet_tables({"tearsheet": {**sheet, "skew": -0.5, "kurtosis": 4.25}})
    assert "<caption>Tail risk of a bar's return</caption>" in html
    for label, text in (
        ("VaR 95% (historical)", "-1.230%"),
        ("CVaR 95% (historical)", "-0.004%"),  # not -0.00%
        ("VaR 95% (normal)", "-1.100%"),
        ("skew", "-0.500"),
        ("excess kurtosis", "4.250"),
    ):
        assert f"<tr><th>{label}</th><td>{text}</td></tr>" in html, label
    assert "Tail risk" not in tearsheet_tables({"tearsheet": {}})  # a run from before them


def test_the_trades_table_writes_times_to_the_minute_and_no_text_for_a_missing_one() -> None:
    trades = pd.DataFrame(
        {
            "side": ["long", "short"],
            "entry_time": pd.to_datetime(["2024-03-01 09:30:59", "2024-03-02 10:00:00"], utc=True),
            "exit_time": pd.to_datetime(["2024-03-01 11:05:00", None], utc=True),
            "pnl": [12.5, -3.25],
        }
    )
    table = trades_table(trades)
    rows = re.findall(r"<tr class='trade'[^>]*>(.*?)</tr>", table)
    cells = [re.findall(r"<td>(.*?)</td>", row) for row in rows]
    assert [row[2:4] for row in cells] == [
        ["2024-03-01 09:30", "2024-03-01 11:05"],
        ["2024-03-02 10:00", ""],
    ]
    assert "nan" not in table.lower().replace("span", "")
