"""The ``tradeloom`` command, run as a user runs it: in a subprocess, reading its output.

Every strategy file shipped in ``strategies/`` and ``examples/`` validates and runs with
no warning (shortened with ``--set`` where it uses synthetic data; the default strategy
also runs unmodified). These runs are end-to-end yet not marked ``slow``: a plain ``pytest`` (the
README's, CI's) runs every shipped file. A file that uses the example plugin runs in a
throwaway venv with the plugin installed (``tests/plugin_venv.py``). A file whose bars come from an
exchange (``kind: ccxt``) runs in process against the loopback exchange emulator
instead of the network: its backtest,
then ``--mode paper`` for a few live bars, twice (the same command restarts the run).
Every user mistake exits 2 with one exact line per problem on stderr and no traceback.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import structlog
import yaml

from tests import forkserver
from tests.builders import OMIT, PRECOMPUTED, strategy_text, walk_bars
from tests.plugin_venv import EXAMPLE_GROUP
from tests.shipped_runs import BARS, SHIPPED_GROUP, STRATEGIES
from tradeloom import __version__
from tradeloom.cli.main import main
from tradeloom.journal import RunFailed, RunStarted, journal_digest, read_events, read_sequenced
from tradeloom.plugins.component import LAYERS
from tradeloom.plugins.data.ccxt_client import use_client_factory
from tradeloom.plugins.data.ccxt_stream import use_pro_client_factory
from tradeloom.plugins.manager import BUILTIN_PLUGINS, load_plugins
from tradeloom.schemas.strategy import iter_sections
from tradeloom.testing import ExchangeEmulator, bars_closing
from tradeloom.testing.llm_server import ChatServer

ROOT = Path(__file__).resolve().parents[2]
Command = Callable[..., subprocess.CompletedProcess[str]]
"""A ``tradeloom ARGS`` runner: the finished process, or its like for a run in this process."""
SHIPPED_FILES = sorted((ROOT / "strategies").glob("*.yaml")) + sorted(
    (ROOT / "examples").glob("*.yaml")
)
PORTFOLIO_FILES = [
    p for p in SHIPPED_FILES if "strategies" in yaml.safe_load(p.read_text(encoding="utf-8"))
]
"""Portfolio files: their strategy files sit in a subfolder (run through the portfolio)."""
STRATEGY_FILES = [p for p in SHIPPED_FILES if p not in PORTFOLIO_FILES]
RUN_FILES = (
    "strategy.yaml",
    "metrics.json",
    "equity.csv",
    "orders.csv",
    "fills.csv",
    "trades.csv",
    "journal.sqlite",
)
EQUITY_HEADER = "timestamp,close,position,cash,equity,drawdown"
SUMMARY_LABELS = (
    "bars",
    "period",
    "total return",
    "CAGR",
    "Sharpe (ann.)",
    "max drawdown",
    "trades",
    "win rate",
    "fees",
    "final equity",
    "run directory",
)
FAST_BARS = BARS
EXCHANGE_BARS = 300
"""Bars of an exchange-data strategy's backtest, and the closed bars when its paper run
starts (the emulator's bars open hourly from 2024-01-01)."""
KLINES = "GET /api/v3/klines"
BUILT_IN_KINDS = {
    "data": {"csv", "parquet", "synthetic"},
    "features": {"log_return", "rsi", "bb_width", "volatility", "volume_zscore", "lags"},
    "model": {"precomputed", "sklearn"},
    "signal": {"threshold"},
    "allocation": {"equal_weight", "risk_parity", "hrp", "black_litterman"},
    "sizing": {"kelly", "fixed_fraction"},
    "risk": {"drawdown_halt"},
    "execution": {"simulated"},
    "monitoring": {"rolling_auc"},
    "llm_client": {"openai_compatible"},
    "text_feed": {"http_poll", "nats"},
    "events": {"nats", "redis_streams"},
    "chat": {"telegram"},
}
"""Kinds the built-in plugins provide at least (the shipped strategies use them)."""


def tradeloom(
    *args: str | Path, cwd: Path = ROOT, pythonpath: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m tradeloom.cli.main ARGS`` and return the finished process."""
    return forkserver.tradeloom(*args, cwd=cwd, pythonpath=pythonpath)


def assert_user_error(proc: subprocess.CompletedProcess[str], *lines: str) -> None:
    """Exit 2, nothing on stdout, exactly ``lines`` on stderr, no traceback."""
    assert (proc.returncode, proc.stderr, proc.stdout) == (2, "".join(f"{x}\n" for x in lines), "")


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _needs_example_plugin(path: Path) -> bool:
    """Whether the file uses a kind the built-ins lack (the example plugin's)."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    registry = load_plugins(entry_points=False).registry
    return any(registry.get(layer, s["kind"]) is None for _, layer, s in iter_sections(doc))


STRATEGY_PARAMS = [
    pytest.param(path, id=_rel(path), marks=pytest.mark.xdist_group(EXAMPLE_GROUP))
    if _needs_example_plugin(path)
    else pytest.param(path, id=_rel(path))
    for path in STRATEGY_FILES
]
"""Every shipped file; those that use the example plugin run in its venv, on one worker."""

RUN_PARAMS = [
    pytest.param(p.values[0], id=p.id, marks=pytest.mark.xdist_group(SHIPPED_GROUP))
    if p.values[0] in STRATEGIES
    else p
    for p in STRATEGY_PARAMS
    if p.values[0] != ROOT / "strategies" / "btc_rf.yaml"
]
"""The files `test_every_strategy_file_runs` runs shortened: the default strategy runs
whole, as the README's first command, in `test_the_default_strategy_runs_unmodified`.
Those of ``strategies/`` read the compiled run tests/kernels/test_first_run.py compares
with the Python forms' (`shipped_runs`), on its worker."""


@pytest.fixture
def llm_server() -> Iterator[ChatServer]:
    """The chat completions stand-in (`tradeloom.testing.llm_server`), serving a test."""
    with ChatServer() as server:
        yield server


def _validator(path: Path, request: pytest.FixtureRequest) -> Callable[[str], Any]:
    """``tradeloom validate`` in a venv with the example plugin installed if the file needs
    it (its kinds come from the package's entry point; made once, `example_commands`, and
    read by tests/test_example_plugin.py too), else `main` in this process: the file's
    run through the command in a process is `test_every_strategy_file_runs`."""
    if _needs_example_plugin(path):
        return request.getfixturevalue("example_commands").validate  # type: ignore[no-any-return]
    in_process = request.getfixturevalue("in_process")
    return lambda file: in_process("validate", file)


def _notes(path: Path, doc: dict[str, Any]) -> str:
    """What ``validate`` prints of a valid file: a torch model's note, at its model
    section, that paper and live may differ from the backtest in float64's last bits
    (`ModelParityNote`); nothing for the others (their estimators are compiled)."""
    if doc["model"].get("kind") != "torch":
        return ""
    line = path.read_text(encoding="utf-8").splitlines().index("  kind: torch") + 1
    return (
        f"{_rel(path)}:{line}:3 model: note: the torch network predicts a backtest's windows "
        "in batches and a live bar's window alone (in float64, from its float32 weights): a "
        "matrix product may add a window's terms in another order for one window than for "
        "many, so paper and live may differ from the backtest in the last bits (about "
        "1e-16)\n"
    )


def _fast_overrides(doc: dict[str, Any]) -> list[str]:
    """--set values that shorten a synthetic-data strategy to FAST_BARS bars."""
    if doc["data"]["kind"] != "synthetic":
        return []
    return [f"data.bars={FAST_BARS}", *_model_overrides(doc, FAST_BARS // 3)]


def _model_overrides(doc: dict[str, Any], window: int) -> list[str]:
    """--set values that train a walk-forward model on ``window`` rows every ``window`` bars."""
    model = doc["model"]
    if model["kind"] not in ("sklearn", "torch"):
        return []
    overrides = [
        f"model.walk_forward.train_window={window}",
        f"model.walk_forward.retrain_every={window}",
    ]
    if model["kind"] == "torch":  # a network's epochs are its work: one
        overrides.append("model.training.epochs=1")
    if "min_train_rows" in model["walk_forward"]:
        overrides.append(f"model.walk_forward.min_train_rows={window}")
    if "calibration" in model:  # the calibrator's rows leave the model rows to fit on
        overrides.append(f"model.calibration.holdout={window // 3}")
    if "n_jobs" in model.get("params", {}):
        overrides.append("model.params.n_jobs=1")  # worker start-up costs more than it saves
    return overrides


def _check_shipped_run(out: Path, proc: subprocess.CompletedProcess[str], name: str) -> dict:
    """`_check_run_dir`, and the summary of a shipped file's backtest says no warning (the
    file shows the practice its validation asks for); return its metrics."""
    metrics = _check_run_dir(out, proc, name)
    said = [line for line in proc.stdout.splitlines() if line.lower().startswith("  warning ")]
    assert said == [], said
    return metrics


def _check_run_dir(out: Path, proc: subprocess.CompletedProcess[str], name: str) -> dict:
    """Check what a successful run printed and wrote; return its metrics.

    The run directory is reported as an absolute path, however ``--out`` was typed.
    """
    given = str(out.resolve())
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    for file in RUN_FILES:
        assert (out / file).is_file(), file
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["strategy"], metrics["run_dir"]) == (name, given)

    lines = proc.stdout.splitlines()
    assert lines[0] == f"tradeloom backtest: {name}"
    table = dict(re.fullmatch(r"  (.+?)  +(\S.*)", line).groups() for line in lines[1:])
    assert set(SUMMARY_LABELS) <= set(table)
    assert table["bars"] == f"{metrics['bars']:,}"
    # an allocating run counts only the positions it closed to zero, and says so
    closed = "" if not metrics.get("allocation") else " closed to zero"
    assert table["trades"] == f"{metrics['trades']:,}{closed}"
    assert table["final equity"] == f"{metrics['final_equity']:,.2f}"
    assert table["run directory"] == given

    equity_text = (out / "equity.csv").read_text().splitlines()
    assert len(equity_text) == metrics["bars"] + 1
    equity = pd.read_csv(out / "equity.csv")
    symbols = metrics.get("symbols") or [metrics["symbol"]]
    if len(symbols) == 1:
        assert equity_text[0] == EQUITY_HEADER
        held = equity["position"] * equity["close"]
    else:  # a universe: the account; each symbol's value a row of positions.csv
        assert equity_text[0] == "timestamp,cash,equity,drawdown,gross,equal_weight"
        rows = pd.read_csv(out / "positions.csv").groupby("bar")["value"].sum()
        held = rows.reindex(range(len(equity)), fill_value=0.0)
    np.testing.assert_allclose(equity["equity"], equity["cash"] + held, rtol=1e-12)
    fills = pd.read_csv(out / "fills.csv")
    assert len(fills) == metrics["fills"]
    assert len(pd.read_csv(out / "orders.csv")) == metrics["orders"]
    assert metrics["fees"] == pytest.approx(fills["fee"].sum(), rel=1e-12, abs=1e-12)

    types = [e.KIND for e in read_events(out / "journal.sqlite")]
    assert (types[0], types[-1]) == ("run_started", "run_finished")
    assert types.count("order") == metrics["orders"]
    assert types.count("fill") == metrics["fills"]
    return metrics


# --- every shipped strategy file ---------------------------------------------------------


@pytest.mark.parametrize("path", STRATEGY_PARAMS)
def test_every_strategy_file_validates(path: Path, request: pytest.FixtureRequest) -> None:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))

    proc = _validator(path, request)(_rel(path))

    # no warning: a shipped file is what users copy, so it shows the practice validate asks
    # for (a calibrated model under Kelly sizing, signal.sides on a long-only venue, ...)
    assert (proc.returncode, proc.stderr) == (0, _notes(path, doc))
    pattern = (
        rf"{re.escape(_rel(path))}: valid strategy '{re.escape(doc['name'])}' "
        rf"\(data {doc['data']['kind']}, \d+ feature columns, model {doc['model']['kind']}, "
        rf"signal {doc['signal']['kind']}, sizing {doc['risk']['sizing']['kind']}, "
        rf"{len(doc['risk'].get('rules', []))} risk rules?, "
        rf"execution {doc['execution']['kind']}, "
        rf"{len(doc.get('monitoring', []))} monitors?"
        + (f", allocation {doc['allocation']['kind']}" if "allocation" in doc else "")
        + r"\)\n"
    )
    assert re.fullmatch(pattern, proc.stdout), proc.stdout


@pytest.mark.usefixtures("cli_logging")
@pytest.mark.parametrize("path", RUN_PARAMS)
def test_every_strategy_file_runs(
    path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if doc["data"]["kind"] == "ccxt":
        # its paper run commits its journal, fsync'd, at every bar: in memory (`ram_tmp`)
        folder = request.getfixturevalue("ram_tmp_path")
        _runs_on_the_exchange_emulator(path, doc, folder, monkeypatch, capsys)
        return
    if _needs_example_plugin(path):
        # in the example plugin's venv, whole: the run its own tests read, made once
        # (`example_commands`: a new interpreter a run there)
        proc, out = request.getfixturevalue("example_commands").run(_rel(path))
        metrics = _check_shipped_run(out, proc, doc["name"])
        assert metrics["bars"] == doc["data"]["bars"]
        return
    if path in STRATEGIES:  # its run, made once (`shipped_runs`), as test_first_run made it
        proc, out = request.getfixturevalue("shipped_runs").run(path, "compile")
        written = set(out.rglob("*"))
        metrics = _check_shipped_run(out, proc, doc["name"])
        assert metrics["bars"] == BARS
        assert yaml.safe_load((out / "strategy.yaml").read_text())["name"] == doc["name"]
        for left in set(out.rglob("*")) - written:  # a reader's -wal and -shm files: the
            left.unlink()  # folder stays as the command wrote it, for test_first_run.py
        return
    overrides = _fast_overrides(doc)
    out = tmp_path / "run"
    asking = [i for i, f in enumerate(doc["features"]) if f["kind"] == "text_llm"]
    if asking:  # an LLM's features: asked of the stand-in server, nothing shared kept
        server = request.getfixturevalue("llm_server")
        for i in asking:
            overrides += [
                f"features.{i}.client.base_url={server.base_url}",
                f"features.{i}.shared_cache=false",
            ]

    proc = tradeloom("run", _rel(path), "--out", out, *[a for o in overrides for a in ("--set", o)])

    metrics = _check_shipped_run(out, proc, doc["name"])
    resolved = yaml.safe_load((out / "strategy.yaml").read_text())
    if overrides:
        assert metrics["bars"] == resolved["data"]["bars"] == FAST_BARS
    assert resolved["name"] == doc["name"]


@pytest.mark.parametrize("path", PORTFOLIO_FILES, ids=_rel)
def test_every_portfolio_file_validates(path: Path, in_process: Command) -> None:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))

    proc = in_process("validate", _rel(path))

    # no warning of any of its strategy files (`test_every_strategy_file_validates`)
    assert (proc.returncode, proc.stderr) == (0, "")
    count = len(doc["strategies"])
    assert proc.stdout.startswith(
        f"{_rel(path)}: valid portfolio '{doc['name']}': {count} strategies on one account of "
    )


@pytest.mark.parametrize("path", PORTFOLIO_FILES, ids=_rel)
def test_every_portfolio_file_runs(path: Path, tmp_path: Path) -> None:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    out = tmp_path / "run"

    proc = tradeloom("run", _rel(path), "--out", out)

    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    names = list(metrics["attribution_by_strategy"])
    assert (metrics["strategy"], metrics["run_dir"]) == (doc["name"], str(out.resolve()))
    assert len(names) == len(doc["strategies"])
    lines = proc.stdout.splitlines()
    assert lines[0] == f"tradeloom backtest: {doc['name']}"
    table = dict(re.fullmatch(r"  (.+?)  +(\S.*)", line).groups() for line in lines[1:])
    assert table["final equity"] == f"{metrics['final_equity']:,.2f}"
    assert {f"  strategy {name}" for name in names} <= set(table)
    assert not {"warning", "WARNING"} & set(table), table  # no warning of its strategies
    for file in RUN_FILES:
        assert (out / file).is_file(), file
    assert sorted(p.stem for p in (out / "strategies").glob("*.yaml")) == sorted(names)
    equity = pd.read_csv(out / "equity.csv")
    assert len(equity) == metrics["bars"]
    # the strategies' P&L add up to the account's
    pnl = sum(equity[f"pnl[{name}]"] for name in names)
    np.testing.assert_allclose(equity["equity"], metrics["initial_cash"] + pnl, rtol=1e-9)
    fills = pd.read_csv(out / "fills.csv")
    assert len(fills) == metrics["fills"] > 0
    assert set(fills["strategy"]) <= set(names)
    assert all(
        i.startswith(f"{s}-") for s, i in zip(fills["strategy"], fills["order_id"], strict=True)
    )
    types = [e.KIND for e in read_events(out / "journal.sqlite")]
    assert (types[0], types[-1]) == ("run_started", "run_finished")
    assert types.count("fill") == metrics["fills"]
    status = tradeloom("status", out)
    assert status.returncode == 0, status.stderr
    for name in names:
        assert f"{name}: P&L " in status.stdout
    report = tradeloom("report", out)
    assert (report.returncode, report.stdout) == (0, f"{out / 'report.html'}\n")


@pytest.fixture
def cli_logging() -> Iterator[None]:
    """Put back the logging configuration an in-process ``main`` call changes globally."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def _exchange_bars(n: int = EXCHANGE_BARS + 200, seed: int = 5) -> pd.DataFrame:
    """Hourly BTC/USDT bars of a random walk near 60,000 from 2024-01-01, on a 0.01 tick."""
    return walk_bars(n, seed, level=60_000, step=150, wick=100)


def _in_process(
    capsys: pytest.CaptureFixture[str], *args: str | Path
) -> subprocess.CompletedProcess[str]:
    """Run ``tradeloom ARGS`` in this process; return its exit code and output."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["tradeloom", *map(str, args)], code, out, err)


def _runs_on_the_exchange_emulator(
    path: Path,
    doc: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Backtest a ``kind: ccxt`` strategy file, then paper trade it, on the emulator.

    The file is used as shipped, its model's windows shortened; its bars and its
    ``binance`` come from the emulator (a ``binance`` client anywhere in the process
    talks to it), the cache is a fresh folder, and ``runs/`` is in tmp_path.
    """
    assert doc["data"]["exchange"] == "binance", "the emulator is a Binance spot venue"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRADELOOM_CACHE", str(tmp_path / "cache"))
    bars = _exchange_bars()
    end = bars.index[EXCHANGE_BARS].strftime("%Y-%m-%dT%H:%M:%SZ")
    model = [a for o in _model_overrides(doc, EXCHANGE_BARS // 3) for a in ("--set", o)]
    paper: list[str | Path] = ["run", path, "--mode", "paper", "--max-bars", "3", *model]
    paper += ["--set", "live.poll_seconds=0.05"]  # look for closed bars often: the clock is fast
    with (
        ExchangeEmulator(
            {"BTC/USDT": bars},
            {"USDT": Decimal(100_000)},
            start=EXCHANGE_BARS,
            include_open_kline=False,  # its bars are of 2024: all closed by the wall clock
        ) as emulator,
        use_client_factory("binance", lambda s: emulator.client(**{**s, "enableRateLimit": False})),
        use_pro_client_factory("binance", None),  # REST polling, not Binance's websocket
    ):
        backtest = _in_process(
            capsys, "run", path, "--out", "backtest", "--set", f'data.end="{end}"', *model
        )
        metrics = _check_shipped_run(tmp_path / "backtest", backtest, doc["name"])
        assert metrics["bars"] == EXCHANGE_BARS

        with bars_closing(emulator):
            first = _in_process(capsys, *paper)
            # the same command restarts the run; --quiet: no line per bar
            second = _in_process(capsys, *paper, "--quiet")
        assert emulator.exchange.orders() == []  # paper trading sends nothing
        assert emulator.errors == []

    run_dir = tmp_path / "runs" / f"{doc['name']}-paper"
    processed = []
    for proc in (first, second):
        assert (proc.returncode, "Traceback" in proc.stderr) == (0, False), proc.stderr
        done = re.fullmatch(
            rf"(.*\n)*paper run {re.escape(str(run_dir))}: processed (\d+) bars \(--max-bars\); "
            r"position \S+, cash \S+, state ACTIVE\n"
            r"(refusals .*\n(  \S.*\n)*(WARNING .*\n)?)?",  # what it refused, if anything
            proc.stdout,
        )
        assert done is not None, proc.stdout
        processed.append(int(done.group(2)))
    # at least 3 each: a tick also takes the bars that closed while it ran (on a loaded
    # machine the emulator's fast clock closes two between two ticks)
    assert min(processed) >= 3, processed
    # one line per bar traded (time, bar, close, signal, decision, position, equity, state)
    per_bar = first.stdout.splitlines()[:-1]
    assert len(per_bar) == processed[0], first.stdout
    for line in per_bar:
        assert re.fullmatch(
            r"\d{4}-\d\d-\d\d \d\d:\d\dZ bar \d+ close \S+ \| signal .+ \| decision .+"
            r" \| position \S+ \| equity \S+ \| ACTIVE",
            line,
        ), line
    assert second.stdout.count("\n") == 1, second.stdout  # --quiet
    # the files a paper run keeps current, rewritten after each bar and at the stop
    assert len(pd.read_csv(run_dir / "equity.csv")) == sum(processed)
    assert json.loads((run_dir / "metrics.json").read_text())["bars"] == sum(processed)
    assert (run_dir / "report.html").is_file()
    events = list(read_events(run_dir / "journal.sqlite"))
    runs = [e.KIND for e in events if e.KIND.startswith("run_")]
    assert runs == ["run_started", "run_stopped", "run_stopped"]
    assert getattr(events[0], "mode") == "paper"  # noqa: B009
    warm_up = next(e for e in events if e.KIND == "warm_up")
    assert warm_up.bars >= EXCHANGE_BARS
    live_bars = [e.bar for e in events if e.KIND == "live_bar"]
    # every closed bar after the history, once, in order, across the restart
    first = warm_up.bars
    assert live_bars == list(range(first, first + len(live_bars)))
    assert len(live_bars) >= 6
    assert [e.KIND for e in events].count("restarted") == 1
    assert yaml.safe_load((run_dir / "strategy.yaml").read_text())["name"] == doc["name"]


def test_btc_rf_prints_its_validation_exactly() -> None:
    proc = tradeloom("validate", "strategies/btc_rf.yaml")
    # its Kelly sizes a calibrated model; its signal is long-only (signal.sides) on a spot venue
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == (
        "strategies/btc_rf.yaml: valid strategy 'btc_rf' (data synthetic, 12 feature columns, "
        "model sklearn, signal threshold, sizing kelly, 1 risk rule, execution simulated, "
        "1 monitor)\n"
    )


def test_the_default_strategy_runs_unmodified(tmp_path: Path) -> None:
    out = tmp_path / "btc_rf"
    proc = tradeloom("run", "strategies/btc_rf.yaml", "--out", out)

    metrics = _check_run_dir(out, proc, "btc_rf")
    assert metrics["bars"] == 20_000
    assert metrics["period"] == "2023-01-01 .. 2025-04-13"
    assert metrics["trades"] > 0 and metrics["model_trainings"] > 0
    assert yaml.safe_load((out / "strategy.yaml").read_text()) == yaml.safe_load(
        (ROOT / "strategies" / "btc_rf.yaml").read_text()
    )


def test_the_console_script_is_installed() -> None:
    script = shutil.which("tradeloom", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the tradeloom console script is not on this interpreter's bin path")
    proc = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout) == (0, f"tradeloom {__version__}\n")


# --- user mistakes: exit 2, one exact line per problem -----------------------------------

BASE = strategy_text(
    PRECOMPUTED,
    name="tiny",
    signal={"threshold": 0.5, "min_interval": OMIT},
    risk={"sizing": {"kind": "kelly", "fraction": 0.25, "avg_win": 0.02, "avg_loss": 0.02}},
    execution={"kind": "simulated"},
)
"""A valid strategy over ``bars.csv``; the tests rely on its line numbers."""


def _write_bars(folder: Path, n: int = 8, bad_rows: tuple[int, ...] = ()) -> Path:
    close = 100.0 + np.arange(n, dtype=float)
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range("2024-01-01", periods=n, freq="1h").strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "open": close,
            "high": close + 1.0,
            "low": close - 1.0,
            "close": close,
            "volume": 10.0,
            "p_up": [0.9 if i % 3 == 0 else 0.5 for i in range(n)],
        }
    )
    for row in bad_rows:
        frame.loc[row, "high"] = frame.loc[row, "low"] - 5.0
    path = folder / "bars.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def strategy(tmp_path: Path) -> Path:
    """A valid strategy ``s.yaml`` and its ``bars.csv`` in tmp_path."""
    _write_bars(tmp_path)
    path = tmp_path / "s.yaml"
    path.write_text(BASE, encoding="utf-8")
    return path


@pytest.fixture
def in_process(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cli_logging: None
) -> Command:
    """``tradeloom ARGS`` run by `main` in this process, in ``cwd``: its exit code and output.

    For the user mistakes below, whose point is the exact lines on stderr and exit 2,
    and the runs of the tests' own small strategy, whose point is what the run wrote
    (a process start costs two seconds of CPU each); the command as a process, its
    exit status and no traceback, is checked by `test_missing_strategy_file` and
    `test_no_traceback_for_a_directory_given_as_strategy`, and every shipped file runs
    in one (`test_every_strategy_file_runs`).
    """

    def run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
        monkeypatch.chdir(cwd)
        return _in_process(capsys, *args)

    return run


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_the_base_strategy_of_these_tests_is_valid(
    strategy: Path, tmp_path: Path, in_process: Command
) -> None:
    proc = in_process("run", "s.yaml", "--out", "run", cwd=tmp_path)
    metrics = _check_run_dir(tmp_path / "run", proc, "tiny")
    assert (metrics["bars"], metrics["signals"], metrics["orders"]) == (8, 3, 1)


def test_unknown_kind_lists_the_installed_kinds(
    strategy: Path, tmp_path: Path, in_process: Command
) -> None:
    _edit(strategy, "kind: csv", "kind: cvs")
    kinds = load_plugins().registry.kinds("data")
    assert {"csv", "parquet", "synthetic"} <= set(kinds)

    proc = in_process("validate", "s.yaml", cwd=tmp_path)

    assert_user_error(
        proc,
        f"s.yaml:3:9 data.kind: unknown data kind 'cvs' (did you mean 'csv'?); "
        f"installed kinds: {', '.join(kinds)}",
    )


def test_kelly_fraction_above_one_is_located(
    strategy: Path, tmp_path: Path, in_process: Command
) -> None:
    _edit(strategy, "fraction: 0.25", "fraction: 1.5")
    proc = in_process("validate", "s.yaml", cwd=tmp_path)
    assert_user_error(proc, "s.yaml:17:15 risk.sizing.fraction: must be <= 1, was 1.5")


def test_window_zero_is_located(strategy: Path, tmp_path: Path, in_process: Command) -> None:
    _edit(strategy, "  - kind: log_return\n    period: 1", "  - kind: rsi\n    window: 0")
    proc = in_process("validate", "s.yaml", cwd=tmp_path)
    assert_user_error(proc, "s.yaml:7:13 features.0.window: must be >= 2, was 0")


def test_unknown_key_suggests_the_known_one(
    strategy: Path, tmp_path: Path, in_process: Command
) -> None:
    _edit(strategy, "  threshold: 0.5", "  treshold: 0.5")
    proc = in_process("validate", "s.yaml", cwd=tmp_path)
    assert_user_error(  # one line: the misspelt key, not also the key it misses
        proc, "s.yaml:13:3 signal.treshold: unknown key (did you mean 'threshold'?)"
    )


@pytest.mark.parametrize("command", ["validate", "run"])
def test_missing_data_file_names_the_path(
    strategy: Path,
    tmp_path: Path,
    command: str,
    in_process: Command,
) -> None:
    _edit(strategy, "path: bars.csv", "path: data/nothere.csv")
    proc = in_process(command, "s.yaml", cwd=tmp_path)
    assert_user_error(
        proc, f"s.yaml:4:9 data.path: file not found: {tmp_path / 'data' / 'nothere.csv'}"
    )


def test_bad_rows_are_rejected_and_the_journal_keeps_the_start(
    strategy: Path, tmp_path: Path, in_process: Command
) -> None:
    bars = _write_bars(tmp_path, bad_rows=(2, 4))  # csv lines 4 and 6

    proc = in_process("run", "s.yaml", "--out", "run", cwd=tmp_path)

    assert_user_error(
        proc,
        f"data: {bars}: 2 rows have high < low (first at 2024-01-01T02:00Z, lines 4, 6); "
        "drop them or set data.validation: repair",
    )
    # the journal was opened before the data was read: what it holds is kept,
    # and the failure is its last row
    started, failed = list(read_events(tmp_path / "run" / "journal.sqlite"))
    assert isinstance(started, RunStarted) and isinstance(failed, RunFailed)
    assert (started.strategy, started.mode) == ("tiny", "backtest")
    assert failed.error.startswith("DataValidationError: data: ")
    assert not (tmp_path / "run" / "metrics.json").exists()

    repaired = in_process(
        "run", "s.yaml", "--out", "repaired", "--set", "data.validation=repair", cwd=tmp_path
    )
    assert _check_run_dir(tmp_path / "repaired", repaired, "tiny")["bars"] == 6


def test_a_failing_observer_fails_the_run_and_the_journal_keeps_what_came_before(
    strategy: Path, tmp_path: Path, in_process: Command, monkeypatch: pytest.MonkeyPatch
) -> None:
    _edit(strategy, "name: tiny\n", "name: tiny\nplugins: [failing_observer]\n")
    monkeypatch.syspath_prepend(str(ROOT / "tests/fixtures/plugins"))

    proc = in_process("run", "s.yaml", "--out", "run", cwd=tmp_path)

    # a plugin's exception is a run failure (1), not a user error; the log has the traceback
    assert (proc.returncode, proc.stdout) == (1, "")
    folder = re.escape(str((tmp_path / "run").resolve()))
    assert re.fullmatch(
        r"run failed: RuntimeError: observer failed on the fill of tiny-[0-9a-f]{8}-000001"
        rf" \(the run's folder {folder} keeps its journal: tradeloom status {folder}\)",
        proc.stderr.splitlines()[-1],
    )
    kinds = [e.KIND for e in read_events(tmp_path / "run" / "journal.sqlite")]
    # a backtest journals its events in bulk, then observers hear of them: the fill the
    # observer failed on is in the journal, and the run is marked failed after it
    assert kinds[:2] == ["run_started", "data_loaded"]
    assert "fill" in kinds
    assert kinds[-1] == "run_failed"
    assert "run_finished" not in kinds


def test_bad_override_value(strategy: Path, tmp_path: Path, in_process: Command) -> None:
    proc = in_process("validate", "s.yaml", "--set", "signal.threshold=abc", cwd=tmp_path)
    assert_user_error(proc, "--set signal.threshold: expected a number, was 'abc'")


def test_override_without_a_value(strategy: Path, tmp_path: Path, in_process: Command) -> None:
    proc = in_process("run", "s.yaml", "--set", "signal.threshold", cwd=tmp_path)
    assert_user_error(
        proc,
        "--set: invalid override 'signal.threshold': expected KEY.PATH=VALUE, "
        "e.g. risk.sizing.fraction=0.5",
    )


@pytest.mark.parametrize("mode", ["paper", "live"])
def test_paper_and_live_need_an_exchange_data_source(
    strategy: Path,
    tmp_path: Path,
    mode: str,
    in_process: Command,
) -> None:
    proc = in_process("run", "s.yaml", "--mode", mode, "--out", "run", cwd=tmp_path)
    assert_user_error(
        proc,
        f"s.yaml:3:9 data.kind: --mode {mode} needs live bars from an exchange (kind: ccxt); "
        "'csv' (plugin tradeloom.plugins.data) is a backtest source: it lacks closed_bars_of "
        "and bar_stream_of (LiveFeed)",
        f"s.yaml:9:9 model.kind: --mode {mode} needs a model that predicts one bar at a "
        "time; 'precomputed' (plugin tradeloom.plugins.model) cannot: it lacks predict_row "
        "(LiveModel)",
    )
    assert not (tmp_path / "run").exists()


def test_missing_strategy_file(tmp_path: Path) -> None:
    assert_user_error(tradeloom("validate", "nope.yaml", cwd=tmp_path), "nope.yaml: no such file")
    assert_user_error(tradeloom("run", "nope.yaml", cwd=tmp_path), "nope.yaml: no such file")


def test_invalid_yaml_is_located(tmp_path: Path, in_process: Command) -> None:
    (tmp_path / "s.yaml").write_text("name: tiny\ndata: [\n", encoding="utf-8")
    proc = in_process("validate", "s.yaml", cwd=tmp_path)
    assert_user_error(
        proc, "s.yaml:3:1: invalid YAML: expected the node content, but found the end of the file"
    )


def test_out_folder_holding_a_run_is_refused(
    strategy: Path, tmp_path: Path, in_process: Command
) -> None:
    first = in_process("run", "s.yaml", "--out", "run", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    journal = tmp_path / "run" / "journal.sqlite"
    before = journal.read_bytes()

    again = in_process("run", "s.yaml", "--out", "run", cwd=tmp_path)

    assert_user_error(again, "--out run: already holds a run (journal.sqlite); give a new folder")
    assert journal.read_bytes() == before
    assert [seq for seq, _ in read_sequenced(journal)][-1] > 1


# --- plugins and schema ------------------------------------------------------------------


def _plugin_listing(stdout: str) -> dict[str, tuple[str, set[tuple[str, str, str]]]]:
    """Parse ``tradeloom plugins``: name -> (source, {(layer, kind, summary)})."""
    plugins: dict[str, tuple[str, set[tuple[str, str, str]]]] = {}
    name = ""
    for line in stdout.splitlines():
        header = re.fullmatch(r"(\S+)  \[(.+)\]", line)
        if header:
            name = header.group(1)
            plugins[name] = (header.group(2), set())
            continue
        component = re.fullmatch(r"    (\S+) +(\S+) +(.*)", line)
        assert component and name, line
        plugins[name][1].add(component.groups())
    return plugins


def test_plugins_lists_the_built_ins_with_their_components() -> None:
    proc = tradeloom("plugins")

    assert (proc.returncode, proc.stderr) == (0, "")
    listed = _plugin_listing(proc.stdout)
    assert list(listed)[: len(BUILTIN_PLUGINS)] == list(BUILTIN_PLUGINS)
    # the seven layers', the optional allocation's, the LLM clients', the text feeds', the
    # event brokers' and the chat transports'
    assert len(BUILTIN_PLUGINS) == 12
    assert [n for n, (source, _) in listed.items() if source == "built-in"] == list(BUILTIN_PLUGINS)
    # what the shipped strategies use is there; a layer's kinds come from its own plugin
    for layer, kinds in BUILT_IN_KINDS.items():
        owner = "tradeloom.plugins.risk" if layer == "sizing" else f"tradeloom.plugins.{layer}"
        provided = {(lay, kind) for lay, kind, _ in listed[owner][1]}
        assert {(layer, kind) for kind in kinds} <= provided, layer
    # and every component of every built-in, with its summary
    registry = load_plugins(entry_points=False).registry
    for plugin in registry.plugins:
        expected = {(c.layer, c.kind, c.summary) for c in plugin.components}
        assert listed[plugin.name][1] == expected, plugin.name


def test_schema_is_json_with_every_built_in_kind() -> None:
    proc = tradeloom("schema")

    assert (proc.returncode, proc.stderr) == (0, "")
    schema = json.loads(proc.stdout)
    registry = load_plugins().registry
    for layer in LAYERS:
        options = schema["definitions"][f"component.{layer}"]["oneOf"]
        kinds = {o["title"] for o in options}
        assert kinds == set(registry.kinds(layer)), layer
        assert kinds >= BUILT_IN_KINDS.get(layer, set()), layer

    jsonschema = pytest.importorskip("jsonschema")
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"  # the editors'
    jsonschema.Draft7Validator.check_schema(schema)
    document = yaml.safe_load((ROOT / "strategies" / "btc_rf.yaml").read_text())
    jsonschema.validate(document, schema)
    document["risk"]["sizing"]["fraction"] = 1.5
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, schema)


def test_no_traceback_for_a_directory_given_as_strategy(tmp_path: Path) -> None:
    proc = tradeloom("validate", str(tmp_path))
    assert_user_error(proc, f"{tmp_path}: is a directory, not a strategy file")


def test_per_bar_driver_writes_the_same_journal_as_the_batch_driver(
    strategy: Path, tmp_path: Path, in_process: Command
) -> None:
    batch = in_process("run", "s.yaml", "--out", "batch", cwd=tmp_path)
    per_bar = in_process("run", "s.yaml", "--out", "per_bar", "--driver", "per-bar", cwd=tmp_path)
    _check_run_dir(tmp_path / "batch", batch, "tiny")
    _check_run_dir(tmp_path / "per_bar", per_bar, "tiny")
    assert journal_digest(tmp_path / "batch" / "journal.sqlite") == journal_digest(
        tmp_path / "per_bar" / "journal.sqlite"
    )


def test_batch_driver_runs_a_plain_python_layer_too(
    strategy: Path, tmp_path: Path, in_process: Command, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the core asks the plugin's rule at each bar, in whichever driver
    _edit(
        strategy,
        "risk:\n  sizing:",
        "risk:\n  rules:\n    - kind: feature_limit\n      feature: log_return_1\n"
        "      limit: 1.0\n  sizing:",
    )
    _edit(strategy, "name: tiny\n", "name: tiny\nplugins: [feature_limit_rule]\n")
    monkeypatch.syspath_prepend(str(ROOT / "tests/fixtures/plugins"))
    digests = []
    for driver in ("batch", "per-bar"):
        out = tmp_path / driver
        proc = in_process("run", "s.yaml", "--driver", driver, "--out", out, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        digests.append(journal_digest(out / "journal.sqlite"))
    assert digests[0] == digests[1]


def test_a_challengers_signal_that_may_go_short_on_a_long_only_venue_is_warned_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A challenger whose own ``signal:`` says ``sides: both`` decides with it in shadow
    and after its promotion: the champion's one-line warning, naming it, at its own key;
    one that does not write ``sides`` trades the strategy's (``long`` here): no warning."""
    from tests.live.test_challengers import MODEL, strategy

    own = {"kind": "threshold", "threshold": 0.02}
    document = strategy(
        challengers=[
            {"name": "bold", "model": MODEL, "signal": {**own, "sides": "both"}},
            {"name": "plain", "model": MODEL},
            {"name": "inherits", "model": MODEL, "signal": own},
        ],
        signal={"kind": "threshold", "threshold": 0.04, "sides": "long"},
    )
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    assert main(["validate", str(path)]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning:" in line]
    lines = path.read_text().splitlines()
    line = 1 + lines.index("- name: bold") + 5  # its signal's sides
    assert warnings == [
        f"{path}:{line}:12 challengers.0.signal.sides: warning: challenger bold's signal may go "
        "short (signal.sides: both) but the venue trades long-only "
        "(execution.allow_short: false): every down signal while flat is refused "
        "SHORT_NOT_ALLOWED; set challengers.0.signal.sides: long"
    ]
