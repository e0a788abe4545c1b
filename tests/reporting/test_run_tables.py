"""``outputs.tables``: a backtest's per-bar tables as CSV or Parquet, read back alike.

The same short strategy runs with ``tables: csv`` and ``tables: parquet`` (one market, a
universe of two, a portfolio file), each into a folder named ``run``: its tables must
read back equal, values and dtypes, through every reader of a run folder (the report's
`read_table`, `tradeloom.open_run`, ``tradeloom status``, the console), and metrics.json
and report.html be the same. ``auto`` switches to Parquet above its threshold.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings

import tradeloom
from tests.builders import OMIT, REPORTED, strategy
from tradeloom.backtest.portfolio_run import run_portfolio
from tradeloom.backtest.run import run_strategy
from tradeloom.cli.main import main
from tradeloom.console.runs import RunIndex
from tradeloom.engine.status import read_run
from tradeloom.engine.wiring import build_pipeline
from tradeloom.errors import UserError
from tradeloom.plugins.manager import load_plugins
from tradeloom.reporting import run_tables
from tradeloom.reporting.run_data import load_run, read_table
from tradeloom.reporting.run_tables import table_format, write_table
from tradeloom.reporting.summary import format_summary
from tradeloom.reporting.trades_table import TRADES_SHOWN, trades_table
from tradeloom.schemas import load_strategy
from tradeloom.schemas.portfolio_file import load_portfolio

FORMS = ("csv", "parquet")
TABLES = ("equity", "positions")
UNIVERSE = {"symbol": OMIT, "symbols": ["BTC/USDT", "ETH/USDT"], "bars": 300}


def _run(folder: Path, form: str, **overrides: Any) -> Path:
    """Run the base strategy with ``outputs.tables: form`` into ``folder/run``."""
    folder.mkdir(parents=True)
    doc = strategy(REPORTED, outputs={"tables": form}, **overrides)  # the report reads either
    path = folder / "strategy.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    config, plugins = load_strategy(path, [])
    return run_strategy(build_pipeline(config), plugins, out=folder / "run").run_dir


@pytest.fixture(scope="module", params=["one market", "universe"])
def runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The same run written with each form of tables, by form."""
    root = tmp_path_factory.mktemp("tables")
    data = {"data": UNIVERSE} if request.param == "universe" else {}
    return {form: _run(root / form, form, **data) for form in FORMS}


def test_each_form_writes_its_files_and_never_the_other(runs: dict[str, Path]) -> None:
    for form, run_dir in runs.items():
        other = "csv" if form == "parquet" else "parquet"
        for table in TABLES:
            assert (run_dir / f"{table}.{form}").is_file()
            assert not (run_dir / f"{table}.{other}").exists()


def test_the_tables_read_back_equal_in_values_and_dtypes(runs: dict[str, Path]) -> None:
    for table in TABLES:
        csv, parquet = (read_table(runs[form], table) for form in FORMS)
        assert csv is not None and parquet is not None
        assert len(csv) > 0
        assert str(csv["timestamp"].dtype) == "datetime64[s, UTC]"
        pd.testing.assert_frame_equal(csv, parquet, check_exact=True)


def test_a_parquet_positions_table_leaves_out_the_value_its_readers_compute(
    runs: dict[str, Path],
) -> None:
    import pyarrow.parquet as pq

    stored = pq.read_schema(runs["parquet"] / "positions.parquet").names
    assert stored == ["timestamp", "bar", "symbol", "position", "close"]
    csv = pd.read_csv(runs["csv"] / "positions.csv")
    assert list(csv.columns) == [*stored, "value"]
    read = read_table(runs["parquet"], "positions", columns=["timestamp", "value"])
    assert read is not None
    assert read["value"].tolist() == csv["value"].tolist()  # bit for bit
    assert (read["value"] != 0).all()


def test_metrics_and_report_are_the_same(runs: dict[str, Path]) -> None:
    csv, parquet = (json.loads((runs[f] / "metrics.json").read_text()) for f in FORMS)
    assert csv.pop("run_dir") == str(runs["csv"])
    assert parquet.pop("run_dir") == str(runs["parquet"])
    assert (csv.pop("tables"), parquet.pop("tables")) == FORMS  # which files hold them
    assert csv == parquet
    pages = [(runs[f] / "report.html").read_text().replace(str(runs[f]), "RUN") for f in FORMS]
    assert pages[0] == pages[1]


def test_a_long_reports_trades_name_the_file_that_holds_them_all(runs: dict[str, Path]) -> None:
    for form in FORMS:
        run = load_run(runs[form])
        assert run.trades_file == f"trades.{form}"
        many = pd.concat([run.trades] * (TRADES_SHOWN // len(run.trades) + 1), ignore_index=True)
        note = re.search(r"\(([^)]*) has them all\)", trades_table(many, run.trades_file))
        assert note is not None and note.group(1) == f"trades.{form}"


def test_tradeloom_report_draws_a_parquet_folder_from_the_same_values(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    for form in FORMS:
        (runs[form] / "report.html").unlink()
        assert main(["--quiet", "report", str(runs[form])]) == 0
    capsys.readouterr()
    pages = [(runs[f] / "report.html").read_text().replace(str(runs[f]), "RUN") for f in FORMS]
    assert pages[0] == pages[1]
    assert load_run(runs["parquet"]).equity.equals(load_run(runs["csv"]).equity)


def test_the_python_api_reads_either_form(runs: dict[str, Path]) -> None:
    csv, parquet = (tradeloom.open_run(runs[form]) for form in FORMS)
    pd.testing.assert_frame_equal(csv.equity, parquet.equity, check_exact=True)
    pd.testing.assert_frame_equal(csv.positions, parquet.positions, check_exact=True)
    for events in ("orders", "fills", "trades"):
        assert (runs["parquet"] / f"{events}.parquet").is_file()
        assert not (runs["parquet"] / f"{events}.csv").exists()
        a, b = getattr(csv, events), getattr(parquet, events)
        assert len(a) > 0
        ids = ["id", "order_id"]  # each names the strategy's hash, which outputs.tables is in
        pd.testing.assert_frame_equal(
            a.drop(columns=ids, errors="ignore"),
            b.drop(columns=ids, errors="ignore"),
            check_exact=True,
        )
    held = tradeloom.load(runs["parquet"] / "strategy.yaml").backtest()
    for events in ("orders", "fills", "trades"):  # a run in memory reads as its folder
        pd.testing.assert_frame_equal(getattr(held, events), getattr(parquet, events))
    assert isinstance(parquet.equity.index, pd.DatetimeIndex)


def test_status_and_the_console_read_either_form(runs: dict[str, Path]) -> None:
    csv, parquet = (read_run(runs[form]) for form in FORMS)
    assert csv.status.last_bar_time == parquet.status.last_bar_time is not None
    assert csv.status.equity == parquet.status.equity is not None
    pd.testing.assert_frame_equal(csv.curve, parquet.curve)
    index = RunIndex([runs["csv"].parent.parent])
    details = [index.detail(index.resolve(f"0/{form}/run")) for form in FORMS]
    assert details[0]["curve"]["equity"]
    assert details[0]["curve"] == details[1]["curve"]


def test_a_folder_with_neither_table_gets_the_clear_error(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "metrics.json").write_text((runs["parquet"] / "metrics.json").read_text())
    (folder / "journal.sqlite").write_bytes((runs["parquet"] / "journal.sqlite").read_bytes())
    with pytest.raises(UserError, match=r"^.*/run: no equity.csv; the run did not finish"):
        load_run(folder)
    with pytest.raises(UserError, match=r"^.*/run: not a run directory \(no equity.csv\)"):
        tradeloom.open_run(folder)


# --- the rule --------------------------------------------------------------------------


def test_auto_switches_to_parquet_above_the_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A threshold of 300 bars: a run of 300 bars writes CSV, one of 301 Parquet."""
    monkeypatch.setattr(run_tables, "AUTO_PARQUET_BARS", 300)
    for bars, form in ((300, "csv"), (301, "parquet")):
        run_dir = _run(tmp_path / str(bars), "auto", data={"bars": bars})
        assert sorted(p.name for p in run_dir.glob("equity.*")) == [f"equity.{form}"]
        assert sorted(p.name for p in run_dir.glob("positions.*")) == [f"positions.{form}"]
        # never silently: metrics.json and the summary name the run's files
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["tables"] == form
        assert SUMMARY[form] in format_summary(metrics).splitlines()


SUMMARY = {
    "csv": "  per-bar tables            equity.csv, positions.csv",
    "parquet": (
        "  per-bar tables            equity.parquet, positions.parquet (outputs.tables: csv "
        "writes CSV)"
    ),
}
"""The summary's line of the run's per-bar tables, by their format."""


def test_the_rule() -> None:
    limit = run_tables.AUTO_PARQUET_BARS
    assert limit == 250_000
    assert table_format("auto", limit) == "csv"
    assert table_format("auto", limit + 1) == "parquet"
    assert table_format("csv", 10**9) == "csv"
    assert table_format("parquet", 1) == "parquet"
    # a universe's bars count once per symbol (its positions table: a row per bar held)
    assert table_format("auto", limit // 4, 4) == "csv"
    assert table_format("auto", limit // 4 + 1, 4) == "parquet"
    assert table_format("csv", limit, 500) == "csv"


def test_every_shipped_strategy_stays_csv() -> None:
    """Every file of strategies/ and examples/ runs far below the threshold (auto: CSV)."""
    root = Path(__file__).resolve().parents[2]
    for path in [*root.glob("strategies/*.yaml"), *root.glob("examples/*.yaml")]:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert doc.get("outputs", {}).get("tables", "auto") == "auto", path
        bars = doc.get("data", {}).get("bars", 0) if isinstance(doc.get("data"), dict) else 0
        assert bars <= run_tables.AUTO_PARQUET_BARS, path


def test_a_bad_value_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.yaml"
    doc = strategy(outputs={"tables": "feather"})
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    assert main(["--quiet", "validate", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "feather" in text)
    assert err == [
        f"{path}:{line}:11 outputs.tables: expected 'auto', 'csv' or 'parquet', was 'feather'"
    ]


# --- a portfolio file ------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_a_portfolio_file_follows_its_strategies(tmp_path: Path, form: str) -> None:
    for name, seed in (("a", 1), ("b", 2)):
        doc = strategy(name=name, seed=seed, outputs={"tables": form}, data={"bars": 300})
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    weights = [{"file": "a.yaml", "weight": 0.6}, {"file": "b.yaml", "weight": 0.4}]
    pair = {"name": "pair", "initial_cash": 10000, "strategies": weights}
    (tmp_path / "pair.yaml").write_text(yaml.safe_dump(pair), encoding="utf-8")
    portfolio = load_portfolio(tmp_path / "pair.yaml")
    pipelines = [build_pipeline(c) for c in portfolio.strategies]
    outcome = run_portfolio(portfolio, pipelines, load_plugins(), out=tmp_path / "run")
    run_dir = outcome.run_dir
    assert sorted(p.name for p in run_dir.glob("equity.*")) == [f"equity.{form}"]
    assert outcome.metrics["tables"] == form
    assert SUMMARY[form] in format_summary(outcome.metrics).splitlines()
    equity = read_table(run_dir, "equity")
    assert equity is not None and len(equity) == 300
    assert np.array_equal(equity["equity"].to_numpy(), outcome.result.equity)


# --- the Parquet writer ----------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    values=st.lists(
        st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=1, max_size=40
    ),
    step=st.sampled_from(["1s", "1min", "1h", "1D"]),
)
def test_a_parquet_table_reads_back_as_its_csv_does(values: list[float], step: str) -> None:
    """Any floats (NaN, infinities, -0.0 included) and times on any whole-second step read
    back from either form as they were written."""
    import tempfile

    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range("2024-01-01", periods=len(values), freq=step, tz="UTC"),
            "bar": np.arange(len(values), dtype=np.int64),
            "symbol": pd.Categorical(["BTC/USDT", "ETH/USDT"] * len(values))[: len(values)],
            "value": values,
        }
    )
    with tempfile.TemporaryDirectory() as folder:
        read = {}
        for form in FORMS:
            run_dir = Path(folder) / form
            run_dir.mkdir()
            write_table(run_dir, "positions", frame, form)  # type: ignore[arg-type]
            read[form] = read_table(run_dir, "positions")
    parquet = read["parquet"]
    assert parquet is not None
    assert np.array_equal(parquet["value"].to_numpy(), np.asarray(values), equal_nan=True)
    numbers = ~np.isnan(values)
    assert np.array_equal(np.signbit(parquet["value"][numbers]), np.signbit(values)[numbers])
    assert (parquet["timestamp"] == frame["timestamp"]).all()
    assert list(parquet["symbol"]) == list(frame["symbol"].astype(str))
    pd.testing.assert_frame_equal(read["csv"], parquet, check_exact=True)
