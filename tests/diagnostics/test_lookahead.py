"""``tradeloom check-lookahead``: the future changes, the past must not move.

Every built-in feature kind (enumerated from the registry, so a new one is covered the
day it is registered) passes the check together with a walk-forward model, the signal
rule, sizing, a risk rule, the simulated venue and a monitor; an allocation passes
with cuts at its rebalances. Deliberately leaky components
(tests/fixtures/plugins/leaky_feature.py and leaky_rules.py) are caught,
each at the first component and bar that looked ahead, with the exact message a user
reads. The command's exit codes are checked through the real CLI.
"""

from __future__ import annotations

import functools
import math
import re
import subprocess
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from tests import builders, forkserver
from tests.builders import PRECOMPUTED, START, strategy
from tests.plugins.features.llm_stand_in import text_llm_keys
from tradeloom.backtest.run import run_strategy
from tradeloom.diagnostics.lookahead import (
    ALTERATIONS,
    Finding,
    LookaheadReport,
    check_lookahead,
    cut_points,
    rebalance_cuts,
    replace_after,
    truncate_after,
)
from tradeloom.domain import Bars
from tradeloom.engine.wiring import build_pipeline
from tradeloom.errors import UserError
from tradeloom.journal import RUN_KINDS, read_rows
from tradeloom.plugins.features.cross import CROSS_KINDS
from tradeloom.plugins.manager import BUILTIN_PLUGINS, load_plugins
from tradeloom.schemas import load_strategy
from tradeloom.time.timeframes import format_timestamp

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "plugins"
HOUR = pd.Timedelta(hours=1)
N_BARS = 300
CUTS = [74, 149, 224]  # cut_points(300, 0, 3): the precomputed model predicts from bar 0

FEATURE_KEYS: dict[str, dict[str, Any]] = {
    "lags": {"lags": 2},
    "lexicon": {"of": "news", "lexicon": "words.csv", "window": "6h", "half_life": "2h"},
    "text_embedding": {"of": "news", "knowledge_cutoff": "2020-01", "dimensions": 64},
    "text_llm": text_llm_keys(window="6h"),  # a stand-in server answers each text by its words
    "series": {"of": "mood", "transform": "zscore", "window": 12},
    "book_imbalance": {"levels": 2},
    "book_depth": {"within_bps": 15},
}
"""Keys for built-in feature kinds that cannot be built from their defaults alone.

A kind with an ``of`` key (it transforms an earlier column) comes after the others and
gets the first of their columns unless its ``of`` is listed here (``series`` reads the
auxiliary series ``mood`` of `_builtin_doc`'s data, with a publication delay; the book
kinds read its ``order_book``, published 20 minutes after each snapshot).
"""


@pytest.fixture(autouse=True)
def fixture_plugins_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the test plugins in tests/fixtures/plugins importable by module name."""
    monkeypatch.syspath_prepend(str(FIXTURES))


# --- strategies over hand-made bars ------------------------------------------------------


def rising(n: int = N_BARS) -> np.ndarray:
    """Closes that rise every bar: the next close is always higher."""
    return 100.0 + np.arange(n, dtype=float)


def random_walk(n: int = N_BARS, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))


def alternating(n: int = N_BARS) -> np.ndarray:
    """p_up 0.9 at even bars, 0.1 at odd ones: long-only, an entry at every even bar."""
    return np.where(np.arange(n) % 2 == 0, 0.9, 0.1)


write_bars = functools.partial(builders.write_bars, wick=0.5, volume=10.0)
"""Write hourly bars from START with their ``p_up``; the open is the previous close."""


PEEK: dict[str, Any] = {
    "name": "peek",
    "plugins": ["leaky_feature", "leaky_rules"],
    **PRECOMPUTED,
    "features": [{"kind": "log_return", "period": 1}, {"kind": "close_tape"}],
    "signal": {"threshold": 0.5},
    "execution": {"kind": "simulated", "initial_cash": 10_000.0, "fill": "next_open"},
}
"""The overrides of `strategy` every test here starts from: a strategy over ``bars.csv``."""


def strategy_doc(**sections: Any) -> dict[str, Any]:
    """Return `PEEK`'s strategy document with each keyword's section overridden."""
    return strategy(PEEK, **sections)


def write_strategy(folder: Path, doc: dict[str, Any]) -> Path:
    path = folder / "strategy.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def check(path: Path, **options: Any) -> LookaheadReport:
    config, _ = load_strategy(path)
    return check_lookahead(config, **options)


def plugin_of(layer: str, kind: str) -> str:
    registered = load_plugins([], entry_points=False).registry.get(layer, kind)
    assert registered is not None
    return registered.plugin.name


def at(bar: int) -> str:
    return format_timestamp(START + bar * HOUR)


# --- cut points and altered bars ---------------------------------------------------------


def test_cut_points_are_spread_over_the_bars_after_the_first_prediction() -> None:
    assert cut_points(N_BARS, 0, 3) == CUTS
    assert cut_points(20_000, 3028, 3) == [7270, 11513, 15756]
    assert cut_points(3000, 1028, 1) == [2013]
    # few bars left: fewer, distinct points, each with a bar after it
    assert cut_points(10, 7, 5) == [7, 8]


def test_cut_points_need_a_bar_after_the_first_prediction() -> None:
    with pytest.raises(
        UserError,
        match=r"^check-lookahead: the data has 100 bars and the first prediction is at bar 99; "
        r"no bar after it is left to alter \(use more bars\)$",
    ):
        cut_points(100, 99, 3)
    with pytest.raises(ValueError, match=r"^points must be >= 1, was 0$"):
        cut_points(100, 0, 0)


def _bars(n: int = 200) -> Bars:
    close = random_walk(n)
    frame = pd.DataFrame(
        {
            "open": np.r_[100.0, close[:-1]],
            "high": close * 1.01,
            "low": close * 0.98,
            "close": close,
            "volume": np.linspace(1.0, 5.0, n),
            "p_up": np.linspace(0.0, 1.0, n),
        },
        index=pd.date_range(START, periods=n, freq="1h", name="timestamp"),
    )
    frame["high"] = frame[["open", "high"]].max(axis=1)
    return Bars(frame=frame, symbol="BTC/USDT", timeframe="1h", timeframe_seconds=3600)


def test_truncate_after_keeps_the_bars_up_to_the_cut() -> None:
    bars = _bars()
    cut = truncate_after(bars, 120)
    pd.testing.assert_frame_equal(cut.frame, bars.frame.iloc[:121])
    assert (cut.symbol, cut.timeframe, cut.timeframe_seconds) == ("BTC/USDT", "1h", 3600)


def test_replace_after_keeps_the_past_and_makes_another_plausible_future() -> None:
    bars = _bars()
    t = 120

    altered = replace_after(bars, t, np.random.default_rng(1)).frame
    again = replace_after(bars, t, np.random.default_rng(1)).frame
    other = replace_after(bars, t, np.random.default_rng(2)).frame

    pd.testing.assert_frame_equal(altered, again)  # seeded: the same check twice
    pd.testing.assert_frame_equal(altered.iloc[: t + 1], bars.frame.iloc[: t + 1])
    assert altered.index.equals(bars.frame.index)
    assert altered["p_up"].equals(bars.frame["p_up"])  # other columns are kept
    future = altered.iloc[t + 1 :]
    for column in ("open", "high", "low", "close", "volume"):
        assert (future[column] != bars.frame[column].iloc[t + 1 :]).all(), column
        assert (future[column] != other[column].iloc[t + 1 :]).all(), column
        assert (future[column] > 0).all() and np.isfinite(future[column]).all(), column
    assert (future["high"] >= future[["open", "close"]].max(axis=1)).all()
    assert (future["low"] <= future[["open", "close"]].min(axis=1)).all()
    # a continuation: the first new open is near bar t's close, the walk is not wild
    assert future["open"].iloc[0] == pytest.approx(bars.frame["close"].iloc[t], rel=0.01)
    returns = np.diff(np.log(future["close"].to_numpy()))
    assert returns.std() == pytest.approx(0.01, rel=0.5)


# --- honest strategies pass --------------------------------------------------------------


def _builtin_feature_sections() -> list[dict[str, Any]]:
    """One section per built-in feature kind, each with its own column names."""
    registry = load_plugins([], entry_points=False).registry
    builtins = [rc for rc in registry.components("features") if rc.plugin.name in BUILTIN_PLUGINS]
    sections: list[dict[str, Any]] = []
    named: list[str] = []

    def consumer_last(rc: Any) -> tuple[bool, str]:
        return ("of" in rc.component.params.model_fields, rc.component.kind)

    for rc in sorted(builtins, key=consumer_last):
        kind, fields = rc.component.kind, rc.component.params.model_fields
        if kind in CROSS_KINDS:  # they need several symbols: this strategy trades one
            continue
        keys = dict(FEATURE_KEYS.get(kind, {}))
        if "of" in fields and "of" not in keys:
            keys["of"] = named[0]
        missing = [k for k, f in fields.items() if f.is_required() and k not in keys]
        assert not missing, (
            f"built-in features kind '{kind}' needs keys {missing}: add them to FEATURE_KEYS"
        )
        if "name" in fields:  # its own column name: no two kinds clash
            keys["name"] = f"{kind}_x"
            named.append(keys["name"])
        sections.append({"kind": kind, **keys})
    return sections


def write_mood(folder: Path) -> None:
    """A series stamped every 40 minutes from 2023-01-01 (the synthetic bars' start)."""
    times = pd.date_range("2023-01-01", periods=1500, freq="40min", tz="UTC")
    values = np.random.default_rng(2).normal(size=len(times)).round(3)
    pd.DataFrame({"timestamp": times, "mood": values}).to_csv(folder / "mood.csv", index=False)
    write_book(folder)
    write_news(folder)


def write_news(folder: Path) -> None:
    """Headlines every 70 minutes from 2023-01-01, published 30 minutes later, and a
    lexicon that scores them."""
    times = pd.date_range("2023-01-01", periods=900, freq="70min", tz="UTC")
    texts = [("good", "bad news", "not good", "quiet")[i % 4] for i in range(len(times))]
    pd.DataFrame({"timestamp": times, "text": texts}).to_csv(folder / "news.csv", index=False)
    (folder / "words.csv").write_text("term,weight\ngood,1\nbad,-1\n", encoding="utf-8")


def write_book(folder: Path) -> None:
    """A recorded book of three levels every 50 minutes from 2023-01-01, leaning at random."""
    rng = np.random.default_rng(4)
    times = pd.date_range("2023-01-01", periods=1100, freq="50min", tz="UTC")
    mid = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, len(times))))
    table: dict[str, Any] = {"timestamp": times}
    for level in range(3):
        half = mid * (0.0005 + 0.001 * level)
        table[f"bid_price_{level}"] = (mid - half).round(4)
        table[f"bid_size_{level}"] = rng.uniform(0.1, 3, len(times)).round(3)
        table[f"ask_price_{level}"] = (mid + half).round(4)
        table[f"ask_size_{level}"] = rng.uniform(0.1, 3, len(times)).round(3)
    pd.DataFrame(table).to_parquet(folder / "book.parquet", index=False)


def _builtin_doc() -> dict[str, Any]:
    return {
        "name": "all_builtins",
        "seed": 5,
        "data": {
            "kind": "synthetic",
            "bars": 900,
            "timeframe": "1h",
            "auxiliary": [
                {"name": "mood", "kind": "file", "path": "mood.csv", "available_after": "90m"},
                {"name": "news", "kind": "text", "path": "news.csv", "available_after": "30m"},
            ],
            "order_book": {"path": "book.parquet", "available_after": "20m"},
        },
        "features": _builtin_feature_sections(),
        "model": {
            "kind": "sklearn",
            "estimator": "sklearn.linear_model.LogisticRegression",
            "scaler": "standard",
            "label": {"horizon": 2},
            "walk_forward": {"train_window": 200, "retrain_every": 60},
        },
        "signal": {"kind": "threshold", "threshold": 0.04, "min_interval": 2},
        "risk": {
            "sizing": {"kind": "kelly", "fraction": 0.5, "avg_win": 0.02, "avg_loss": 0.02},
            "rules": [{"kind": "drawdown_halt", "max_drawdown": 0.5}],
            "max_holding_bars": 6,
            "stop_loss": 0.01,  # stops trigger inside a bar, from that bar's high and low
            "take_profit": 0.015,
        },
        "execution": {
            "kind": "simulated",
            "fill": "next_open",
            "slippage_bps": 5,
            "fee_bps": 10,
            "allow_short": True,
        },
        "monitoring": [
            {
                "kind": "rolling_auc",
                "window": 50,
                "min_samples": 20,
                "warning_below": 0.55,
                "critical_below": 0.45,
            }
        ],
    }


@pytest.mark.slow
def test_every_built_in_feature_kind_passes_with_every_layer_at_work(tmp_path: Path) -> None:
    doc = _builtin_doc()
    write_mood(tmp_path)
    path = write_strategy(tmp_path, doc)
    lines: list[str] = []

    report = check(path, progress=lines.append)

    assert report.finding is None, report.finding.message
    n_features = len(doc["features"])
    assert report.components == n_features + 6  # model signal sizing rule venue monitor
    assert report.summary == f"no look-ahead found (3 cut points, {n_features + 6} components)"
    assert lines == list(report.lines)
    assert len(lines) == 1 + 2 * len(report.cuts)
    # the cuts fall where everything is at work: the journal up to the first cut holds
    # every kind of decision the check compares
    config, plugins = load_strategy(path)
    outcome = run_strategy(build_pipeline(config), plugins, out=tmp_path / "run")
    first = report.cuts[0]
    rows = list(read_rows(outcome.run_dir / "journal.sqlite"))
    early = Counter(row.kind for row in rows if 0 <= row.bar <= first)
    for kind in ("model_trained", "signal", "risk_decision", "order", "fill", "health"):
        assert early[kind] > 0, (kind, early)
    # a fold trained before a cut predicts past it: its predict_end is compared clipped
    folds = [row.values for row in rows if row.kind == "model_trained"]
    assert any(f["predict_start"] <= t < f["predict_end"] for f in folds for t in report.cuts)
    assert re.fullmatch(
        rf"reference: 900 bars, first prediction at bar \d+; cut points "
        rf"{', '.join(map(str, report.cuts))}",
        lines[0],
    )


def test_an_honest_strategy_passes_even_with_an_order_decided_at_each_cut(
    tmp_path: Path,
) -> None:
    # An entry or exit at every bar: each cut bar decides an order that the truncated
    # run cannot fill (it expires at the end of the data) and the reference fills.
    write_bars(tmp_path, random_walk(), alternating())
    path = write_strategy(tmp_path, strategy_doc())

    report = check(path, points=3)

    assert report.finding is None, report.finding.message
    assert report.cuts == tuple(CUTS)
    assert report.lines[1:] == tuple(
        f"bars after {t} ({at(t)}) {alteration}: 2 feature columns, {t + 1} predictions "
        f"and {rows} journal rows at bars <= {t} unchanged"
        for t, rows in zip(CUTS, _journal_rows(tmp_path, path), strict=True)
        for alteration in ("truncated", "replaced")
    )


def _journal_rows(folder: Path, path: Path) -> list[int]:
    """Rows the check compares up to each cut: every row but run and data_loaded."""
    config, plugins = load_strategy(path)
    outcome = run_strategy(build_pipeline(config), plugins, out=folder / "rows")
    rows = [
        r
        for r in read_rows(outcome.run_dir / "journal.sqlite")
        if r.kind not in RUN_KINDS | {"data_loaded"}
    ]
    return [sum(1 for r in rows if r.bar <= t) for t in CUTS]


# --- leaky components are caught and named -----------------------------------------------


def test_a_feature_that_reads_the_next_bar_is_caught_at_the_cut(tmp_path: Path) -> None:
    close = random_walk()
    write_bars(tmp_path, close, alternating())
    features = [{"kind": "log_return", "period": 1}, {"kind": "next_return"}]
    path = write_strategy(tmp_path, strategy_doc(features=features))
    t = CUTS[0]
    value = math.log(close[t + 1] / close[t])

    finding = check(path).finding

    assert finding is not None
    assert (finding.layer, finding.bar, finding.cut, finding.alteration) == (
        "features",
        t,
        t,
        "truncated",
    )
    assert re.match(
        rf"^look-ahead: features\.1 \(kind next_return, plugin leaky_feature\) column "
        rf"next_return_1 at bar 74 \(2024-01-04T02:00Z\) changed from {value:.6g} to nan "
        rf"when bars after 74 were truncated$",
        finding.message,
    )


def test_a_whole_series_zscore_is_caught_and_the_feature_using_it_is_not_blamed(
    tmp_path: Path,
) -> None:
    close = random_walk()
    write_bars(tmp_path, close, alternating())
    features = [
        {"kind": "log_return", "period": 1},
        {"kind": "global_zscore"},
        {"kind": "lags", "of": "global_zscore", "lags": 1},  # leaks too, by using it
    ]
    path = write_strategy(tmp_path, strategy_doc(features=features))
    t = CUTS[0]
    whole, kept = close, close[: t + 1]
    before = (whole[0] - whole.mean()) / whole.std()
    after = (kept[0] - kept.mean()) / kept.std()

    finding = check(path).finding

    assert finding is not None
    assert re.match(
        rf"^look-ahead: features\.1 \(kind global_zscore, plugin leaky_feature\) column "
        rf"global_zscore at bar 0 \(2024-01-01T00:00Z\) changed from {before:.6g} to "
        rf"{after:.6g} when bars after 74 were truncated$",
        finding.message,
    )


def test_a_model_that_reads_the_future_is_caught(tmp_path: Path) -> None:
    close = random_walk()
    write_bars(tmp_path, close, alternating())
    path = write_strategy(tmp_path, strategy_doc(model={"kind": "oracle"}))
    t = CUTS[0]
    p = 0.9 if close[t + 1] > close[t] else 0.1

    finding = check(path).finding

    assert finding is not None
    assert finding.message == (
        f"look-ahead: model (kind oracle, plugin leaky_rules) probability at bar 74 "
        f"(2024-01-04T02:00Z) changed from {p} to nan when bars after 74 were truncated"
    )


def test_a_signal_rule_that_peeks_is_caught_at_its_signal(tmp_path: Path) -> None:
    write_bars(tmp_path, random_walk(), np.full(N_BARS, 0.6))
    path = write_strategy(tmp_path, strategy_doc(signal={"kind": "peeking_signal"}))

    finding = check(path).finding

    assert finding is not None
    assert finding.message == (
        "look-ahead: signal (kind peeking_signal, plugin leaky_rules) journal row signal "
        "at bar 74 (2024-01-04T02:00Z) disappeared when bars after 74 were truncated"
    )


def test_a_risk_rule_that_peeks_is_caught_at_its_decision(tmp_path: Path) -> None:
    # The closes always rise: with the future known the rule lets every entry through;
    # at the last bar of the truncated run it cannot see a higher close and rejects.
    write_bars(tmp_path, rising(), alternating())
    risk = {
        "sizing": {"kind": "fixed_fraction", "fraction": 0.5},
        "rules": [{"kind": "peeking_limit"}],
    }
    path = write_strategy(tmp_path, strategy_doc(risk=risk))
    sizing = plugin_of("sizing", "fixed_fraction")

    finding = check(path).finding

    assert finding is not None
    assert finding.message == (
        f"look-ahead: risk.sizing (kind fixed_fraction, plugin {sizing}) or risk.rules.0 "
        "(kind peeking_limit, plugin leaky_rules) journal row risk_decision at bar 74 "
        "(2024-01-04T02:00Z) changed (outcome from accepted to rejected) when bars after 74 "
        "were truncated"
    )


def test_a_venue_that_peeks_is_caught_at_its_fill(tmp_path: Path) -> None:
    close = rising()
    write_bars(tmp_path, close, alternating())
    execution = {"kind": "peeking_venue", "initial_cash": 10_000.0, "fill": "next_open"}
    path = write_strategy(tmp_path, strategy_doc(execution=execution))
    t = CUTS[0]
    open_t = close[t - 1]  # the exit decided at bar 73 fills at bar 74's open

    finding = check(path).finding

    assert finding is not None
    assert finding.message == (
        "look-ahead: execution (kind peeking_venue, plugin leaky_rules) journal row fill at "
        f"bar 74 (2024-01-04T02:00Z) changed (price from {open_t * 1.001:.6g} to "
        f"{open_t:.6g}) when bars after 74 were truncated"
    )


def test_a_leak_is_found_by_replacing_the_future_when_truncating_hides_it(
    tmp_path: Path,
) -> None:
    # The closes always fall: with the future known the rule rejects every entry, and
    # with no bar left it rejects too. Truncation changes nothing; another future does.
    close = 400.0 - np.arange(N_BARS, dtype=float)
    write_bars(tmp_path, close, np.full(N_BARS, 0.9))  # a long signal, an entry, every bar
    risk = {
        "sizing": {"kind": "fixed_fraction", "fraction": 0.5},
        "rules": [{"kind": "peeking_limit"}],
    }
    path = write_strategy(tmp_path, strategy_doc(risk=risk))
    sizing = plugin_of("sizing", "fixed_fraction")

    # The replacement markets are seeded: with seed 1 the close after bar 74 rises (with
    # seed 0 the three replaced futures happen to fall at first, as the original does).
    assert check(path, seed=0).finding is None

    finding = check(path, seed=1).finding

    assert finding is not None
    assert finding.message == (
        f"look-ahead: risk.sizing (kind fixed_fraction, plugin {sizing}) or risk.rules.0 "
        "(kind peeking_limit, plugin leaky_rules) journal row risk_decision at bar 74 "
        "(2024-01-04T02:00Z) changed (outcome from rejected to accepted) when bars after 74 "
        "were replaced"
    )


def test_a_finding_is_one_line() -> None:
    finding = Finding(
        layer="features",
        component="features.2 (kind future_return, plugin example)",
        subject="column future_return_1",
        bar=1234,
        timestamp=pd.Timestamp("2024-03-01T04:00Z"),
        change="changed from 0.00123 to nan",
        cut=1240,
        alteration="truncated",
    )
    assert finding.message == (
        "look-ahead: features.2 (kind future_return, plugin example) column future_return_1 "
        "at bar 1234 (2024-03-01T04:00Z) changed from 0.00123 to nan when bars after 1240 "
        "were truncated"
    )


# --- the command -------------------------------------------------------------------------


def tradeloom(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m tradeloom.cli.main ARGS`` with the fixture plugins importable."""
    return forkserver.tradeloom(*args, cwd=cwd, pythonpath=FIXTURES)


def test_the_command_exits_0_and_prints_each_check(tmp_path: Path) -> None:
    write_bars(tmp_path, random_walk(), alternating())
    write_strategy(tmp_path, strategy_doc())

    proc = tradeloom("check-lookahead", "strategy.yaml", "--points", "2", cwd=tmp_path)

    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "reference: 300 bars, first prediction at bar 0; cut points 99, 199"
    for line, (t, alteration) in zip(
        lines[1:-1],
        [(99, "truncated"), (99, "replaced"), (199, "truncated"), (199, "replaced")],
        strict=True,
    ):
        assert re.fullmatch(
            rf"bars after {t} \({re.escape(at(t))}\) {alteration}: 2 feature columns, "
            rf"{t + 1} predictions and \d+ journal rows at bars <= {t} unchanged",
            line,
        ), line
    assert lines[-1] == "no look-ahead found (2 cut points, 6 components)"


def test_the_command_exits_1_and_names_the_leaky_component(tmp_path: Path) -> None:
    write_bars(tmp_path, rising(), alternating())
    features = [{"kind": "log_return", "period": 1}, {"kind": "next_return"}]
    write_strategy(tmp_path, strategy_doc(features=features))

    proc = tradeloom("check-lookahead", "strategy.yaml", cwd=tmp_path)

    assert (proc.returncode, proc.stderr) == (1, ""), proc.stderr
    value = math.log(175.0 / 174.0)
    assert proc.stdout.splitlines() == [
        "reference: 300 bars, first prediction at bar 0; cut points 74, 149, 224",
        "look-ahead: features.1 (kind next_return, plugin leaky_feature) column next_return_1 "
        f"at bar 74 (2024-01-04T02:00Z) changed from {value:.6g} to nan when bars after 74 "
        "were truncated",
    ]


def test_the_command_exits_2_on_invalid_input(tmp_path: Path) -> None:
    write_bars(tmp_path, rising(), alternating())
    write_strategy(tmp_path, strategy_doc(signal={"kind": "treshold", "threshold": 0.5}))

    proc = tradeloom("check-lookahead", "strategy.yaml", cwd=tmp_path)

    assert proc.returncode == 2 and proc.stdout == ""
    assert re.fullmatch(
        r"strategy\.yaml:\d+:9 signal\.kind: unknown signal kind 'treshold' \(did you mean "
        r"'threshold'\?\); installed kinds: .*\n",
        proc.stderr,
    ), proc.stderr

    overridden = tradeloom(
        "check-lookahead",
        "strategy.yaml",
        "--set",
        "signal.kind=threshold",
        "--set",
        "data.path=nothere.csv",
        cwd=tmp_path,
    )
    assert (overridden.returncode, overridden.stdout) == (2, "")
    assert overridden.stderr == f"--set data.path: file not found: {tmp_path / 'nothere.csv'}\n"

    points = tradeloom("check-lookahead", "strategy.yaml", "--points", "0", cwd=tmp_path)
    assert (points.returncode, points.stdout) == (2, "")
    assert points.stderr.splitlines()[-1] == (
        "tradeloom check-lookahead: error: argument --points: must be >= 1, was 0"
    )


def test_the_command_says_when_the_data_is_too_short(tmp_path: Path) -> None:
    p = np.full(N_BARS, np.nan)
    p[-1] = 0.9
    write_bars(tmp_path, rising(), p)
    write_strategy(tmp_path, strategy_doc())

    proc = tradeloom("check-lookahead", "strategy.yaml", cwd=tmp_path)

    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        "check-lookahead: the data has 300 bars and the first prediction is at bar 299; "
        "no bar after it is left to alter (use more bars)\n"
    )


@pytest.mark.slow
def test_the_default_strategy_passes_shortened(tmp_path: Path) -> None:
    overrides = [
        "data.bars=1500",
        "model.walk_forward.train_window=500",
        "model.walk_forward.retrain_every=250",
        "model.params.n_estimators=5",
        "model.params.n_jobs=1",
    ]
    args = [a for o in overrides for a in ("--set", o)]

    proc = tradeloom("check-lookahead", ROOT / "strategies" / "btc_rf.yaml", *args, cwd=tmp_path)

    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("reference: 1,500 bars, first prediction at bar ")
    assert len(lines) == 8
    assert all(line.endswith("unchanged") for line in lines[1:-1])
    assert lines[-1] == "no look-ahead found (3 cut points, 13 components)"


# --- auxiliary series ---------------------------------------------------------------------


def _mood_doc() -> dict[str, Any]:
    doc = strategy_doc(
        plugins=[],
        features=[{"kind": "log_return", "period": 1}, {"kind": "series", "of": "mood"}],
    )
    doc["data"]["auxiliary"] = [
        {"name": "mood", "kind": "file", "path": "mood.csv", "available_after": "2h"}
    ]
    return doc


def _write_mood(folder: Path) -> None:
    times = [START + i * pd.Timedelta(minutes=25) for i in range(N_BARS * 3)]
    values = np.random.default_rng(9).normal(size=len(times)).round(4)
    pd.DataFrame({"timestamp": times, "mood": values}).to_csv(folder / "mood.csv", index=False)


def test_an_auxiliary_series_with_its_delay_passes(tmp_path: Path) -> None:
    write_bars(tmp_path, random_walk(), alternating())
    _write_mood(tmp_path)
    path = write_strategy(tmp_path, _mood_doc())

    report = check(path)

    assert report.finding is None, report.finding.message


def test_a_source_that_uses_a_value_before_its_publication_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tradeloom.plugins.data import files
    from tradeloom.plugins.data.auxiliary import join_asof

    def ignores_the_delay(bars: Bars, series: Sequence[Any], documents: Any = None) -> Bars:
        return join_asof(bars, [replace(s, delay_ns=0) for s in series], documents)

    monkeypatch.setattr(files, "join_asof", ignores_the_delay)  # the source's join, not the check's
    write_bars(tmp_path, random_walk(), alternating())
    _write_mood(tmp_path)
    path = write_strategy(tmp_path, _mood_doc())

    finding = check(path).finding

    assert finding is not None
    assert (finding.layer, finding.component, finding.subject, finding.alteration) == (
        "features",
        "features.1 (kind series, plugin tradeloom.plugins.features)",
        "column mood",
        "truncated",
    )
    # bar 0 closes at 01:00; the first value, stamped 00:00, is published at 02:00
    assert re.match(
        r"^look-ahead: features\.1 \(kind series, plugin tradeloom\.plugins\.features\) column "
        r"mood at bar 0 \(2024-01-01T00:00Z\) changed from -?[0-9.]+ to nan when bars after 74 "
        r"were truncated$",
        finding.message,
    )


# --- universes ----------------------------------------------------------------------------


def _universe_doc() -> dict[str, Any]:
    """Three synthetic markets, a pooled model over per-symbol and cross-sectional
    features and a mood series published two hours after its stamp."""
    return {
        "name": "universe",
        "data": {
            "kind": "synthetic",
            "symbols": ["A/USDT", "B/USDT", "C/USDT"],
            "timeframe": "1h",
            "bars": 400,
            "start": "2024-01-01T00:00:00Z",
            "auxiliary": [
                {"name": "mood", "kind": "file", "path": "mood.csv", "available_after": "2h"}
            ],
        },
        "features": [
            {"kind": "log_return", "period": 1},
            {"kind": "rsi", "window": 14},
            {"kind": "series", "of": "mood"},
            {"kind": "cross_rank", "of": "rsi_14"},
            {"kind": "cross_zscore", "of": "log_return_1"},
        ],
        "model": {
            "kind": "sklearn",
            "estimator": "sklearn.linear_model.LogisticRegression",
            "pooling": "pooled",
            "label": {"horizon": 2},
            "walk_forward": {"train_window": 120, "retrain_every": 60},
        },
        "signal": {"kind": "threshold", "threshold": 0.02, "min_interval": 1, "top_k": 2},
        "risk": {
            "sizing": {"kind": "fixed_fraction", "fraction": 0.3},
            "portfolio": {"max_open_positions": 2, "correlation": {"max": 0.9, "window": 48}},
        },
        "execution": {"kind": "simulated", "initial_cash": 10_000.0, "fill": "next_open"},
    }


def test_a_universe_with_cross_sectional_features_and_a_delayed_series_passes(
    tmp_path: Path,
) -> None:
    _write_mood(tmp_path)
    path = write_strategy(tmp_path, _universe_doc())

    report = check(path)

    assert report.finding is None, report.finding.message
    assert report.lines[0].startswith("reference: 400 bars of 3 symbols, first prediction at bar")
    assert len(report.lines) == 1 + 3 * len(ALTERATIONS)  # the reference, then each variant


def test_a_universe_source_that_uses_a_value_before_its_publication_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tradeloom.plugins.data import synthetic
    from tradeloom.plugins.data.auxiliary import join_asof

    def ignores_the_delay(bars: Bars, series: Sequence[Any], documents: Any = None) -> Bars:
        return join_asof(bars, [replace(s, delay_ns=0) for s in series], documents)

    monkeypatch.setattr(synthetic, "join_asof", ignores_the_delay)
    _write_mood(tmp_path)
    path = write_strategy(tmp_path, _universe_doc())

    finding = check(path).finding

    assert finding is not None
    assert (finding.layer, finding.component, finding.subject, finding.alteration) == (
        "features",
        "features.2 (kind series, plugin tradeloom.plugins.features)",
        "column mood of A/USDT",
        "truncated",
    )


def test_a_leaky_cross_sectional_input_is_blamed_on_the_per_symbol_feature(
    tmp_path: Path,
) -> None:
    doc = _universe_doc()
    doc["plugins"] = ["leaky_feature"]
    doc["data"].pop("auxiliary")
    doc["features"] = [
        {"kind": "log_return", "period": 1},
        {"kind": "next_return"},
        {"kind": "cross_rank", "of": "next_return_1"},
    ]
    path = write_strategy(tmp_path, doc)

    finding = check(path).finding

    assert finding is not None
    assert (finding.layer, finding.component) == (
        "features",
        "features.1 (kind next_return, plugin leaky_feature)",
    )
    assert finding.subject.endswith(" of A/USDT")


# --- a feature on a higher timeframe -------------------------------------------------------


def write_quarter_bars(folder: Path, close: np.ndarray) -> Path:
    """15-minute bars from START (the precomputed model's p_up alternating)."""
    path = write_bars(folder, close, alternating(len(close)))
    frame = pd.read_csv(path)
    frame["timestamp"] = [
        (START + i * pd.Timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M:%SZ")
        for i in range(len(frame))
    ]
    frame.to_csv(path, index=False, float_format="%.17g")
    return path


MTF_FEATURES = [
    {"kind": "log_return", "period": 1},
    {"kind": "rsi", "window": 3, "timeframe": "4h"},
    {"kind": "bollinger", "window": 3, "timeframe": "1h"},
]


def test_a_higher_timeframe_feature_passes(tmp_path: Path) -> None:
    write_quarter_bars(tmp_path, random_walk())
    path = write_strategy(tmp_path, strategy_doc(features=MTF_FEATURES))
    report = check(path)
    assert report.finding is None, report.finding
    config, _ = load_strategy(path)
    assert "rsi_3@4h" in build_pipeline(config).feature_columns


def test_a_4h_value_seen_before_its_bar_closed_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The planted leak: each 4h value joined from the first 15m bar of its 4h bar (the
    unfinished bar's final close), not from the bar that closes it."""
    import tradeloom.engine.timeframe as timeframe

    honest = timeframe.completed_rows
    monkeypatch.setattr(
        timeframe, "completed_rows", lambda rows, n: honest(np.r_[0, rows[:-1] + 1], n)
    )
    write_quarter_bars(tmp_path, random_walk())
    path = write_strategy(tmp_path, strategy_doc(features=MTF_FEATURES))

    finding = check(path).finding

    assert finding is not None
    # cut 74 (18:30) is inside the 4h bar of 16:00 (bars 64..79): its value was used from
    # bar 64 on, and the bars that make it were cut
    assert (finding.layer, finding.bar, finding.cut, finding.alteration) == (
        "features",
        64,
        74,
        "truncated",
    )
    assert re.match(
        r"^look-ahead: features\.1 \(kind rsi, plugin tradeloom\.plugins\.features\) column "
        r"rsi_3@4h at bar 64 \(2024-01-01T16:00Z\) changed from \S+ to \S+ when bars after 74 "
        r"were truncated$",
        finding.message,
    ), finding.message


# --- an informative pair -----------------------------------------------------------------


def write_pair(folder: Path) -> Path:
    """BTC/USDT's bars (traded, with p_up) and ETH/USDT's (informative), a file each."""
    write_bars(folder, random_walk(), alternating()).rename(folder / "bars-BTC-USDT.csv")
    write_bars(folder, random_walk(seed=8), alternating()).rename(folder / "bars-ETH-USDT.csv")
    return write_strategy(
        folder,
        strategy_doc(
            data={"kind": "csv", "path": "bars-{symbol}.csv", "symbols": ["BTC/USDT"]},
            features=[
                {"kind": "log_return", "period": 1},
                {"kind": "log_return", "period": 1, "symbol": "ETH/USDT"},
                {"kind": "rsi", "window": 3, "timeframe": "4h", "symbol": "ETH/USDT"},
            ],
        ),
    )


def test_an_informative_pair_passes(tmp_path: Path) -> None:
    report = check(write_pair(tmp_path))
    assert report.finding is None, report.finding
    assert report.components == 7  # 3 features, model, signal, sizing, execution


def test_an_informative_value_seen_before_its_bar_closed_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The planted leak: each traded bar joined to the ETH bar after the one its close
    closed (ETH's next bar, still open then). Only altering ETH's bars after the cut moves
    the value at the cut (BTC's bars there stay as they were in the reference)."""
    import tradeloom.engine.informative as informative

    honest = informative.joined_rows

    def one_ahead(other: pd.DatetimeIndex, traded: pd.DatetimeIndex) -> np.ndarray:
        return np.minimum(honest(other, traded) + 1, len(other) - 1)

    monkeypatch.setattr(informative, "joined_rows", one_ahead)
    path = write_pair(tmp_path)

    finding = check(path).finding

    assert finding is not None
    assert (finding.layer, finding.bar, finding.cut, finding.alteration) == (
        "features",
        74,
        74,
        "truncated",
    )
    assert re.match(
        r"^look-ahead: features\.1 \(kind log_return, plugin tradeloom\.plugins\.features\) "
        r"column log_return_1@ETH/USDT at bar 74 \(2024-01-04T02:00Z\) changed from \S+ to "
        r"\S+ when bars after 74 were truncated$",
        finding.message,
    ), finding.message


def write_stock_days(folder: Path, n: int = 700) -> Path:
    """Daily bars of a stock on the XNYS calendar's trading days from 2020."""
    from tradeloom.time.calendars import get_calendar

    days = pd.date_range("2020-01-01", periods=int(n * 1.5), freq="D", tz="UTC")
    days = days[get_calendar("XNYS").expected(days.as_unit("ns").asi8, 86_400 * 10**9)][:n]
    rng = np.random.default_rng(9)
    close = 300 * np.exp(np.cumsum(rng.normal(0.0003, 0.012, len(days))))
    opens = np.r_[close[0], close[:-1]] * np.exp(rng.normal(0, 0.003, len(days)))
    frame = pd.DataFrame(
        {
            "timestamp": days,
            "open": opens,
            "high": np.maximum(opens, close) * (1 + np.abs(rng.normal(0, 0.006, len(days)))),
            "low": np.minimum(opens, close) * (1 - np.abs(rng.normal(0, 0.006, len(days)))),
            "close": close,
            "volume": rng.lognormal(15, 0.4, len(days)),
        }
    )
    path = folder / "spy.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_the_new_indicators_and_a_weekly_feature_on_stock_days_pass(tmp_path: Path) -> None:
    """sma, adx, obv, vwap, donchian, time_features, and weekly and monthly features on
    daily XNYS bars (calendar weeks closed on their last trading day), sized by
    volatility_target: check-lookahead finds nothing."""
    pytest.importorskip("exchange_calendars")
    write_stock_days(tmp_path)
    doc = {
        "name": "stock_days",
        "data": {"kind": "csv", "path": "spy.csv", "timeframe": "1d", "calendar": "XNYS"},
        "features": [
            {"kind": "log_return", "period": 1},
            {"kind": "sma", "window": 10},
            {"kind": "adx", "window": 7},
            {"kind": "obv"},
            {"kind": "vwap"},
            {"kind": "donchian", "window": 10},
            {"kind": "time_features"},
            {"kind": "rsi", "window": 4, "timeframe": "1w"},
            {"kind": "sma", "window": 2, "timeframe": "1M"},
            {"kind": "lags", "of": ["adx_7", "rsi_4@1w"], "lags": 1},
        ],
        "model": {
            "kind": "sklearn",
            "estimator": "sklearn.linear_model.LogisticRegression",
            "scaler": "standard",
            "label": {"horizon": 2},
            "walk_forward": {"train_window": 250, "retrain_every": 100},
        },
        "signal": {"kind": "threshold", "threshold": 0.02, "min_interval": 1},
        "risk": {
            "sizing": {"kind": "volatility_target", "target": 0.15, "periods_per_year": 252},
            "trailing_stop": {"atr": 10, "multiple": 3.0},
        },
        "execution": {"kind": "simulated", "fill": "next_open", "fee_bps": 1},
    }
    report = check(write_strategy(tmp_path, doc))
    assert report.finding is None, report.finding.message
    assert report.summary.startswith("no look-ahead found (3 cut points")


# --- the allocation layer ---------------------------------------------------------------

REBALANCES = list(range(30, 300, 20))
"""The rebalance bars of `_allocated_doc`: its window of 30 returns first full at bar 30."""


def _allocated_doc(allocation: dict[str, Any]) -> dict[str, Any]:
    """Two synthetic markets rebalanced every 20 bars by ``allocation``."""
    return {
        "name": "allocated",
        "plugins": ["leaky_feature", "leaky_rules"],
        "data": {
            "kind": "synthetic",
            "symbols": ["A/USDT", "B/USDT"],
            "timeframe": "1h",
            "bars": 300,
            "start": "2024-01-01T00:00:00Z",
        },
        "features": [{"kind": "log_return", "period": 1}, {"kind": "close_tape"}],
        "model": {
            "kind": "sklearn",
            "estimator": "sklearn.linear_model.LogisticRegression",
            "label": {"horizon": 2},
            "walk_forward": {"train_window": 100, "retrain_every": 100},
        },
        "signal": {"kind": "threshold", "threshold": 0.02},
        "allocation": {**allocation, "window": 30, "rebalance": {"every": 20}},
        "risk": {"sizing": {"kind": "fixed_fraction", "fraction": 0.3}},
        "execution": {"kind": "simulated", "initial_cash": 10_000.0},
    }


def test_rebalance_cuts_are_decisions_spread_over_the_bars_worth_cutting() -> None:
    assert rebalance_cuts(REBALANCES, 300, 100, 3) == [150, 210, 250]
    assert rebalance_cuts(REBALANCES, 300, 100, 20) == list(range(110, 300, 20))
    assert rebalance_cuts([10, 299], 300, 0, 3) == [10]  # the last bar leaves none after it
    assert rebalance_cuts([], 300, 0, 3) == []


def test_an_honest_allocation_passes_with_cuts_at_its_rebalances(tmp_path: Path) -> None:
    doc = _allocated_doc({"kind": "risk_parity", "covariance": "ledoit_wolf"})

    report = check(write_strategy(tmp_path, doc), points=1)

    assert report.finding is None, report.finding.message
    at_rebalances = [cut for cut in report.cuts if cut in REBALANCES]
    assert at_rebalances, report.cuts
    assert report.lines[0].endswith(f"({at_rebalances[0]} at rebalances)")
    assert report.summary.endswith("7 components)")  # the allocator among them


def test_an_allocator_that_peeks_is_caught_at_a_rebalance(tmp_path: Path) -> None:
    path = write_strategy(tmp_path, _allocated_doc({"kind": "peeking_allocator"}))

    finding = check(path, points=1).finding

    assert finding is not None
    assert finding.cut in REBALANCES and finding.bar == finding.cut  # the decision at the cut
    assert finding.message.startswith(
        "look-ahead: allocation (kind peeking_allocator, plugin leaky_rules) journal row "
        f"allocation_decided at bar {finding.bar} ({at(finding.bar)}) changed (weights[0] from "
    )
    assert finding.message.endswith(f"when bars after {finding.cut} were truncated")
