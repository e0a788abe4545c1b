"""A universe of 100 symbols with a monitor each: the run exits 0 and its report opens in
a real browser with the account's panels, one symbol's monitor at a time and the table of
trades by symbol (50 symbols' monitor panels once pushed the page's layout past drawing)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.reporting.browser import chromium
from tests.reporting.layout_checks import plotly_layouts_checked
from tests.reporting.page_checks import assert_titled, by_title, open_page, shared_plotly
from tradeloom.cli.main import main
from tradeloom.reporting.report import render_report
from tradeloom.reporting.run_data import load_run

SYMBOLS = [f"S{k:03d}/USDT" for k in range(100)]
BARS = 240

STRATEGY = """\
name: hundred
data: {{kind: parquet, path: universe.parquet, symbol_column: symbol, symbols: [{symbols}]}}
features: [{{kind: log_return, period: 1}}]
model: {{kind: precomputed, column: p_up}}
signal: {{kind: threshold, threshold: 0.2}}
risk: {{sizing: {{kind: fixed_fraction, fraction: 0.01}}}}
execution: {{kind: simulated, initial_cash: 100000, fee_bps: 5}}
monitoring: [{{kind: rolling_auc, window: 60, min_samples: 20}}]
"""


@pytest.fixture(scope="module")
def hundred_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hundred")
    rng = np.random.default_rng(9)
    times = pd.date_range("2024-01-01", periods=BARS, freq="h", tz="UTC", name="timestamp")
    parts = []
    for symbol in SYMBOLS:
        close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, BARS)))
        parts.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "open": close,
                    "high": close * 1.002,
                    "low": close * 0.998,
                    "close": close,
                    "volume": 1.0,
                    "p_up": rng.uniform(0.0, 1.0, BARS),
                },
                index=times,
            )
        )
    pd.concat(parts).reset_index().to_parquet(folder / "universe.parquet")
    listed = ", ".join(f'"{s}"' for s in SYMBOLS)
    (folder / "hundred.yaml").write_text(STRATEGY.format(symbols=listed), encoding="utf-8")
    out = folder / "runs" / "run"  # a folder of runs: its report loads the shared plotly.js
    assert main(["run", str(folder / "hundred.yaml"), "--out", str(out), "--quiet"]) == 0
    return out


@pytest.mark.slow
def test_a_hundred_symbol_report_in_a_real_browser(hundred_run: Path) -> None:
    text = (hundred_run / "report.html").read_text(encoding="utf-8")
    table = text[text.index("<h2>Trades</h2>") :]
    menu = re.search(r"<select class='trade-filter' data-key='symbol'[^>]*>(.*?)</select>", table)
    assert menu is not None
    traded = sorted(pd.read_csv(hundred_run / "trades.csv")["symbol"].unique())
    assert re.findall(r"<option value='([^']*)'", menu.group(1)) == ["", *traded]
    assert len(traded) > 50
    if chromium() is None:
        pytest.skip(
            "Chromium is not installed (Debian: apt-get install chromium; .ci/run installs "
            "it): the report was not opened in a browser"
        )

    seen = open_page(hundred_run / "report.html", "hundred-symbols-report.png")

    assert seen.errors == []
    assert seen.requests == shared_plotly(hundred_run / "report.html")  # plotly.js, nothing else
    assert_titled(seen.result)
    charts = by_title(seen.result)
    account = charts["Equity against equal weight, drawdown and exposure"]
    assert account["lines"] >= 4  # equity, equal weight, drawdown, exposure
    monitoring = charts["Monitoring and the health thresholds"]
    assert monitoring["menus"] >= 1 and monitoring["lines"] >= 1
    assert charts["Attribution by symbol"]["marks"] >= 50
    assert charts["Price and trades"]["menus"] >= 1


def test_every_chart_of_a_hundred_symbols_is_written_as_plotly_would(
    hundred_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A universe with a monitor per symbol: each layout, its many y axes included, is the
    JSON plotly's ``go.Layout`` writes."""
    with plotly_layouts_checked(monkeypatch) as drawn:
        render_report(load_run(hundred_run))
    assert "Monitoring and the health thresholds" in drawn
