"""The Python API (`tradeloom.api`) over the CLI's engine, and the docs notebook that uses it.

The notebook (docs/guides/python_notebook.py, a jupytext script) runs once per module,
in a temporary folder, as Jupyter runs it: converted by jupytext, every cell in order by
a Python kernel (nbclient, ipykernel), whose session stays open for the module's tests.
The tests then check through the API what it computed against the run folders' own files
and against the command line.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import re
import subprocess
import sys
import traceback
from collections.abc import Iterator, Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import tradeloom
from tests.reference_libraries import Reference
from tradeloom.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "docs" / "guides" / "python_notebook.py"
ON_THE_NOTEBOOKS_WORKER = pytest.mark.xdist_group("api_notebook")
"""The tests that read the notebook's names run on one worker: it runs once (13 s of CPU,
its kernel's and the paper run's included)."""

STRATEGY = """\
name: api_errors
data: {kind: synthetic, symbol: BTC/USDT, bars: 500}
features: [{kind: log_return, period: 1}]
model: {kind: precomputed, column: p_up}
signal: {kind: threshold, threshold: 0.2}
risk:
  sizing: {kind: fixed_fraction, fraction: 1.5}
execution: {kind: simulated}
"""


def _leaves(value: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, item in value.items():
        if isinstance(item, Mapping) and item:
            yield from _leaves(item, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", item


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


# --- import and mistakes: no engine run ---------------------------------------------------


def test_import_tradeloom_prints_nothing_and_loads_no_library() -> None:
    probe = (
        "import sys, tradeloom; "
        "print(sorted(m for m in ('pandas', 'numba', 'sklearn', 'plotly') if m in sys.modules)); "
        "print(callable(tradeloom.load), 'pandas' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    # nothing on import, nor when the API module loads: the libraries come with the work
    assert done.stdout.splitlines() == ["[]", "True False"]
    assert done.stderr == ""


def test_a_strategy_mistake_raises_the_lines_validate_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "strategy.yaml"
    file.write_text(STRATEGY)
    assert main(["validate", str(file)]) == 2
    printed = capsys.readouterr().err.splitlines()

    with pytest.raises(tradeloom.ConfigError) as raised:
        tradeloom.load(file)

    assert raised.value.lines() == printed
    assert printed == [f"{file}:7:44 risk.sizing.fraction: must be <= 1, was 1.5"]
    # raised from the API's call, not from the validation's depths
    frames = [Path(f.filename).parts[-2:] for f in traceback.extract_tb(raised.value.__traceback__)]
    assert frames == [("tests", "test_api.py"), ("api", "calls.py")]


def test_overrides_are_validated_like_set(tmp_path: Path) -> None:
    file = tmp_path / "strategy.yaml"
    file.write_text(STRATEGY)

    strategy = tradeloom.load(file, risk__sizing__fraction=0.25, **{"data.bars": 400})
    assert strategy.document["risk"]["sizing"]["fraction"] == 0.25
    assert strategy.document["data"]["bars"] == 400
    with pytest.raises(tradeloom.ConfigError, match=r"^--set signal.threshold: .*was 'high'$"):
        tradeloom.load(file, risk__sizing__fraction=0.25, signal__threshold="high")


def test_a_mapping_is_validated_and_located_as_a_dict() -> None:
    document = yaml.safe_load(STRATEGY)
    with pytest.raises(tradeloom.ConfigError) as raised:
        tradeloom.load(document)
    assert raised.value.lines() == ["<dict>:18:15 risk.sizing.fraction: must be <= 1, was 1.5"]


def test_a_portfolio_file_is_refused_naming_the_command_that_runs_it() -> None:
    file = ROOT / "examples" / "two_strategies.yaml"
    with pytest.raises(tradeloom.UserError) as raised:
        tradeloom.load(file)
    assert str(raised.value) == (
        f"{file}: a portfolio file; the Python API loads a strategy file (backtest the "
        f"portfolio with tradeloom run {file})"
    )


def test_numpy_numbers_are_numbers(tmp_path: Path) -> None:
    document = yaml.safe_load(STRATEGY)
    document["risk"]["sizing"]["fraction"] = np.float64(0.5)
    document["data"]["bars"] = np.int64(300)

    strategy = tradeloom.load(document, seed=np.int64(5), signal__threshold=np.float32(0.25))

    assert (strategy.config.seed, strategy.document["data"]["bars"]) == (5, 300)
    assert strategy.document["signal"]["threshold"] == 0.25
    with pytest.raises(tradeloom.ConfigError, match=r"^--grid signal.threshold=0.2,3 "):
        strategy.sweep({"signal.threshold": [np.float64(0.2), np.int64(3)]}, out=tmp_path / "s")


def test_a_mapping_holds_plain_values() -> None:
    document = {**yaml.safe_load(STRATEGY), "seed": Fraction(1, 2)}
    with pytest.raises(tradeloom.UserError) as raised:
        tradeloom.load(document)
    assert str(raised.value) == (
        "<dict>: Fraction(1, 2) cannot be written as YAML; give plain numbers, strings, "
        "booleans, lists and dicts"
    )


def test_bars_without_a_column_are_refused_naming_it() -> None:
    document = yaml.safe_load(STRATEGY)
    document["risk"]["sizing"]["fraction"] = 0.5
    strategy = tradeloom.load(document)
    times = pd.date_range("2024-01-01", periods=3, freq="h", tz="UTC")
    bars = pd.DataFrame({"Open": 1.0, "High": 1.0, "Close": 1.0}, index=times)

    with pytest.raises(tradeloom.UserError) as raised:
        strategy.with_data(bars)

    assert str(raised.value) == (
        "bars: no low column; expected timestamp, open, high, low, close (volume optional), "
        "was Open, High, Close"
    )
    full = bars.assign(Low=1.0)
    with pytest.raises(tradeloom.UserError, match=r"^bars: no timestamp column and no Dat"):
        strategy.with_data(full.reset_index(drop=True))


def test_open_run_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(tradeloom.UserError) as raised:
        tradeloom.open_run(tmp_path)
    assert str(raised.value) == (
        f"{tmp_path}: not a run directory (no metrics.json or equity.csv); give the folder "
        "that tradeloom run wrote (runs/<name>-<time>)"
    )
    with pytest.raises(tradeloom.UserError, match=r"not a directory"):
        tradeloom.open_run(tmp_path / "missing")


def test_a_damaged_table_is_refused_naming_its_line(tmp_path: Path) -> None:
    # the notebook's tables are read as the report reads them: a text where a number
    # belongs is refused in one line naming the file, line and column
    (tmp_path / "metrics.json").write_text("{}")
    (tmp_path / "equity.csv").write_text("timestamp,equity\n2024-01-01T00:00:00Z,1.0\n")
    (tmp_path / "trades.csv").write_text(
        "entry_time,exit_time,pnl\n"
        "2024-01-01T00:00:00Z,2024-01-01T00:01:00Z,1.5\n"
        "2024-01-01T00:02:00Z,2024-01-01T00:03:00Z,hello\n"
    )
    run = tradeloom.open_run(tmp_path)
    with pytest.raises(tradeloom.UserError) as raised:
        run.trades  # noqa: B018
    assert str(raised.value) == (
        f"{tmp_path / 'trades.csv'}:3: column pnl: expected a number, was 'hello'; "
        "damaged, or not a run's table"
    )
    (tmp_path / "trades.csv").write_text("entry_time,pnl\nsoon,1.5\n")
    with pytest.raises(tradeloom.UserError, match=r"trades\.csv: column entry_time: not times"):
        run.trades  # noqa: B018


def test_a_paper_run_of_one_market_has_its_positions_from_its_equity(tmp_path: Path) -> None:
    # a paper or live run of one market writes no positions.csv: its equity.csv holds them
    (tmp_path / "metrics.json").write_text('{"mode": "paper", "symbol": "BTC/USDT"}')
    (tmp_path / "equity.csv").write_text(
        "timestamp,close,position,cash,equity,drawdown\n"
        "2024-01-01T00:00:00Z,100.0,0.0,1000.0,1000.0,0.0\n"
        "2024-01-01T01:00:00Z,101.0,2.0,798.0,1000.0,0.0\n"
        "2024-01-01T02:00:00Z,99.5,-1.0,1097.5,998.0,0.002\n"
        "2024-01-01T03:00:00Z,98.0,0.0,996.0,996.0,0.004\n"
    )

    positions = tradeloom.open_run(tmp_path).positions

    assert list(positions) == ["timestamp", "bar", "symbol", "position", "close", "value"]
    assert positions["timestamp"].tolist() == list(
        pd.date_range("2024-01-01T01:00", periods=2, freq="h", tz="UTC")
    )
    assert positions["bar"].tolist() == [1, 2]
    assert positions["symbol"].tolist() == ["BTC/USDT"] * 2
    assert positions["value"].tolist() == [202.0, -99.5]


def test_the_returns_start_from_the_starting_cash(tmp_path: Path) -> None:
    # a paper run restarted in a drawdown: its first bar's return is against its cash
    metrics = {"mode": "paper", "initial_cash": 1000.0, "periods_per_year": 2190.0}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    (tmp_path / "equity.csv").write_text(
        "timestamp,equity\n2024-01-01T00:00:00Z,990.0\n2024-01-01T04:00:00Z,999.9\n"
    )

    returns = tradeloom.open_run(tmp_path).returns

    assert returns.tolist() == [990.0 / 1000.0 - 1, 999.9 / 990.0 - 1]
    assert returns.index.equals(pd.DatetimeIndex(["2024-01-01T00:00Z", "2024-01-01T04:00Z"]))
    assert (returns.name, returns.attrs) == ("returns", {"periods_per_year": 2190.0})


# --- the notebook -----------------------------------------------------------------------------


class Notebook:
    """The docs notebook executed by a Jupyter kernel of this interpreter, whose session
    stays open for the module's tests: its cells' outputs, and what its names hold."""

    def __init__(self, client: Any, cells: list[Any]) -> None:
        self._client = client
        self.cells = cells
        """Every code cell as it ran (``outputs``: what Jupyter showed under it)."""

    def value(self, expression: str) -> Any:
        """Return what ``expression`` is in the notebook's session (through JSON)."""
        import nbformat

        cell = nbformat.v4.new_code_cell(
            f"import json as _json\nprint(_json.dumps({expression}, default=float))"
        )
        self._client.execute_cell(cell, len(self.cells))
        streams = [o["text"] for o in cell.outputs if o.get("name") == "stdout"]
        return json.loads("".join(streams))

    def outputs(self, source: str) -> list[str]:
        """Return the kinds of output (mime types, streams) of the cell whose code is
        ``source`` or starts with its line(s)."""
        cell = self._cell(source)
        return [kind for o in cell.outputs for kind in (o.get("data") or [o.get("name")])]

    def shown(self, source: str, kind: str) -> Any:
        """Return what the cell of ``source`` (`outputs`) showed as ``kind`` (a mime type)."""
        cell = self._cell(source)
        return next(o["data"][kind] for o in cell.outputs if kind in o.get("data", {}))

    def _cell(self, source: str) -> Any:
        return next(
            c for c in self.cells if c.source == source or c.source.startswith(source + "\n")
        )


@pytest.fixture(scope="module")
def notebook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Notebook]:
    """The docs notebook run cell by cell by a Python kernel (ipykernel, this interpreter,
    a kernel spec of its own: nothing registered outside the test's folder), as Jupyter
    runs it, in a folder of its own; the kernel stays for the module's tests."""
    import jupytext
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    folder = tmp_path_factory.mktemp("notebook")
    spec = folder / "kernels" / "tradeloom-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "tradeloom tests", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel))
    specs = KernelSpecManager(kernel_dirs=[str(spec.parent)])
    manager = KernelManager(kernel_name=spec.name, kernel_spec_manager=specs)
    book = jupytext.read(NOTEBOOK)
    client = NotebookClient(
        book, km=manager, timeout=600, resources={"metadata": {"path": str(folder)}}
    )
    with client.setup_kernel():
        cells = [cell for cell in book.cells if cell.cell_type == "code"]
        for index, cell in enumerate(book.cells):
            if cell.cell_type == "code":
                client.execute_cell(cell, index)  # a cell's error raises CellExecutionError
        yield Notebook(client, cells)


@pytest.fixture(scope="module")
def notebook_run(notebook: Notebook) -> tradeloom.Run:
    """The notebook's backtest as it saved it, opened through the API (its folder is the
    kernel's)."""
    return tradeloom.open_run(notebook.value("str(saved.run_dir)"))


HEADLINE = ["total_return", "buy_and_hold_return", "cagr", "sharpe", "sortino", "calmar"]
"""The first figures of `Run.stats`: the report's statistics table's first rows."""


@pytest.mark.slow
@ON_THE_NOTEBOOKS_WORKER
def test_the_notebook_stats_are_the_runs_metrics_json_headline_first(
    notebook: Notebook, notebook_run: tradeloom.Run
) -> None:
    run = notebook_run
    metrics = json.loads((run.run_dir / "metrics.json").read_text())
    leaves = dict(_leaves(metrics))

    stats = run.stats

    assert sorted(stats.index) == sorted(leaves)  # every figure, each once
    assert all(_same(stats[key], value) for key, value in leaves.items())
    assert type(stats["sharpe"]) is float and stats["trades"] == metrics["trades"] > 0
    assert stats["tearsheet.beta"] == metrics["tearsheet"]["beta"]
    # a tearsheet's order: the returns, the risk, the trades, the run, by period, the rest
    order = list(stats.index)
    assert order[: len(HEADLINE)] == HEADLINE
    firsts = ["max_drawdown", "tearsheet.alpha", "trades", "win_rate", "bars"]
    firsts += ["yearly_returns.2024", "monthly_returns.2024-01", "execution_quality.groups"]
    assert [order.index(key) for key in firsts] == sorted(order.index(key) for key in firsts)
    # the notebook's own Run says the same, and Jupyter shows it as the report's tables
    assert notebook.value("run.stats.index.tolist()") == order
    assert notebook.value("run.stats['sharpe']") == metrics["sharpe"]
    page = notebook.shown("run.stats", "text/html")
    assert re.findall(r"<caption[^>]*>([^<]*)</caption>", page) == [
        "Returns", "Risk", "Trades", "Model and run", "Returns by year", "Returns by month",
        "More",
    ]  # fmt: skip
    for label, key, text in (
        ("Sharpe (ann.)", "sharpe", f"{metrics['sharpe']:.2f}"),
        ("total return", "total_return", f"{metrics['total_return']:+.2%}"),
        ("beta", "tearsheet.beta", f"{metrics['tearsheet']['beta']:.3f}"),
    ):
        row = rf"<th[^>]*>{re.escape(label)}</th><td[^>]*>{re.escape(text)}</td>"
        assert re.search(row + rf"<td[^>]*><code>{re.escape(key)}</code>", page), key
    # the long sections folded: the months and the rest
    assert "<details><summary" in page
    assert page.index("<details>") < page.index("<code>monthly_returns.2024-01</code>")


@pytest.mark.slow
@ON_THE_NOTEBOOKS_WORKER
def test_the_notebook_returns_annualise_in_quantstats_as_the_run_does(
    notebook: Notebook, notebook_run: tradeloom.Run
) -> None:
    qs, empyrical = Reference("quantstats"), Reference("empyrical")
    stats, equity = notebook_run.stats, notebook_run.equity

    returns = notebook_run.returns

    periods = returns.attrs["periods_per_year"]
    assert periods == stats["periods_per_year"] == 24 * 365  # hourly, around the clock
    assert returns.index.equals(equity.index) and returns.name == "returns"
    # each bar's simple return, the first against the starting cash
    assert returns.iloc[0] == equity["equity"].iloc[0] / stats["initial_cash"] - 1
    np.testing.assert_array_equal(returns.iloc[1:], equity["equity"].pct_change().iloc[1:])
    for reference, figure in (
        (qs.stats.sharpe(returns, periods=periods), stats["sharpe"]),
        (qs.stats.sortino(returns, periods=periods), stats["sortino"]),
        (qs.stats.volatility(returns, periods=periods), stats["volatility"]),
        (qs.stats.comp(returns), stats["total_return"]),
        (-qs.stats.max_drawdown(returns), stats["max_drawdown"]),
        (empyrical.sharpe_ratio(returns, annualization=periods), stats["sharpe"]),
        (empyrical.annual_volatility(returns, annualization=periods), stats["volatility"]),
    ):
        assert reference == pytest.approx(figure, rel=1e-9)
    # the notebook's pandas Sharpe ratio, from the same returns
    assert notebook.value("sharpe") == pytest.approx(stats["sharpe"], rel=1e-12)


@pytest.mark.slow
@ON_THE_NOTEBOOKS_WORKER
def test_the_notebook_tables_are_the_runs_files(
    notebook: Notebook, notebook_run: tradeloom.Run
) -> None:
    run = notebook_run
    for name, frame in (("trades", run.trades), ("fills", run.fills), ("orders", run.orders)):
        written = pd.read_csv(run.run_dir / f"{name}.csv")
        for column in ("timestamp", "entry_time", "exit_time"):
            if column in written:
                # the files hold whole seconds: read as the report reads them, to the second
                written[column] = pd.to_datetime(written[column], utc=True).dt.as_unit("s")
        pd.testing.assert_frame_equal(frame, written)
    assert len(run.journal("fill")) == len(run.fills) > 0
    equity = run.equity
    assert isinstance(equity.index, pd.DatetimeIndex)
    assert len(equity) == run.stats["bars"] == notebook.value("len(bars)")
    assert notebook.value("len(run.trades)") == len(run.trades)


PLOTLY = "application/vnd.plotly.v1+json"


@pytest.mark.slow
@ON_THE_NOTEBOOKS_WORKER
def test_the_notebook_draws_the_reports_charts_as_one_figure(
    notebook: Notebook, notebook_run: tradeloom.Run
) -> None:
    page = notebook_run.report().read_text()
    titles = re.findall(r"<div class='chart' id='chart-\d+' data-title='([^']*)'", page)
    assert len(titles) >= 5

    # a cell's last line run.plot() shows one plotly figure: not a list, not JSON text
    assert notebook.outputs("run.plot()") == [PLOTLY]
    figure = notebook.shown("run.plot()", PLOTLY)

    drawn = [a["text"] for a in figure["layout"]["annotations"] if a["font"].get("size") == 15]
    assert drawn == titles  # the report's charts, in its order
    legends = {t["legend"] for t in figure["data"]}
    assert len(legends) == len(titles)  # a legend of its own per chart
    # the equity drawn is equity.csv's, thinned for display: every value one of the run's,
    # at its own time, the highest and the lowest among them
    equity = notebook_run.equity["equity"]
    (line,) = [t for t in figure["data"] if t.get("name") == "equity"]
    times = pd.DatetimeIndex(line["x"]).tz_localize("UTC")
    assert 2 < len(times) < len(equity) == 2000
    np.testing.assert_array_equal(line["y"], equity.loc[times].to_numpy())
    assert (max(line["y"]), min(line["y"])) == (equity.max(), equity.min())
    # one panel alone is the report's own chart
    assert notebook.outputs('run.plot("equity")') == [PLOTLY]
    alone = notebook.shown('run.plot("equity")', PLOTLY)
    assert alone["layout"]["title"]["text"] == titles[1]
    with pytest.raises(tradeloom.UserError) as raised:
        notebook_run.plot("eqity")
    assert str(raised.value) == (
        "panel: no panel 'eqity' (did you mean 'equity'?); this run draws "
        "price, equity, probability, rolling, monthly_returns, trade_returns, reasons"
    )
    # Jupyter shows the run as its summary table
    assert "<table>" in notebook_run._repr_html_()
    assert "text/html" in notebook.outputs("strategy = tradeloom.load(document).with_data(bars)")
    # the page loads the shared plotly.js; single_file=True puts it inside the page
    assert "<script src='../plotly-" in page and len(page) < 1_000_000
    alone_page = notebook_run.report(single_file=True).read_text()
    assert "<script src=" not in alone_page and len(alone_page) > 4_000_000
    assert re.findall(r"data-title='([^']*)'", alone_page) == re.findall(
        r"data-title='([^']*)'", page
    )


@pytest.mark.slow
@ON_THE_NOTEBOOKS_WORKER
def test_the_notebook_positions_are_positions_csv(notebook_run: tradeloom.Run) -> None:
    positions = notebook_run.positions
    written = pd.read_csv(notebook_run.run_dir / "positions.csv")
    assert list(positions) == ["timestamp", "bar", "symbol", "position", "close", "value"]
    assert str(positions["timestamp"].dtype) == "datetime64[s, UTC]"
    assert len(positions) == len(written) == (notebook_run.equity["position"] != 0).sum() > 0
    np.testing.assert_array_equal(positions["value"], written["value"])


@pytest.mark.slow
@ON_THE_NOTEBOOKS_WORKER
def test_the_notebook_sweep_has_its_overfitting_statistics(notebook: Notebook) -> None:
    results = notebook.value(
        "{'thresholds': sorted(results['param.signal.threshold'].tolist()), "
        "'dsr': results['dsr'].tolist(), 'pbo': results.attrs['pbo'], "
        "'rank': results['rank'].tolist()}"
    )
    assert results["thresholds"] == [0.2, 0.3, 0.4]
    assert all(0 <= dsr <= 1 for dsr in results["dsr"])
    assert 0 <= results["pbo"] <= 1
    assert results["rank"] == [1, 2, 3]


@pytest.mark.slow
@ON_THE_NOTEBOOKS_WORKER
def test_the_notebook_opens_a_paper_runs_folder(notebook: Notebook) -> None:
    paper = tradeloom.open_run(notebook.value("str(paper.run_dir)"))
    assert paper.mode == notebook.value("paper.mode") == "paper"
    assert len(paper.journal("live_bar")) == 5
    # each bar's probability from the journal, beside the features the run wrote
    assert len(paper.features) == 5
    assert {"probability", "log_return_1", "rsi_14"} <= set(paper.features)
    assert paper.stats["mode"] == "paper"
    held = paper.equity["position"]
    assert paper.positions["position"].tolist() == held[held != 0].tolist()
    # a paper run writes no orders.csv or fills.csv: its journal's events stand in
    assert not (paper.run_dir / "fills.csv").exists()
    pd.testing.assert_frame_equal(paper.fills, paper.journal("fill"))
    pd.testing.assert_frame_equal(paper.orders, paper.journal("order"))


@pytest.mark.slow
@ON_THE_NOTEBOOKS_WORKER
def test_a_dataframe_backtest_is_the_csv_backtest_of_the_cli(
    notebook: Notebook, tmp_path: Path
) -> None:
    notebook.value(f"bars.to_pickle({str(tmp_path / 'bars.pickle')!r})")
    bars: pd.DataFrame = pd.read_pickle(tmp_path / "bars.pickle")
    document = notebook.value("document")
    csv = tmp_path / "bars.csv"
    bars.to_csv(csv)  # as a user writes a frame: the index is the unnamed first column
    cli_document = {**document, "data": {"kind": "csv", "path": str(csv), "symbol": "BTC/USDT"}}
    file = tmp_path / "strategy.yaml"
    file.write_text(yaml.safe_dump(cli_document))
    assert main(["-q", "run", str(file), "--out", str(tmp_path / "cli")]) == 0
    strategy = tradeloom.load(document)
    with pytest.raises(tradeloom.UserError, match=rf"^path: {re.escape(str(csv))} exists; give"):
        strategy.with_data(bars, path=csv)  # the user's file is never written over
    os.remove(csv)  # the API writes its own CSV there: the strategies are the same

    run = strategy.with_data(bars, path=csv).backtest(quiet=True).save(tmp_path / "api")

    for name in ("fills.csv", "orders.csv", "trades.csv", "equity.csv"):
        assert (run.run_dir / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name
    assert len(run.fills) > 0
    np.testing.assert_array_equal(
        run.fills["price"], pd.read_csv(tmp_path / "cli" / "fills.csv")["price"]
    )
    # the notebook's own backtest of the frame traded the same fills
    notebook_fills = tradeloom.open_run(notebook.value("str(saved.run_dir)")).fills
    np.testing.assert_array_equal(run.fills["price"], notebook_fills["price"])


# --- a precomputed model on a few hundred bars --------------------------------------------

PRECOMPUTED = {
    "name": "api_small",
    "data": {"kind": "synthetic", "symbol": "BTC/USDT", "bars": 100},
    "features": [{"kind": "log_return", "period": 1}, {"kind": "rsi", "window": 14}],
    "model": {"kind": "precomputed", "column": "p_up"},
    "signal": {"kind": "threshold", "threshold": 0.2},
    "risk": {"sizing": {"kind": "fixed_fraction", "fraction": 0.5}},
    "execution": {"kind": "simulated"},
}


def _bars(n: int = 400, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    times = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    return pd.DataFrame(
        {"open": close, "high": close * 1.01, "low": close * 0.99, "close": close,
         "volume": 1.0, "p_up": rng.uniform(0, 1, n)},
        index=times,
    )  # fmt: skip


@pytest.mark.slow
def test_a_quiet_backtest_prints_nothing_and_writes_nothing(
    capfd: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import structlog

    before, was_configured = structlog.get_config(), structlog.is_configured()
    strategy = tradeloom.load(PRECOMPUTED, data=_bars())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    capfd.readouterr()

    run = strategy.backtest(quiet=True)

    assert capfd.readouterr() == ("", "")
    assert structlog.get_config() == before  # the caller's logging is as it was
    assert run.run_dir is None and list(tmp_path.iterdir()) == []  # held in memory
    again = strategy.backtest()  # a strategy runs again from scratch: the same fills
    pd.testing.assert_frame_equal(again.fills, run.fills)
    assert capfd.readouterr() == ("", "")  # not quiet: progress bars, and warnings only
    assert structlog.get_config() == before
    structlog.configure(  # a caller who asks for the info lines gets them, on stderr
        processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    try:
        strategy.backtest()
    finally:
        structlog.reset_defaults()
        if was_configured:
            structlog.configure(**before)
    out, err = capfd.readouterr()
    assert out == ""
    assert [json.loads(line)["event"] for line in err.splitlines()] == [
        "run_started",
        "run_finished",
    ]  # as tradeloom run logs
    with pytest.raises(
        tradeloom.UserError, match=r"^kind: no journal kind 'fills'; kinds: .*\bfill\b"
    ):
        run.journal("fills")
    assert len(run.journal("fill")) == len(run.fills) > 0  # from a copy saved aside
    (copy,) = tmp_path.iterdir()
    del run
    assert not copy.exists()  # the copy lived as long as its Run


@pytest.mark.slow
def test_a_universe_frame_is_one_long_file_of_its_symbols() -> None:
    bars = _bars()
    universe = pd.concat([bars.assign(symbol="BTC/USDT"), bars.assign(symbol="ETH/USDT")])
    strategy = tradeloom.load(PRECOMPUTED).with_data(universe.sort_index(kind="stable"))

    data = strategy.document["data"]
    assert data == {"kind": "frame", "symbol_column": "symbol", "symbols": ["BTC/USDT", "ETH/USDT"]}
    run = strategy.backtest(quiet=True)
    assert run.stats["symbols"] == ["BTC/USDT", "ETH/USDT"]
    assert set(run.fills["symbol"]) == {"BTC/USDT", "ETH/USDT"}


@pytest.mark.slow
def test_check_lookahead_reports_what_the_command_checks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    strategy = tradeloom.load(PRECOMPUTED, data=_bars())

    report = strategy.check_lookahead(points=1)

    assert report.finding is None
    assert report.summary == "no look-ahead found (1 cut point, 6 components)"
    assert capsys.readouterr().out.splitlines() == list(report.lines)


def test_a_sweeps_mistakes_are_one_line_each_before_anything_runs(tmp_path: Path) -> None:
    strategy = tradeloom.load(PRECOMPUTED, data=_bars(50))
    out = tmp_path / "sweep"

    with pytest.raises(tradeloom.ConfigError) as raised:
        strategy.sweep({"signal.threshold": [0.2, 3]}, out=out)
    assert raised.value.lines() == [
        "--grid signal.threshold=0.2,3 signal.threshold: must be <= 1, was 3"
    ]
    with pytest.raises(tradeloom.UserError, match=r"^sweep: argument --workers: must be >= 1"):
        strategy.sweep({"signal.threshold": [0.2]}, workers=0, out=out)
    with pytest.raises(tradeloom.UserError, match=r"^sweep: no option 'bogus' \(tradeloom"):
        strategy.sweep({"signal.threshold": [0.2]}, bogus=1, out=out)
    assert not out.exists()


@pytest.mark.parametrize(
    ("shell", "widgets", "quiet", "shown"),
    [
        ("ZMQInteractiveShell", True, False, True),  # a Jupyter kernel
        ("ZMQInteractiveShell", True, True, False),
        ("ZMQInteractiveShell", False, False, False),  # rich would warn and draw nothing
        ("TerminalInteractiveShell", True, False, False),  # stderr is no terminal here
    ],
)
def test_progress_bars_are_drawn_in_a_notebook_unless_quiet(
    monkeypatch: pytest.MonkeyPatch, shell: str, widgets: bool, quiet: bool, shown: bool
) -> None:
    import importlib.util
    import types

    from tradeloom.runtime import progress

    ipython = types.ModuleType("IPython")
    ipython.get_ipython = type(shell, (), {})  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *rest: (
            (object() if widgets else None) if name == "ipywidgets" else find_spec(name, *rest)
        ),
    )
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")

    assert progress.wanted(quiet) is shown


# --- runs held in memory, frames without files, the CLI's files -----------------------------


def _journal_rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """A journal's rows without what two runs of the same bars always differ by: the wall
    clock, the strategy file and the hash chain that covers them, the folder's key."""
    import sqlite3

    skipped = {"wall_time", "seconds", "hash", "source", "digest"}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        rows = {}
        for table in tables:
            columns = [r[1] for r in db.execute(f'PRAGMA table_info("{table}")')]
            kept = ", ".join(f'"{c}"' for c in columns if c not in skipped)
            rows[table] = db.execute(f'SELECT {kept} FROM "{table}" ORDER BY rowid').fetchall()
        rows["meta"] = [
            r for r in rows.get("meta", []) if r[0] not in ("folder_key", "strategy_sha256")
        ]
        rows.pop("segment", None)  # its blocks hold the rows read below, as frames
        return rows
    finally:
        db.close()


@pytest.mark.slow
def test_an_api_run_of_a_frame_is_the_cli_run_of_its_csv_file(tmp_path: Path) -> None:
    # a bar the csv source repairs under data.validation: repair, kept by with_data
    bars = _bars(300)
    bars.iloc[40, 1] = bars.iloc[40, 2] * 0.5  # high < low
    document = {**PRECOMPUTED, "data": {**PRECOMPUTED["data"], "validation": "repair"}}
    csv = tmp_path / "bars.csv"
    bars.to_csv(csv)  # as a user writes a frame: the index is the unnamed first column
    cli = {**document, "data": {"kind": "csv", "path": str(csv), "symbol": "BTC/USDT",
                                "validation": "repair"}}  # fmt: skip
    file = tmp_path / "strategy.yaml"
    file.write_text(yaml.safe_dump(cli))
    assert main(["-q", "run", str(file), "--out", str(tmp_path / "cli" / "run")]) == 0

    run = tradeloom.load(document).with_data(bars).backtest(quiet=True)
    saved = run.save(tmp_path / "api" / "run").run_dir

    theirs = tmp_path / "cli" / "run"
    names = sorted(str(p.relative_to(saved)) for p in saved.rglob("*") if p.is_file())
    assert names == sorted(str(p.relative_to(theirs)) for p in theirs.rglob("*") if p.is_file())
    for name in names:
        if name.startswith(("journal.sqlite", "strategy.yaml", "folder.key")):
            continue
        mine = (saved / name).read_bytes().replace(str(saved).encode(), b"RUN")
        other = (theirs / name).read_bytes().replace(str(theirs).encode(), b"RUN")
        assert mine == other, name  # orders.csv's ids, fills, trades, metrics, report...
    assert run.stats["bars"] == 299 and run.orders["id"].iloc[0].startswith("api_small-")
    ours, its = (_journal_rows(f / "journal.sqlite") for f in (saved, theirs))
    # the repaired bar: the frame's row 40, the file's line 42 (its header is line 1)
    assert (
        ours.pop("data_loaded")[0][-2].replace('"rows":[40]', '"rows":[42]')
        == (its.pop("data_loaded")[0][-2])
    )
    assert ours == its
    written = [yaml.safe_load((f / "strategy.yaml").read_text()) for f in (saved, theirs)]
    assert written[0]["data"] == {"kind": "frame", "symbol": "BTC/USDT", "validation": "repair"}
    assert {**written[0], "data": None} == {**written[1], "data": None}


def test_a_frame_keeps_every_data_setting_but_its_source(tmp_path: Path) -> None:
    (tmp_path / "eth.csv").write_text("timestamp,open,high,low,close,p_up\n")
    filed = {"kind": "csv", "path": str(tmp_path / "eth.csv"), "validation": "repair",
             "timeframe": "1h", "start": "2024-01-02", "end": "2024-01-05",
             "calendar": "forex", "timestamp_column": "time"}  # fmt: skip
    bars = _bars(200).rename_axis("time").reset_index()

    strategy = tradeloom.load({**PRECOMPUTED, "data": filed}, data=bars)

    kept = {k: v for k, v in filed.items() if k != "path"}
    assert strategy.document["data"] == {**kept, "kind": "frame", "symbol": "eth"}
    run = strategy.backtest(quiet=True)
    assert run.equity.index[0] == pd.Timestamp("2024-01-02", tz="UTC")  # the window applied
    assert run.stats["calendar"] == "forex"
    # a synthetic market's timeframe and start made its bars: the frame's are its own
    made = {"kind": "synthetic", "symbol": "ETH/USDT", "timeframe": "1d", "bars": 300,
            "start": "2020-01-01", "validation": "repair"}  # fmt: skip
    data = tradeloom.load({**PRECOMPUTED, "data": made}, data=_bars(50)).document["data"]
    assert data == {"kind": "frame", "symbol": "ETH/USDT", "validation": "repair"}
    # a universe is the frame's symbols (a frame before it chose none), or one asked for
    two = pd.concat([_bars(50).assign(symbol=s) for s in ("BTC/USDT", "ETH/USDT")])
    three = pd.concat([_bars(50).assign(symbol=s) for s in ("A/USD", "B/USD", "C/USD")])
    again = tradeloom.load(PRECOMPUTED, data=two).with_data(three.sort_index(kind="stable"))
    assert again.document["data"]["symbols"] == ["A/USD", "B/USD", "C/USD"]
    one = tradeloom.load(PRECOMPUTED).with_data(two.sort_index(kind="stable"), symbol="ETH/USDT")
    assert one.document["data"] == {
        "kind": "frame",
        "symbol": "ETH/USDT",
        "symbol_column": "symbol",
    }


@pytest.mark.slow
def test_a_held_run_reads_as_the_folder_it_saves(tmp_path: Path) -> None:
    run = tradeloom.load(PRECOMPUTED, data=_bars()).backtest(quiet=True)
    saved = run.save(tmp_path / "run")

    assert repr(run) == "<tradeloom.Run held in memory>" and saved.run_dir == tmp_path / "run"
    for table in ("equity", "positions", "trades", "orders", "fills", "features"):
        pd.testing.assert_frame_equal(getattr(run, table), getattr(saved, table))
    assert run.metrics == {**saved.metrics, "run_dir": None}
    assert run.name == saved.name == "api_small"
    pd.testing.assert_frame_equal(run.journal("order"), saved.journal("order"))
    empty = tradeloom.load(PRECOMPUTED, signal__threshold=0.99, data=_bars()).backtest()
    pd.testing.assert_frame_equal(empty.trades, empty.save(tmp_path / "empty").trades)
    two = pd.concat([_bars().assign(symbol=s) for s in ("BTC/USDT", "ETH/USDT")])
    parquet = tradeloom.load(PRECOMPUTED, outputs__tables="parquet", data=two.sort_index())
    held = parquet.backtest(quiet=True)
    written = held.save(tmp_path / "parquet")
    assert (written.run_dir / "positions.parquet").is_file()
    for table in ("equity", "positions"):  # the tables of a long run: Parquet files
        pd.testing.assert_frame_equal(getattr(held, table), getattr(written, table))


def _damaged_features(tmp_path: Path) -> tradeloom.Run:
    run = tradeloom.load(PRECOMPUTED, data=_bars(120)).backtest(quiet=True)
    saved = run.save(tmp_path / "damaged")
    (saved.run_dir / "features.parquet").write_bytes(b"PAR1 not a table")
    return tradeloom.open_run(saved.run_dir)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda t: tradeloom.open_run(1), r"run_dir: expected a run folder's path, was int"),
        (lambda t: tradeloom.open_run(os.fsencode(t / "none")), r".*/none: not a directory; .*"),
        (lambda t: tradeloom.load(3.5), r"source: expected a strategy file's path, was float"),
        (
            lambda t: tradeloom.load(_looped()),
            r"<dict>: data\.loop: a dict or list inside itself; "
            r"give plain dicts, lists and values",
        ),
        (
            lambda t: _strategy().with_data([1]),
            r"bars: expected a pandas DataFrame of bars, was list",
        ),
        (
            lambda t: _strategy().with_data(_bars(5), symbol="BTC\nUSDT"),
            r"symbol: holds a line break or a control character; write a market symbol such as "
            r"BTC/USDT, was 'BTC\\nUSDT'",
        ),
        (
            lambda t: _strategy().with_data(_bars(5), symbol="../../etc"),
            r"symbol: is shaped like a "
            r"path; write a market symbol such as BTC/USDT, was '\.\./\.\./etc'",
        ),
        (
            lambda t: _strategy().with_data(_bars(5).assign(symbol="/etc")),
            r"bars: column symbol: "
            r"is shaped like a path; .*, was '/etc'",
        ),
        (lambda t: _strategy().with_data(_bars(5), timeframe="1x"), r"timeframe: .*'1x'.*"),
        (
            lambda t: _strategy().backtest(driver="fast"),
            r"driver: expected auto, batch, per_bar, "
            r"was 'fast' \(the --driver of run\)",
        ),
        (
            lambda t: _strategy().sweep(["signal.threshold"]),
            r"grid: expected a mapping of key "
            r"paths to values, .*, was list",
        ),
        (
            lambda t: _strategy(_bars(50)).backtest().report(),
            r"the run is held in memory and has "
            r"no folder yet; run\.save\(run_dir\) writes its folder, report\.html with it",
        ),
        (
            lambda t: _strategy(_bars(50)).backtest().save(Path(__file__)),
            r"run_dir .*test_api\.py: "
            r"is a file, not a folder; give a folder",
        ),
        (
            lambda t: _strategy(_bars(50)).backtest().save(t / "a").save(t / "b"),
            r"run_dir: this run is the "
            r"folder .* already; copy that folder to keep it elsewhere",
        ),
        (
            lambda t: _damaged_features(t).features,
            r".*/features\.parquet: not a parquet table "
            r"\(.*\); damaged, or another file",
        ),
    ],
)
def test_every_api_mistake_is_one_line_naming_what(tmp_path: Path, call: Any, message: str) -> None:
    with pytest.raises(tradeloom.UserError, match=rf"^{message}$") as raised:
        call(tmp_path)
    assert "\n" not in str(raised.value)
    frames = [Path(f.filename) for f in traceback.extract_tb(raised.value.__traceback__)]
    # raised from the API's call (`tradeloom.api.calls.user_errors`), not a library's depths
    assert frames[-1].parts[-3:] == ("tradeloom", "api", "calls.py")


def _strategy(bars: pd.DataFrame | None = None) -> tradeloom.Strategy:
    return tradeloom.load(PRECOMPUTED, data=bars)


def _looped() -> dict[str, Any]:
    document: dict[str, Any] = copy.deepcopy(PRECOMPUTED)
    document["data"]["loop"] = document
    return document
