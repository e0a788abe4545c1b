"""A backtest's figures computed by a second thread fail the run as they did in its own.

`tradeloom.backtest.results` computes the account's figures, the predictions' AUC, the returns'
tail figures, the attribution and the execution quality beside the tearsheet; an error in
any of them fails the run with its own message, journaled as ``run_failed``, with no
``metrics.json`` written, and where two fail, the one computed first is told.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from structlog.testing import capture_logs

import tradeloom.backtest.pipeline as pipeline_module
import tradeloom.backtest.results as results_module
import tradeloom.backtest.run as run_module
import tradeloom.backtest.tables as tables_module
import tradeloom.reporting.run_data as run_data
from tests.builders import PRECOMPUTED, REPORTED, strategy, write_bars, write_strategy
from tradeloom.backtest.run import run_strategy
from tradeloom.engine.driver import Engine
from tradeloom.engine.wiring import build_pipeline
from tradeloom.journal import read_rows
from tradeloom.schemas import load_strategy

TINY: dict[str, Any] = {
    "name": "tiny",
    **PRECOMPUTED,
    "model": {"kind": "precomputed", "column": "p_up", "horizon": 1},
    "signal": {"threshold": 0.5},
    "execution": {"initial_cash": 10_000.0, "fill": "next_open", "fee_bps": 10},
}


def _run(folder: Path, **settings: Any) -> Path:
    folder.mkdir(exist_ok=True)
    close = 100.0 + np.cumsum(np.sin(np.arange(60.0)))
    p_up = np.where(np.arange(60) % 10 < 5, 0.9, 0.1)
    write_bars(folder, close, p_up)
    document = strategy(REPORTED, TINY, settings)  # features.parquet's and report.html's writers
    config, plugins = load_strategy(write_strategy(folder, document), [])
    out = folder / "run"
    run_strategy(build_pipeline(config), plugins, out=out)
    return out


def _failing(message: str) -> Any:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(message)

    return fail


def _fails_with(folder: Path, message: str) -> None:
    """Run in ``folder``: the run raises ``message``, journals it as its only
    ``run_failed`` row, and writes no metrics.json and no report."""
    with pytest.raises(RuntimeError, match=rf"^{message}$"):
        _run(folder)
    out = folder / "run"
    rows = read_rows(out / "journal.sqlite")
    assert [str(r.values.get("error")) for r in rows if r.kind == "run_failed"] == [
        f"RuntimeError: {message}"
    ]
    assert not (out / "metrics.json").exists()
    assert not (out / "report.html").exists()


_TABLES = frozenset(
    {
        "bars.parquet",
        "equity.csv",
        "positions.csv",
        "features.parquet",
        "orders.csv",
        "fills.csv",
        "trades.csv",
    }
)


def _leaves_no_table(folder: Path) -> None:
    """The failed run in ``folder`` left none of its tables, but its journal."""
    left = {p.name for p in (folder / "run").iterdir()}
    assert not left & _TABLES, left
    assert {"strategy.yaml", "journal.sqlite"} <= left


def _journals_its_core_rows(folder: Path) -> None:
    """The failed run in ``folder`` journaled what its core did, then its failure."""
    kinds = [r.kind for r in read_rows(folder / "run" / "journal.sqlite")]
    assert {"signal", "order", "fill"} <= set(kinds)
    assert kinds[-1] == "run_failed"


@pytest.mark.parametrize(
    "name",
    [
        "account_figures",
        "prediction_auc",
        "symbol_attribution",
        "plain_execution_quality",
        "tail_figures",
    ],
)
def test_an_error_beside_the_tearsheet_fails_the_run_with_its_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setattr(results_module, name, _failing(f"{name} broke"))
    _fails_with(tmp_path, f"{name} broke")


@pytest.mark.parametrize(
    ("first", "then"), [("account_figures", "tearsheet"), ("tearsheet", "symbol_attribution")]
)
def test_of_two_errors_the_one_computed_first_is_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first: str, then: str
) -> None:
    # the account's figures were computed before the tearsheet, the attribution after it
    monkeypatch.setattr(results_module, first, _failing(f"{first} broke"))
    monkeypatch.setattr(results_module, then, _failing(f"{then} broke"))
    with pytest.raises(RuntimeError, match=rf"^{first} broke$"):
        _run(tmp_path)


def test_a_run_computing_its_figures_beside_writes_them_as_computed_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _run(tmp_path / "a")
    beside = (out / "metrics.json").read_text().replace(str(out), "RUN")

    class Inline:  # the figures computed in the run's own thread, at submission
        def __init__(self, *args: Any, **kwargs: Any) -> None: ...

        def __enter__(self) -> Inline:
            return self

        def __exit__(self, *exc: object) -> None: ...

        def submit(self, work: Any, *args: Any) -> Any:
            from concurrent.futures import Future

            future: Future[Any] = Future()
            future.set_result(work(*args))
            return future

    for module in (run_module, results_module):  # the tables' workers, the figures' thread
        monkeypatch.setattr(module, "ThreadPoolExecutor", Inline)
    out = _run(tmp_path / "b")
    alone = (out / "metrics.json").read_text().replace(str(out), "RUN")
    assert beside == alone


@pytest.mark.parametrize("made_by", ["trade_frame", "features_table"])
def test_a_table_that_cannot_be_made_fails_the_run_before_its_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, made_by: str
) -> None:
    # the tables are made before the metrics: their error is told, not the tearsheet's
    monkeypatch.setattr(tables_module, made_by, _failing(f"{made_by} broke"))
    monkeypatch.setattr(results_module, "tearsheet", _failing("tearsheet broke"))
    _fails_with(tmp_path, f"{made_by} broke")


def test_every_table_is_written_by_the_time_the_run_returns(tmp_path: Path) -> None:
    out = _run(tmp_path)
    written = {p.name for p in out.iterdir()}
    assert {"equity.csv", "positions.csv", "features.parquet", "bars.parquet"} <= written
    assert {"orders.csv", "fills.csv", "trades.csv", "metrics.json", "report.html"} <= written


def test_a_report_that_reads_the_equity_file_waits_for_its_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the equity table is written by a worker; where its rows cannot be handed to the
    # report as they read back (`as_read`: None), the report reads the file, once written
    drawn = (_run(tmp_path / "drawn") / "report.html").read_text(encoding="utf-8")
    write_equity = tables_module.write_equity

    def late(*args: Any) -> None:
        time.sleep(0.5)  # still writing when the report would start without the wait
        write_equity(*args)

    for module in (tables_module, run_data):  # no table handed over: each file is read
        monkeypatch.setattr(module, "as_read", lambda *args, **kwargs: None)
    monkeypatch.setattr(tables_module, "write_equity", late)
    read = (_run(tmp_path / "read") / "report.html").read_text(encoding="utf-8")
    assert read.replace(str(tmp_path / "read"), "") == drawn.replace(str(tmp_path / "drawn"), "")


def test_a_run_without_a_report_does_not_make_the_rows_it_would_draw(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the equity rows as the report draws them (`as_read`) are made for the report only:
    # not by this thread, nor by a worker (whose pool the run waits for before returning)
    called: list[object] = []
    monkeypatch.setattr(tables_module, "as_read", lambda *args, **kwargs: called.append(args))
    out = _run(tmp_path, outputs={"report": False})
    assert (out / "metrics.json").is_file() and not (out / "report.html").exists()
    assert called == []


@pytest.mark.parametrize(
    "fails_in",
    ["finish", "trade_frame", "features_table", "write_positions", "as_read", "write_metrics"],
)
def test_a_run_that_fails_before_its_metrics_leaves_none_of_its_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fails_in: str
) -> None:
    # the bars, equity and positions tables are being written (the equity table late:
    # still writing when the run fails) while the rows are journaled (`Engine.finish`)
    # and the other tables made; a worker's error is raised before metrics.json is
    # written: a failure until then waits for each writer, then removes what it wrote
    write_equity = tables_module.write_equity

    def late(*args: Any) -> None:
        time.sleep(0.5)
        write_equity(*args)

    monkeypatch.setattr(tables_module, "write_equity", late)
    owner = {"finish": Engine, "write_metrics": run_module.outputs}.get(fails_in, tables_module)
    monkeypatch.setattr(owner, fails_in, _failing(f"{fails_in} broke"))
    _fails_with(tmp_path, f"{fails_in} broke")
    _leaves_no_table(tmp_path)


def test_a_run_failing_while_its_curve_is_drawn_keeps_what_its_core_did_journaled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the curve is drawn before the run's rows are journaled: its failure journals them
    # all the same, before the run's failure
    monkeypatch.setattr(pipeline_module, "equity_frame", _failing("curve broke"))
    _fails_with(tmp_path, "curve broke")
    _journals_its_core_rows(tmp_path)


def test_the_curve_drawn_before_the_rows_are_journaled_counts_each_fill_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # journaling the rows after the curve was drawn adds none of their fills again
    finish = Engine.finish
    seen: list[tuple[np.ndarray, np.ndarray]] = []

    def checked(self: Engine, *args: Any) -> None:
        before = self._marks().copy()
        finish(self, *args)
        seen.append((before, self._marks()))

    monkeypatch.setattr(Engine, "finish", checked)
    _run(tmp_path)
    [(before, after)] = seen
    assert len(before) and np.array_equal(before, after)


def test_a_run_failing_as_its_fills_are_marked_keeps_what_its_core_did_journaled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mark_fills = Engine.mark_fills
    calls: list[Engine] = []

    def first_fails(self: Engine) -> None:
        calls.append(self)
        if len(calls) == 1:
            raise RuntimeError("marks broke")
        mark_fills(self)

    monkeypatch.setattr(Engine, "mark_fills", first_fails)
    _fails_with(tmp_path, "marks broke")
    _journals_its_core_rows(tmp_path)


def test_a_workers_error_hidden_by_the_runs_own_is_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the positions table fails in its worker while the run's thread fails on its own
    # (making the trades table): the run raises its own error, and logs the worker's
    monkeypatch.setattr(tables_module, "curve_positions", _failing("positions broke"))
    monkeypatch.setattr(tables_module, "trade_frame", _failing("trade_frame broke"))
    with capture_logs() as logs:
        _fails_with(tmp_path, "trade_frame broke")
    [logged] = [e for e in logs if e["event"] == "table_not_written"]
    assert logged["log_level"] == "warning"
    assert logged["tables"] == ["positions.csv"]
    assert logged["error"] == "RuntimeError: positions broke"
    _leaves_no_table(tmp_path)


def test_a_workers_error_the_run_raises_is_not_logged_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tables_module, "curve_positions", _failing("positions broke"))
    with capture_logs() as logs:
        _fails_with(tmp_path, "positions broke")
    assert not [e for e in logs if e["event"] == "table_not_written"]
