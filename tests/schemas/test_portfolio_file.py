"""A portfolio file: several strategy files on one account, validated together.

Every problem is reported at its own file: the portfolio's at the portfolio file's
line, a strategy's at the strategy file's line.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import structlog

from tradeloom.cli.main import main
from tradeloom.errors import ConfigError
from tradeloom.schemas.portfolio_file import is_portfolio_document, load_portfolio

SIDES_WARNING = (
    "signal.kind: warning: the signal may go short (signal.sides: both, the default) but the "
    "venue trades long-only (execution.allow_short: false): every down signal while flat is "
    "refused SHORT_NOT_ALLOWED; set signal.sides: long"
)

ROOT = Path(__file__).resolve().parents[2]
STRATEGIES = ROOT / "strategies"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name in ("btc_rf.yaml", "eth_hgb_stops.yaml"):
        shutil.copy(STRATEGIES / name, tmp_path / name)
    return tmp_path


def _write(folder: Path, text: str, name: str = "portfolio.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


@pytest.fixture
def tradeloom(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``tradeloom ARGS`` in ``folder``, run by the CLI's `main` in this process.

    What these tests read is the exit code and the exact lines a user sees; a process
    start per call would cost two seconds of CPU (tests/cli/test_cli.py runs the command as
    a process).
    """
    monkeypatch.chdir(folder)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["tradeloom", *args], code, out, err)

    return run


def _problems(path: Path, *overrides: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_portfolio(path, overrides)
    return caught.value.lines()


def test_fixed_weights_and_the_strategies_are_loaded(folder: Path) -> None:
    path = _write(
        folder,
        "name: two\ninitial_cash: 50000\nstrategies:\n"
        "  - {file: btc_rf.yaml, weight: 0.25}\n"
        "  - {file: eth_hgb_stops.yaml, weight: 0.75}\n",
    )
    portfolio = load_portfolio(path)
    assert [c.name for c in portfolio.strategies] == ["btc_rf", "eth_hgb_stops"]
    assert portfolio.weights == (0.25, 0.75)
    assert portfolio.file.initial_cash == 50000
    assert portfolio.file.allocation.kind == "fixed"


def test_normalize_scales_the_weights(folder: Path) -> None:
    path = _write(
        folder,
        "name: two\ninitial_cash: 1000\nallocation: {normalize: true}\nstrategies:\n"
        "  - {file: btc_rf.yaml, weight: 0.2}\n"
        "  - {file: eth_hgb_stops.yaml, weight: 0.6}\n",
    )
    assert load_portfolio(path).weights == pytest.approx((0.25, 0.75), rel=1e-15)


def test_weights_that_do_not_sum_to_one_are_refused_at_the_list(folder: Path) -> None:
    path = _write(
        folder,
        "name: two\ninitial_cash: 1000\nstrategies:\n"
        "  - {file: btc_rf.yaml, weight: 0.2}\n"
        "  - {file: eth_hgb_stops.yaml, weight: 0.6}\n",
    )
    assert _problems(path) == [
        f"{path}:4:3 strategies: the weights sum to 0.8, not 1; fix them or set "
        "allocation.normalize: true"
    ]
    # an override is located at --set
    assert load_portfolio(path, ["strategies.1.weight=0.8"]).weights == (0.2, 0.8)


def test_inverse_volatility_needs_a_window_and_no_weights(folder: Path) -> None:
    path = _write(
        folder,
        "name: two\ninitial_cash: 1000\nallocation: {kind: inverse_volatility, window: 50}\n"
        "strategies:\n"
        "  - {file: btc_rf.yaml, weight: 0.5}\n"
        "  - {file: eth_hgb_stops.yaml}\n",
    )
    assert _problems(path) == [
        f"{path}:5:33 strategies.0.weight: a weight is not used by allocation kind "
        "inverse_volatility; remove it, or use kind fixed"
    ]
    path.write_text(path.read_text().replace(", window: 50", ""))
    assert _problems(path) == [
        f"{path}:3:13 allocation: allocation kind inverse_volatility needs window: BARS"
    ]
    path.write_text(
        path.read_text().replace("inverse_volatility}", "inverse_volatility, window: 9}")
    )
    path.write_text(path.read_text().replace(", weight: 0.5", ""))
    assert load_portfolio(path).weights == (0.5, 0.5)


def test_a_schedule_is_for_the_moving_allocations_and_never_drift(folder: Path) -> None:
    path = _write(
        folder,
        "name: two\ninitial_cash: 1000\n"
        "allocation: {kind: risk_parity, window: 50, rebalance: {drift: 0.1}}\n"
        "strategies:\n"
        "  - {file: btc_rf.yaml}\n"
        "  - {file: eth_hgb_stops.yaml}\n",
    )
    assert _problems(path) == [
        f"{path}:3:13 allocation: rebalance: a strategy's share has no held weight to drift "
        "from; use every or calendar"
    ]
    path.write_text(path.read_text().replace("{drift: 0.1}", "{calendar: monthly}"))
    portfolio = load_portfolio(path)
    assert portfolio.weights == (0.5, 0.5)
    assert portfolio.file.allocation.rebalance is not None
    assert portfolio.file.allocation.rebalance.calendar == "monthly"
    fixed = path.read_text().replace("kind: risk_parity, window: 50, ", "kind: fixed, ")
    for name in ("btc_rf", "eth_hgb_stops"):
        fixed = fixed.replace(f"{{file: {name}.yaml}}", f"{{file: {name}.yaml, weight: 0.5}}")
    path.write_text(fixed)
    assert _problems(path) == [
        f"{path}:3:13 allocation: rebalance applies to an allocator kind, not fixed"
    ]


def test_every_problem_at_its_own_file(folder: Path) -> None:
    bad = folder / "btc_rf.yaml"
    bad.write_text(bad.read_text().replace("bars: 20000", "bars: -5"))
    line = bad.read_text().splitlines().index("  bars: -5") + 1
    path = _write(
        folder,
        "name: two\ninitial_cash: 1000\nstrategies:\n"
        "  - {file: btc_rf.yaml, weight: 0.5}\n"
        "  - {file: missing.yaml, weight: 0.25}\n"
        "  - {file: eth_hgb_stops.yaml, weight: 0.25}\n"
        "  - {file: eth_hgb_stops.yaml}\n",
    )
    assert _problems(path) == [
        f"{bad}:{line}:9 data.bars: must be >= 100, was -5",
        f"{path}:5:12 strategies.1.file: {folder / 'missing.yaml'}: no such file",
        f"{path}:7:5 strategies.3: allocation kind fixed needs a weight per strategy",
        f"{path}:7:12 strategies.3.file: strategy name 'eth_hgb_stops' is also the name of "
        "strategies.2; names attribute every order and must differ",
    ]


def test_a_strategy_file_is_not_a_portfolio() -> None:
    assert is_portfolio_document({"strategies": []})
    assert not is_portfolio_document({"name": "x", "data": {}})
    assert not is_portfolio_document(["strategies"])


def test_validate_through_the_cli(
    folder: Path, tradeloom: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    path = _write(
        folder,
        "name: two\ninitial_cash: 100000\nstrategies:\n"
        "  - {file: btc_rf.yaml, weight: 0.6}\n"
        "  - {file: eth_hgb_stops.yaml, weight: 0.3}\n",
    )
    command = ["validate", path.name]
    proc = tradeloom(*command)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        "portfolio.yaml:4:3 strategies: the weights sum to 0.9, not 1; fix them or set "
        "allocation.normalize: true\n"
    )
    path.write_text(path.read_text().replace("0.3", "0.4"))
    proc = tradeloom(*command)
    assert (proc.returncode, proc.stdout) == (2, "")
    # valid files each, which cannot share one account: each difference at its line
    shared = "strategies on one account share the engine's exits and regime filter; make them equal"
    eth = "eth_hgb_stops.yaml"
    assert proc.stderr.splitlines() == [
        f"{eth}:56:3 signal.sides: is 'both' here and 'long' in btc_rf.yaml: {shared}",
        f"{eth}:70:21 risk.max_holding_bars: is 96 here and 48 in btc_rf.yaml: {shared}",
        f"{eth}:71:14 risk.stop_loss: is 0.02 here and unset in btc_rf.yaml: {shared}",
        f"{eth}:72:16 risk.take_profit: is 0.04 here and unset in btc_rf.yaml: {shared}",
        "eth_hgb_stops.yaml:75:3 execution: differs from btc_rf.yaml's: strategies on one account "
        "trade through one venue; make the execution sections equal (initial_cash aside: the "
        "account's is the portfolio file's)",
        "eth_hgb_stops.yaml:103:3 health: health rules are not run on a portfolio's account yet; "
        "remove them",
        "portfolio.yaml:5:12 strategies.1.file: the strategies' bars must share one clock: "
        "btc_rf has 20,000 1h bars from 2023-01-01T00:00Z, eth_hgb_stops has 12,000 15m bars "
        "from 2024-01-01T00:00Z; give them the same timeframe, start and bars",
    ]
    for name in ("trend_btc.yaml", "reversion_eth.yaml"):
        shutil.copy(ROOT / "examples" / "two_strategies" / name, folder / name)
    path.write_text(
        path.read_text()
        .replace("btc_rf.yaml", "trend_btc.yaml")
        .replace("eth_hgb_stops.yaml", "reversion_eth.yaml")
    )
    proc = tradeloom(*command)
    # valid, and no warning (both signals are long-only, signal.sides, on a spot venue; both
    # size by fixed_fraction)
    assert (proc.returncode, proc.stderr) == (0, "")
    # the same files with the key taken out: a warning each, at signal.kind
    for name in ("trend_btc.yaml", "reversion_eth.yaml"):
        member = folder / name
        member.write_text(member.read_text().replace("  sides: long\n", "", 1))
    proc = tradeloom(*command)
    assert (proc.returncode, proc.stderr) == (
        0,
        f"trend_btc.yaml:38:9 {SIDES_WARNING}\nreversion_eth.yaml:36:9 {SIDES_WARNING}\n",
    )
    assert proc.stdout == (
        "portfolio.yaml: valid portfolio 'two': 2 strategies on one account of 100,000.00 "
        "(fixed: trend_btc 0.6, reversion_eth 0.4)\n"
    )


def test_paper_and_live_refuse_each_strategy_that_cannot_trade_live_in_one_line(
    folder: Path, tradeloom: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    """A portfolio trades on paper and live as a strategy does; each strategy whose data
    source is a backtest's (the synthetic market) is refused at its own data.kind."""
    for name in ("trend_btc.yaml", "reversion_eth.yaml"):
        shutil.copy(ROOT / "examples" / "two_strategies" / name, folder / name)
    path = _write(
        folder,
        "name: two\ninitial_cash: 100000\nstrategies:\n"
        "  - {file: trend_btc.yaml, weight: 0.5}\n"
        "  - {file: reversion_eth.yaml, weight: 0.5}\n",
    )
    for mode, command in [(m, c) for m in ("paper", "live") for c in ("run", "validate")]:
        proc = tradeloom(command, path.name, "--mode", mode)
        assert (proc.returncode, proc.stdout) == (2, ""), command
        need = (
            f"data.kind: --mode {mode} needs live bars from an exchange (kind: ccxt); "
            "'synthetic' (plugin tradeloom.plugins.data) is a backtest source: it lacks "
            "closed_bars_of and bar_stream_of (LiveFeed)"
        )
        assert proc.stderr.splitlines() == [
            f"reversion_eth.yaml:9:9 {need}",
            f"trend_btc.yaml:9:9 {need}",
        ]


def test_a_sizing_of_the_compiled_core_alone_is_refused_in_a_portfolio(folder: Path) -> None:
    strategy = folder / "btc_rf.yaml"
    text = strategy.read_text()
    start = text.index("  sizing:\n")
    end = text.index("\n  ", text.index("avg_loss", start))
    strategy.write_text(
        text[:start] + "  sizing:\n    kind: volatility_target\n    target: 0.2" + text[end:]
    )
    line = strategy.read_text().splitlines().index("    kind: volatility_target") + 1
    path = _write(
        folder,
        "name: two\ninitial_cash: 1000\nstrategies:\n"
        "  - {file: btc_rf.yaml, weight: 0.5}\n"
        "  - {file: eth_hgb_stops.yaml, weight: 0.5}\n",
    )
    assert _problems(path) == [
        f"{strategy}:{line}:11 risk.sizing.kind: sizing kind volatility_target keeps its "
        "estimate in the compiled core of a strategy run alone; in a portfolio file each "
        "strategy sizes in Python: use kelly or fixed_fraction"
    ]


def test_validate_names_the_allocation_and_its_schedule(capsys: pytest.CaptureFixture[str]) -> None:
    path = ROOT / "examples" / "two_strategies.yaml"
    moving = ["allocation.window=200", "strategies.0.weight=null", "strategies.1.weight=null"]
    sets = ["allocation.kind=risk_parity", "allocation.rebalance={every: 24}", *moving]
    capsys.readouterr()
    saved = structlog.get_config()  # an in-process main configures the logging globally
    try:
        assert main(["validate", str(path), *(w for s in sets for w in ("--set", s))]) == 0
    finally:
        structlog.configure(**saved)
    assert capsys.readouterr().out.endswith(
        "2 strategies on one account of 100,000.00 (risk parity over 200 bars, rebalanced "
        "every 24 bars, equal until then: trend_btc 0.5, reversion_eth 0.5)\n"
    )


def _sleeves(folder: Path, allocation: str) -> Path:
    return _write(
        folder,
        f"name: two\ninitial_cash: 1000\nallocation: {allocation}\n"
        "strategies:\n"
        "  - {file: btc_rf.yaml}\n"
        "  - {file: eth_hgb_stops.yaml}\n",
    )


def test_every_allocator_kind_a_strategy_takes_weighs_the_strategies(folder: Path) -> None:
    path = _sleeves(
        folder,
        "{kind: hrp, linkage: average, window: 60, rebalance: {every: 24}, "
        "constraints: {max_weight: 0.8, bounds: {btc_rf: {min: 0.1}}}}",
    )
    portfolio = load_portfolio(path)
    assert portfolio.allocator is not None
    assert portfolio.allocator.kind == "hrp"
    params = portfolio.allocator.params.model_dump()
    # the allocator's own keys, validated by its params; the covariance unset: sample
    assert (params["linkage"], params["covariance"]) == ("average", "sample")
    assert portfolio.file.allocation.constraints.max_weight == 0.8
    # the resolved file holds what the file wrote, no more
    assert "covariance" not in portfolio.file.model_dump()["allocation"]


def test_a_portfolio_s_allocator_keys_are_refused_as_a_strategy_s_are(folder: Path) -> None:
    path = _sleeves(folder, "{kind: hrp, linkage: nearest, windw: 5, window: 60}")
    assert _problems(path) == [
        f"{path}:3:34 allocation.linkage: expected 'single', 'complete', 'average', "
        "'weighted', 'centroid', 'median' or 'ward', was 'nearest'",
        f"{path}:3:43 allocation.windw: unknown key (did you mean 'window'?)",
    ]
    path = _sleeves(folder, "{kind: hrq, window: 60}")
    [line] = _problems(path)
    assert line.startswith(
        f"{path}:3:20 allocation.kind: unknown allocation kind 'hrq' (did you mean 'hrp'?); "
        "installed kinds: black_litterman, equal_weight, hrp, "
    )


def test_the_constraints_of_a_strategy_s_symbols_are_refused_for_its_shares(
    folder: Path,
) -> None:
    path = _sleeves(
        folder,
        "{kind: risk_parity, window: 60, constraints: {min_trade: 0.01, "
        "bounds: {btc: {max: 0.6}}}}",
    )
    assert _problems(path) == [
        f"{path}:3:70 allocation.constraints.min_trade: a portfolio file's strategies share "
        "the account long-only, their shares summing to 1: min_trade is a strategy's "
        "allocation key; the portfolio's are min_weight, max_weight, bounds, max_turnover",
        f"{path}:3:90 allocation.constraints.bounds.btc: unknown strategy 'btc' (did you mean "
        "'btc_rf'?); the portfolio's strategies are 'btc_rf', 'eth_hgb_stops'",
    ]
    path = _sleeves(folder, "{kind: fixed, linkage: single}")
    assert _problems(path) == [
        f"{path}:3:13 allocation: kind fixed takes no key 'linkage' (an allocator kind's "
        "keys sit beside it)"
    ]
