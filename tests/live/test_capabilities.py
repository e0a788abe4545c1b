"""What paper and live trading ask of a strategy's components, checked before any bar.

``tradeloom validate FILE --mode paper|live`` (and ``run``) refuses a component that
cannot trade live, naming where it is, which component, and what it lacks; and
``execution: {kind: ccxt}`` is the account a live run trades, simulated in backtests
and paper runs.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from tests.live.live_emulated import STRATEGY, EmulatedRun, emulated_run, rows, tick_bars
from tradeloom.cli.main import main
from tradeloom.errors import ConfigError
from tradeloom.live.tick.runner import LiveRunner

# the plugin's models are of the single-market form (``fit_predict``), which still runs
# through its deprecated adapter (tests/plugins/model/test_one_market_model.py checks the
# warning)
pytestmark = pytest.mark.filterwarnings("ignore::tradeloom.plugin.TradeloomDeprecationWarning")

PLUGIN = '''\
import numpy as np
import pandas as pd

from tradeloom.plugin import Component, ModelOutput, Params, Venue, hookimpl


class NoParams(Params):
    pass


class BatchOnlyModel:
    """A model with fit_predict only: it backtests, it cannot trade live."""

    horizon = 1

    def fit_predict(self, bars, features):
        return ModelOutput(pd.Series(0.5, index=bars.frame.index))


class RowModel(BatchOnlyModel):
    """A model that predicts one row and trains nothing: it trades with what it has."""

    def predict_row(self, values):
        return 0.5


class PoolingRowModel(RowModel):
    """A model that pools a universe in a backtest and cannot train its pooled folds live."""

    def fit_predict_universe(self, universe, features):
        return tuple(ModelOutput(pd.Series(0.5, index=universe.index)) for _ in universe.bars)


class PaperVenue:
    """A venue that fills nothing: a Venue, not an exchange account."""

    allow_short = False
    initial_cash = 1000.0

    def quantity_for(self, notional, price):
        return notional / price

    def submit(self, order):
        pass

    def match(self, bar, phase):
        return []

    def cancel(self, order_id, bar, reason):
        return None

    def pending(self):
        return []


@hookimpl
def tradeloom_components():
    return [
        Component("model", "batch_only", NoParams, lambda p, c: BatchOnlyModel()),
        Component("model", "row_model", NoParams, lambda p, c: RowModel()),
        Component("model", "pooling_row_model", NoParams, lambda p, c: PoolingRowModel()),
        Component("execution", "paper_venue", NoParams, lambda p, c: PaperVenue()),
    ]
'''

BASE = """\
name: capable
plugins: [capability_plugin]
data:
  kind: ccxt
  exchange: binance
  symbol: BTC/USDT
  timeframe: 1h
  start: "2024-01-01"
features:
  - kind: log_return
    period: 1
model:
  kind: row_model
signal: {kind: threshold,
  threshold: 0.1,
  sides: long}
risk:
  sizing:
    kind: fixed_fraction
    fraction: 0.5
execution:
  kind: simulated
"""
"""The tests rely on its line numbers: data at 3, model at 12, execution at 21."""


EXCHANGE_FEE = (
    "note: --mode live sizes buys with the market's taker fee as ccxt describes it and a "
    "fill's fee is what the exchange reports; execution.fee_bps (and maker_fee_bps) model "
    "backtest and paper fills only"
)
"""What ``validate --mode live`` says of the fee of a single exchange."""

ROUTER = """\
  kind: router
  venues:
    - {name: a, kind: ccxt, exchange: binance, api_key: "${CAP_KEY}", secret: "${CAP_SECRET}",
       fee_bps: 10}
    - {name: b, kind: ccxt, exchange: kraken, api_key: "${CAP_KEY}", secret: "${CAP_SECRET}",
       fee_bps: 8, maker_fee_bps: 2}
"""


@pytest.fixture
def strategy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``s.yaml`` (BASE) in the current folder, its plugin module importable."""
    (tmp_path / "capability_plugin.py").write_text(PLUGIN, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CAP_KEY", "capability-test-key-5e1f0c7a")
    monkeypatch.setenv("CAP_SECRET", "capability-test-secret-9b2d4e61")
    path = tmp_path / "s.yaml"
    path.write_text(BASE, encoding="utf-8")
    saved = structlog.get_config()
    yield path
    structlog.configure(**saved)
    import sys

    sys.modules.pop("capability_plugin", None)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def validate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = main(["validate", "s.yaml", *args])
    out, err = capsys.readouterr()
    return code, err.splitlines(), out


SUMMARY = (
    "(data ccxt, 1 feature columns, model {model}, signal threshold, sizing fixed_fraction, "
    "0 risk rules, execution {execution}, 0 monitors)\n"
)


@pytest.mark.parametrize("mode", ["paper", "live"])
def test_a_model_that_cannot_predict_one_bar_is_refused_for_paper_and_live(
    strategy: Path, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    edit(strategy, "kind: row_model", "kind: batch_only")
    edit(
        strategy,
        '  start: "2024-01-01"\n',
        '  start: "2024-01-01"\n  api_key: ${CAP_KEY}\n  secret: ${CAP_SECRET}\n',
    )

    assert validate(capsys, "--mode", mode) == (
        2,
        [
            f"s.yaml:15:9 model.kind: --mode {mode} needs a model that predicts one bar at a "
            "time; 'batch_only' (plugin capability_plugin) cannot: it lacks predict_row "
            "(LiveModel)"
        ],
        "",
    )
    # the same file backtests
    code, err, out = validate(capsys)
    assert (code, err) == (0, [])
    assert out == "s.yaml: valid strategy 'capable' " + SUMMARY.format(
        model="batch_only", execution="simulated"
    )


def test_a_model_that_predicts_one_bar_and_trains_nothing_may_trade_on_paper(
    strategy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err, out = validate(capsys, "--mode", "paper")

    assert (code, err) == (0, [])
    assert out == "s.yaml: valid strategy 'capable' for --mode paper " + SUMMARY.format(
        model="row_model", execution="simulated"
    )


def test_live_with_a_venue_that_is_no_exchange_account_is_refused(
    strategy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(strategy, "  kind: simulated\n", "  kind: paper_venue\n")

    assert validate(capsys, "--mode", "live") == (
        2,
        [
            "s.yaml:22:9 execution.kind: --mode live needs a venue that trades on an exchange "
            "(kind: ccxt); 'paper_venue' (plugin capability_plugin) cannot: it lacks exchange "
            "and trading_client (LiveVenue)"
        ],
        "",
    )
    assert validate(capsys, "--mode", "paper")[0] == 0  # paper fills on the venue itself


def test_live_with_the_simulated_shorthand_needs_the_data_sources_keys(
    strategy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert validate(capsys, "--mode", "live") == (
        2,
        [
            "s.yaml:4:3 data: --mode live with execution kind simulated trades on binance with "
            "the data source's keys: set api_key: ${ENV_VAR} and secret: ${ENV_VAR} here, or "
            "trade with execution: {kind: ccxt, ...}"
        ],
        "",
    )


def test_live_with_a_ccxt_account_needs_its_keys_not_the_data_sources(
    strategy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(strategy, "  kind: simulated\n", "  kind: ccxt\n  exchange: binance\n  fee_bps: 10\n")
    assert validate(capsys, "--mode", "live") == (
        2,
        [
            "s.yaml:22:3 execution: --mode live trades on binance with this account's keys: "
            "set api_key: ${ENV_VAR} and secret: ${ENV_VAR}"
        ],
        "",
    )

    edit(
        strategy,
        "  fee_bps: 10\n",
        "  fee_bps: 10\n  api_key: ${CAP_KEY}\n  secret: ${CAP_SECRET}\n",
    )
    code, err, out = validate(capsys, "--mode", "live")
    assert (code, err) == (0, [f"s.yaml:24:12 execution.fee_bps: {EXCHANGE_FEE}"])
    assert out == "s.yaml: valid strategy 'capable' for --mode live " + SUMMARY.format(
        model="row_model", execution="ccxt"
    )


def test_live_says_what_a_single_exchange_and_a_router_do_with_fee_bps(
    strategy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = '  start: "2024-01-01"\n  api_key: ${CAP_KEY}\n  secret: ${CAP_SECRET}\n'
    edit(strategy, '  start: "2024-01-01"\n', keys)
    # the simulated shorthand trades on the data source's exchange: fee_bps not written
    exchange_fee = f"s.yaml:24:3 execution: {EXCHANGE_FEE}"
    assert validate(capsys, "--mode", "live")[:2] == (0, [exchange_fee])
    assert validate(capsys, "--mode", "paper")[:2] == (0, [])  # paper fills with fee_bps
    assert validate(capsys)[:2] == (0, [])
    edit(strategy, "  kind: simulated\n", ROUTER)
    assert validate(capsys, "--mode", "live")[:2] == (
        0,
        [
            "s.yaml:26:5 execution.venues: note: --mode live takes each venue's fee_bps as "
            "that account's taker tier (and maker_fee_bps, else fee_bps, for resting orders): "
            "the router ranks the venues by it and sizes buys with the largest; a fill's fee "
            "is what the exchange reports"
        ],
    )


def test_live_says_once_what_a_portfolio_files_account_does_with_fee_bps(
    strategy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = '  start: "2024-01-01"\n  api_key: ${CAP_KEY}\n  secret: ${CAP_SECRET}\n'
    edit(strategy, '  start: "2024-01-01"\n', keys)
    other = strategy.with_name("t.yaml")
    text = strategy.read_text().replace("BTC/USDT", "ETH/USDT").replace("capable", "other")
    other.write_text(text, encoding="utf-8")
    Path("p.yaml").write_text(
        "name: both\ninitial_cash: 10000\nstrategies:\n"
        "  - {file: s.yaml, weight: 0.5}\n  - {file: t.yaml, weight: 0.5}\n",
        encoding="utf-8",
    )
    # one account, the first strategy's execution section: one note, located there
    assert main(["validate", "p.yaml", "--mode", "live"]) == 0
    assert capsys.readouterr().err.splitlines() == [f"s.yaml:24:3 execution: {EXCHANGE_FEE}"]
    assert main(["validate", "p.yaml", "--mode", "paper"]) == 0
    assert capsys.readouterr().err == ""


def test_the_ccxt_account_refuses_credentials_in_its_client_settings(
    strategy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(
        strategy,
        "  kind: simulated\n",
        "  kind: ccxt\n  exchange: binance\n  config:\n    apiKey: written-here\n",
    )

    assert validate(capsys) == (
        2,
        [
            "s.yaml:25:13 execution.config.apiKey: credentials never go in config; use "
            "api_key, secret or password with an ${ENV_VAR} reference"
        ],
        "",
    )


# --- execution: kind: ccxt on the exchange emulator --------------------------------------


def _ccxt_account(text: str) -> str:
    """STRATEGY with the keys moved from the data source to a ccxt execution account."""
    without_keys = text.replace("  api_key: ${EMU_API_KEY}\n  secret: ${EMU_API_SECRET}\n", "")
    assert without_keys != text
    return without_keys.replace(
        "execution: {kind: simulated, fee_bps: 10, initial_cash: 50000}\n",
        textwrap.dedent(
            """\
            execution:
              kind: ccxt
              exchange: binance
              api_key: ${EMU_API_KEY}
              secret: ${EMU_API_SECRET}
              fee_bps: 10
              initial_cash: 50000
            """
        ),
    )


def _drive(run: EmulatedRun, runner: LiveRunner, bars: int) -> None:
    runner.start()
    tick_bars(run, runner, bars)
    runner.stop("test over")


@pytest.mark.slow
def test_live_trades_on_the_ccxt_account_and_paper_fills_it_simulated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "live").mkdir()
    (tmp_path / "paper").mkdir()
    text = _ccxt_account(STRATEGY)
    with emulated_run(tmp_path / "live", monkeypatch, text=text) as run:
        _drive(run, run.runner(tmp_path / "live-run", mode="live"), 150)
        sent = [o.client_order_id for o in run.emulator.exchange.orders()]
        assert run.emulator.errors == []
    with emulated_run(tmp_path / "paper", monkeypatch, text=text) as run:
        _drive(run, run.runner(tmp_path / "paper-run", mode="paper"), 150)
        assert run.emulator.exchange.orders() == []

    live = tmp_path / "live-run" / "journal.sqlite"
    assert sent and sent == [o["id"] for o in rows(live, "order")]
    paper = tmp_path / "paper-run" / "journal.sqlite"
    assert rows(paper, "order") and all(f["fee"] > 0 for f in rows(paper, "fill"))
    # the same decisions before the first live fill could differ
    first = rows(live, "order")[0]
    assert (first["bar"], first["side"]) == (
        rows(paper, "order")[0]["bar"],
        rows(paper, "order")[0]["side"],
    )


def test_a_universe_trades_on_paper_and_live(
    strategy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(strategy, "  symbol: BTC/USDT\n", "  symbols: [BTC/USDT, ETH/USDT]\n")

    assert validate(capsys, "--mode", "paper")[:2] == (0, [])
    # live, each symbol trades on the data source's exchange with its keys, as one does
    assert validate(capsys, "--mode", "live")[:2] == (
        2,
        [
            "s.yaml:4:3 data: --mode live with execution kind simulated trades on binance with "
            "the data source's keys: set api_key: ${ENV_VAR} and secret: ${ENV_VAR} here, or "
            "trade with execution: {kind: ccxt, ...}"
        ],
    )
    edit(
        strategy,
        '  start: "2024-01-01"\n',
        '  start: "2024-01-01"\n  api_key: ${CAP_KEY}\n  secret: ${CAP_SECRET}\n',
    )
    exchange_fee = f"s.yaml:24:3 execution: {EXCHANGE_FEE}"
    assert validate(capsys, "--mode", "live")[:2] == (0, [exchange_fee])
    edit(strategy, "execution:\n", "live: {retrain_cron: '0 0 * * *'}\nexecution:\n")
    assert validate(capsys, "--mode", "paper")[:2] == (
        2,
        [
            "s.yaml:23:22 live.retrain_cron: --mode paper over a universe retrains on the "
            "walk-forward plan only; remove live.retrain_cron"
        ],
    )
    # each symbol watched through its websocket stream (checked when the run starts)
    edit(strategy, "live: {retrain_cron: '0 0 * * *'}\n", "live: {stream: websocket}\n")
    assert validate(capsys, "--mode", "paper")[:2] == (0, [])


def test_a_universe_on_paper_needs_a_pooling_model_that_trains_its_folds_live(
    strategy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(strategy, "  symbol: BTC/USDT\n", "  symbols: [BTC/USDT, ETH/USDT]\n")
    edit(strategy, "  kind: row_model\n", "  kind: pooling_row_model\n")

    assert validate(capsys, "--mode", "paper")[:2] == (
        2,
        [
            "s.yaml:13:9 model.kind: --mode paper over a universe needs a model that trains its "
            "pooled folds one bar at a time; 'pooling_row_model' (plugin capability_plugin) "
            "cannot: it lacks retrain_every, pooled, train_next_universe and "
            "scheduled_start_universe (LiveTrainer)"
        ],
    )
    assert validate(capsys)[0] == 0  # it backtests


@pytest.mark.parametrize("sides", ["both", "short"])
def test_live_checks_signal_sides_against_the_exchanges_spot_market(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    sides: str,
) -> None:
    """``execution.allow_short: true`` trading a spot market live: the market refuses the
    shorts, which the file's own check could not know (no warning used to be said).
    ``sides: both`` is a note at the start; ``sides: short`` is refused before the run
    starts, as validate refuses it on a long-only venue."""
    monkeypatch.chdir(tmp_path)
    text = STRATEGY.replace(
        "execution: {kind: simulated, fee_bps: 10, initial_cash: 50000}",
        "execution: {kind: simulated, fee_bps: 10, initial_cash: 50000, allow_short: true}",
    ).replace(
        "signal: {kind: threshold, threshold: 0.04, min_interval: 2}",
        f"signal: {{kind: threshold, threshold: 0.04, min_interval: 2, sides: {sides}}}",
    )
    line = 1 + text.splitlines().index(
        f"signal: {{kind: threshold, threshold: 0.04, min_interval: 2, sides: {sides}}}"
    )
    why = (
        "the exchange's market BTC/USDT is spot (no shorts), though the file's venue allows "
        "them (execution.allow_short)"
    )
    with emulated_run(tmp_path, monkeypatch, text=text) as run:
        assert main(["validate", str(run.strategy), "--mode", "live"]) == 0  # not known yet
        runner = run.runner(tmp_path / "run", mode="live")
        if sides == "short":
            with pytest.raises(ConfigError) as refused:
                runner.start()
            runner.inbox.release_pid()
            said = (
                f"{run.strategy}:{line}:68 signal.sides: is short but {why}: the strategy "
                "could never open a position; set a perpetual swap market (data.symbol "
                "BASE/QUOTE:QUOTE), or signal.sides: long"
            )
            assert refused.value.lines() == [said]
            capsys.readouterr()
            out = str(tmp_path / "cli")
            assert main(["-q", "run", str(run.strategy), "--mode", "live", "--out", out]) == 2
            assert capsys.readouterr().err.splitlines() == [said]
            return
        runner.start()
        runner.stop("test over")
    assert runner.files.notes == [
        f"{run.strategy}:{line}:68 signal.sides: warning: the signal may go short "
        f"(signal.sides: both) but {why}: every down signal while flat is refused "
        "SHORT_NOT_ALLOWED; set signal.sides: long"
    ]


def _sides_text(execution: str, sides: str) -> tuple[str, int]:
    text = STRATEGY.replace(
        "execution: {kind: simulated, fee_bps: 10, initial_cash: 50000}", execution
    ).replace(
        "signal: {kind: threshold, threshold: 0.04, min_interval: 2}",
        f"signal: {{kind: threshold, threshold: 0.04, min_interval: 2, sides: {sides}}}",
    )
    return text, 1 + text.splitlines().index(
        f"signal: {{kind: threshold, threshold: 0.04, min_interval: 2, sides: {sides}}}"
    )


def test_live_on_a_swap_says_the_market_trades_both_sides_though_the_file_says_long_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``execution.allow_short: false`` trading a perpetual swap live: the exchange's
    market decides (the account venue shorts), so the file's long-only warning does not
    hold there; the start says what does, and says it again at a restart."""
    from tests.live.test_perp_live import PERP, SWAP, sine_funding
    from tradeloom.cli.run_command import _notes
    from tradeloom.engine.wiring import build_pipeline
    from tradeloom.schemas import load_strategy

    monkeypatch.chdir(tmp_path)
    text = PERP.replace("  market: swap\n", "  market: swap\n  allow_short: false\n")
    line = 1 + text.splitlines().index("  allow_short: false")
    said = (
        f"{{file}}:{line}:16 execution.allow_short: warning: is false but the exchange's market "
        f"{SWAP} is a perpetual swap, which trades both sides: the run opens shorts as its "
        "signal gives them (signal.sides: both); set signal.sides: long to trade long only"
    )
    funding = {SWAP: sine_funding()}
    with emulated_run(tmp_path, monkeypatch, text=text, symbol=SWAP, funding_rates=funding) as run:
        config, _ = load_strategy(run.strategy)
        pipeline = build_pipeline(config, mode="live")
        assert any("long-only" in note for note in _notes([pipeline]))  # the file's venue
        assert not any("long-only" in note for note in _notes([pipeline], live=True))
        runner = run.runner(tmp_path / "run", mode="live")
        runner.start()
        runner.stop("test over")
        assert runner.files.notes == [said.format(file=run.strategy)]
        again = run.runner(tmp_path / "run", mode="live")
        again.start()  # a restart: the markets are checked again
        again.stop("test over")
        assert again.files.notes == [said.format(file=run.strategy)]


def test_a_restart_checks_signal_sides_against_the_exchanges_spot_market(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spot market's warning of a new live run (`test_live_checks_signal_sides_...`)
    is said at each restart too."""
    monkeypatch.chdir(tmp_path)
    execution = "execution: {kind: simulated, fee_bps: 10, initial_cash: 50000, allow_short: true}"
    text, _ = _sides_text(execution, "both")
    with emulated_run(tmp_path, monkeypatch, text=text) as run:
        runner = run.runner(tmp_path / "run", mode="live")
        runner.start()
        runner.stop("test over")
        first = list(runner.files.notes)
        again = run.runner(tmp_path / "run", mode="live")
        again.start()
        again.stop("test over")
    assert len(first) == 1 and "is spot (no shorts)" in first[0]
    assert again.files.notes == first
