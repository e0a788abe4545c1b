"""``tradeloom status`` on a backtest's directory, and on what is not a readable run (one
line naming the path, exit 2)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.builders import FAST, OMIT, strategy_text
from tradeloom import __version__
from tradeloom.cli.main import main
from tradeloom.journal import FORMAT_VERSION, read_frames

ROOT = Path(__file__).resolve().parents[2]


def cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def backtest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short btc_rf backtest's run directory (journal of this format)."""
    out = tmp_path_factory.mktemp("backtest") / "run"
    code = main(
        ["--quiet", "run", str(ROOT / "strategies" / "btc_rf.yaml"), "--out", str(out), *FAST]
    )
    assert code == 0
    return out


def test_status_of_a_backtest_is_its_last_bar_and_the_journal_fills(
    backtest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "status", backtest, "--json")
    assert (code, err) == (0, "")
    st: dict[str, Any] = json.loads(out)
    equity = pd.read_csv(backtest / "equity.csv")
    metrics = json.loads((backtest / "metrics.json").read_text())
    fills = read_frames(backtest / "journal.sqlite", ["fill"])["fill"]
    assert (st["mode"], st["process"], st["stale"]) == ("backtest", "finished", None)
    assert st["last_bar"] == len(equity) - 1 == metrics["bars"] - 1
    assert st["last_bar_time"] == equity["timestamp"].iloc[-1]
    assert st["last_close"] == equity["close"].iloc[-1]
    held = sum(p["quantity"] for p in st["positions"])
    assert held == pytest.approx(float((fills["side"] * fills["quantity"]).sum()), abs=1e-12)
    assert held == pytest.approx(metrics["open_position"], abs=1e-9)
    assert st["equity"] == pytest.approx(equity["equity"].iloc[-1], rel=1e-12)
    assert st["cash"] == pytest.approx(equity["cash"].iloc[-1], rel=1e-12)
    assert (st["orders"], st["fills"], st["signals"]) == (
        metrics["orders"],
        metrics["fills"],
        metrics["signals"],
    )
    assert st["open_orders"] == []
    code, text, _ = cli(capsys, "status", backtest)
    assert code == 0
    assert text.startswith(
        f"run        {backtest}\n           backtest run of 'btc_rf', BTC/USDT 1h\n"
    )
    assert "process    finished (in " in text
    assert f"last bar   #{st['last_bar']} {st['last_bar_time']} " in text


def test_status_of_a_folder_that_is_not_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    assert cli(capsys, "status", tmp_path) == (
        2,
        "",
        f"{tmp_path}: not a run directory (no journal.sqlite); give the folder a "
        "'tradeloom run' wrote\n",
    )
    missing = tmp_path / "nowhere"
    assert cli(capsys, "status", missing) == (
        2,
        "",
        f"{missing}: not a directory; give a run directory (runs/<name>-...)\n",
    )


def test_status_of_a_journal_of_another_format_version(
    backtest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    shutil.copytree(backtest, run)
    with sqlite3.connect(run / "journal.sqlite") as db:
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
            db.execute(f'DROP TRIGGER "{name}"')
        db.execute("UPDATE meta SET value = '99' WHERE key = 'format_version'")
    code, out, err = cli(capsys, "status", run)
    assert (code, out) == (2, "")
    assert err == (
        f"{run / 'journal.sqlite'}: a journal of format 99; this tradeloom ({__version__}) reads "
        f"format {FORMAT_VERSION}: upgrade tradeloom to read it\n"
    )


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_status_of_a_truncated_journal(
    backtest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], keep: float
) -> None:
    run = tmp_path / "run"
    shutil.copytree(backtest, run)
    journal = run / "journal.sqlite"
    data = journal.read_bytes()
    journal.write_bytes(data[: int(len(data) * keep)])
    code, out, err = cli(capsys, "status", run)
    assert (code, out) == (2, ""), out
    assert err.startswith(f"{journal}: ") and err.count("\n") == 1, err
    assert "malformed" in err, err


def test_status_of_a_perpetual_counts_its_funding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """strategies/btc_perp.yaml: the funding paid and received is in status's cash and
    equity, which equal metrics.json's final equity and equity.csv's last cash."""
    out = tmp_path / "run"
    args = ["--quiet", "run", str(ROOT / "strategies" / "btc_perp.yaml"), "--out", str(out)]
    fast = ["data.bars=1500", "model.walk_forward.train_window=400", "model.params.max_iter=20"]
    assert main([*args, *(a for f in fast for a in ("--set", f))]) == 0
    code, text, err = cli(capsys, "status", out, "--json")
    assert (code, err) == (0, "")
    st: dict[str, Any] = json.loads(text)
    metrics = json.loads((out / "metrics.json").read_text())
    equity = pd.read_csv(out / "equity.csv")
    assert metrics["funding"] != 0.0
    assert st["equity"] == pytest.approx(metrics["final_equity"], rel=1e-12)
    assert st["cash"] == pytest.approx(equity["cash"].iloc[-1], rel=1e-12)


UNIVERSE_HEALTH = strategy_text(
    name="uni_health",
    seed=10,
    data={"symbols": ["AAPL", "IBM", "MSFT"], "symbol": OMIT},
    model={
        "estimator": "sklearn.linear_model.LogisticRegression",
        "walk_forward": {"retrain_every": 250},
        "params": OMIT,
    },
    signal={"min_interval": OMIT},
    risk={"sizing": {"fraction": 0.2}},
    execution={"fee_bps": OMIT},
    monitoring=[
        {
            "kind": "rolling_auc",
            "window": 60,
            "min_samples": 30,
            "warning_below": 0.53,
            "critical_below": 0.47,
        }
    ],
)


def test_status_of_a_universe_names_the_worst_health_and_its_symbol(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    strategy = tmp_path / "uni.yaml"
    strategy.write_text(UNIVERSE_HEALTH)
    run = tmp_path / "run"
    assert main(["--quiet", "run", str(strategy), "--out", str(run)]) == 0
    health = read_frames(run / "journal.sqlite", ["health"])["health"]
    # the case this test is about: the worst symbol is not the one that changed last
    last = health.groupby("symbol")["status"].last().to_dict()
    assert last == {"AAPL": "CRITICAL", "IBM": "HEALTHY", "MSFT": "WARNING"}
    assert health["status"].iloc[-1] == "WARNING"

    code, out, err = cli(capsys, "status", run)

    assert (code, err) == (0, "")
    assert (
        "health     CRITICAL at rolling_auc[AAPL] (rolling_auc[AAPL] CRITICAL, "
        "rolling_auc[IBM] HEALTHY, rolling_auc[MSFT] WARNING)\n"
    ) in out
    code, out, _ = cli(capsys, "status", run, "--json")
    shown = json.loads(out)
    assert (shown["health"], shown["health_worst"]) == ("CRITICAL", ["rolling_auc[AAPL]"])
    assert shown["monitors"] == {f"rolling_auc[{s}]": v for s, v in last.items()}
