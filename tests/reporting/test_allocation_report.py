"""What a user sees of the allocation layer: the report's target weights over time, target
against held weights at the last rebalance and the table of rebalances (in the page's
figures and in a real browser), ``metrics.json``'s turnover figures, and ``tradeloom
status``'s last rebalance, all read from the journal's ``allocation_decided`` rows."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tests.reporting.allocated_run import SYMBOLS, make_allocated_run
from tests.reporting.browser import chromium
from tests.reporting.page_checks import assert_titled, by_title, open_page, page_figures
from tradeloom.cli.main import main
from tradeloom.engine import status as status_module
from tradeloom.engine.status_rows import read_status
from tradeloom.journal import journal_path, read_frame
from tradeloom.reporting.allocation_figures import (
    MOST_SHOWN,
    AllocationHistory,
    allocation_history,
    refused_rebalances,
    top_columns,
)
from tradeloom.reporting.allocation_view import (
    last_rebalance_chart,
    rebalances_table,
    weights_chart,
)
from tradeloom.reporting.compare import compare_page, compare_table
from tradeloom.reporting.labels import NOT_APPLICABLE, TRADES_NOT_APPLICABLE, format_value
from tradeloom.reporting.run_data import load_run
from tradeloom.reporting.summary import format_summary

WEIGHTS = "Target weights over time"
LAST = "Target and held weights at the last rebalance"


@pytest.fixture(autouse=True)
def cli_logging() -> Iterator[None]:
    """Put back the logging configuration an in-process ``main`` call changes globally."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture(scope="module")
def allocated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_allocated_run(tmp_path_factory.mktemp("allocated"))


def _journaled(run: Path) -> pd.DataFrame:
    frame = read_frame(journal_path(run), "allocation_decided")
    assert len(frame) >= 5
    return frame


def _moved(row: pd.Series) -> float:
    if row["status"] != "ok":
        return 0.0
    return float(np.abs(np.array(row["weights"]) - np.array(row["held"])).sum())


def test_the_rebalances_are_the_journals_and_some_kept_the_last_weights(allocated: Path) -> None:
    frame = _journaled(allocated)
    history = load_run(allocated).allocations
    assert history is not None
    assert history.symbols == tuple(SYMBOLS)
    np.testing.assert_array_equal(history.bars, frame["bar"])
    assert list(history.statuses) == list(frame["status"])
    kept = frame["status"] != "ok"
    assert kept.any() and not kept.all()  # the still window failed, the others did not
    np.testing.assert_array_equal(history.kept, kept)
    for i, row in enumerate(frame.itertuples()):
        if row.weights:
            np.testing.assert_array_equal(history.target[i], row.weights)
        else:  # no feasible weights yet
            assert np.isnan(history.target[i]).all()
        np.testing.assert_array_equal(history.held[i], row.held)
    np.testing.assert_allclose(history.turnover, [_moved(r) for _, r in frame.iterrows()])


def test_metrics_count_the_held_rebalances_and_the_turnover(allocated: Path) -> None:
    frame = _journaled(allocated)
    figures = json.loads((allocated / "metrics.json").read_text())["allocation"]
    moved = [_moved(r) for _, r in frame.iterrows()]
    assert figures["rebalances"] == len(frame)
    assert figures["held"] == int((frame["status"] != "ok").sum()) == figures["failed"]
    assert figures["mean_turnover"] == pytest.approx(np.mean(moved), rel=1e-12)
    assert figures["total_turnover"] == pytest.approx(np.sum(moved), rel=1e-12)
    assert figures["mean_turnover"] > 0.0


def test_metrics_count_the_refused_rebalance_orders_and_say_trades_do_not_apply(
    allocated: Path,
) -> None:
    metrics = json.loads((allocated / "metrics.json").read_text())
    refused = sum(
        n
        for codes in metrics["refusals"].values()
        for purposes in codes.values()
        for purpose, n in purposes.items()
        if purpose == "REBALANCE"
    )
    assert metrics["allocation"]["refused_orders"] == refused
    assert metrics["trade_statistics"] == TRADES_NOT_APPLICABLE


def test_refused_rebalances_count_the_rebalance_purpose_of_every_stage() -> None:
    refusals = {
        "rejected": {"BELOW_MINIMUM": {"REBALANCE": 2, "EXIT_SIGNAL": 5}},
        "cut": {"INSUFFICIENT_CASH": {"REBALANCE": 3}},
        "cancelled": {"NO_ROUTE": {"ENTRY": 1, "REBALANCE": 1}},
    }
    assert refused_rebalances(refusals) == 6
    assert refused_rebalances({"rejected": {}, "cut": {}, "cancelled": {}}) == 0


def test_the_summary_says_trade_figures_do_not_apply_and_what_does(allocated: Path) -> None:
    """An allocating run's win rate, average trade and the like are ``n/a``: its positions
    are resized at each rebalance; the summary gives its rebalances and turnover."""
    metrics = json.loads((allocated / "metrics.json").read_text())
    figures = metrics["allocation"]
    lines = format_summary(metrics).splitlines()
    shown = {line[:28].strip(): line[28:].strip() for line in lines[1:]}
    assert shown["trades"] == f"{metrics['trades']:,} closed to zero"
    for label in ("win rate", "average trade", "profit factor", "SQN", "best trade"):
        assert shown[label] == NOT_APPLICABLE, label
    why = ", ".join(f"{n:,} {code}" for code, n in figures["failed_by_status"].items())
    assert why and shown["allocation"] == (
        f"risk_parity: {figures['rebalances']:,} rebalances, {figures['failed']:,} failed "
        f"({why}), 0 late"
    )
    assert shown["turnover"] == (
        f"{figures['mean_turnover']:.2%} of the equity a rebalance (mean), "
        f"{figures['total_turnover']:,.2f} in all"
    )
    assert shown["orders refused"] == f"{figures['refused_orders']:,}"
    # a run that does not allocate keeps its trade figures
    plain = {k: v for k, v in metrics.items() if k not in ("allocation", "trade_statistics")}
    assert format_value("win_rate", plain) == f"{metrics['win_rate']:.1%}"
    assert format_value("trades", plain) == f"{metrics['trades']:,}"


def test_compare_shows_the_allocation_figures_beside_a_run_that_does_not_allocate(
    allocated: Path,
) -> None:
    run = load_run(allocated)
    figures = run.metrics["allocation"]
    plain = {k: v for k, v in run.metrics.items() if k != "allocation"}
    other = replace(run, run_dir=allocated.parent / "plain", metrics=plain)
    table = compare_table([run, other]).splitlines()
    rows = {line.split("  ")[0]: line.split("  ")[1:] for line in table}
    cells = {label: [c.strip() for c in values if c.strip()] for label, values in rows.items()}
    assert cells["allocation rebalances"] == [f"{figures['rebalances']:,}", "-"]
    assert cells["allocation rebalance orders refused"] == [f"{figures['refused_orders']:,}", "-"]
    assert cells["win rate"] == [NOT_APPLICABLE, f"{plain['win_rate']:.1%}"]
    page = compare_page([run, other])
    assert "<th class='group' colspan='3'>Allocation</th>" in page
    # runs that do not allocate compare as before: no allocation rows
    assert not any(line.startswith("allocation") for line in compare_table([other]).splitlines())


def test_the_page_draws_the_journals_weights(allocated: Path) -> None:
    frame = _journaled(allocated)
    figures = page_figures(allocated / "report.html")
    weights = figures[WEIGHTS]["data"]
    lines = {t["name"]: t for t in weights if t["mode"] == "lines"}
    assert list(lines) == SYMBOLS
    last_ok = frame[frame["status"] == "ok"].iloc[-1]
    for k, symbol in enumerate(SYMBOLS):
        y = np.array(lines[symbol]["y"], dtype=np.float64)
        # each rebalance's target, held on to the run's last bar
        assert len(y) == len(frame) + 1
        assert y[-1] == y[-2] == last_ok["weights"][k]
    (marks,) = [t for t in weights if t["mode"] == "markers"]
    assert len(marks["x"]) == int((frame["status"] != "ok").sum())
    target, held = figures[LAST]["data"]
    last = frame.iloc[-1]
    assert target["y"] == held["y"] == SYMBOLS
    assert target["x"] == pytest.approx(list(last["weights"]))
    assert held["x"] == pytest.approx(list(last["held"]))
    text = (allocated / "report.html").read_text(encoding="utf-8")
    table = text[text.index("<h2>Rebalances</h2>") : text.index("<h2>Trades</h2>")]
    rows = re.findall(
        r"<tr><td>([\d,]+)</td><td>[^<]*</td><td>risk_parity</td><td[^>]*>(\w+)<", table
    )
    assert [(int(b.replace(",", "")), s) for b, s in rows] == list(
        zip(frame["bar"], frame["status"], strict=True)
    )


def test_a_run_without_allocation_shows_none_of_it(allocated: Path) -> None:
    run = replace(load_run(allocated), allocations=None)
    assert weights_chart(run) is None and last_rebalance_chart(run) is None
    assert rebalances_table(run) == ""


def test_a_row_of_another_universe_is_placed_by_symbol() -> None:
    """A rebalance journaled over other symbols (or another order) than the last one's:
    each weight goes to its symbol's column, a symbol it does not name is NaN."""
    frame = pd.DataFrame(
        {
            "seq": [1, 2],
            "bar": [10, 20],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02"], utc=True),
            "allocator": ["hrp", "hrp"],
            "status": ["ok", "ok"],
            "message": ["", ""],
            "weights": [[0.7, 0.3], [0.2, 0.5, 0.3]],
            "held": [[0.5, 0.5], [0.1, 0.6, 0.3]],
            "symbols": [["B", "A"], ["A", "B", "C"]],
        }
    )
    history = allocation_history(frame)
    assert history is not None and history.symbols == ("A", "B", "C")
    np.testing.assert_array_equal(history.target, [[0.3, 0.7, np.nan], [0.2, 0.5, 0.3]])
    np.testing.assert_array_equal(history.held, [[0.5, 0.5, np.nan], [0.1, 0.6, 0.3]])
    np.testing.assert_allclose(history.turnover, [0.4, 0.2])


def _history(target: np.ndarray) -> AllocationHistory:
    n, k = target.shape
    return AllocationHistory(
        symbols=tuple(f"S{j:02d}" for j in range(k)),
        bars=np.arange(n, dtype=np.int64) * 10,
        times=pd.date_range("2024-01-01", periods=n, freq="D", tz="UTC"),
        allocators=("hrp",) * n,
        statuses=("ok",) * n,
        messages=("",) * n,
        target=target,
        held=target * 0.9,
        turnover=np.zeros(n),
    )


def test_a_large_universe_draws_its_largest_weights_and_the_rest_summed(allocated: Path) -> None:
    rng = np.random.default_rng(2)
    target = rng.dirichlet(np.ones(40), size=6)
    target[:, 7] += 1.0  # the largest by far
    run = replace(load_run(allocated), allocations=_history(target))
    chart = weights_chart(run)
    assert chart is not None
    names = [t["name"] for t in chart.data]
    assert len(names) == MOST_SHOWN and names[-1] == "the other 26 summed"
    assert "S07" in names
    total = np.sum([np.asarray(t["y"], dtype=np.float64) for t in chart.data], axis=0)
    np.testing.assert_allclose(total[:-1], target.sum(axis=1))
    bars = last_rebalance_chart(run)
    assert bars is not None
    shown_target, shown_held = bars.data
    assert shown_target["y"][-1] == "the other 26"
    assert sum(shown_target["x"]) == pytest.approx(target[-1].sum())
    assert sum(shown_held["x"]) == pytest.approx(0.9 * target[-1].sum())


@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 4), st.integers(1, 30)),
        elements=st.floats(-1.0, 1.0, allow_nan=False),
    ),
    st.integers(2, 20),
)
def test_top_columns_keeps_the_largest_and_leaves_the_rest(values: np.ndarray, most: int) -> None:
    shown = top_columns(values, most)
    k = values.shape[1]
    assert shown == sorted(set(shown))
    if k <= most:
        assert shown == list(range(k))
        return
    assert len(shown) == most - 1
    size = np.abs(values).mean(axis=0)
    rest = [j for j in range(k) if j not in shown]
    assert size[shown].min() >= size[rest].max()


def test_status_shows_the_last_rebalance_target_against_held(
    allocated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = _journaled(allocated)
    last = frame.iloc[-1]
    capsys.readouterr()
    assert main(["status", str(allocated)]) == 0
    out = capsys.readouterr().out.splitlines()
    head = next(i for i, line in enumerate(out) if line.startswith("allocation "))
    when = pd.Timestamp(last["timestamp"]).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert out[head] == (
        f"allocation risk_parity, last rebalance bar {int(last['bar']):,} {when}: "
        + (
            "ok"
            if last["status"] == "ok"
            else f"{last['status']} ({last['message']}): the last weights hold"
        )
    )
    kept = int((frame["status"] != "ok").sum())
    assert out[head + 1].split() == [
        str(len(frame)),
        "rebalances,",
        str(kept),
        "kept",
        "the",
        "last",
        "weights",
    ]
    assert out[head + 2].split() == ["symbol", "target", "held", "now"]
    assert main(["status", str(allocated), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["allocation"]
    assert shown["held_at"] == "now" and shown["others"] == 0
    weights = {w["symbol"]: w for w in shown["weights"]}
    assert sorted(weights) == sorted(SYMBOLS)
    positions = pd.read_csv(allocated / "positions.csv")
    equity = pd.read_csv(allocated / "equity.csv")["equity"].iloc[-1]
    rows = out[head + 3 : head + 3 + len(SYMBOLS)]
    assert [r.split()[0] for r in rows] == sorted(
        SYMBOLS, key=lambda s: -max(abs(weights[s]["target"]), abs(weights[s]["held"]))
    )
    for k, symbol in enumerate(SYMBOLS):
        assert weights[symbol]["target"] == pytest.approx(last["weights"][k])
        held = positions[positions["symbol"] == symbol].iloc[-1]
        now = held["position"] * held["close"] / equity  # at its last close, of the equity
        assert weights[symbol]["held"] == pytest.approx(now, rel=1e-9)
        # held now is near the target it traded to (the price moved since, a little)
        assert weights[symbol]["held"] == pytest.approx(last["weights"][k], abs=0.05)


def test_status_past_its_shown_symbols_counts_the_rest(
    allocated: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = read_status(allocated).allocation
    assert whole is not None
    monkeypatch.setattr(status_module, "WEIGHTS_SHOWN", 3)
    part = read_status(allocated).allocation
    assert part is not None
    size = {w.symbol: max(abs(w.target or 0.0), abs(w.held or 0.0)) for w in whole.weights}
    largest = sorted(SYMBOLS, key=lambda s: (-size[s], SYMBOLS.index(s)))[:2]
    assert [w.symbol for w in part.weights] == [s for s in SYMBOLS if s in largest]
    rest = [w for w in whole.weights if w.symbol not in largest]
    assert part.others == 2
    assert part.others_target == pytest.approx(sum(w.target or 0.0 for w in rest))
    assert part.others_held == pytest.approx(sum(w.held or 0.0 for w in rest))
    capsys.readouterr()
    assert main(["status", str(allocated)]) == 0
    out = capsys.readouterr().out.splitlines()
    head = next(i for i, line in enumerate(out) if line.startswith("allocation "))
    more = out[head + 5].split()
    assert more[:2] == ["2", "more"]
    assert more[2:] == [f"{part.others_target:+.2%}", f"{part.others_held:+.2%}"]
    assert not out[head + 6].startswith("           ")  # the next part of the status


@pytest.mark.slow
def test_the_allocation_panels_in_a_real_browser(allocated: Path) -> None:
    if chromium() is None:
        pytest.skip(
            "Chromium is not installed (Debian: apt-get install chromium; .ci/run installs "
            "it): the report was not opened in a browser"
        )
    seen = open_page(allocated / "report.html", "allocation-report.png")
    assert seen.errors == []
    assert_titled(seen.result)
    charts = by_title(seen.result)
    assert charts[WEIGHTS]["lines"] >= len(SYMBOLS)
    assert charts[WEIGHTS]["linked"]
    assert charts[LAST]["bars"] == 2 * len(SYMBOLS)
