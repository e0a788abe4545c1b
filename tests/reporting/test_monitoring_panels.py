"""The report's monitoring panels stay drawable whatever the number of symbols or metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradeloom.reporting.charted import CHARTED_SYMBOLS
from tradeloom.reporting.monitoring_charts import monitoring_chart
from tradeloom.reporting.price_chart import charted_symbols
from tradeloom.reporting.run_data import RunData

STRATEGY = {"monitoring": [{"kind": "rolling_auc", "window": 50}]}


def _run(columns: list[str]) -> RunData:
    index = pd.date_range("2024-01-01", periods=30, freq="h", tz="UTC", name="timestamp")
    values = np.random.default_rng(0).uniform(0.4, 0.6, (30, len(columns)))
    frame = pd.DataFrame(values, index=index, columns=columns).reset_index()
    empty = pd.DataFrame()
    return RunData(Path("run"), {}, empty, empty, STRATEGY, monitoring=frame)


def _domains(fig: dict) -> list[list[float]]:
    return [v["domain"] for k, v in fig.items() if k.startswith("yaxis")]


@pytest.mark.parametrize("symbols", [2, 50, 500])
def test_a_universe_has_a_panel_per_metric_and_a_menu_of_its_symbols(symbols: int) -> None:
    names = [f"S{k}/USDT" for k in range(symbols)]
    chart = monitoring_chart(_run([f"rolling_auc[{s}].auc" for s in names]))

    assert chart is not None
    assert _domains(chart.layout) == [[0.0, 1.0]]
    shown = names[:CHARTED_SYMBOLS]  # no trades: the first, in the universe's order
    (menu,) = chart.layout["updatemenus"]
    assert [b["label"] for b in menu["buttons"]] == shown
    lines = [t for t in chart.data if not isinstance(t["x"], list)]  # not a legend entry
    assert [t["name"] for t in lines] == [f"rolling_auc[{s}].auc" for s in shown]
    assert [t.get("visible", True) for t in lines] == [True] + [False] * (len(shown) - 1)
    thresholds = len(chart.data) - len(shown)  # the rolling AUC's warning and critical levels
    assert thresholds == 2
    last = menu["buttons"][-1]["args"][0]["visible"]
    assert last == [False] * (len(shown) - 1) + [True] + [True] * thresholds
    assert chart.note.startswith(
        f"the 50 most traded of {symbols} symbols (every one is in the tables); "
        if symbols > CHARTED_SYMBOLS
        else "one symbol at a time"
    )


def test_a_universe_charts_its_most_traded_symbols() -> None:
    names = [f"S{k}/USDT" for k in range(60)]
    run = _run([f"rolling_auc[{s}].auc" for s in names])
    traded = names[::-1][:55]  # S59 .. S5 traded, S5 the most
    trades = pd.DataFrame({"symbol": [s for k, s in enumerate(traded) for _ in range(k + 1)]})
    run = RunData(run.run_dir, {}, run.equity, trades, STRATEGY, monitoring=run.monitoring)

    assert charted_symbols(run, names) == names[5:55]  # ranked by trades, in universe order


def test_many_panels_of_one_market_keep_their_domains_on_the_page() -> None:
    columns = ["rolling_auc.auc"] + [f"m{k}.auc" for k in range(30)]
    chart = monitoring_chart(_run(columns))

    assert chart is not None
    domains = _domains(chart.layout)
    assert len(domains) == 31
    assert all(0.0 <= low < high <= 1.0 for low, high in domains)
    assert "updatemenus" not in chart.layout
