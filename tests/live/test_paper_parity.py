"""A strategy's backtest and its paper run on the simulated clock journal the same rows.

One test, seven strategies (issue 24): each runs as a backtest and as a paper run on the
simulated clock (the exchange emulator serving the strategy's own bars, the real live
runner trading them) through the command line, and the paper run's journal holds, bar by
bar from its first live bar, the backtest's signals, risk decisions, rejections, trading
states, orders (parents and slices), routes, fills, cancellations and folds, and each
bar's model probability is the backtest's, exactly:

- ``btc_rf_mid_fold``: strategies/btc_rf.yaml (shorter market and folds), started inside
  a walk-forward fold: it trains the backtest's fold for its first bar. The backtest
  traded before that bar, so the reference is the backtest trading the same bars (its
  probabilities from that bar on, a ``precomputed`` model);
- ``portfolio_top3``: strategies/portfolio_top3.yaml, ten markets, a pooled model;
- ``universe_auxiliary``: three markets and a series published 90 minutes after its time;
- ``universe_monitors``: three markets, each with its own rolling AUC and calibration
  monitors and warn rules (the health rows and rule firings, symbol by symbol, too);
- ``two_strategies``: examples/two_strategies.yaml, a portfolio file on one account (and
  again with ``allocation: {kind: inverse_volatility}``, its decisions between the
  strategies journaled as the backtest's);
- ``router``: a router over two venues, a buy split over both, one venue down a while;
- ``limit_twap``: limit orders sliced into TWAP children;
- ``btc_mtf``: strategies/btc_mtf.yaml, 15m bars with 1h and 4h features resampled
  from them (each stepped per 15m bar on paper) and a down/flat/up label; and
  ``btc_mtf_return``, the same with a forest regressor of the forward return;
- ``following_exits``: strategies/btc_trailing.yaml, an ATR trailing stop, break-even,
  a cooldown and the time-of-day exit;
- ``eurusd_forex``: EUR/USD from a CSV closed at weekends (``calendar: forex``) with a bad
  bar repaired (``validation: repair``);
- ``scaling``: pyramid adds and partial take-profits (``risk.scaling``) under a stop-loss
  resting at the exchange.

Every case but the mid-fold one is set so that its first fold predicts after the first
bar the paper run plays: the backtest trades nothing before it, and the two journals can
be compared as they are. The runs are written in memory (``ram_tmp_path``, `ram_tmp`): a
paper run commits, fsync'd, at every bar.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.live.test_sim_clock_calendar import STRATEGY as FOREX
from tests.live.test_sim_clock_calendar import _eurusd as eurusd_csv
from tests.live.test_sim_clock_universe import STRATEGY as UNIVERSE_STRATEGY
from tradeloom.cli.main import main
from tradeloom.journal import read_rows

pytestmark = pytest.mark.slow  # two or three runs through the CLI a case

ROOT = Path(__file__).resolve().parents[2]

KINDS = (
    "signal",
    "risk_decision",
    "rejection",
    "trading_state",
    "halt",
    "order",
    "sliced_order",
    "route_decision",
    "venue_fill",
    "venue_health",
    "fill",
    "order_cancelled",
    "allocation_decided",
)
"""Every kind a bar's trading journals (the paper-only ones aside)."""

PAPER = ["--mode", "paper", "--clock", "simulated", "--speed", "max", "-q"]


@dataclass(frozen=True)
class Case:
    """A strategy file to run both ways.

    Attributes:
        file: The file ``tradeloom run`` runs, in the test's folder.
        start: The paper run's first live bar (the simulated clock plays the second half).
        played: Bars the paper run plays (None: to the end of the data).
        members: A portfolio file's strategy files, whose own backtests give each book's
            probabilities (empty: the file's backtest gives them).
        reference: The strategy file trading the backtest's bars and probabilities from
            ``start`` on, compared instead of the backtest (None: the backtest).
        check: Asserts that the paper run's journal holds what the case is about (a
            split order, a venue down, limit children...), so that agreeing journals
            are not agreeing on nothing.
    """

    file: str
    start: int
    played: int | None = None
    members: tuple[str, ...] = ()
    reference: str | None = None
    check: Callable[[Path], None] | None = None


def _edit(text: str, *changes: tuple[str, str]) -> str:
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new)
    return text


# --- the seven strategies -------------------------------------------------------------------


def _btc_rf_mid_fold(folder: Path) -> Case:
    bars = 760  # the clock starts at bar 380, inside the fold of bars 328..427
    text = _edit(
        (ROOT / "strategies" / "btc_rf.yaml").read_text(),
        ("bars: 20000", f"bars: {bars}"),
        ("train_window: 3000", "train_window: 300"),
        ("retrain_every: 500", "retrain_every: 100"),
        ("n_estimators: 100", "n_estimators: 20"),
        ("n_jobs: -1", "n_jobs: 1"),
        ("window: 500\n    min_samples: 100", "window: 60\n    min_samples: 20"),
        # uncalibrated, so that the whole backtest holds a position at the clock's first bar
        # (the documented exception this case checks)
        ("  calibration: {method: sigmoid, holdout: 150}", "  # calibration"),
    )
    (folder / "btc_rf.yaml").write_text(text)

    def inside_a_fold(paper: Path) -> None:
        folds = [r["predict_start"] for r in journaled(paper, "model_trained")]
        assert folds[0] < bars // 2 < folds[1]  # the fold in effect, then the next one

    return Case(
        "btc_rf.yaml", bars // 2, played=120, reference="reference.yaml", check=inside_a_fold
    )


def _portfolio_top3(folder: Path) -> Case:
    bars = 800
    text = _edit(
        (ROOT / "strategies" / "portfolio_top3.yaml").read_text(),
        ("bars: 8000", f"bars: {bars}"),
        ("max_iter: 100", "max_iter: 20"),
        ("train_window: 1500", "train_window: 420"),  # the first fold predicts from 424 on
        ("retrain_every: 500", "retrain_every: 150"),
        ("window: 240", "window: 60"),
    )
    (folder / "top3.yaml").write_text(text)

    def several_markets(paper: Path) -> None:
        assert len({r["symbol"] for r in journaled(paper, "fill")}) >= 3
        assert len(journaled(paper, "model_trained")) >= 2  # a retrain while playing

    # the first two folds (424, 574) are enough: the paper run's cost is per bar and market
    return Case("top3.yaml", bars // 2, played=200, check=several_markets)


UNIVERSE = _edit(
    UNIVERSE_STRATEGY.replace("BARS", "300").replace("POOLING", "pooled"),
    (
        "  start: '2024-01-01T00:00:00Z'\n",
        "  start: '2024-01-01T00:00:00Z'\n  auxiliary:\n"
        "    - {name: sentiment, kind: file, path: sentiment.csv, available_after: 90m,\n"
        "       symbol_column: symbol}\n",
    ),
    (
        "  - kind: cross_rank\n",
        "  - {kind: series, of: sentiment, transform: zscore, window: 12}\n  - kind: cross_rank\n",
    ),
)
"""test_sim_clock_universe's universe with a series published 90 minutes after its time."""


def _universe_auxiliary(folder: Path) -> Case:
    rng = np.random.default_rng(1)
    # a value every hour at :17, published 90 minutes later: never on a bar's close
    times = pd.date_range("2023-12-31T20:17Z", periods=320, freq="1h")
    pd.concat(
        pd.DataFrame({"timestamp": times, "symbol": s, "sentiment": rng.normal(size=len(times))})
        for s in ("BTC/USDT", "ETH/USDT", "SOL/USDT")
    ).to_csv(folder / "sentiment.csv", index=False)
    (folder / "universe.yaml").write_text(UNIVERSE)

    def series_read(paper: Path) -> None:
        features = pd.read_parquet(paper.parent.parent / "backtest" / "features.parquet")
        assert features["sentiment_zscore_12"].notna().sum() > 600  # the series is a feature

    return Case("universe.yaml", 150, check=series_read)


WATCHED = (
    UNIVERSE_STRATEGY.replace("BARS", "300").replace("POOLING", "pooled")
    + """\
monitoring:
  - {kind: rolling_auc, window: 30, min_samples: 15, warning_below: 0.5, critical_below: 0.45}
  - {kind: calibration, window: 30, min_samples: 15}
health:
  - {metric: rolling_auc.auc, below: 0.5, action: warn, cooldown: 3}
  - {metric: calibration.brier, above: 0.3, action: warn}
"""
)
"""test_sim_clock_universe's three markets, each symbol with its own monitors and rules."""


def _universe_monitors(folder: Path) -> Case:
    (folder / "watched.yaml").write_text(WATCHED)

    def watched_per_symbol(paper: Path) -> None:
        backtest = paper.parent.parent / "backtest" / "journal.sqlite"
        for kind in ("health", "health_action"):
            mine = journaled(paper, kind)
            assert mine == [r for r in journaled(backtest, kind) if r["bar"] >= 150], kind
        actions = journaled(paper, "health_action")
        assert {r["symbol"] for r in actions} == {"BTC/USDT", "ETH/USDT", "SOL/USDT"}

    return Case("watched.yaml", 150, check=watched_per_symbol)


def _two_strategies(folder: Path) -> Case:
    bars = 600  # both first folds predict after bar 300
    shutil.copy(ROOT / "examples" / "two_strategies.yaml", folder / "two.yaml")
    (folder / "two_strategies").mkdir()
    members = []
    for name in ("trend_btc", "reversion_eth"):
        text = _edit(
            (ROOT / "examples" / "two_strategies" / f"{name}.yaml").read_text(),
            ("bars: 1500", f"bars: {bars}"),
            ("train_window: 500", "train_window: 320"),
            ("retrain_every: 500", "retrain_every: 100"),
        )
        (folder / "two_strategies" / f"{name}.yaml").write_text(text)
        members.append(f"two_strategies/{name}.yaml")

    def both_trade(paper: Path) -> None:
        books = {r["symbol"] for r in journaled(paper, "fill")}
        assert books == {"trend_btc:BTC/USDT", "reversion_eth:ETH/USDT"}
        orders = [(r.symbol, r.values["id"]) for r in read_rows(paper, ["order"])]
        assert len({i for _, i in orders}) == len(orders)  # each client order id once
        assert all(i.startswith(f"{b.split(':')[0]}-") for b, i in orders)  # its book's prefix
        # each strategy retrains while playing
        assert len({r["symbol"] for r in journaled(paper, "model_trained")}) == 2
        assert len(journaled(paper, "model_trained")) >= 4

    # the first two folds of each strategy (from 324 and 424) are enough
    return Case("two.yaml", bars // 2, played=150, members=tuple(members), check=both_trade)


def _two_strategies_inverse_volatility(folder: Path) -> Case:
    """The same portfolio, its weights moving with each strategy's trailing volatility."""
    case = _two_strategies(folder)
    text = _edit(
        (folder / "two.yaml").read_text(),
        ("  kind: fixed", "  kind: inverse_volatility\n  window: 50"),
        (", weight: 0.6}", "}"),
        (", weight: 0.4}", "}"),
    )
    (folder / "two.yaml").write_text(text)
    return case


def _router(folder: Path) -> Case:
    t0 = pd.Timestamp("2024-01-01T00:00:00Z")
    down = (t0 + pd.Timedelta(hours=300), t0 + pd.Timedelta(hours=340))
    text = f"""\
name: routed
seed: 5
data: {{kind: synthetic, symbol: BTC/USDT, timeframe: 1h, bars: 520, start: "{t0.isoformat()}"}}
features:
  - {{kind: log_return, period: 1}}
  - {{kind: rsi, window: 14}}
model:
  kind: sklearn
  estimator: sklearn.ensemble.RandomForestClassifier
  params: {{n_estimators: 10, max_depth: 3, n_jobs: 1}}
  scaler: none
  label: {{horizon: 2}}
  walk_forward: {{train_window: 262, retrain_every: 100}}
signal: {{kind: threshold, threshold: 0.05, min_interval: 2}}
risk:
  sizing: {{kind: fixed_fraction, fraction: 0.5}}
execution:
  kind: router
  venues:
    - name: cheap
      kind: simulated
      initial_cash: 15000
      fee_bps: 2
      slippage_bps: 1
      outages:
        - {{start: "{down[0].isoformat()}", end: "{down[1].isoformat()}"}}
    - name: deep
      kind: simulated
      initial_cash: 85000
      fee_bps: 5
      slippage_bps: 2
"""
    (folder / "router.yaml").write_text(text)

    def split_and_down(paper: Path) -> None:
        routes: dict[str, set[str]] = {}
        for d in journaled(paper, "route_decision"):
            routes.setdefault(d["parent_id"], set()).add(d["venue"])
        assert any(len(v) == 2 for v in routes.values()), "no order was split"
        health = [(h["venue"], h["state"]) for h in journaled(paper, "venue_health")]
        assert health == [("cheap", "down"), ("cheap", "up")]
        during = [d["venue"] for d in journaled(paper, "route_decision") if 300 <= d["bar"] < 340]
        assert during and set(during) == {"deep"}, "no order in the outage, or one at cheap"

    return Case("router.yaml", 260, check=split_and_down)


def _limit_twap(folder: Path) -> Case:
    text = _edit(
        (ROOT / "strategies" / "btc_rf.yaml").read_text(),
        ("bars: 20000", "bars: 700"),
        ("train_window: 3000", "train_window: 352"),
        ("retrain_every: 500", "retrain_every: 100"),
        ("n_estimators: 100", "n_estimators: 20"),
        ("n_jobs: -1", "n_jobs: 1"),
        ("threshold: 0.30", "threshold: 0.10"),
        (
            "  allow_short: false\n",
            "  allow_short: false\n  orders:\n    type: limit\n"
            "    limit: {offset_bps: 5, expire_after_bars: 3}\n"
            "    slicing: {kind: twap, children: 3, every_bars: 1}\n",
        ),
    )
    text = text[: text.index("\nmonitoring:")] + "\n"
    (folder / "twap.yaml").write_text(text)

    def sliced_limits(paper: Path) -> None:
        assert journaled(paper, "sliced_order")
        children = [r for r in journaled(paper, "order") if r.get("parent_id")]
        assert len(children) >= 3 and {r["kind"] for r in children} == {"limit"}

    return Case("twap.yaml", 350, check=sliced_limits)


def _scaling(folder: Path) -> Case:
    """btc_rf shortened, scaling in (pyramid) and out (partial take-profits) under a
    stop-loss resting at the exchange: the legs go through the live venue."""
    text = _edit(
        (ROOT / "strategies" / "btc_rf.yaml").read_text(),
        ("bars: 20000", "bars: 700"),
        ("train_window: 3000", "train_window: 352"),
        ("retrain_every: 500", "retrain_every: 100"),
        ("n_estimators: 100", "n_estimators: 20"),
        ("n_jobs: -1", "n_jobs: 1"),
        ("threshold: 0.30", "threshold: 0.05"),
        ("min_interval: 4", "min_interval: 1"),
        ("max_position: 0.10", "max_position: 0.30"),
        (
            "  max_holding_bars: 48\n",
            "  max_holding_bars: 48\n  stop_loss: 0.02\n  scaling:\n"
            "    take_profit_levels:\n      - {gain: 0.004, close: 0.4}\n"
            "      - {gain: 0.008, close: 0.3}\n"
            "    scale_in: {kind: pyramid, step: 0.003, max_adds: 3, max_position: 0.6}\n",
        ),
    )
    text = text[: text.index("\nmonitoring:")] + "\n"
    (folder / "scaling.yaml").write_text(text)

    def legs(paper: Path) -> None:
        reasons = [r["reason"] for r in journaled(paper, "order")]
        assert reasons.count("SCALE_IN") >= 2 and reasons.count("TAKE_PROFIT_PARTIAL") >= 2

    return Case("scaling.yaml", 350, played=150, check=legs)


def _eurusd_forex(folder: Path) -> Case:
    """test_sim_clock_calendar's six weeks of EUR/USD, closed at weekends, one bad bar."""
    kept = eurusd_csv(folder / "eurusd.csv", bad=True)
    (folder / "fx.yaml").write_text(FOREX.replace("VALIDATION", "repair"))

    def weekends_closed(paper: Path) -> None:
        live = sorted({r["bar"] for r in journaled(paper, "live_bar")})
        assert live == list(range(kept // 2, kept))  # every bar played, the weekends skipped
        assert journaled(paper, "stale_data") == []  # judged by the simulated clock

    return Case("fx.yaml", kept // 2, check=weekends_closed)


def _following_exits(folder: Path) -> Case:
    """btc_trailing's exits on paper: an ATR trailing stop, break-even, a cooldown and
    the time-of-day exit, from the bar the model first predicts (nothing is held before
    the clock starts; the ATR has the bars before it in both runs)."""
    text = _edit(
        (ROOT / "strategies" / "btc_trailing.yaml").read_text(),
        ("bars: 3000", "bars: 700"),
        ("train_window: 1000", "train_window: 352"),
        ("retrain_every: 500", "retrain_every: 100"),
        ("n_estimators: 30", "n_estimators: 10"),
    )
    (folder / "trailing.yaml").write_text(text)

    def every_exit(paper: Path) -> None:
        reasons = {r["reason"] for r in journaled(paper, "order")}
        assert {"EXIT_TRAILING_STOP", "EXIT_BREAK_EVEN", "EXIT_TIME"} <= reasons, reasons
        assert "COOLDOWN" in {r["code"] for r in journaled(paper, "rejection")}

    return Case("trailing.yaml", 350, check=every_exit)


def _btc_mtf(folder: Path) -> Case:
    """strategies/btc_mtf.yaml: 15m bars with 1h and 4h features resampled from them, a
    down/flat/up label; the paper run steps the resampler and the 4h RSI one 15m bar at a
    time, and maps each bar's class probabilities to probability_up alone."""
    text = _edit(
        (ROOT / "strategies" / "btc_mtf.yaml").read_text(),
        ("bars: 2000", "bars: 1000"),
        ("train_window: 700", "train_window: 500"),
        ("retrain_every: 400", "retrain_every: 150"),
        ("threshold: 0.10", "threshold: 0.08"),
    )
    (folder / "mtf.yaml").write_text(text)

    def higher_timeframes(paper: Path) -> None:
        features = pd.read_parquet(paper.parent.parent / "backtest" / "features.parquet")
        rsi = features["rsi_14@4h"].to_numpy()
        assert np.isfinite(rsi[500:]).all()
        assert len(set(rsi[500:])) <= 500 // 16 + 2  # one value per 4h bar
        assert {r["estimator"] for r in journaled(paper, "model_trained")} == {
            "RandomForestClassifier"
        }

    return Case("mtf.yaml", 500, check=higher_timeframes)


def _btc_mtf_return(folder: Path) -> Case:
    """btc_mtf with a regression target: a forest regressor learns the forward return, and
    probability_up is 0.5 + its prediction / 2 on paper as in the backtest."""
    text = _edit(
        (ROOT / "strategies" / "btc_mtf.yaml").read_text(),
        ("bars: 2000", "bars: 1000"),
        ("train_window: 700", "train_window: 500"),
        ("retrain_every: 400", "retrain_every: 150"),
        ("RandomForestClassifier", "RandomForestRegressor"),
        ("kind: classes             # 0 down, 1 flat, 2 up", "kind: return"),
        ("    dead_band: 0.003          # |forward return| <= 0.3%: flat\n", ""),
        ("threshold: 0.10", "threshold: 0.001"),
    )
    (folder / "mtf_return.yaml").write_text(text)

    def regressed(paper: Path) -> None:
        assert {r["estimator"] for r in journaled(paper, "model_trained")} == {
            "RandomForestRegressor"
        }

    return Case("mtf_return.yaml", 500, check=regressed)


CASES: dict[str, Callable[[Path], Case]] = {
    "btc_mtf": _btc_mtf,
    "btc_mtf_return": _btc_mtf_return,
    "btc_rf_mid_fold": _btc_rf_mid_fold,
    "portfolio_top3": _portfolio_top3,
    "universe_auxiliary": _universe_auxiliary,
    "universe_monitors": _universe_monitors,
    "two_strategies": _two_strategies,
    "two_strategies_inverse_volatility": _two_strategies_inverse_volatility,
    "router": _router,
    "limit_twap": _limit_twap,
    "eurusd_forex": _eurusd_forex,
    "following_exits": _following_exits,
    "scaling": _scaling,
}


# --- reading the journals -------------------------------------------------------------------


def _client_id(value: str) -> str:
    """A client order id without its run key: ``NAME-KEY-000003-r1`` -> ``NAME-000003-r1``."""
    parts = value.split("-")
    return "-".join([parts[0], *parts[2:]]) if len(parts) >= 3 else value


_IDS = ("id", "order_id", "parent_id", "trade_id")
"""The columns that hold a client order id (a simulated trade's id holds its order's)."""


def journaled(path: Path, kind: str) -> list[dict[str, Any]]:
    """Every row of ``kind`` with its bar and symbol, client order ids without the run key."""
    out = []
    for r in read_rows(path, [kind]):
        values = {
            k: _client_id(v) if k in _IDS and isinstance(v, str) else v for k, v in r.values.items()
        }
        out.append({"bar": r.bar, "symbol": r.symbol} | values)
    return out


def _reference(folder: Path, strategy: str, start: int) -> None:
    """The strategy trading the backtest's bars and probabilities from ``start`` on (before
    it, no prediction: the history a paper run starts from is not traded)."""
    bars = pd.read_parquet(folder / "backtest" / "bars.parquet")
    probability = pd.read_parquet(folder / "backtest" / "features.parquet")["probability"]
    p = probability.to_numpy(copy=True)
    p[:start] = np.nan
    bars["p_up"] = p
    bars.to_csv(folder / "bars.csv", index=False)
    text = (folder / strategy).read_text()
    data = text[text.index("\ndata:") : text.index("\nfeatures:")]
    model = text[text.index("\nmodel:") : text.index("\nsignal:")]
    text = text.replace(data, "\ndata: {kind: csv, path: bars.csv, symbol: BTC/USDT}")
    text = text.replace(model, "\nmodel: {kind: precomputed, column: p_up, horizon: 4}")
    (folder / "reference.yaml").write_text(text)


def _probabilities(features: Path, book: Callable[[str], str]) -> dict[tuple[int, str], float]:
    """Each bar's probability in a backtest's ``features.parquet``, by time (ns) and the
    book the paper run journals it under (``book(symbol)``; one market's file has no
    symbol column: '')."""
    frame = pd.read_parquet(features)
    times = pd.DatetimeIndex(frame["timestamp"]).as_unit("ns").asi8
    symbols = frame["symbol"].astype(str) if "symbol" in frame else [""] * len(frame)
    return {
        (int(t), book(s)): float(p)
        for t, s, p in zip(times, symbols, frame["probability"], strict=True)
    }


@pytest.mark.parametrize("name", list(CASES))
def test_a_paper_run_on_the_simulated_clock_journals_its_backtests_rows(
    name: str, ram_tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ram_tmp_path)
    case = CASES[name](ram_tmp_path)
    assert main(["run", case.file, "--out", "backtest", "-q"]) == 0
    played = [] if case.played is None else ["--max-bars", str(case.played)]
    assert main(["run", case.file, *PAPER, *played, "--out", "paper"]) == 0
    paper = ram_tmp_path / "paper" / "journal.sqlite"
    start = case.start
    end = math.inf if case.played is None else start + case.played
    bars = sorted({r.bar for r in read_rows(paper, ["live_bar"])})
    assert bars[0] == start and len(bars) == (case.played or len(bars))

    theirs_run = "backtest"
    if case.reference is not None:
        _reference(ram_tmp_path, case.file, start)
        assert main(["run", case.reference, "--out", "reference", "-q"]) == 0
        theirs_run = "reference"
    backtest = ram_tmp_path / theirs_run / "journal.sqlite"
    traded = 0
    for kind in KINDS:
        mine = journaled(paper, kind)
        theirs = [r for r in journaled(backtest, kind) if start <= r["bar"] < end]
        if kind == "allocation_decided" and case.members:
            # a portfolio's decision is journaled when a sizing first reads it: the
            # paper's are the warm-up's too (no return yet: equal weights), and not
            # those no sizing read before its last bar
            assert all(r["weights"] == [0.5, 0.5] for r in mine if r["bar"] < start)
            mine = [r for r in mine if r["bar"] >= start]
            theirs = [r for r in theirs if mine and r["bar"] <= mine[-1]["bar"]]
        assert mine == theirs, kind
        traded += len(mine) if kind == "fill" else 0
    assert traded >= 2, "no fill: the case trades nothing"
    if case.check is not None:
        case.check(paper)
    if case.reference is not None:
        # the documented exception (docs/guides/going-live.md): the whole backtest held a
        # position at the first live bar, so its orders differ from the paper run's, while
        # its probabilities (below) and signals are the paper run's from any start
        whole = ram_tmp_path / "backtest" / "journal.sqlite"
        mine_signals = journaled(paper, "signal")
        assert mine_signals == [r for r in journaled(whole, "signal") if start <= r["bar"] < end]
        held = sum(r["side"] * r["quantity"] for r in journaled(whole, "fill") if r["bar"] < start)
        assert held != 0.0
        assert journaled(paper, "order") != [
            r for r in journaled(whole, "order") if start <= r["bar"] < end
        ]

    # the folds: those the backtest trains from the first live bar on (the one in effect
    # at it included), the last one's end open on paper
    folds = [r | {"predict_end": 0} for r in journaled(paper, "model_trained")]
    expected = [
        r | {"predict_end": 0}
        for r in journaled(ram_tmp_path / "backtest" / "journal.sqlite", "model_trained")
        if r["predict_end"] >= start and r["predict_start"] < end
    ]
    assert folds == expected and folds

    # every bar's probability, exactly: the backtest's (a portfolio's: each strategy's own)
    live = list(read_rows(paper, ["live_bar"]))
    one = {r.symbol for r in live}
    expected_p: dict[tuple[int, str], float] = {}
    if case.members:
        for k, member in enumerate(case.members):
            assert main(["run", member, "--out", f"member{k}", "-q"]) == 0
            name_ = Path(member).stem
            own = sorted(b for b in one if b.startswith(f"{name_}:"))
            expected_p |= _probabilities(
                ram_tmp_path / f"member{k}" / "features.parquet",
                lambda s, n=name_, o=own: f"{n}:{s}" if s else o[0],
            )
    else:
        expected_p = _probabilities(
            ram_tmp_path / "backtest" / "features.parquet", lambda s: s or next(iter(one))
        )
    mine_p = [
        math.nan if r.values["probability"] is None else r.values["probability"] for r in live
    ]
    theirs_p = [expected_p[(pd.Timestamp(r.timestamp).value, r.symbol)] for r in live]
    assert np.array_equal(mine_p, theirs_p, equal_nan=True)
    assert np.isfinite(mine_p).sum() > len(mine_p) // 4
