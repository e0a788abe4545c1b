"""report.html of a universe: a menu of symbols over the price and probability charts, and
the P&L attribution by symbol, checked in the page's figures and in a real browser."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.reporting.browser import chromium
from tests.reporting.layout_checks import plotly_layouts_checked
from tests.reporting.page_checks import (
    assert_titled,
    by_title,
    open_page,
    page_figures,
    shared_plotly,
)
from tradeloom.cli.main import main
from tradeloom.reporting.report import render_report
from tradeloom.reporting.run_data import load_run

SYMBOLS = ["AAA/USDT", "BBB/USDT", "CCC/USDT"]

UNIVERSE = """\
name: three
seed: 5
data:
  kind: synthetic
  symbols: [AAA/USDT, BBB/USDT, CCC/USDT]
  timeframe: 1h
  bars: 900
features:
  - kind: log_return
    period: 1
  - kind: rsi
    window: 14
  - kind: bollinger
    window: 20
  - kind: cross_rank
    of: rsi_14
model:
  kind: sklearn
  estimator: sklearn.linear_model.LogisticRegression
  pooling: pooled
  label: {horizon: 2}
  walk_forward: {train_window: 300, retrain_every: 200}
signal:
  kind: threshold
  threshold: 0.02
risk:
  sizing: {kind: fixed_fraction, fraction: 0.2}
  max_holding_bars: 12
execution:
  kind: simulated
  initial_cash: 10000
  fee_bps: 5
"""


@pytest.fixture(scope="module")
def universe_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("universe")
    (folder / "three.yaml").write_text(UNIVERSE, encoding="utf-8")
    out = folder / "runs" / "run"  # a folder of runs: its report loads the shared plotly.js
    assert main(["run", str(folder / "three.yaml"), "--out", str(out), "--quiet"]) == 0
    return out


def test_the_price_chart_shows_one_symbol_at_a_time_chosen_in_a_menu(universe_run: Path) -> None:
    price = page_figures(universe_run / "report.html")["Price and trades"]
    (menu,) = price["layout"]["updatemenus"]
    assert [b["label"] for b in menu["buttons"]] == SYMBOLS
    traces = price["data"]
    closes = [i for i, t in enumerate(traces) if t["type"] == "candlestick"]
    assert len(closes) == len(SYMBOLS)
    # when the page opens, the first symbol's traces alone are visible
    assert [t["visible"] for t in traces] == [i < closes[1] for i in range(len(traces))]
    trades = pd.read_csv(universe_run / "trades.csv")
    assert len(trades) > 0
    bars = pd.read_parquet(universe_run / "bars.parquet")
    for s, (symbol, button) in enumerate(zip(SYMBOLS, menu["buttons"], strict=True)):
        shown = np.flatnonzero(button["args"][0]["visible"])
        stop = closes[s + 1] if s + 1 < len(closes) else len(traces)
        assert shown.tolist() == list(range(closes[s], stop)), symbol
        # its own candles (900 bars: one bar a candle) and its own trades' exits
        close = np.asarray(traces[closes[s]]["close"], dtype=np.float64)
        own_bars = bars[bars["symbol"] == symbol]
        np.testing.assert_array_equal(close, own_bars["close"].dropna())
        volume = next(traces[i] for i in shown if traces[i]["name"] == "volume")
        assert len(volume["y"]) == len(close)
        exits = [traces[i] for i in shown if traces[i]["name"] == "exit"]
        mine = trades[trades["symbol"] == symbol]
        assert sum(len(t["x"]) for t in exits) == len(mine), symbol
        if len(mine):
            np.testing.assert_allclose(sorted(exits[0]["y"]), sorted(mine["exit_price"]))


def test_the_probability_chart_has_the_same_menu(universe_run: Path) -> None:
    figure = page_figures(universe_run / "report.html")[
        "Model probability and the signal thresholds"
    ]
    (menu,) = figure["layout"]["updatemenus"]
    assert [b["label"] for b in menu["buttons"]] == SYMBOLS
    names = [t["name"] for t in figure["data"]]
    assert names[:3] == [f"{s} P(up)" for s in SYMBOLS]
    for s, button in enumerate(menu["buttons"]):
        visible = button["args"][0]["visible"]
        # one symbol's probabilities, and the thresholds' legend entries always
        assert visible == [i == s for i in range(3)] + [True] * (len(names) - 3)


def test_the_attribution_chart_adds_up_to_the_runs_pnl(universe_run: Path) -> None:
    metrics = json.loads((universe_run / "metrics.json").read_text())
    figure = page_figures(universe_run / "report.html")["Attribution by symbol"]
    pnl, fees = figure["data"]
    assert sorted(pnl["y"]) == SYMBOLS
    by_symbol = dict(zip(pnl["y"], pnl["x"], strict=True))
    for symbol in SYMBOLS:
        assert by_symbol[symbol] == pytest.approx(metrics["attribution"][symbol]["pnl"])
    assert sum(pnl["x"]) == pytest.approx(metrics["final_equity"] - 10_000, abs=1e-6)
    assert sum(fees["x"]) == pytest.approx(metrics["fees"], rel=1e-9)
    assert list(pnl["x"]) == sorted(pnl["x"])  # the largest contribution at the top


@pytest.mark.slow
def test_a_universe_report_in_a_real_browser(universe_run: Path) -> None:
    if chromium() is None:
        pytest.skip(
            "Chromium is not installed (Debian: apt-get install chromium; .ci/run installs "
            "it): the report was not opened in a browser"
        )
    seen = open_page(universe_run / "report.html", "universe-report.png")
    assert seen.errors == []
    assert seen.requests == shared_plotly(universe_run / "report.html")  # plotly.js, nothing else
    assert_titled(seen.result)
    charts = by_title(seen.result)
    price = charts["Price and trades"]
    assert price["menus"] >= 1 and price["candles"] > 0 and price["bars"] > 0
    assert "rsi_14" in price["legend"]  # an oscillator's panel, for the symbol shown
    # the bands over the candles, drawn on the price's axis
    assert {"bb_upper_20", "bb_middle_20", "bb_lower_20"} <= set(price["legend"])
    assert price["lines"] >= 4
    assert charts["Model probability and the signal thresholds"]["menus"] >= 1
    assert charts["Attribution by symbol"]["marks"] > 0


def test_the_trades_table_tells_the_symbols_apart(universe_run: Path) -> None:
    text = (universe_run / "report.html").read_text(encoding="utf-8")
    trades = pd.read_csv(universe_run / "trades.csv")
    table = text[text.index("<h2>Trades</h2>") :]
    assert "<th>symbol</th>" in table
    rows = re.findall(r"<tr class='trade' data-symbol='([^']+)'", table)
    assert rows == trades["symbol"].tolist()  # every trade, with its symbol, in order
    menu = re.search(r"<select class='trade-filter' data-key='symbol'[^>]*>(.*?)</select>", table)
    assert menu is not None
    assert re.findall(r"<option value='([^']*)'", menu.group(1)) == ["", *SYMBOLS]


@pytest.mark.slow
def test_the_trades_filter_in_a_real_browser(universe_run: Path) -> None:
    if chromium() is None:
        pytest.skip("Chromium is not installed: the trades filter was not tried")
    seen = open_page(
        universe_run / "report.html",
        "universe-trades-filtered.png",
        """(function () {
            var menu = document.querySelector("select.trade-filter[data-key='symbol']");
            menu.value = 'BBB/USDT';
            menu.dispatchEvent(new Event('change'));
            var rows = Array.from(document.querySelectorAll('table.trades tr.trade'));
            return rows.filter(function (r) { return r.style.display !== 'none'; })
                .map(function (r) { return r.dataset.symbol; });
        })()""",
    )
    trades = pd.read_csv(universe_run / "trades.csv")
    shown = seen.result
    assert shown == ["BBB/USDT"] * int((trades["symbol"] == "BBB/USDT").sum()) and shown


_PORTFOLIO_STRATEGY = """\
name: {name}
seed: {seed}
data:
  kind: synthetic
  symbol: {symbol}
  timeframe: 1h
  bars: 700
  start: "2024-01-01T00:00:00Z"
features:
  - kind: log_return
    period: 1
  - kind: rsi
    window: 14
model:
  kind: sklearn
  estimator: sklearn.linear_model.LogisticRegression
  label: {{horizon: 2}}
  walk_forward: {{train_window: 300, retrain_every: 200}}
signal:
  kind: threshold
  threshold: 0.02
risk:
  sizing: {{kind: fixed_fraction, fraction: 0.2}}
  max_holding_bars: 12
execution:
  kind: simulated
  initial_cash: 10000
  fee_bps: 5
"""


@pytest.fixture(scope="module")
def portfolio_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("portfolio")
    for name, seed, symbol in (("alpha", 3, "AAA/USDT"), ("beta", 4, "BBB/USDT")):
        text = _PORTFOLIO_STRATEGY.format(name=name, seed=seed, symbol=symbol)
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    (folder / "pair.yaml").write_text(
        "name: pair\ninitial_cash: 10000\nstrategies:\n"
        "  - {file: alpha.yaml, weight: 0.5}\n  - {file: beta.yaml, weight: 0.5}\n",
        encoding="utf-8",
    )
    out = folder / "run"
    assert main(["run", str(folder / "pair.yaml"), "--out", str(out), "--quiet"]) == 0
    return out


def test_a_portfolios_trades_table_has_strategy_and_symbol_filters(portfolio_run: Path) -> None:
    trades = pd.read_csv(portfolio_run / "trades.csv")
    assert set(trades["strategy"]) == {"alpha", "beta"}
    table = (portfolio_run / "report.html").read_text(encoding="utf-8")
    table = table[table.index("<h2>Trades</h2>") :]
    assert "<th>strategy</th><th>symbol</th>" in table
    rows = re.findall(r"<tr class='trade' data-strategy='([^']+)' data-symbol='([^']+)'", table)
    assert rows == list(zip(trades["strategy"], trades["symbol"], strict=True))
    for key, values in (("strategy", ["alpha", "beta"]), ("symbol", ["AAA/USDT", "BBB/USDT"])):
        menu = re.search(
            rf"<select class='trade-filter' data-key='{key}'[^>]*>(.*?)</select>", table
        )
        assert menu is not None and re.findall(r"<option value='([^']*)'", menu.group(1)) == [
            "",
            *values,
        ]


def test_a_portfolio_run_has_its_bars_and_tearsheet(portfolio_run: Path) -> None:
    bars = pd.read_parquet(portfolio_run / "bars.parquet")
    assert sorted(bars["symbol"].unique()) == ["AAA/USDT", "BBB/USDT"]
    assert len(bars) == 2 * 700
    sheet = json.loads((portfolio_run / "metrics.json").read_text())["tearsheet"]
    assert sheet["benchmark"] == "equal weight" and sheet["beta"] is not None
    figures = page_figures(portfolio_run / "report.html")
    price = figures["Price and trades"]
    assert sum(t["type"] == "candlestick" for t in price["data"]) == 2


def test_every_chart_of_a_universe_and_a_portfolio_is_written_as_plotly_would(
    universe_run: Path, portfolio_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The symbol menu, the attribution by symbol and by strategy: each layout is the JSON
    plotly's ``go.Layout`` writes."""
    with plotly_layouts_checked(monkeypatch) as drawn:
        for run in (universe_run, portfolio_run):
            render_report(load_run(run))
    assert "Price and trades" in drawn
    assert any("by strategy" in t for t in drawn) and any("by symbol" in t for t in drawn)
