"""Universes and auxiliary series through the real command line: bad input is one line
and exit 2; a funding-rate series from the emulator runs end to end; the shipped
sentiment file is what its generator makes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import structlog
import yaml

from tests import forkserver
from tests.compile_line import COMPILED
from tests.forkserver import tradeloom
from tests.plugins.data.ccxt_emulated import make_bars
from tradeloom.cli.main import main
from tradeloom.plugins.data.ccxt_client import use_client_factory
from tradeloom.plugins.data.synthetic import SyntheticParams, simulate
from tradeloom.testing import ExchangeEmulator

ROOT = Path(__file__).resolve().parents[3]
SENTIMENT = ROOT / "examples" / "data" / "sentiment_daily.csv"
WINDOWS = ["--set", "model.walk_forward.train_window=100"]
WINDOWS += ["--set", "model.walk_forward.retrain_every=100"]


def strategy(
    folder: Path, data: dict[str, Any], features: list[dict[str, Any]] | None = None
) -> Path:
    doc = {
        "name": "universe",
        "data": data,
        "features": features or [{"kind": "log_return", "period": 1}],
        "model": {
            "kind": "sklearn",
            "estimator": "sklearn.linear_model.LogisticRegression",
            "label": {"horizon": 2},
            "walk_forward": {"train_window": 100, "retrain_every": 100},
        },
        "signal": {"kind": "threshold", "threshold": 0.05, "sides": "long"},
        "risk": {"sizing": {"kind": "fixed_fraction", "fraction": 0.5}},
        "execution": {"kind": "simulated", "initial_cash": 10_000.0},
    }
    path = folder / "strategy.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert (proc.returncode, proc.stdout, "Traceback" in proc.stderr) == (2, "", False)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_bad_universes_are_one_line_at_their_place_and_exit_2(tmp_path: Path) -> None:
    twice = strategy(tmp_path, {"kind": "synthetic", "bars": 300, "symbols": ["A/B", "C/D", "A/B"]})
    assert one_line(tradeloom("validate", twice.name, cwd=tmp_path)) == (
        f"strategy.yaml:{line_of(twice, '- A/B')}:3 data.symbols: 'A/B' is listed twice "
        "(items 0 and 2); list each symbol once"
    )

    simulate(SyntheticParams(bars=100), 1).frame.to_csv(tmp_path / "A-B.csv")
    template = strategy(
        tmp_path, {"kind": "csv", "path": "{symbol}.csv", "symbols": ["A/B", "C/D"]}
    )
    assert one_line(tradeloom("validate", template.name, cwd=tmp_path)) == (
        f"strategy.yaml:{line_of(template, 'path:')}:9 data.path: no file for symbol C/D: "
        f"{tmp_path / 'C-D.csv'}"
    )

    simulate(SyntheticParams(bars=100), 1).frame.assign(pair="A/B").to_csv(tmp_path / "all.csv")
    data = {"kind": "csv", "path": "all.csv", "symbols": ["A/B", "C/D"], "symbol_column": "pair"}
    long = strategy(tmp_path, data)
    assert one_line(tradeloom("validate", long.name, cwd=tmp_path)) == (
        f"strategy.yaml:{line_of(long, '- C/D')}:5 data.symbols.1: {tmp_path / 'all.csv'} has "
        "no rows for symbol C/D in column 'pair'; add them or remove the symbol"
    )


def test_a_synthetic_universe_runs_through_the_cli(tmp_path: Path) -> None:
    path = strategy(tmp_path, {"kind": "synthetic", "bars": 300, "symbols": ["A/B", "C/D"]})
    assert tradeloom("validate", path.name, cwd=tmp_path).returncode == 0
    proc = tradeloom("run", path.name, "--out", "run", cwd=tmp_path)
    # nothing on stderr but, on a cold kernel cache, the line saying what compiled (its
    # universe needs kernels tests/warm_kernels.py does not compile, when no earlier test did)
    said = [line for line in proc.stderr.splitlines() if not COMPILED.fullmatch(line)]
    assert (proc.returncode, said) == (0, [])
    loaded = pd.read_csv(tmp_path / "run" / "positions.csv")
    assert set(loaded["symbol"]) <= {"A/B", "C/D"}
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert sorted(metrics["attribution"]) == ["A/B", "C/D"]


def test_bad_auxiliary_series_are_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "mood.csv").write_text("time,mood\n2023-01-01,1\n2023-01-03,2\n2023-01-02,3\n")
    series = {"name": "mood", "kind": "file", "path": "mood.csv", "timestamp_column": "time"}
    data = {"kind": "synthetic", "bars": 300, "auxiliary": [series]}
    path = strategy(tmp_path, data, [{"kind": "series", "of": "mood"}])
    assert one_line(tradeloom("validate", path.name, cwd=tmp_path)) == (
        f"strategy.yaml:{line_of(path, '- name: mood')}:5 data.auxiliary.0.available_after: "
        "required key is missing"
    )

    series["available_after"] = "1h"
    path = strategy(tmp_path, data, [{"kind": "series", "of": "mood"}])
    assert one_line(tradeloom("run", path.name, "--out", "run", cwd=tmp_path)) == (
        f"data.auxiliary.0 (mood): {tmp_path / 'mood.csv'}: 1 row has a time earlier than the "
        "row before (first at 2023-01-02T00:00Z, line 4); sort the rows by time or set "
        "data.validation: repair"
    )

    (tmp_path / "mood.csv").write_text("time,mood\n2023-01-01,1\n2023-01-01,2\n")
    assert one_line(tradeloom("run", path.name, "--out", "run2", cwd=tmp_path)) == (
        f"data.auxiliary.0 (mood): {tmp_path / 'mood.csv'}: 1 row has the time of an earlier "
        "row (first at 2023-01-01T00:00Z, line 3); drop it or set data.validation: repair"
    )


def test_a_series_of_a_column_the_bars_will_not_have_is_refused_at_validation(
    tmp_path: Path,
) -> None:
    (tmp_path / "mood.csv").write_text("time,mood\n2023-01-01,1\n2023-01-02,2\n")
    series = {"name": "mood", "kind": "file", "path": "mood.csv", "timestamp_column": "time"}
    series["available_after"] = "1h"
    data = {"kind": "synthetic", "bars": 300, "auxiliary": [series]}
    path = strategy(tmp_path, data, [{"kind": "series", "of": "moood"}])
    assert one_line(tradeloom("validate", path.name, cwd=tmp_path)) == (
        f"strategy.yaml:{line_of(path, 'of: moood')}:7 features.0.of: the bars have no column "
        "'moood' (did you mean 'mood'?) (their columns beside OHLCV: mood); declare it under "
        "data.auxiliary"
    )
    # a file's own extra columns count, read from its header
    frame = simulate(SyntheticParams(bars=300), 1).frame.assign(funding=0.001)
    frame.to_csv(tmp_path / "bars.csv")
    path = strategy(
        tmp_path, {"kind": "csv", "path": "bars.csv"}, [{"kind": "series", "of": "funding"}]
    )
    assert tradeloom("validate", path.name, cwd=tmp_path).returncode == 0
    path = strategy(
        tmp_path, {"kind": "csv", "path": "bars.csv"}, [{"kind": "series", "of": "fund"}]
    )
    assert one_line(tradeloom("validate", path.name, cwd=tmp_path)).endswith(
        "features.0.of: the bars have no column 'fund' (did you mean 'funding'?) (their "
        "columns beside OHLCV: funding); declare it under data.auxiliary"
    )


@pytest.fixture
def cli_logging() -> Iterator[None]:
    """Put back the logging configuration an in-process ``main`` call changes globally."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.mark.usefixtures("cli_logging")
def test_a_funding_rate_series_from_the_emulator_runs_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    bars = make_bars(400)
    rates = pd.Series(
        np.round(np.cos(np.arange(60)) * 1e-4, 8),
        index=pd.date_range("2023-12-31", periods=60, freq="8h", tz="UTC"),
    )
    funding = {"name": "funding", "kind": "funding_rate", "available_after": "0s"}
    data = {"kind": "ccxt", "exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1h"}
    data |= {"start": "2024-01-01", "end": "2024-01-14", "cache_dir": "cache"}
    data |= {"auxiliary": [funding]}
    features = [
        {"kind": "log_return", "period": 1},
        {"kind": "series", "of": "funding"},
        {"kind": "series", "of": "funding", "transform": "zscore", "window": 24},
    ]
    path = strategy(tmp_path, data, features)
    with (
        ExchangeEmulator(
            {"BTC/USDT": bars}, {"USDT": 1000}, start=350, funding_rates={"BTC/USDT": rates}
        ) as emulator,
        use_client_factory("binance", lambda settings: emulator.client(**settings)),
    ):
        code = main(["run", str(path), "--out", "run", *WINDOWS])
        err = capsys.readouterr().err
        assert emulator.errors == []
        assert emulator.requests("GET /fapi/v1/fundingRate")
    assert code == 0, err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["bars"] == 13 * 24
    features_frame = pd.read_parquet(tmp_path / "run" / "features.parquet")
    closes = pd.DatetimeIndex(features_frame["timestamp"]) + pd.Timedelta(hours=1)
    np.testing.assert_array_equal(
        features_frame["funding"].to_numpy(), rates.reindex(closes, method="ffill").to_numpy()
    )


def make_sentiment() -> str:
    """The generator of examples/data/sentiment_daily.csv: a daily AR(1) index, seeded."""
    days = pd.date_range("2023-01-01", "2025-04-30", freq="D")
    rng = np.random.default_rng(20230101)
    values = np.empty(len(days))
    level = 0.0
    for i, shock in enumerate(rng.standard_normal(len(days))):
        level = 0.9 * level + 0.45 * shock
        values[i] = level
    lines = ["date,sentiment"] + [
        f"{d:%Y-%m-%d},{v:.2f}" for d, v in zip(days, values, strict=True)
    ]
    return "\n".join(lines) + "\n"


def test_the_shipped_sentiment_file_is_its_generators_output() -> None:
    assert SENTIMENT.read_text() == make_sentiment()


def test_paper_and_live_runs_validate_auxiliary_series(tmp_path: Path) -> None:
    """Paper and live read an auxiliary series as of each bar (``available_after``), as the
    backtest joins it: validation no longer refuses one."""
    funding = {"name": "funding", "kind": "funding_rate", "available_after": "0s"}
    data = {"kind": "ccxt", "exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1h"}
    data |= {"start": "2024-01-01", "auxiliary": [funding]}
    data |= {"api_key": "${TL_TEST_KEY}", "secret": "${TL_TEST_SECRET}"}
    path = strategy(tmp_path, data, [{"kind": "series", "of": "funding"}])
    env = {"TL_TEST_KEY": "k", "TL_TEST_SECRET": "s"}
    for mode in ("paper", "live"):
        proc = forkserver.run(
            [sys.executable, "-m", "tradeloom.cli.main", "validate", path.name, "--mode", mode],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | env,
        )
        assert proc.returncode == 0, (mode, proc.stderr)
        # --mode live says, in one note line, what a single exchange does with fee_bps
        notes = ["model backtest and paper fills only"] if mode == "live" else []
        assert [n for n in notes if n in proc.stderr] == notes, proc.stderr
        assert len(proc.stderr.splitlines()) == len(notes), proc.stderr
        assert proc.stdout.startswith(
            f"strategy.yaml: valid strategy 'universe' for --mode {mode} (data ccxt, "
            "1 feature columns,"
        )
