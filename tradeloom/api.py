"""The Python API: load a strategy, backtest it, sweep it, and read any run folder.

The same engine and the same files as the command line: `load` validates as
``tradeloom validate`` does, `Strategy.backtest` runs `tradeloom.backtest.run.run_strategy`
as ``tradeloom run`` does and writes the same run folder, `Strategy.sweep` runs
`tradeloom.sweep.command.sweep` as ``tradeloom sweep`` does, and `Run` reads a run
folder's documented files (``metrics.json``, ``equity.csv``, ``trades.csv``...) and its
journal. A notebook's session::

    import tradeloom

    strategy = tradeloom.load("strategies/btc_rf.yaml", data__bars=3000)
    run = strategy.with_data(bars).backtest()    # bars: a DataFrame of OHLCV
    run.stats["sharpe"], run.trades, run.plot()
    tradeloom.open_run("runs/btc_rf-20240301T120000Z")

A user's mistake (a bad key, a DataFrame without a close column, a folder that is not a
run) raises one `UserError` (a `ConfigError` for a strategy's problems) whose lines are
what the command prints: ``FILE:LINE:COL key.path: what was expected, was what``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn, ParamSpec, TypeVar

from tradeloom.errors import ConfigError, DataError, UserError

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

    from tradeloom.diagnostics.lookahead import LookaheadReport
    from tradeloom.plugins.manager import Plugins
    from tradeloom.schemas.config import StrategyConfig

__all__ = ["ConfigError", "Run", "Strategy", "UserError", "load", "open_run"]

_P = ParamSpec("_P")
_R = TypeVar("_R")

_OHLC = ("open", "high", "low", "close")
_DICT_SOURCE = "<dict>"
_SHOWN = (
    "period",
    "total_return",
    "buy_and_hold_return",
    "cagr",
    "sharpe",
    "sortino",
    "max_drawdown",
    "trades",
    "win_rate",
    "profit_factor",
    "exposure",
    "fees",
    "final_equity",
    "halt",
)
"""The figures of a run's compact summary in a notebook (`Run._repr_html_`)."""


def _user_errors(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """Raise a user's mistake from the API's call, without the engine's frames below it."""

    @wraps(function)
    def call(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return function(*args, **kwargs)
        except UserError as exc:
            raise exc.with_traceback(None) from None

    return call


@contextmanager
def _quiet(quiet: bool) -> Iterator[None]:
    """Show progress bars (on a terminal) unless ``quiet``, and log as the command does.

    The engine's logs go to stderr at ``info`` as ``tradeloom run`` logs them (``quiet``:
    warnings only), unless the caller configured structlog: then, not quiet, the caller's
    configuration is used. Either way it is as it was afterwards.
    """
    import structlog

    from tradeloom import progress
    from tradeloom.engine.logs import configure_logging

    progress.enable(quiet=quiet)
    configured = structlog.is_configured()
    if configured and not quiet:
        yield
        return
    saved = structlog.get_config()
    configure_logging("warning" if quiet else "info")
    try:
        yield
    finally:
        if configured:
            structlog.configure(**saved)
        else:
            structlog.reset_defaults()


def _override(key: str, value: Any) -> str:
    """Return ``--set``'s text for a keyword override (``risk__sizing__fraction=0.5``)."""
    path = key.replace("__", ".")
    return f"{path}={json.dumps(value, default=_plain)}"


def _plain(value: Any) -> Any:
    """Return a numpy scalar as the Python number it holds (a notebook's values often are);
    anything else as its text."""
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return value.item()
    return str(value)


@_user_errors
def load(
    source: str | os.PathLike[str] | Mapping[str, Any],
    /,
    *,
    data: pd.DataFrame | None = None,
    **overrides: Any,
) -> Strategy:
    """Load and validate a strategy, as ``tradeloom validate`` does.

    Args:
        source: A strategy file, or its document as a mapping (relative paths in a
            mapping are relative to the current folder).
        data: Bars to run on instead of the file's data section (see
            `Strategy.with_data`).
        **overrides: Keys to override, as ``--set`` does; a key path's dots are written
            ``__`` (``risk__sizing__fraction=0.5``), or pass ``**{"data.bars": 1500}``.

    Returns:
        The validated strategy.

    Raises:
        ConfigError: Every problem of the file and the overrides, one line each
            (``FILE:LINE:COL key.path: message``; ``--set key.path: message``).
        UserError: The file cannot be read.
    """
    texts = tuple(_override(key, value) for key, value in overrides.items())
    if isinstance(source, Mapping):
        strategy = Strategy._from_mapping(dict(source), texts)
    else:
        strategy = Strategy._from_file(Path(os.fspath(source)), texts)
    return strategy if data is None else strategy.with_data(data)


class Strategy:
    """A validated strategy: run it with `backtest`, explore it with `sweep`.

    Made by `load`; immutable: `with_data` returns a new strategy.
    """

    def __init__(
        self,
        file: Path,
        overrides: tuple[str, ...],
        config: StrategyConfig,
        plugins: Plugins,
        *,
        document_source: str | None = None,
        keep: Sequence[object] = (),
    ) -> None:
        self._file = file
        self._overrides = overrides
        self._document_source = document_source
        self._keep = tuple(keep)  # temporary folders this strategy's data lives in
        self.config = config
        """The validated strategy (`tradeloom.schemas.StrategyConfig`)."""
        self._plugins = plugins

    # --- construction ------------------------------------------------------------------

    @classmethod
    def _from_file(
        cls,
        file: Path,
        overrides: tuple[str, ...],
        *,
        document_source: str | None = None,
        keep: Sequence[object] = (),
    ) -> Strategy:
        from tradeloom.engine.wiring import build_pipeline
        from tradeloom.schemas import load_strategy
        from tradeloom.schemas.file_kind import is_portfolio_document
        from tradeloom.schemas.yaml_loader import parse_yaml, read_strategy_text

        document = parse_yaml(read_strategy_text(file), document_source or str(file))
        if is_portfolio_document(document.data):
            raise UserError(
                f"{file}: a portfolio file; the Python API loads a strategy file (backtest "
                f"the portfolio with tradeloom run {file})"
            )
        with _quiet(False):
            config, plugins = load_strategy(file, overrides, document=document)
            build_pipeline(config)  # the components' own checks, as validate makes them
        return cls(file, overrides, config, plugins, document_source=document_source, keep=keep)

    @classmethod
    def _from_mapping(cls, document: dict[str, Any], overrides: tuple[str, ...]) -> Strategy:
        import yaml

        # written to a file: a sweep reads its strategy from one; relative paths are
        # then made absolute against the current folder
        folder = tempfile.TemporaryDirectory(prefix="tradeloom-strategy-")
        file = Path(folder.name) / "strategy.yaml"
        try:
            text = yaml.safe_dump(_absolute_paths(document, Path.cwd()), sort_keys=False)
        except yaml.YAMLError as exc:  # a value YAML cannot hold (a numpy number, an object)
            value = exc.args[-1] if exc.args else exc
            raise UserError(
                f"{_DICT_SOURCE}: {value!r} cannot be written as YAML; give plain numbers, "
                "strings, booleans, lists and dicts"
            ) from None
        file.write_text(text, encoding="utf-8")
        return cls._from_file(file, overrides, document_source=_DICT_SOURCE, keep=[folder])

    @property
    def name(self) -> str:
        """Return the strategy's name."""
        return self.config.name

    @property
    def document(self) -> dict[str, Any]:
        """Return the resolved strategy document (what a run writes as strategy.yaml)."""
        return dict(self.config.document)

    def __repr__(self) -> str:
        return f"<tradeloom.Strategy {self.name!r} from {self._document_source or self._file}>"

    @_user_errors
    def with_data(
        self,
        bars: pd.DataFrame,
        *,
        symbol: str | None = None,
        timeframe: str | None = None,
        path: str | os.PathLike[str] | None = None,
    ) -> Strategy:
        """Return this strategy run on ``bars`` instead of its data section.

        The bars are written as CSV and read by the ``csv`` data source, so they are
        checked exactly as a file would be: a DataFrame-fed backtest is the backtest of
        the same bars written as CSV and run by ``tradeloom run``.

        Args:
            bars: OHLCV bars: a ``timestamp`` column or a DatetimeIndex (naive times are
                UTC), ``open high low close`` and optionally ``volume`` and numeric
                extras (a precomputed probability); a ``symbol`` column makes a universe.
            symbol: The market of one-market bars (default: the data section's symbol).
            timeframe: The bar length such as ``1h`` (default: inferred from the bars).
            path: A new file to write the CSV to (default: a temporary file kept with
                the strategy); the resolved strategy of a run names it.

        Raises:
            DataError: The frame is not bars (a missing column, no timestamps).
            UserError: ``path`` exists.
        """
        frame = _bars_frame(bars)
        keep: list[object] = list(self._keep)
        if path is None:
            folder = tempfile.TemporaryDirectory(prefix="tradeloom-bars-")
            keep.append(folder)
            csv = Path(folder.name) / "bars.csv"
        else:
            csv = Path(os.fspath(path)).expanduser().resolve()
            if csv.exists():  # never written over: it may be the user's own file
                raise UserError(f"path: {csv} exists; give a new file to write the bars to")
            csv.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(csv, index=False)
        section: dict[str, Any] = {"kind": "csv", "path": str(csv)}
        old = self.config.document.get("data") or {}
        if "symbol" in frame.columns:
            section["symbol_column"] = "symbol"
            section["symbols"] = [str(s) for s in frame["symbol"].unique()]
        elif symbol is not None or isinstance(old.get("symbol"), str):
            section["symbol"] = symbol if symbol is not None else old["symbol"]
        if timeframe is not None:
            section["timeframe"] = timeframe
        if "calendar" in old:  # when the market trades is the market's, not the file's
            section["calendar"] = old["calendar"]
        overrides = (*self._overrides, f"data={json.dumps(section)}")
        return Strategy._from_file(
            self._file, overrides, document_source=self._document_source, keep=keep
        )

    # --- running -----------------------------------------------------------------------

    @_user_errors
    def backtest(
        self,
        out: str | os.PathLike[str] | None = None,
        *,
        driver: Literal["auto", "batch", "per_bar"] = "auto",
        quiet: bool = False,
    ) -> Run:
        """Backtest the strategy as ``tradeloom run`` does and return the run.

        Args:
            out: The run folder (new or empty). None: a temporary folder that lives as
                long as the returned `Run`.
            driver: Which driver runs the sequential layers (``--driver``).
            quiet: No progress bars, and only warnings logged.

        Raises:
            UserError: The data cannot be used, or ``out`` holds other files.
        """
        from tradeloom.backtest.run import run_strategy
        from tradeloom.engine.wiring import build_pipeline

        keep: tempfile.TemporaryDirectory[str] | None = None
        if out is None:
            keep = tempfile.TemporaryDirectory(prefix=f"tradeloom-{self.name}-")
            folder = Path(keep.name) / "run"
        else:
            folder = Path(os.fspath(out))
        with _quiet(quiet):
            outcome = run_strategy(build_pipeline(self.config), self._plugins, out=folder)
        return Run(outcome.run_dir, keep=keep)

    @_user_errors
    def sweep(
        self,
        grid: Mapping[str, Sequence[Any] | str],
        *,
        random: int | None = None,
        search: Literal["grid", "optuna"] | None = None,
        trials: int | None = None,
        objective: str | None = None,
        direction: Literal["maximize", "minimize"] | None = None,
        seed: int | None = None,
        out: str | os.PathLike[str] | None = None,
        workers: int = 1,
        quiet: bool = False,
        **options: Any,
    ) -> pd.DataFrame:
        """Sweep the strategy's settings as ``tradeloom sweep`` does; return the ranked rows.

        Args:
            grid: Axes: a key path and its values (a list, or ``"START:STOP:STEP"``).
            random: Run N distinct combinations drawn with ``seed`` (``--random``).
            search: ``grid`` (default) or ``optuna`` (with ``trials``).
            trials: Optuna's trials.
            objective: The metric ranked by (default ``sharpe``).
            direction: ``maximize`` (default) or ``minimize``.
            seed: Seeds ``random`` and optuna.
            out: The sweep folder (results.parquet, sweep.html...). None: a temporary
                one, removed once the rows are read.
            workers: Local processes.
            quiet: No progress bars, and only warnings logged.
            **options: Any other ``tradeloom sweep`` option, its dashes as underscores
                (``keep_top=2``, ``partitions=8``, ``max_variants=50``).

        Returns:
            One row per variant, best first: ``param.<key>`` per axis, every metric,
            ``objective_value``, ``rank`` and ``dsr`` (the deflated Sharpe ratio).
            ``attrs["pbo"]`` is the probability of backtest overfitting (None when it
            cannot be computed: ``attrs["overfitting"]["pbo_problem"]`` says why),
            ``attrs["overfitting"]`` every statistic of ``overfitting.json``,
            ``attrs["summary"]`` the lines ``tradeloom sweep`` prints and
            ``attrs["sweep_dir"]`` the sweep folder (None: it was temporary).
        """
        import pandas as pd

        from tradeloom.sweep.cli import add_sweep_parser
        from tradeloom.sweep.command import sweep
        from tradeloom.sweep.settings import resolve_settings

        argv = ["sweep", str(self._file)]
        for key, values in grid.items():
            text = values if isinstance(values, str) else ",".join(_axis_value(v) for v in values)
            argv += ["--grid", f"{key}={text}"]
        named = {"random": random, "search": search, "trials": trials, "objective": objective}
        named |= {"direction": direction, "seed": seed, "workers": workers, **options}
        for option, value in named.items():
            if value is None or value is False:
                continue
            flag = "--" + option.replace("_", "-")
            argv += [flag] if value is True else [flag, str(value)]
        for override in self._overrides:
            argv += ["--set", override]
        parser = _Arguments(prog="tradeloom")
        add_sweep_parser(parser.add_subparsers(parser_class=_Arguments))
        keep = None
        if out is None:
            keep = tempfile.TemporaryDirectory(prefix=f"tradeloom-{self.name}-sweep-")
            out = Path(keep.name) / "sweep"
        argv += ["--out", os.fspath(out)]
        try:
            args = _parse(parser, argv)
            with _quiet(quiet):
                outcome = sweep(resolve_settings(args))
            ranked = pd.DataFrame(outcome.ranked).reset_index(drop=True)
        finally:
            if keep is not None:
                keep.cleanup()
        overfitting = outcome.overfitting or {}
        ranked.attrs["overfitting"] = overfitting
        ranked.attrs["pbo"] = (overfitting.get("pbo") or {}).get("probability")
        ranked.attrs["summary"] = list(outcome.lines)
        ranked.attrs["sweep_dir"] = None if keep is not None else str(outcome.out)
        return ranked

    @_user_errors
    def check_lookahead(
        self, *, points: int = 3, seed: int = 0, quiet: bool = False
    ) -> LookaheadReport:
        """Check the strategy for look-ahead as ``tradeloom check-lookahead`` does.

        Args:
            points: How many cut points.
            seed: Seeds the replacement markets.
            quiet: Print nothing (else each check's line as it is known).

        Returns:
            The report: ``finding`` is the first look-ahead found (None: none),
            ``lines`` every check, ``summary`` the verdict.
        """
        from tradeloom.diagnostics.lookahead import check_lookahead

        with _quiet(True):  # the internal runs' logs; the findings are printed below
            return check_lookahead(
                self.config, points=points, seed=seed, progress=None if quiet else print
            )


class Run:
    """A run folder (backtest, paper or live; SQLite or PostgreSQL journal), read-only.

    Made by `Strategy.backtest` or `open_run`. Each table is read from the folder's file
    when asked for (a paper run being written gives its rows of that moment).
    """

    def __init__(self, run_dir: Path, *, keep: object | None = None) -> None:
        self.run_dir = run_dir
        """The run folder."""
        self._keep = keep  # the temporary folder of a backtest without ``out``
        if keep is not None and hasattr(keep, "cleanup"):
            weakref.finalize(self, keep.cleanup)

    def __repr__(self) -> str:
        return f"<tradeloom.Run {self.run_dir}>"

    @property
    def metrics(self) -> dict[str, Any]:
        """Return ``metrics.json`` as it is."""
        from tradeloom.safe_files import read_json

        metrics = read_json(self.run_dir / "metrics.json", "a run's metrics")
        if not isinstance(metrics, dict):
            raise UserError(f"{self.run_dir}/metrics.json: expected an object of metrics")
        return metrics

    @property
    def stats(self) -> pd.Series:
        """Return every figure of ``metrics.json`` as a Series in a tearsheet's order.

        The returns first (total return, CAGR, Sharpe, Sortino, max drawdown...), then
        the tearsheet's risk, the trades, the model and the run, returns by year and by
        month, then every other figure; a nested figure under its dotted key
        (``tearsheet.beta``), each value as the file holds it (``stats["sharpe"]`` is
        a float). Jupyter shows it as the report's tables, section by section.
        """
        from tradeloom.reporting.stats_series import run_stats

        metrics = self.metrics
        return run_stats(metrics, name=str(metrics.get("strategy") or self.run_dir.name))

    @property
    def name(self) -> str:
        """Return the strategy's name."""
        return str(self.metrics.get("strategy") or self.run_dir.name)

    @property
    def mode(self) -> str:
        """Return ``backtest``, ``paper`` or ``live``."""
        return str(self.metrics.get("mode") or "backtest")

    @property
    def equity(self) -> pd.DataFrame:
        """Return the equity curve (``equity.csv`` or ``equity.parquet``), indexed by UTC
        timestamp."""
        return self._bar_table("equity").set_index("timestamp")

    @property
    def returns(self) -> pd.Series:
        """Return each bar's simple return of the equity, indexed by UTC time: the first
        bar's against the starting cash, as the metrics compute theirs.

        ``attrs["periods_per_year"]`` is the bars in a year of the data's calendar (the
        annualisation of ``metrics.json``): pass it to quantstats (``periods=``) or
        empyrical (``annualization=``) and their Sharpe ratio and volatility are the
        run's.
        """
        from tradeloom.reporting.tearsheet import bar_returns

        metrics = self.metrics
        equity = self.equity["equity"]
        start = metrics.get("initial_cash")
        returns = bar_returns(equity, float(start if start is not None else equity.iloc[0]))
        returns.name = "returns"
        returns.attrs["periods_per_year"] = metrics.get("periods_per_year")
        return returns

    @property
    def positions(self) -> pd.DataFrame:
        """Return every bar's non-zero position of each symbol, a row each (``timestamp``,
        ``bar``, ``symbol``, ``position``, its last ``close`` and its ``value``; a
        portfolio's ``strategy`` before ``symbol``): ``positions.csv`` or
        ``positions.parquet``, or, for a paper or live run of one market (which writes
        neither), its equity curve's."""
        import numpy as np
        import pandas as pd

        from tradeloom.engine.frames import position_rows
        from tradeloom.reporting.run_data import read_table

        written = read_table(self.run_dir, "positions")
        if written is not None:
            return written
        equity = self.equity
        symbol = self.metrics.get("symbol")
        if "position" not in equity or not isinstance(symbol, str):
            raise UserError(f"{self.run_dir}: has no positions.csv; is it a finished run folder?")
        held = equity[["position"]].to_numpy(np.float64)
        closes = equity[["close"]].to_numpy(np.float64)
        return position_rows(pd.DatetimeIndex(equity.index), closes, held, [symbol])

    @property
    def trades(self) -> pd.DataFrame:
        """Return ``trades.csv`` (entry and exit times as UTC datetimes)."""
        return self._table("trades.csv")

    @property
    def orders(self) -> pd.DataFrame:
        """Return ``orders.csv``; for a paper or live run (which writes none), the journal's
        ``order`` events."""
        return self._table("orders.csv", journaled="order")

    @property
    def fills(self) -> pd.DataFrame:
        """Return ``fills.csv``; for a paper or live run (which writes none), the journal's
        ``fill`` events."""
        return self._table("fills.csv", journaled="fill")

    @property
    def features(self) -> pd.DataFrame:
        """Return each bar's features, probability and signal (``features.parquet``); for a
        paper or live run, each live bar's probability from its journal beside the
        features it wrote."""
        import pandas as pd

        from tradeloom.reporting.exports import FEATURES_FILE
        from tradeloom.reporting.run_data import live_features, load_run

        path = self.run_dir / FEATURES_FILE
        # a regular file (a FIFO or a device is not one): no wait
        written = pd.read_parquet(path) if path.is_file() else None
        if written is not None and self.mode == "backtest":
            return written
        journaled = load_run(self.run_dir).features
        if journaled is None:
            return pd.DataFrame() if written is None else written
        if written is not None:
            written["timestamp"] = pd.to_datetime(written["timestamp"], utc=True)
            keep = [c for c in ("timestamp", "symbol", "probability") if c in journaled]
            return live_features(journaled[keep], written)
        return journaled

    def journal(self, kind: str) -> pd.DataFrame:
        """Return the journal's events of one kind (``fill``, ``order``, ``signal``...).

        Raises:
            UserError: No such kind (the message lists them), or no readable journal.
        """
        from tradeloom.journal import KINDS, JournalError, journal_path, read_frame

        if kind not in KINDS:
            raise UserError(f"no journal kind {kind!r}; kinds: {', '.join(sorted(KINDS))}")
        try:
            return read_frame(journal_path(self.run_dir), kind)
        except JournalError as exc:
            raise UserError(str(exc)) from None

    @_user_errors
    def plot(self, panel: str | Sequence[str] | None = None) -> go.Figure:
        """Return the report's charts as one plotly Figure, which a cell draws inline.

        The charts are stacked in the report's order, each with its own axes, title,
        legend, menus and note; the time axes zoom together. Long series are thinned for
        display as the report thins them (every peak and trough kept, every trade
        marked); no number is changed.

        Args:
            panel: One panel's name (``price``, ``equity``, ``rolling``...): that
                chart as the report draws it, a Figure of its own; a list of names: those
                charts stacked, in that order; None: every chart the run draws.

        Raises:
            UserError: A name that is not a panel, or a panel this run does not draw (the
                message says why and lists those it draws).
        """
        import plotly.graph_objects as go

        from tradeloom.reporting.notebook_figure import chosen_panels, composed_figure, panel_figure
        from tradeloom.reporting.report import report_panels
        from tradeloom.reporting.run_data import load_run

        panels = report_panels(load_run(self.run_dir))
        names = chosen_panels(panels, panel)
        if isinstance(panel, str):
            return go.Figure(panel_figure(panels[panel]))
        return go.Figure(composed_figure([panels[name] for name in names]))

    @_user_errors
    def report(self, *, single_file: bool = False) -> Path:
        """Write ``report.html`` into the run folder (as ``tradeloom report``); return it.

        Args:
            single_file: Embed plotly.js in the page (4.7 MB more), a page to send on its
                own (``--single-file``); by default it loads ``plotly-<version>.min.js``,
                written once into the folder that holds the run folder.
        """
        from tradeloom.reporting.report import write_report

        return write_report(self.run_dir, single_file=single_file)

    def _repr_html_(self) -> str:
        from html import escape

        from tradeloom.reporting.labels import format_value, label_of

        metrics = self.metrics
        rows = "".join(
            f"<tr><th style='text-align:left'>{escape(label_of(key))}</th>"
            f"<td style='text-align:right'>{escape(format_value(key, metrics))}</td></tr>"
            for key in _SHOWN
            if key in metrics and not isinstance(metrics[key], dict | list)
        )
        title = " &middot; ".join(escape(x) for x in (self.name, self.mode, str(self.run_dir)))
        return f"<div><p><b>{title}</b></p><table>{rows}</table></div>"

    def _bar_table(self, table: str) -> pd.DataFrame:
        from tradeloom.reporting.run_data import read_table

        frame = read_table(self.run_dir, table)
        if frame is None:
            raise UserError(f"{self.run_dir}: has no {table}.csv; is it a finished run folder?")
        return frame

    def _table(self, name: str, journaled: str | None = None) -> pd.DataFrame:
        path = self.run_dir / name
        if not path.is_file() and journaled is not None and self.mode != "backtest":
            return self.journal(journaled)
        if not path.is_file():
            raise UserError(f"{self.run_dir}: has no {name}; is it a finished run folder?")
        from tradeloom.reporting.run_data import csv_table

        return csv_table(path)  # as the report reads it: its numbers checked, times UTC


@_user_errors
def open_run(run_dir: str | os.PathLike[str]) -> Run:
    """Open a run folder that ``tradeloom run`` or `Strategy.backtest` wrote, read-only.

    Raises:
        UserError: Not a folder, or not a run's (no ``metrics.json`` and equity table).
    """
    folder = Path(os.fspath(run_dir))
    if not folder.is_dir():
        raise UserError(f"{folder}: not a directory; give a run directory (runs/<name>-<time>)")
    from tradeloom.reporting.run_tables import EQUITY, table_file

    missing = [] if (folder / "metrics.json").is_file() else ["metrics.json"]
    if table_file(folder, EQUITY) is None:
        missing.append("equity.csv")
    if missing:
        raise UserError(
            f"{folder}: not a run directory (no {' or '.join(missing)}); give the folder "
            "that tradeloom run wrote (runs/<name>-<time>)"
        )
    return Run(folder)


def _axis_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=_plain)


class _Arguments(argparse.ArgumentParser):
    """The command's parser, whose mistakes raise instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"sweep: {message}")


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        option = unknown[0].lstrip("-").replace("-", "_")
        raise UserError(f"sweep: no option {option!r} (tradeloom sweep --help lists them)")
    return args


def _bars_frame(bars: Any) -> pd.DataFrame:
    """Return ``bars`` as the CSV's columns: ``timestamp`` first, names in lower case."""
    import pandas as pd

    if not isinstance(bars, pd.DataFrame):
        raise DataError(f"data: expected a pandas DataFrame of bars, was {type(bars).__name__}")
    frame = bars.rename(columns=lambda c: str(c).strip().lower())
    if "timestamp" not in frame.columns:
        if not isinstance(frame.index, pd.DatetimeIndex):
            raise DataError(
                "data: the bars have no timestamp column and no DatetimeIndex; set one "
                "(df.set_index(pd.to_datetime(df['time'], utc=True)))"
            )
        frame = frame.rename_axis("timestamp").reset_index()
    else:
        frame = frame.reset_index(drop=True)
    if frame.columns.duplicated().any():
        twice = sorted(set(frame.columns[frame.columns.duplicated()]))
        raise DataError(f"data: the columns {', '.join(twice)} appear twice (names in any case)")
    missing = [c for c in _OHLC if c not in frame.columns]
    if missing:
        raise DataError(
            f"data: the bars have no {', '.join(missing)} column; expected timestamp, open, "
            f"high, low, close (volume optional), was {', '.join(map(str, bars.columns))}"
        )
    if not len(frame):
        raise DataError("data: the DataFrame has no rows")
    times = frame["timestamp"]
    if isinstance(times.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(times):
        stamps = pd.DatetimeIndex(times)
        stamps = stamps.tz_localize("UTC") if stamps.tz is None else stamps.tz_convert("UTC")
        frame["timestamp"] = stamps.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return frame


def _absolute_paths(document: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Return ``document`` with each component's relative ``path`` made absolute and numpy
    scalars as Python numbers."""

    def walk(value: Any) -> Any:
        if type(value).__module__ == "numpy" and hasattr(value, "item"):
            return value.item()  # np.float64(0.3) from a notebook's arithmetic: 0.3
        if isinstance(value, Mapping):
            out = {k: walk(v) for k, v in value.items()}
            path = out.get("path")
            if isinstance(path, str) and path and not Path(path).expanduser().is_absolute():
                out["path"] = str(folder / path)
            return out
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk(document)  # type: ignore[no-any-return]
