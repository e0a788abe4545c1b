"""A portfolio file's backtest: several strategies, one account.

A hand-computed case on a CSV market the test writes (precomputed probabilities, no
fees): two strategies on the same market hold separate books, size against their
weights of the shared cash, and the account's ``risk.limits`` refuses one strategy's
order. A portfolio of one strategy with weight 1 trades as that strategy alone; the
batch and the per-bar drivers journal the same events.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tradeloom.backtest.portfolio_run import PortfolioOutcome, run_portfolio
from tradeloom.backtest.run import run_strategy
from tradeloom.engine.status import read_run
from tradeloom.engine.status_text import format_status
from tradeloom.engine.wiring import build_pipeline
from tradeloom.errors import ConfigError
from tradeloom.journal import RUN_KINDS, read_rows
from tradeloom.plugins.manager import load_plugins
from tradeloom.schemas import load_strategy
from tradeloom.schemas.portfolio_file import load_portfolio

ROOT = Path(__file__).resolve().parents[2]

STRATEGY = """\
name: {name}
data:
  kind: csv
  path: bars.csv
  symbol: BTC/USDT
features:
  - kind: log_return
    period: 1
model:
  kind: precomputed
  column: {column}
signal:
  kind: threshold
  threshold: 0.3
risk:
  sizing:
    kind: fixed_fraction
    fraction: 0.5
execution:
  kind: simulated
  initial_cash: 10000
  fill: close
"""

PORTFOLIO = """\
name: pair
initial_cash: 10000
strategies:
  - {file: a.yaml, weight: 0.6}
  - {file: b.yaml, weight: 0.4}
risk:
  limits: {max_order_notional: 2500}
"""


def _market(folder: Path, closes: list[float], p_a: list[float], p_b: list[float]) -> None:
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range("2024-01-01", periods=len(closes), freq="1h").strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "open": closes,
            "high": closes,
            "low": closes,
            "close": closes,
            "volume": 1e6,
            "p_a": p_a,
            "p_b": p_b,
        }
    )
    frame.to_csv(folder / "bars.csv", index=False)


def _pair(folder: Path, portfolio: str = PORTFOLIO) -> Path:
    (folder / "a.yaml").write_text(STRATEGY.format(name="a", column="p_a"), encoding="utf-8")
    (folder / "b.yaml").write_text(STRATEGY.format(name="b", column="p_b"), encoding="utf-8")
    (folder / "pair.yaml").write_text(portfolio, encoding="utf-8")
    return folder / "pair.yaml"


def _run(path: Path, out: Path, driver: Any = "auto", overrides: tuple[str, ...] = ()) -> Any:
    portfolio = load_portfolio(path, overrides)
    pipelines = [build_pipeline(config) for config in portfolio.strategies]
    return run_portfolio(portfolio, pipelines, load_plugins(), out=out, driver=driver)


def test_two_strategies_share_the_cash_and_the_accounts_limit_refuses_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    nan = math.nan
    _market(tmp_path, [100.0, 110.0, 110.0], [0.9, nan, nan], [0.9, nan, nan])

    outcome = _run(_pair(tmp_path), tmp_path / "run")

    journal = tmp_path / "run" / "journal.sqlite"
    # a: 0.5 of its 0.6 share of 10,000 is 3,000 > 2,500: refused; b: 0.5 x 0.4 = 2,000
    (rejection,) = read_rows(journal, ["rejection"])
    assert (rejection.symbol, rejection.values["code"]) == ("a:BTC/USDT", "MAX_ORDER_NOTIONAL")
    (order,) = read_rows(journal, ["order"])
    assert order.symbol == "b:BTC/USDT"
    assert order.values["id"].startswith("b-")
    assert order.values["quantity"] == pytest.approx(20.0, rel=1e-12)
    equity = pd.read_csv(tmp_path / "run" / "equity.csv")
    np.testing.assert_allclose(equity["cash"], [8000.0, 8000.0, 8000.0], rtol=1e-12)
    np.testing.assert_allclose(equity["equity"], [10000.0, 10200.0, 10200.0], rtol=1e-12)
    np.testing.assert_allclose(equity["pnl[a]"], [0.0, 0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(equity["pnl[b]"], [0.0, 200.0, 200.0], rtol=1e-12)
    np.testing.assert_allclose(equity["equity[a]"], [6000.0] * 3, rtol=1e-12)
    np.testing.assert_allclose(equity["position[b:BTC/USDT]"], [20.0] * 3, rtol=1e-12)
    np.testing.assert_allclose(equity["value[BTC/USDT]"], [2000.0, 2200.0, 2200.0], rtol=1e-12)
    metrics = outcome.metrics
    assert metrics["attribution_by_strategy"]["b"]["pnl"] == pytest.approx(200.0, rel=1e-12)
    assert metrics["attribution_by_strategy"]["a"]["pnl"] == 0.0
    assert metrics["attribution"]["BTC/USDT"]["pnl"] == pytest.approx(200.0, rel=1e-12)
    assert metrics["rejections"] == {"MAX_ORDER_NOTIONAL": 1}
    # each strategy's signal may go short on the spot account: said of each, named
    sides = (
        "signal.kind: the signal may go short (signal.sides: both, the default) but the venue "
        "trades long-only (execution.allow_short: false): every down signal while flat is "
        "refused SHORT_NOT_ALLOWED; set signal.sides: long"
    )
    assert metrics["sides_warning"] == f"a: {sides}; b: {sides}"
    orders = pd.read_csv(tmp_path / "run" / "orders.csv")
    assert orders[["strategy", "symbol"]].values.tolist() == [["b", "BTC/USDT"]]
    assert sorted(p.name for p in (tmp_path / "run" / "strategies").iterdir()) == [
        "a.yaml",
        "b.yaml",
    ]
    report = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert "Equity by strategy" in report and "Attribution by strategy" in report


def test_two_strategies_on_one_market_hold_separate_books(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    nan = math.nan
    # a buys at bar 0, b at bar 1; a sells at bar 2 (its own book only): b stays long
    _market(tmp_path, [100.0, 100.0, 120.0, 120.0], [0.9, nan, 0.1, nan], [nan, 0.9, nan, nan])
    path = _pair(tmp_path, PORTFOLIO.replace("max_order_notional: 2500", "max_order_notional: 1e9"))

    _run(path, tmp_path / "run")

    equity = pd.read_csv(tmp_path / "run" / "equity.csv")
    # a: 3,000 / 100 = 30 units; b: 0.2 x 10,000 = 20 units; a's sale at 120: +600
    np.testing.assert_allclose(equity["position[a:BTC/USDT]"], [30.0, 30.0, 0.0, 0.0])
    np.testing.assert_allclose(equity["position[b:BTC/USDT]"], [0.0, 20.0, 20.0, 20.0])
    np.testing.assert_allclose(equity["pnl[a]"], [0.0, 0.0, 600.0, 600.0], atol=1e-9)
    np.testing.assert_allclose(equity["pnl[b]"], [0.0, 0.0, 400.0, 400.0], atol=1e-9)
    np.testing.assert_allclose(equity["equity"], [10000.0, 10000.0, 11000.0, 11000.0])
    fills = pd.read_csv(tmp_path / "run" / "fills.csv")
    assert fills[["strategy", "side"]].values.tolist() == [["a", 1], ["b", 1], ["a", -1]]
    positions = pd.read_csv(tmp_path / "run" / "positions.csv")
    assert list(positions.columns) == [
        "timestamp", "bar", "strategy", "symbol", "position", "close", "value",
    ]  # fmt: skip
    assert positions[["bar", "strategy", "position", "value"]].values.tolist() == [
        [0, "a", 30.0, 3000.0],
        [1, "a", 30.0, 3000.0],
        [1, "b", 20.0, 2000.0],
        [2, "b", 20.0, 2400.0],
        [3, "b", 20.0, 2400.0],
    ]


def test_a_portfolio_of_one_strategy_trades_as_the_strategy_alone(tmp_path: Path) -> None:
    source = ROOT / "examples" / "two_strategies" / "reversion_eth.yaml"
    (tmp_path / "one.yaml").write_text(
        f"name: one\ninitial_cash: 100000\nstrategies:\n  - {{file: {source}, weight: 1}}\n",
        encoding="utf-8",
    )
    config, plugins = load_strategy(source)
    alone = run_strategy(build_pipeline(config), plugins, out=tmp_path / "alone")

    together = _run(tmp_path / "one.yaml", tmp_path / "together")

    def orders(folder: Path) -> pd.DataFrame:
        frame = pd.read_csv(folder / "orders.csv")
        frame["id"] = frame["id"].str.rsplit("-", n=1).str[1]
        return frame.drop(columns=[c for c in ("strategy",) if c in frame])

    mine, theirs = orders(tmp_path / "alone"), orders(tmp_path / "together")
    assert len(mine) > 10
    pd.testing.assert_frame_equal(mine, theirs)
    equity_alone = pd.read_csv(tmp_path / "alone" / "equity.csv")
    equity_together = pd.read_csv(tmp_path / "together" / "equity.csv")
    np.testing.assert_array_equal(equity_alone["equity"], equity_together["equity"])
    np.testing.assert_allclose(
        equity_together["pnl[reversion_eth]"], equity_alone["equity"] - 100000, atol=1e-6
    )
    assert alone.metrics["final_equity"] == together.metrics["final_equity"]


def _trading_rows(outcome: PortfolioOutcome) -> list[tuple[Any, ...]]:
    return [
        (r.bar, r.timestamp, r.symbol, r.kind, r.correlation_id, r.values)
        for r in read_rows(outcome.run_dir / "journal.sqlite")
        if r.kind not in RUN_KINDS
    ]


@pytest.mark.parametrize("allocation", ["fixed", "inverse_volatility"])
def test_the_batch_and_per_bar_drivers_journal_the_same_events(
    tmp_path: Path, allocation: str
) -> None:
    path = ROOT / "examples" / "two_strategies.yaml"
    overrides: tuple[str, ...] = ()
    if allocation == "inverse_volatility":
        overrides = (
            "allocation.kind=inverse_volatility",
            "allocation.window=100",
            "strategies.0.weight=null",
            "strategies.1.weight=null",
        )

    batch = _run(path, tmp_path / "batch", "batch", overrides)
    per_bar = _run(path, tmp_path / "per_bar", "per_bar", overrides)

    rows = _trading_rows(batch)
    assert sum(1 for r in rows if r[3] == "order") > 10
    # every event names its strategy: its book, or (a fold) the strategy itself
    books = {"trend_btc:BTC/USDT", "reversion_eth:ETH/USDT"}
    kinds = {"signal", "risk_decision", "rejection", "order", "fill"}
    assert {r[2] for r in rows if r[3] in kinds} == books
    assert {r[2] for r in rows if r[3] == "model_trained"} == {"trend_btc", "reversion_eth"}
    assert [r.symbol for r in read_rows(batch.run_dir / "journal.sqlite", ["data_loaded"])] == [
        "trend_btc:BTC/USDT",
        "reversion_eth:ETH/USDT",
    ]
    for i, (a, b) in enumerate(zip(rows, _trading_rows(per_bar), strict=True)):
        assert a == b, f"journal row {i}"
    for name in ("equity.csv", "orders.csv", "fills.csv", "trades.csv"):
        assert (batch.run_dir / name).read_bytes() == (per_bar.run_dir / name).read_bytes()
    weights = pd.read_csv(batch.run_dir / "equity.csv")[
        ["weight[trend_btc]", "weight[reversion_eth]"]
    ].to_numpy()
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-12)
    if allocation == "inverse_volatility":  # equal for the window's 100 bars, then moving
        np.testing.assert_array_equal(weights[:100], 0.5)
        assert len(np.unique(weights[100:, 0])) > 10


def test_risk_parity_of_the_strategies_rebalances_on_its_schedule(tmp_path: Path) -> None:
    path = ROOT / "examples" / "two_strategies.yaml"
    moving = (
        "allocation.window=100",
        "allocation.rebalance={every: 24}",
        "strategies.0.weight=null",
        "strategies.1.weight=null",
    )
    parity = _run(path, tmp_path / "parity", overrides=("allocation.kind=risk_parity", *moving))
    inverse = _run(
        path, tmp_path / "inverse", overrides=("allocation.kind=inverse_volatility", *moving)
    )

    columns = ["weight[trend_btc]", "weight[reversion_eth]"]
    weights = pd.read_csv(parity.run_dir / "equity.csv")[columns].to_numpy()
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(weights[:100], 0.5)
    changed = [t for t in range(1, len(weights)) if not np.array_equal(weights[t], weights[t - 1])]
    assert len(changed) > 10 and set(changed) <= set(range(100, len(weights), 24))
    # two strategies: risk parity is inverse volatility; on one schedule the runs are
    # one until the weights first move (an equal share while neither strategy traded)
    first = changed[0]
    other = pd.read_csv(inverse.run_dir / "equity.csv")[columns].to_numpy()
    np.testing.assert_array_equal(other[:first], weights[:first])
    np.testing.assert_allclose(other[first], weights[first], rtol=1e-9)
    metrics = json.loads((parity.run_dir / "metrics.json").read_text())
    assert metrics["portfolio"]["allocation"] == "risk_parity"
    assert metrics["portfolio"]["rebalance"] == {"every": 24}

    # each recomputation is journaled at the bar it was decided at (the weights apply
    # from the next), once a sizing read it: the weights table's every change is one
    decided = list(read_rows(parity.run_dir / "journal.sqlite", ["allocation_decided"]))
    assert [r.bar for r in decided] == list(range(99, decided[-1].bar + 1, 24))
    flat = {
        f"risk_parity: {name} has no volatility over the window"
        for name in ("trend_btc", "reversion_eth")
    }
    for r in decided:
        np.testing.assert_array_equal(weights[r.bar + 1], r.values["weights"])
        assert r.values["symbols"] == ["trend_btc", "reversion_eth"]
        assert (r.values["allocator"], r.values["window"]) == ("risk_parity", 100)
        # a strategy that did not trade over the window is refused by name: the weights
        # in force stay (the equal start before the allocator first weighs both)
        if r.values["status"] == "failed":
            assert r.values["message"] in flat
            np.testing.assert_array_equal(weights[r.bar + 1], weights[r.bar])
        else:
            assert (r.values["status"], r.values["message"]) == ("ok", "")
    assert decided[0].values["status"] == "failed" and decided[-1].values["status"] == "ok"
    assert {t - 1 for t in changed} <= {r.bar for r in decided}
    assert len(decided) > len(changed)  # the same weights again is a decision too

    # `tradeloom status` names the column by what the weights are of: strategies here
    shown = read_run(parity.run_dir).status
    assert shown.allocation is not None and shown.allocation.weighs == "strategy"
    assert sorted(w.symbol for w in shown.allocation.weights) == ["reversion_eth", "trend_btc"]
    lines = format_status(shown).splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("allocation "))
    assert lines[head + 2].split() == ["strategy", "target", "held", "now"]


def test_strategies_that_disagree_on_the_engines_exits_are_refused_at_their_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _market(tmp_path, [100.0, 100.0], [0.9, 0.9], [0.9, 0.9])
    path = _pair(tmp_path)
    text = (
        (tmp_path / "b.yaml")
        .read_text()
        .replace("fraction: 0.5\n", "fraction: 0.5\n  stop_loss: 0.02\n")
    )
    (tmp_path / "b.yaml").write_text(text, encoding="utf-8")

    with pytest.raises(ConfigError) as raised:
        _run(Path(path.name), tmp_path / "run")

    assert [str(p) for p in raised.value.problems] == [
        "b.yaml:19:14 risk.stop_loss: is 0.02 here and unset in a.yaml: strategies on one "
        "account share the engine's exits and regime filter; make them equal"
    ]
    assert not (tmp_path / "run").exists()


def test_strategies_on_different_clocks_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _market(tmp_path, [100.0, 100.0, 100.0], [0.9] * 3, [0.9] * 3)
    path = _pair(tmp_path)
    short = pd.read_csv(tmp_path / "bars.csv").iloc[:2]
    short.to_csv(tmp_path / "short.csv", index=False)
    text = (tmp_path / "b.yaml").read_text().replace("path: bars.csv", "path: short.csv")
    (tmp_path / "b.yaml").write_text(text, encoding="utf-8")

    # a file's clock is known once read (a synthetic market's: at validation)
    with pytest.raises(
        ConfigError,
        match=r"^pair.yaml:5:12 strategies.1.file: the strategies' bars must share one clock: "
        r"a has 3 1h bars from 2024-01-01T00:00Z, b has 2 1h bars from "
        r"2024-01-01T00:00Z; give them the same timeframe, start and bars$",
    ):
        _run(Path(path.name), tmp_path / "run")


def test_a_strategys_python_risk_rule_answers_for_its_own_books_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "fixtures" / "plugins"))
    import feature_limit_rule

    feature_limit_rule.SEEN.clear()
    nan = math.nan
    _market(tmp_path, [100.0, 110.0, 110.0], [nan, 0.9, nan], [nan, 0.9, nan])
    path = _pair(tmp_path, PORTFOLIO.replace("max_order_notional: 2500", "max_order_notional: 1e9"))
    rule = "  rules:\n    - {kind: feature_limit, feature: log_return_1, limit: -10}\n"
    text = (tmp_path / "b.yaml").read_text().replace("fraction: 0.5\n", f"fraction: 0.5\n{rule}")
    (tmp_path / "b.yaml").write_text("plugins: [feature_limit_rule]\n" + text, encoding="utf-8")

    _run(path, tmp_path / "run")

    journal = tmp_path / "run" / "journal.sqlite"
    (rejection,) = read_rows(journal, ["rejection"])
    assert (rejection.symbol, rejection.values["code"]) == ("b:BTC/USDT", "FEATURE_ABOVE_LIMIT")
    (order,) = read_rows(journal, ["order"])
    assert order.symbol == "a:BTC/USDT"
    # asked about b's book only, with b's own feature row (log(110 / 100) at bar 1)
    checks = [(bar, d["value"]) for kind, bar, d in feature_limit_rule.SEEN if kind == "check"]
    assert checks == [(1, pytest.approx(math.log(1.1), rel=1e-12))]
    assert [bar for kind, bar, _ in feature_limit_rule.SEEN if kind == "on_bar"] == [0, 1, 2]


def test_the_accounts_gross_exposure_sums_every_strategys_books(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    nan = math.nan
    # a (more confident) is ranked first: 0.3 of the equity passes; b's 0.2 more would
    # make 0.5 > 0.45
    _market(tmp_path, [100.0, 100.0], [0.95, nan], [0.9, nan])
    path = _pair(
        tmp_path,
        PORTFOLIO.replace(
            "limits: {max_order_notional: 2500}",
            "portfolio: {max_gross_exposure: 0.45, groups: {majors: [BTC/USDT]}, "
            "max_group_exposure: 0.9}",
        ),
    )

    _run(path, tmp_path / "run")

    journal = tmp_path / "run" / "journal.sqlite"
    (rejection,) = read_rows(journal, ["rejection"])
    assert (rejection.symbol, rejection.values["code"]) == ("b:BTC/USDT", "MAX_GROSS_EXPOSURE")
    (order,) = read_rows(journal, ["order"])
    assert (order.symbol, order.values["quantity"]) == ("a:BTC/USDT", pytest.approx(30.0))


def test_the_accounts_max_weight_is_refused_and_a_group_must_name_a_traded_market(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _market(tmp_path, [100.0, 100.0], [0.9, 0.9], [0.9, 0.9])
    path = _pair(tmp_path, PORTFOLIO + "  portfolio: {max_weight: 0.5}\n")
    with pytest.raises(ConfigError) as raised:
        load_portfolio(Path(path.name))
    assert raised.value.lines() == [
        "pair.yaml:7:3 risk: portfolio.max_weight is not checked on an account yet (a market's "
        "weight is split across the strategies' books); use max_gross_exposure or groups"
    ]

    path = _pair(
        tmp_path,
        PORTFOLIO + "  portfolio: {groups: {alts: [SOL/USDT]}, max_group_exposure: 0.5}\n",
    )
    with pytest.raises(
        ConfigError,
        match=r"^pair.yaml:8:30 risk.portfolio.groups.alts: 'SOL/USDT' "
        r"is not a market of any strategy \(they trade BTC/USDT\)$",
    ):
        _run(Path(path.name), tmp_path / "run")
    assert not (tmp_path / "run").exists()  # refused before the run, as validate refuses it
