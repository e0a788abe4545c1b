"""report.html, `tradeloom report` and `tradeloom compare`, down to what a browser shows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tests.reporting.browser import chromium
from tests.reporting.layout_checks import plotly_layouts_checked
from tests.reporting.page_checks import (
    ARTIFACTS,
    assert_linked_zoom,
    assert_titled,
    by_title,
    open_page,
)
from tradeloom.cli.main import main
from tradeloom.journal import RunFailed, RunIdentity, open_journal
from tradeloom.reporting.charts import plotly_file, plotly_js
from tradeloom.reporting.compare import compare_page
from tradeloom.reporting.downsample import minmax_indices
from tradeloom.reporting.exports import write_parquet
from tradeloom.reporting.outputs import write_frame
from tradeloom.reporting.report import _trade_returns_chart, render_report
from tradeloom.reporting.run_data import _parquet, as_read, csv_table, load_run

ROOT = Path(__file__).resolve().parents[2]

# One worker builds the module's runs (eth_hgb_stops in full takes about 40 s), not each.
pytestmark = pytest.mark.xdist_group("report_runs")


def run(tmp_path_factory: pytest.TempPathFactory, name: str, *overrides: str) -> Path:
    out = tmp_path_factory.mktemp(name) / "runs" / "run"  # a folder of runs: plotly shared
    args = ["run", str(ROOT / "strategies" / f"{name}.yaml"), "--out", str(out)]
    for override in overrides:
        args += ["--set", override]
    assert main(args) == 0
    return out


@pytest.fixture(scope="module")
def btc_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run(
        tmp_path_factory,
        "btc_rf",
        "data.bars=3000",
        "model.walk_forward.train_window=1000",
        "model.walk_forward.retrain_every=500",
        "model.params.n_jobs=1",
    )


@pytest.fixture(scope="module")
def eth_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shorts, stops, monitors with health rules that retrain: every chart has data."""
    return run(tmp_path_factory, "eth_hgb_stops")


@pytest.mark.slow
def test_every_run_writes_a_report_beside_one_plotly(btc_run: Path) -> None:
    """plotly.js is written once into the folder of runs, not into every page (issue 42:
    20 runs were 200 MB); the page loads it from there and nothing else."""
    text = (btc_run / "report.html").read_text(encoding="utf-8")
    assert "Plotly.newPlot" in text and len(text) < 1_000_000
    assert re.findall(r"<script[^>]+src=[^>]*>|<link[^>]+href=|@import", text) == [
        f"<script src='../{plotly_file()}'>"
    ]
    assert (btc_run.parent / plotly_file()).read_bytes() == plotly_js()
    metrics = json.loads((btc_run / "metrics.json").read_text())
    for label in ("Price and trades", "Equity against buy and hold", "Monthly returns"):
        assert label in text
    assert f"{metrics['trades']:,} trades" in text


def test_features_parquet_holds_what_the_model_saw(btc_run: Path) -> None:
    features = pd.read_parquet(btc_run / "features.parquet")
    equity = pd.read_csv(btc_run / "equity.csv")
    assert len(features) == len(equity) == 3000
    assert {"timestamp", "rsi_14", "log_return_1", "probability", "signal"} <= set(features)
    signals = features["signal"].dropna()
    metrics = json.loads((btc_run / "metrics.json").read_text())
    assert len(signals) == metrics["signals"] and set(signals) <= {-1.0, 0.0, 1.0}
    assert features["probability"].notna().sum() >= metrics["predictions"]


def test_features_export_can_be_turned_off(tmp_path_factory: pytest.TempPathFactory) -> None:
    out = run(
        tmp_path_factory,
        "btc_rf",
        "data.bars=1500",
        "model.walk_forward.train_window=1000",
        "model.params.n_jobs=1",
        "outputs.features=false",
    )
    assert not (out / "features.parquet").exists()
    assert "not recorded: this run was made with outputs.features: false" in (
        out / "report.html"
    ).read_text(encoding="utf-8")


def _skip_without_chromium(what: str) -> None:
    if chromium() is None:
        pytest.skip(
            "Chromium is not installed (Debian: apt-get install chromium; .ci/run installs "
            f"it): {what} was not opened in a browser"
        )


@pytest.mark.slow
def test_the_report_in_a_real_browser(eth_run: Path) -> None:
    _skip_without_chromium("the report")
    seen = open_page(eth_run / "report.html", "report.png")
    assert seen.errors == []
    # nothing fetched but plotly.js, from the folder of runs
    assert seen.requests == [(eth_run.parent / plotly_file()).resolve().as_uri()]
    titles = [c["title"] for c in seen.result]
    assert titles == [
        "Price and trades (ETH/USDT)",
        "Equity against buy and hold, drawdown and exposure",
        "Model probability and the signal thresholds",
        "Timeline: folds, retrains, health, halts and the kill switch",
        "Rolling Sharpe and volatility",
        "Monitoring and the health thresholds",
        "Drift per feature (PSI)",
        "Monthly returns",
        "Trade returns",
        "Refusals by code, exits by reason",
    ]
    assert_titled(seen.result)
    for chart in seen.result:
        assert chart["marks"] > 0, f"{chart['title']}: nothing drawn"
    charts = by_title(seen.result)
    price = charts["Price and trades (ETH/USDT)"]
    assert price["candles"] > 0 and price["bars"] > 0  # the candles and the volume
    assert {"ema_20", "long entry", "exit"} <= set(price["legend"])  # an overlay, the trades
    assert {"macd_12_26", "rsi_14", "stoch_k_14"} <= set(price["legend"])  # lower panels
    assert price["axisTitles"]["y"] == "price" and price["axisTitles"]["y2"] == "volume"
    assert price["lines"] >= 5  # the EMA and the oscillators are drawn lines
    equity = charts["Equity against buy and hold, drawdown and exposure"]
    assert equity["menus"] >= 3  # linear, log, % return
    assert (ARTIFACTS / "report.png").stat().st_size > 50_000


@pytest.mark.slow
def test_a_zoom_of_one_chart_zooms_the_others(eth_run: Path) -> None:
    _skip_without_chromium("the report")
    linked = assert_linked_zoom(eth_run / "report.html", "report-zoomed.png")
    assert linked[:3] == [
        "Price and trades (ETH/USDT)",
        "Equity against buy and hold, drawdown and exposure",
        "Model probability and the signal thresholds",
    ]
    assert "Rolling Sharpe and volatility" in linked


def test_report_command_rewrites_the_report(btc_run: Path, capsys: pytest.CaptureFixture) -> None:
    """The command reads the run's files; the run drew its report from the frames it
    wrote (issue 47): the same page."""
    drawn_by_the_run = (btc_run / "report.html").read_bytes()
    (btc_run / "report.html").unlink()
    assert main(["report", str(btc_run)]) == 0
    assert capsys.readouterr().out == f"{btc_run / 'report.html'}\n"
    assert 100_000 < (btc_run / "report.html").stat().st_size < 1_000_000
    assert (btc_run / "report.html").read_bytes() == drawn_by_the_run
    assert not list(btc_run.glob(".report.html.*"))  # the temporary file was renamed


def test_a_table_is_taken_from_memory_only_as_it_reads_back(tmp_path: Path) -> None:
    seconds = pd.to_datetime([0, 60_000_000_000, 120_000_000_000], utc=True)
    for unit in ("ns", "us"):  # a CSV file's times read back as seconds, Parquet's as written
        frame = pd.DataFrame(
            {"timestamp": seconds.as_unit(unit), "x": [0.1, np.nan, -0.0], "n": [1, 2, 3]}
        )
        write_frame(tmp_path, "t.csv", frame)
        pd.testing.assert_frame_equal(as_read(frame, csv=True), csv_table(tmp_path / "t.csv"))
        write_parquet(tmp_path / "t.parquet", frame.set_index("timestamp"))
        read = _parquet(tmp_path / "t.parquet", ["timestamp", "x", "absent"])
        pd.testing.assert_frame_equal(as_read(frame, ["timestamp", "x", "absent"]), read)
    fraction = frame.assign(timestamp=seconds + pd.Timedelta(1, "ms"))  # CSV drops it
    text = frame.assign(n=["a", "b", "c"])
    no_number = frame.assign(x=np.nan)  # a CSV reader takes an empty column for text
    for other in (frame.iloc[1:], frame.iloc[:0], text, no_number):
        assert as_read(other) is None
    assert as_read(fraction, csv=True) is None
    pd.testing.assert_frame_equal(as_read(fraction), fraction)


def test_report_refuses_what_is_not_a_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert main(["report", str(tmp_path)]) == 2
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "strategy.yaml").write_text("name: x\n")
    assert main(["report", str(unfinished)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{tmp_path / 'missing'}: not a directory; give a run directory (runs/<name>-<time>)",
        f"{tmp_path}: not a run directory (no metrics.json and equity.csv, no journal.sqlite)",
        f"{unfinished}: no metrics.json and equity.csv; the run did not finish "
        "(still running, or killed)",
    ]


def test_report_of_a_failed_run_says_why(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    failed = tmp_path / "failed"
    failed.mkdir()
    journal = open_journal(failed / "journal.sqlite", RunIdentity("s", "failed", "backtest"))
    journal.append(RunFailed(error="RuntimeError: model exploded", wall_time=pd.Timestamp.now()))
    journal.close()
    assert main(["report", str(failed)]) == 2
    assert capsys.readouterr().err == (
        f"{failed}: the run failed (RuntimeError: model exploded), so it has no metrics.json "
        "and equity.csv; fix and run it again\n"
    )


def test_compare_prints_a_table_and_overlays_the_equity(
    btc_run: Path, eth_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "cmp.html"
    assert main(["compare", str(btc_run), str(eth_run), "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    # first what differs between the runs' settings, then what the runs did
    assert re.fullmatch(r"settings that differ +run +run", lines[0])
    settings = lines[1 : lines.index("")]
    assert re.fullmatch(r"name +btc_rf +eth_hgb_stops", settings[0])
    assert any(re.fullmatch(r"data\.symbol +BTC/USDT +ETH/USDT", x) for x in settings)
    assert any(re.fullmatch(r"data\.bars +3000 +12000", x) for x in settings)
    assert not any(x.startswith("seed ") and x.split()[1] == x.split()[2] for x in settings)
    rest = lines[lines.index("") + 1 :]
    assert re.fullmatch(r"strategy +btc_rf +eth_hgb_stops", rest[1])
    trades = [json.loads((d / "metrics.json").read_text())["trades"] for d in (btc_run, eth_run)]
    assert re.fullmatch(
        rf"trades +{trades[0]:,} +{trades[1]:,}", next(x for x in rest if x.startswith("trades "))
    )
    assert lines[-1] == f"equity curves: {out}"
    text = out.read_text(encoding="utf-8")
    assert text.count('"name":"run"') == 2 and "Plotly.newPlot" in text
    assert text.index("Settings that differ") < text.index("<h2>Figures</h2>")
    assert "<tr><th>data.symbol</th><td>BTC/USDT</td><td>ETH/USDT</td></tr>" in text
    # it loads the plotly.js the runs' reports share, not a copy of its own
    src = re.search(r"<script src='([^']+)'></script>", text)
    assert src is not None and len(text) < 1_000_000
    assert (out.parent / src.group(1)).resolve() == (btc_run.parent / plotly_file()).resolve()
    single = tmp_path / "single.html"
    assert main(["compare", str(btc_run), str(eth_run), "--out", str(single), "--single-file"]) == 0
    alone = single.read_text(encoding="utf-8")
    assert "<script src=" not in alone and len(alone) > 4_000_000  # a page to send on its own


def test_compare_writes_its_page_beside_the_first_run_and_says_where(
    btc_run: Path,
    eth_run: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    """Without --out: compare.html in the folder that holds the first run (its runs/),
    where its plotly.js is; never the current folder as such."""
    monkeypatch.chdir(tmp_path)
    assert main(["compare", str(btc_run), str(eth_run)]) == 0
    page = btc_run.parent / "compare.html"
    assert capsys.readouterr().out.splitlines()[-1] == f"equity curves: {page}"
    assert list(tmp_path.iterdir()) == []
    assert f"<script src='{plotly_file()}'></script>" in page.read_text(encoding="utf-8")
    assert main(["compare", str(btc_run), str(eth_run)]) == 0  # again: the page replaced


@pytest.mark.slow
def test_compare_html_in_a_real_browser(btc_run: Path, eth_run: Path, tmp_path: Path) -> None:
    _skip_without_chromium("compare.html")
    out = tmp_path / "compare.html"
    assert main(["compare", str(btc_run), str(eth_run), "--out", str(out)]) == 0
    seen = open_page(out, "compare.png")
    assert seen.errors == []
    assert seen.requests == [(btc_run.parent / plotly_file()).resolve().as_uri()]
    assert [c["title"] for c in seen.result] == ["Equity (100 = starting cash)"]
    assert_titled(seen.result)
    assert seen.result[0]["lines"] == 2


def test_compare_needs_two_runs(btc_run: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["compare", str(btc_run)]) == 2
    assert capsys.readouterr().err == "compare: give two run directories or more\n"


@settings(max_examples=examples(200), deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6) | st.just(float("nan")), min_size=1, max_size=3000),
    st.integers(4, 400),
)
def test_downsampling_keeps_every_bucket_extreme(values: list[float], points: int) -> None:
    y = np.array(values)
    kept = minmax_indices(y, points)
    assert np.all(np.diff(kept) > 0) and kept[0] == 0 and kept[-1] == len(y) - 1
    if len(y) <= points:
        assert len(kept) == len(y)
        return
    assert len(kept) <= points + 2
    finite = ~np.isnan(y)
    if finite.any():  # the extremes of the whole series are drawn at their own bars
        assert np.nanmax(y[kept]) == np.nanmax(y) and np.nanmin(y[kept]) == np.nanmin(y)
    buckets = points // 2
    size = -(-len(y) // buckets)
    for start in range(0, len(y), size):
        part = y[start : start + size]
        if np.isnan(part).all():
            continue
        inside = kept[(kept >= start) & (kept < start + size)]
        assert np.nanmax(y[inside]) == np.nanmax(part)
        assert np.nanmin(y[inside]) == np.nanmin(part)


def _reference_minmax(values: np.ndarray, points: int) -> np.ndarray:
    """The buckets padded with NaN to a rectangle: the code the in-place rows replaced."""
    n = len(values)
    if n <= points:
        return np.arange(n)
    buckets = max(1, points // 2)
    size = -(-n // buckets)
    padded = np.full(buckets * size, np.nan)
    padded[:n] = values
    rows = padded.reshape(buckets, size)
    missing = np.isnan(rows)
    low = np.where(missing, np.inf, rows).argmin(axis=1)
    high = np.where(missing, -np.inf, rows).argmax(axis=1)
    base = np.arange(buckets) * size
    picked = np.unique(np.concatenate(([0, n - 1], base + low, base + high)))
    return picked[picked < n]


@settings(max_examples=examples(300), deadline=None)
@given(
    st.lists(
        st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.5, float("inf"), float("-inf"), float("nan")])
        | st.floats(),
        min_size=1,
        max_size=3000,
    ),
    st.integers(4, 400),
)
def test_downsampling_picks_the_padded_buckets_bars(values: list[float], points: int) -> None:
    """The buckets read in place pick the bars the padded ones picked: the first of equal
    lows and highs (zeros of either sign, infinities), a NaN only in a bucket of NaN."""
    y = np.array(values)
    np.testing.assert_array_equal(minmax_indices(y, points), _reference_minmax(y, points))


@settings(max_examples=examples(300), deadline=None)
@given(
    st.lists(st.floats(-0.99, 10.0), min_size=1, max_size=50),
    st.integers(0, 3),
)
@example(returns=[6.0, -5e-324], ulps=0)  # a loss so small that its bin once started at 0
def test_the_trade_histogram_bins_any_returns_with_an_edge_at_zero(
    returns: list[float], ulps: int
) -> None:
    """Trades a float apart (two stop-losses at the same distance) once crashed numpy's bins."""
    near = np.array(returns)
    for _ in range(ulps):
        near = np.nextafter(near, np.inf)
    values = np.r_[returns, near]
    chart = _trade_returns_chart(pd.DataFrame({"return": values}))
    assert chart is not None
    winners, losers = chart.data
    bins = winners["xbins"]
    assert bins == losers["xbins"] and bins["size"] > 0
    pct = values * 100
    assert bins["start"] <= pct.min() and bins["end"] > pct.max()
    assert abs(round(bins["start"] / bins["size"]) * bins["size"] - bins["start"]) < 1e-9
    assert len(winners["x"]) + len(losers["x"]) == len(values)


def test_report_of_a_run_written_by_an_older_version(btc_run: Path, tmp_path: Path) -> None:
    """No features.parquet, monitoring.parquet, side, return or exit reason: still a page."""
    import shutil

    old = tmp_path / "old"
    shutil.copytree(btc_run, old)
    for name in ("features.parquet", "monitoring.parquet", "report.html"):
        (old / name).unlink()
    trades = pd.read_csv(old / "trades.csv")
    trades.drop(columns=["side", "holding_bars", "return", "exit_reason"]).to_csv(
        old / "trades.csv", index=False
    )
    assert main(["report", str(old)]) == 0
    text = (old / "report.html").read_text(encoding="utf-8")
    assert "Price and trades" in text and "Monitoring" not in text


def test_a_damaged_bars_file_is_named(
    btc_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(btc_run, damaged)
    (damaged / "bars.parquet").write_bytes(b"not parquet")
    assert main(["report", str(damaged)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{damaged / 'bars.parquet'}: not a parquet table (")
    assert err.count("\n") == 1


def test_a_text_column_is_taken_from_memory_only_where_it_reads_back(tmp_path: Path) -> None:
    """orders.csv's ids and reasons, trades.csv's times: the report takes them from the
    frames the run wrote (issue 47) where a CSV reader reads the same back."""
    seconds = pd.to_datetime([0, 60_000_000_000], utc=True)
    base = pd.DataFrame({"timestamp": seconds, "n": [1, 2], "entry_time": seconds})
    kept = base.assign(id=["run-1", "run-2"], reason=["ENTRY", "EXIT_SIGNAL"])
    write_frame(tmp_path, "t.csv", kept)
    pd.testing.assert_frame_equal(as_read(kept, csv=True), csv_table(tmp_path / "t.csv"))
    assert as_read(kept) is None  # Parquet: not promised
    for cells in (["1", "2"], ["", "x"], ["NA", "x"], ["true", "False"], ["nan", "-inf"]):
        assert as_read(base.assign(id=cells), csv=True) is None, cells
    assert as_read(base.assign(id=pd.Series(["x", None], dtype=object)), csv=True) is None


def test_every_chart_of_a_report_and_a_compare_page_is_written_as_plotly_would(
    btc_run: Path, eth_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each layout, built without plotly's object model, is the JSON ``go.Layout`` writes:
    one market, one with shorts, stops and monitors, and the page comparing them."""
    with plotly_layouts_checked(monkeypatch) as drawn:
        runs = [load_run(btc_run), load_run(eth_run)]
        for run in runs:
            render_report(run)
        compare_page(runs)
    assert drawn.count("Monthly returns") == 2
    assert any(t.startswith("Monitoring and the health") for t in drawn)
    assert drawn[-1] == "Equity (100 = starting cash)"
