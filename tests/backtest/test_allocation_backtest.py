"""The allocation layer in a universe backtest: each rebalance's journaled weights are a
refit of the allocator on the trailing window that ends at the decision bar, its orders
are target minus held, a later bar never moves an earlier decision, a window the
allocator cannot solve keeps the last weights, and bad input is one line, exit 2."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import structlog

from tradeloom.cli.main import main
from tradeloom.core.kernels.sizing import sizing_quantity
from tradeloom.engine.allocating import Rebalancer
from tradeloom.engine.wiring import build_pipeline
from tradeloom.journal import journal_path, read_frame
from tradeloom.plugins.protocols_allocation import AllocationResult, WeightConstraints
from tradeloom.schemas import load_strategy
from tradeloom.schemas.allocation import Rebalance, weight_constraints

ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = ["AAA/USDT", "BBB/USDT", "CCC/USDT", "DDD/USDT", "EEE/USDT"]
BARS = 420
WINDOW = 60
SLIPPAGE, FEE = 5e-4, 1e-3

STRATEGY = """\
name: allocated
data: {{kind: parquet, path: universe.parquet, symbol_column: symbol, symbols: [{symbols}]}}
features: [{{kind: log_return, period: 1}}]
model: {{kind: precomputed, column: p_up, horizon: 4}}
signal: {{kind: threshold, threshold: 0.2}}
allocation:
{allocation}
risk: {{sizing: {{kind: fixed_fraction, fraction: 0.1}}}}
execution: {{kind: simulated, initial_cash: 100000, slippage_bps: 5, fee_bps: 10}}
"""

RISK_PARITY = f"""\
  kind: risk_parity
  covariance: ledoit_wolf
  window: {WINDOW}
  constraints: {{net_exposure: 0.95, min_trade: 0.01}}
  rebalance: {{every: 40}}"""

BLACK_LITTERMAN = f"""\
  kind: black_litterman
  objective: utility
  risk_aversion: 4
  covariance: ledoit_wolf
  window: {WINDOW}
  constraints: {{net_exposure: 0.95, max_weight: 0.4, transaction_cost: 0.002}}
  rebalance: {{calendar: weekly}}"""
HOURS_A_YEAR = 365 * 24
"""The bars of a year of the synthetic crypto market's calendar, hourly: the declared
transaction cost per bar is 0.002 / HOURS_A_YEAR."""


@pytest.fixture(autouse=True)
def cli_logging() -> Iterator[None]:
    """Put back the logging configuration an in-process ``main`` call changes globally."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def _market(seed: int = 3, freq: str = "h") -> pd.DataFrame:
    """Five correlated random walks (hourly), each with a probability column."""
    rng = np.random.default_rng(seed)
    times = pd.date_range("2024-01-01", periods=BARS, freq=freq, tz="UTC", name="timestamp")
    common = rng.normal(0.0, 0.006, BARS)
    parts = []
    for k, symbol in enumerate(SYMBOLS):
        own = rng.normal(0.0, 0.004 + 0.003 * k, BARS)
        close = 100.0 * np.exp(np.cumsum(common + own))
        parts.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "open": close,
                    "high": close * 1.003,
                    "low": close * 0.997,
                    "close": close,
                    "volume": 1e6,
                    "p_up": rng.uniform(0.2, 0.8, BARS),
                },
                index=times,
            )
        )
    return pd.concat(parts).reset_index()


def _run(folder: Path, frame: pd.DataFrame, allocation: str = RISK_PARITY) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / "universe.parquet")
    listed = ", ".join(f'"{s}"' for s in SYMBOLS)
    path = folder / "allocated.yaml"
    path.write_text(STRATEGY.format(symbols=listed, allocation=allocation), encoding="utf-8")
    out = folder / "run"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 0
    return out


def _decisions(run: Path) -> pd.DataFrame:
    frame = read_frame(journal_path(run), "allocation_decided")
    for column in ("weights", "held"):
        frame[column] = [
            np.array(json.loads(v) if isinstance(v, str) else v) for v in frame[column]
        ]
    return frame


def _wide(frame: pd.DataFrame, column: str) -> np.ndarray:
    return frame.pivot(index="timestamp", columns="symbol", values=column)[SYMBOLS].to_numpy()


@pytest.mark.parametrize(
    "allocation", [RISK_PARITY, BLACK_LITTERMAN], ids=["risk_parity", "black_litterman"]
)
def test_journaled_weights_are_a_refit_on_the_trailing_window(
    tmp_path: Path, allocation: str
) -> None:
    if "black_litterman" in allocation:
        pytest.importorskip("cvxpy")
    frame = _market()
    run = _run(tmp_path, frame, allocation)
    decisions = _decisions(run)
    assert len(decisions) >= 2 and set(decisions["status"]) == {"ok"}
    assert decisions["bar"].iloc[0] == WINDOW  # the first bar whose window is full
    config, _ = load_strategy(tmp_path / "allocated.yaml")
    allocator = build_pipeline(config).allocator
    assert allocator is not None and config.allocation_constraints is not None
    constraints = weight_constraints(
        config.allocation_constraints, SYMBOLS, periods_per_year=HOURS_A_YEAR
    )
    close, p = _wide(frame, "close"), _wide(frame, "p_up")
    previous = None
    for row in decisions.itertuples():
        t = int(row.bar)
        window = close[t - WINDOW : t + 1]  # up to and including the decision bar
        returns = window[1:] / window[:-1] - 1.0
        refit = allocator.allocate(returns, constraints, p[t], 4, previous)
        assert refit.status == "ok" and refit.weights is not None
        np.testing.assert_allclose(row.weights, refit.weights, rtol=0, atol=1e-6)
        previous = row.held


TOLD = """
import numpy as np
from tradeloom.plugin import AllocationResult, Component, Params, hookimpl

TOLD = []


class Told:
    def allocate(self, returns, constraints, probabilities=None, horizon=0, previous=None):
        TOLD.append((constraints.names, constraints.transaction_cost))
        n = constraints.symbols
        return AllocationResult.ok(np.full(n, constraints.net_exposure / n))


@hookimpl
def tradeloom_components():
    return [Component("allocation", "told", Params, lambda params, ctx: Told())]
"""


@pytest.mark.parametrize(("freq", "year"), [("h", HOURS_A_YEAR), ("D", 365)])
def test_a_third_party_allocator_is_told_its_symbols(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, freq: str, year: int
) -> None:
    """`WeightConstraints.names`: the data section's symbols, in the returns' columns'
    order; and the declared cost spread over a year of the bars' timeframe (hourly and
    daily bars of the crypto calendar)."""
    module = f"told_allocator_81_{freq.lower()}"
    (tmp_path / f"{module}.py").write_text(TOLD)
    monkeypatch.syspath_prepend(str(tmp_path))
    told = (
        "  kind: told\n  window: 30\n"
        "  constraints: {net_exposure: 0.9, transaction_cost: 0.001}\n"
        "  rebalance: {every: 100}"
    )
    frame = _market(freq=freq)
    folder = tmp_path / "run"
    folder.mkdir()
    frame.to_parquet(folder / "universe.parquet")
    listed = ", ".join(f'"{s}"' for s in SYMBOLS)
    path = folder / "allocated.yaml"
    text = STRATEGY.format(symbols=listed, allocation=told)
    path.write_text(f"plugins: [{module}]\n" + text, encoding="utf-8")
    assert main(["run", str(path), "--out", str(folder / "out"), "--quiet"]) == 0
    calls = list(importlib.import_module(module).TOLD)
    assert calls == [(tuple(SYMBOLS), 0.001 / year)] * 4  # bars 30, 130, 230, 330


def test_rebalance_orders_are_target_minus_held_exits_first(tmp_path: Path) -> None:
    frame = _market()
    run = _run(tmp_path, frame)
    decisions = _decisions(run)
    orders = read_frame(journal_path(run), "order")
    assert set(orders["reason"]) == {"REBALANCE"}
    equity = pd.read_csv(run / "equity.csv")["equity"].to_numpy()
    positions = pd.read_csv(run / "positions.csv")
    close = _wide(frame, "close")
    checked = 0
    for row in decisions.itertuples():
        t = int(row.bar)
        held_rows = positions[positions["bar"] == t].set_index("symbol")
        held_qty = np.array([held_rows["position"].get(s, 0.0) for s in SYMBOLS])
        np.testing.assert_allclose(row.held, held_qty * close[t] / equity[t], atol=1e-9)
        at_bar = orders[orders["bar"] == t]
        sent = dict(zip(at_bar["symbol"], at_bar["side"] * at_bar["quantity"], strict=True))
        for s, symbol in enumerate(SYMBOLS):
            w = row.weights[s]
            if abs(w - row.held[s]) < 0.01:  # min_trade
                assert symbol not in sent
                continue
            target = np.sign(w) * sizing_quantity(abs(w) * equity[t], close[t, s], SLIPPAGE, FEE)
            assert sent[symbol] == pytest.approx(target - held_qty[s], rel=1e-9, abs=1e-12)
            checked += 1
        sides = at_bar.sort_values("seq")["side"].tolist()
        assert sides == sorted(sides)  # every sale before any purchase
    assert checked > len(SYMBOLS)


def test_a_later_bar_never_moves_an_earlier_decision(tmp_path: Path) -> None:
    frame = _market()
    before = _decisions(_run(tmp_path / "a", frame))
    decided = int(before["bar"].iloc[2])
    changed = frame.copy()
    later = changed["timestamp"] > changed["timestamp"].unique()[decided]
    rng = np.random.default_rng(0)
    factor = np.exp(rng.normal(0.0, 0.05, int(later.sum())))
    for column in ("open", "high", "low", "close"):
        changed.loc[later, column] *= factor
    changed.loc[later, "p_up"] = 1.0 - changed.loc[later, "p_up"]
    after = _decisions(_run(tmp_path / "b", changed))
    for k in range(3):
        assert after["bar"].iloc[k] == before["bar"].iloc[k]
        assert after["inputs_hash"].iloc[k] == before["inputs_hash"].iloc[k]
        np.testing.assert_array_equal(after["weights"].iloc[k], before["weights"].iloc[k])
    assert not np.allclose(after["weights"].iloc[3], before["weights"].iloc[3])


def test_a_window_without_variance_keeps_the_last_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = _market()
    flat = (frame["symbol"] == "CCC/USDT") & frame["timestamp"].between(
        frame["timestamp"].unique()[70], frame["timestamp"].unique()[200]
    )
    level = frame.loc[flat, "close"].iloc[0]
    frame.loc[flat, ["open", "high", "low", "close"]] = level
    capsys.readouterr()
    run = _run(tmp_path, frame)
    out = capsys.readouterr().out
    decisions = _decisions(run)
    failed = decisions[decisions["status"] != "ok"]
    assert len(failed) >= 1
    first_ok = decisions[decisions["status"] == "ok"].iloc[0]
    orders = read_frame(journal_path(run), "order")
    for row in failed.itertuples():
        assert row.message  # why, in one line
        kept = decisions[(decisions["bar"] < row.bar) & (decisions["status"] == "ok")]
        np.testing.assert_array_equal(row.weights, kept["weights"].iloc[-1])
        assert not (orders["bar"] == row.bar).any()  # nothing traded, no equal weight
    assert first_ok["bar"] == WINDOW
    line = next(line for line in out.splitlines() if line.strip().startswith("allocation "))
    assert line.split(None, 1)[1] == (
        f"risk_parity: {len(decisions)} rebalances, {len(failed)} failed "
        f"({len(failed)} failed), 0 late"
    )


class _Raising:
    def allocate(self, *args: object, **kwargs: object) -> AllocationResult:
        raise ZeroDivisionError("the covariance\nis singular")


class _OverBound:
    def allocate(self, returns: np.ndarray, *args: object, **kwargs: object) -> AllocationResult:
        return AllocationResult.ok(np.array([0.9, 0.1]))


def _rebalancer(allocator: object, window: int = 3) -> Rebalancer:
    return Rebalancer(
        allocator,  # type: ignore[arg-type]
        kind="plugin",
        window=window,
        constraints=WeightConstraints((0.0, 0.0), (0.5, 0.5)),
        rule=Rebalance(every=2),
        min_trade=None,
        horizon=0,
        symbols=("X", "Y"),
    )


def test_an_allocator_that_raises_or_breaks_a_bound_is_journaled_not_traded() -> None:
    held = np.zeros(2)
    p = np.full(2, np.nan)
    raising = _rebalancer(_Raising())
    decided = [raising.decide(t, t, np.array([1.0 + t, 2.0]), p, held) for t in range(4)]
    assert decided[:3] == [None, None, None]  # the window of 3 returns needs 4 closes
    last = decided[3]
    assert last is not None and last.trades is None and last.weights is None
    assert (last.status, last.message) == (
        "error",
        "plugin raised ZeroDivisionError: the covariance is singular",
    )
    over = _rebalancer(_OverBound())
    for t in range(3):
        over.decide(t, t, np.array([1.0 + t, 2.0 + t]), p, held)
    decision = over.decide(3, 3, np.array([4.0, 5.0]), p, held)
    assert decision is not None and decision.status == "error"
    assert decision.message == (
        "plugin answered weights that break max_weight: weight 0 is 0.9, the bound 0.5"
    )
    gap = _rebalancer(_OverBound())
    for t, c in enumerate([1.0, np.nan, 3.0, 4.0]):
        decision = gap.decide(t, t, np.array([c, 2.0]), p, held)
    assert decision is not None and decision.status == "too_few_bars"
    assert (
        decision.message
        == "X has no bar (or no price) at 1 of the 4 closes a window of 3 returns needs"
    )


def test_a_bad_allocation_line_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = _market()
    frame.to_parquet(tmp_path / "universe.parquet")
    listed = ", ".join(f'"{s}"' for s in SYMBOLS)
    path = tmp_path / "allocated.yaml"
    bad = RISK_PARITY.replace("every: 40", "every: 0")
    path.write_text(STRATEGY.format(symbols=listed, allocation=bad), encoding="utf-8")
    capsys.readouterr()
    assert main(["run", str(path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "allocation.rebalance.every" in err[0]


@pytest.mark.parametrize("name", ["universe_risk_parity", "universe_black_litterman"])
def test_the_shipped_allocation_files_run_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    if name == "universe_black_litterman":
        pytest.importorskip("cvxpy")
    short = [
        *("--set", "data.bars=900"),
        *("--set", "model.walk_forward.train_window=400"),
        *("--set", "model.walk_forward.retrain_every=400"),
    ]
    out = tmp_path / "run"
    capsys.readouterr()
    code = main(["run", str(ROOT / "strategies" / f"{name}.yaml"), *short, "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    decisions = _decisions(out)
    assert len(decisions) >= 2 and set(decisions["status"]) == {"ok"}
    kind = decisions["allocator"].iloc[0]
    line = next(line for line in text.splitlines() if line.strip().startswith("allocation "))
    assert line.split(None, 1)[1] == f"{kind}: {len(decisions)} rebalances, 0 failed, 0 late"
    orders = read_frame(journal_path(out), "order")
    assert len(orders) and set(orders["reason"]) == {"REBALANCE"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["allocation"]["allocator"] == kind


def test_a_portfolio_file_refuses_a_strategy_with_an_allocation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    shutil.copytree(ROOT / "examples" / "two_strategies", tmp_path / "two_strategies")
    shutil.copy(ROOT / "examples" / "two_strategies.yaml", tmp_path / "two.yaml")
    member = tmp_path / "two_strategies" / "trend_btc.yaml"
    text = member.read_text(encoding="utf-8")
    member.write_text(
        text.replace(
            "\nrisk:",
            "\nallocation:\n  kind: equal_weight\n  window: 10\n  rebalance: {every: 5}\nrisk:",
            1,
        ),
        encoding="utf-8",
    )
    at = member.read_text(encoding="utf-8").splitlines().index("allocation:") + 2
    capsys.readouterr()
    assert main(["run", str(tmp_path / "two.yaml"), "--out", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"{member}:{at}:3 allocation: a strategy's allocation: runs when the strategy runs "
        "alone; a portfolio file's strategies share one account at the portfolio's "
        "allocation: remove it here"
    ]
