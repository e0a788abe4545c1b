"""Where a backtest's tables of events are written: by the worker beside the metrics, and
read by the report from memory once they are on disk (issue 47)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.builders import PRECOMPUTED, REPORTED, strategy, write_bars, write_strategy
from tradeloom.backtest import pipeline as pipeline_module
from tradeloom.backtest import results as results_module
from tradeloom.backtest import run as run_module
from tradeloom.backtest.run import run_strategy
from tradeloom.engine.wiring import build_pipeline
from tradeloom.reporting import exports, outputs, report
from tradeloom.schemas import load_strategy

EVENT_TABLES = ("orders.csv", "fills.csv", "trades.csv")

CLOSE = [100.0, 101.0, 103.0, 102.0, 99.0, 100.0, 104.0, 106.0, 103.0, 101.0]
P_UP = [0.9, 0.9, 0.1, 0.1, 0.9, 0.9, 0.9, 0.1, 0.1, 0.5]
"""Two round trips (in at bars 0 and 4, out at bars 2 and 7)."""


def _run(folder: Path) -> Any:
    write_bars(folder, CLOSE, P_UP)
    document = strategy(
        PRECOMPUTED,
        REPORTED,  # the report's reading of the tables, and their writers, are under test
        name="tables",
        model={"kind": "precomputed", "column": "p_up", "horizon": 1},
        signal={"threshold": 0.5},
        execution={"fill": "close", "allow_short": False},
    )
    config, plugins = load_strategy(write_strategy(folder, document), [])
    return run_strategy(build_pipeline(config), plugins, out=folder / "run")


def test_the_report_reads_the_tables_of_events_written_by_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}
    writers: set[str] = set()
    write_frame, write_report = outputs.write_frame, report.write_report

    def writing(run_dir: Path, name: str, frame: Any) -> None:
        if name in EVENT_TABLES:
            writers.add(threading.current_thread().name)
        write_frame(run_dir, name, frame)

    def drawing(run_dir: Path, *, written: Any, **keys: Any) -> None:
        seen.update(
            on_disk=[(run_dir / n).is_file() for n in EVENT_TABLES],
            in_memory=[n in written for n in EVENT_TABLES],
        )
        write_report(run_dir, written=written, **keys)

    monkeypatch.setattr(outputs, "write_frame", writing)
    monkeypatch.setattr(report, "write_report", drawing)
    outcome = _run(tmp_path)
    assert outcome.metrics["fills"] == 4
    assert [w.startswith("tradeloom-tables") for w in sorted(writers)] == [True]
    assert seen == {"on_disk": [True] * 3, "in_memory": [True] * 3}
    trades = (outcome.run_dir / "trades.csv").read_text().splitlines()
    assert len(trades) == 3 and trades[0].startswith("symbol,direction,side,")


def test_a_table_the_worker_cannot_write_fails_the_run_with_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_frame = outputs.write_frame

    def failing(run_dir: Path, name: str, frame: Any) -> None:
        if name == "fills.csv":
            raise OSError(28, "No space left on device")
        write_frame(run_dir, name, frame)

    monkeypatch.setattr(outputs, "write_frame", failing)
    with pytest.raises(OSError, match=r"^\[Errno 28\] No space left on device$"):
        _run(tmp_path)
    assert not (tmp_path / "run" / "report.html").exists()


def test_a_run_without_a_router_does_not_read_its_journal_for_venue_accounts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(path: Path) -> Any:
        raise AssertionError(f"{path} read again for venue accounts")

    monkeypatch.setattr(results_module, "journal_venue_accounts", refused)
    outcome = _run(tmp_path)
    assert "venues" not in outcome.metrics


def test_the_bars_are_handed_to_the_worker_before_the_features_are_computed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    order: list[str] = []
    writers: set[str] = set()
    bars_table, features = run_module.bars_table, pipeline_module.universe_features
    write_parquet = exports.write_parquet

    def bars(universe: Any) -> Any:
        order.append("bars")
        return bars_table(universe)

    def computing(*args: Any) -> Any:
        order.append("features")
        return features(*args)

    def writing(path: Path, frame: Any, plots: Any = None) -> None:
        if path.name == exports.BARS_FILE:
            writers.add(threading.current_thread().name)
        write_parquet(path, frame, plots)

    monkeypatch.setattr(run_module, "bars_table", bars)
    monkeypatch.setattr(pipeline_module, "universe_features", computing)
    monkeypatch.setattr(exports, "write_parquet", writing)
    outcome = _run(tmp_path)
    assert order == ["bars", "features"]
    assert [w.startswith("tradeloom-tables") for w in writers] == [True]
    written = pd.read_parquet(outcome.run_dir / exports.BARS_FILE)
    assert written["close"].tolist() == CLOSE


def test_a_run_that_fails_after_reading_its_bars_leaves_no_bars_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_parquet = exports.write_parquet

    def slow(path: Path, frame: Any, plots: Any = None) -> None:
        time.sleep(0.2)  # still writing when the run fails: the failure waits for it
        write_parquet(path, frame, plots)

    def failing(*args: Any) -> Any:
        raise RuntimeError("the model could not be fitted")

    monkeypatch.setattr(exports, "write_parquet", slow)
    monkeypatch.setattr(pipeline_module, "fit_universe", failing)
    with pytest.raises(RuntimeError, match="could not be fitted"):
        _run(tmp_path)
    assert sorted(p.name for p in (tmp_path / "run").iterdir() if "journal" not in p.name) == [
        "folder.key",
        "strategy.yaml",
    ]
