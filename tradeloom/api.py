"""The Python API: load a strategy, backtest it, sweep it, and read any run folder.

The same engine and the same files as the command line: `load` validates as
``tradeloom validate`` does, `Strategy.backtest` runs the backtest ``tradeloom run`` runs
(`tradeloom.backtest.run`): held in memory (`hold_strategy`), or into a run folder
(`run_strategy`); `Run.save` writes the folder the command writes. `Strategy.with_data`
hands a DataFrame to the engine as the strategy's data (``kind: frame``, every other
data setting kept). `Strategy.sweep` runs `tradeloom.sweep.command.sweep` as ``tradeloom
sweep`` does, and `Run` reads a run's tables, metrics and journal, in memory or from any
run folder. A notebook's session::

    import tradeloom

    strategy = tradeloom.load("strategies/btc_rf.yaml", data__bars=3000)
    run = strategy.with_data(bars).backtest()    # bars: a DataFrame of OHLCV
    run.stats["sharpe"], run.trades, run.plot()
    run.save("runs/mine")                        # the folder tradeloom run writes
    tradeloom.open_run("runs/btc_rf-20240301T120000Z")

A user's mistake (a bad key, a DataFrame without a close column, a folder that is not a
run, an argument of the wrong kind) raises one `UserError` (a `ConfigError` for a
strategy's problems) whose lines are what the command prints (``FILE:LINE:COL
key.path: what was expected, was what``), or which names the argument at fault.
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

from tradeloom.errors import ConfigError, UserError

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

    from tradeloom.backtest.held_run import HeldRun
    from tradeloom.diagnostics.lookahead import LookaheadReport
    from tradeloom.engine.wiring import Pipeline
    from tradeloom.plugins.manager import Plugins
    from tradeloom.schemas.config import StrategyConfig
    from tradeloom.schemas.yaml_loader import YamlDocument

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

    from tradeloom.engine.logs import configure_logging
    from tradeloom.runtime import progress

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
    source: str | os.PathLike[str] | bytes | Mapping[str, Any],
    /,
    *,
    data: pd.DataFrame | None = None,
    **overrides: Any,
) -> Strategy:
    """Load and validate a strategy, as ``tradeloom validate`` does.

    Args:
        source: A strategy file, or its document as a mapping (relative paths in a
            mapping are relative to the current folder).
        data: Bars to run on instead of the file's data source (see
            `Strategy.with_data`).
        **overrides: Keys to override, as ``--set`` does; a key path's dots are written
            ``__`` (``risk__sizing__fraction=0.5``), or pass ``**{"data.bars": 1500}``.

    Returns:
        The validated strategy.

    Raises:
        ConfigError: Every problem of the file and the overrides, one line each
            (``FILE:LINE:COL key.path: message``; ``--set key.path: message``).
        UserError: The file cannot be read, or ``source`` is neither a file nor a mapping.
    """
    texts = tuple(_override(key, value) for key, value in overrides.items())
    if isinstance(source, Mapping):
        strategy = Strategy._from_mapping(source, texts)
    else:
        strategy = Strategy._from_file(_path(source, "source", "a strategy file"), texts)
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
        self._built: Pipeline | None = None  # built and never run: a backtest takes it
        self._parsed: YamlDocument  # the strategy file as read (set by `_from_file`)

    # --- construction ------------------------------------------------------------------

    @classmethod
    def _from_file(
        cls,
        file: Path,
        overrides: tuple[str, ...],
        *,
        document_source: str | None = None,
        keep: Sequence[object] = (),
        bars: pd.DataFrame | None = None,
        of: Strategy | None = None,
    ) -> Strategy:
        from tradeloom.engine.wiring import build_pipeline
        from tradeloom.schemas import load_strategy
        from tradeloom.schemas.file_kind import is_portfolio_document
        from tradeloom.schemas.yaml_loader import parse_yaml, read_strategy_text

        if of is None:
            document = parse_yaml(read_strategy_text(file), document_source or str(file))
        else:  # a strategy made from another: its file as that one read it, its plugins
            document = of._parsed
        if is_portfolio_document(document.data):
            raise UserError(
                f"{file}: a portfolio file; the Python API loads a strategy file (backtest "
                f"the portfolio with tradeloom run {file})"
            )
        with _quiet(False):
            if of is None:
                config, plugins = load_strategy(file, overrides, document=document)
            else:
                config, plugins = load_strategy(
                    file, overrides, document=document, load_plugins=of._same_plugins
                )
            if bars is not None:
                from tradeloom.plugins.data.frame import bind_bars

                config = bind_bars(config, bars)
            built = build_pipeline(config)  # the components' own checks, as validate's
        strategy = cls(file, overrides, config, plugins, document_source=document_source, keep=keep)
        strategy._built = built  # never run: the first backtest's
        strategy._parsed = document
        return strategy

    def _same_plugins(self, modules: Sequence[str]) -> Plugins:
        """Return this strategy's plugins (`load_strategy`'s ``load_plugins``) for a
        strategy made from it: a data section changed, not ``plugins:``."""
        return self._plugins

    @classmethod
    def _from_mapping(cls, document: Mapping[str, Any], overrides: tuple[str, ...]) -> Strategy:
        # written to a file: a sweep reads its strategy from one; relative paths are
        # then made absolute against the current folder
        text = _yaml_text(_absolute_paths(document, Path.cwd()))
        folder = tempfile.TemporaryDirectory(prefix="tradeloom-strategy-")
        file = Path(folder.name) / "strategy.yaml"
        file.write_text(text, encoding="utf-8")
        return cls._from_file(file, overrides, document_source=_DICT_SOURCE, keep=[folder])

    @property
    @_user_errors
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
        path: str | os.PathLike[str] | bytes | None = None,
    ) -> Strategy:
        """Return this strategy run on ``bars`` instead of its data section's source.

        The data section becomes ``kind: frame`` with every other setting kept
        (``validation``, ``start`` and ``end``, ``calendar``, ``timeframe``,
        ``auxiliary``...; a synthetic market's or a download's ``timeframe`` and
        ``start`` made its bars, and go with them), and the frame is handed to the
        engine as it is: read and checked as the ``csv`` and ``parquet`` sources read a
        file, so a frame's backtest is the backtest of the same frame written as a file
        and run by ``tradeloom run`` (the same files, order ids included).

        Args:
            bars: OHLCV bars: a ``timestamp`` column (or ``data.timestamp_column``) or a
                DatetimeIndex (naive times are UTC), ``open high low close`` and
                optionally ``volume`` and numeric extras (a precomputed probability); a
                ``symbol`` column (or ``data.symbol_column``) makes a universe.
            symbol: The market of one-market bars (default: the data section's), or of
                a universe's rows, the one to trade.
            timeframe: The bar length such as ``1h`` (default: the data section's, else
                inferred from the bars).
            path: A new file to write the bars to (``.parquet``: Parquet, else CSV),
                which the strategy then reads (``kind: csv`` or ``parquet``): a run whose
                ``strategy.yaml`` ``tradeloom run`` repeats.

        Raises:
            UserError: ``bars`` is not a frame of bars (no rows, a column missing or
                twice, no times), ``symbol`` is not a market symbol, ``timeframe`` is not
                one, or ``path`` exists; its data section's keys (``--set data``) as a
                `ConfigError`.
        """
        import pandas as pd

        if not isinstance(bars, pd.DataFrame):
            raise UserError(f"bars: expected a pandas DataFrame of bars, was {_kind(bars)}")
        if symbol is not None:
            _check_symbol(symbol, "symbol")
        if timeframe is not None:
            _check_timeframe(timeframe)
        old = self.config.document.get("data") or {}
        data = self.config.data
        section = _frame_section(bars, old, data.kind, data.params, symbol)
        if timeframe is not None:
            section["timeframe"] = timeframe
        frame: pd.DataFrame | None = bars
        if path is not None:  # the bars in a file the strategy reads: a file's run
            section = _written(bars, _new_file(path), section)
            frame = None
        overrides = (*self._overrides, f"data={json.dumps(section)}")
        return Strategy._from_file(
            self._file,
            overrides,
            document_source=self._document_source,
            keep=self._keep,
            bars=frame,
            of=self,
        )

    # --- running -----------------------------------------------------------------------

    @_user_errors
    def backtest(
        self,
        out: str | os.PathLike[str] | bytes | None = None,
        *,
        driver: Literal["auto", "batch", "per_bar"] = "auto",
        quiet: bool = False,
    ) -> Run:
        """Backtest the strategy as ``tradeloom run`` does and return the run.

        Args:
            out: The run folder to write (new or empty), as ``--out``. None: the run is
                held in memory and writes nothing; `Run.save` writes its folder later.
            driver: Which driver runs the sequential layers (``--driver``).
            quiet: No progress bars, and only warnings logged.

        Raises:
            UserError: The data cannot be used, or ``out`` holds other files.
        """
        from tradeloom.backtest.run import hold_strategy, run_strategy
        from tradeloom.engine.wiring import build_pipeline

        if driver not in _DRIVERS:
            raise UserError(
                f"driver: expected {', '.join(_DRIVERS)}, was {driver!r} (the --driver of run)"
            )
        folder = None if out is None else _path(out, "out", "a run folder")
        with _quiet(quiet):
            # components are built for each run: a run changes them (a model's folds)
            pipeline, self._built = self._built or build_pipeline(self.config), None
            if folder is None:
                return Run(None, held=hold_strategy(pipeline, self._plugins, driver=driver))
            outcome = run_strategy(pipeline, self._plugins, out=folder, driver=driver, option="out")
        return Run(outcome.run_dir)

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
        out: str | os.PathLike[str] | bytes | None = None,
        workers: int = 1,
        objectives: Sequence[str] | None = None,
        constraints: Mapping[str, float] | None = None,
        quiet: bool = False,
        **options: Any,
    ) -> pd.DataFrame:
        """Sweep the strategy's settings as ``tradeloom sweep`` does; return the ranked rows.

        Args:
            grid: Axes: a key path and its values (a list, or ``"START:STOP:STEP"``).
            random: Run N distinct combinations drawn with ``seed`` (``--random``).
            search: ``grid`` (default) or ``optuna`` (with ``trials``).
            trials: Optuna's trials.
            objective: The metric or expression ranked by (default ``sharpe``; e.g.
                ``"sharpe - 0.5 * max_drawdown"``).
            direction: ``maximize`` (default) or ``minimize``.
            seed: Seeds ``random`` and optuna.
            out: The sweep folder (results.parquet, sweep.html...). None: a temporary
                one, removed once the rows are read.
            workers: Local processes.
            objectives: Two or more objectives, each maximized (``["sharpe",
                "-max_drawdown"]``): the rows rank by Pareto front (``--objectives``).
            constraints: Bounds that reject a variant, ranked last (``{"min_trades": 20}``).
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

        if not isinstance(grid, Mapping):
            raise UserError(
                "grid: expected a mapping of key paths to values, such as "
                f"{{'signal.threshold': [0.2, 0.3]}}, was {_kind(grid)}"
            )
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
        if objectives is not None:
            argv += ["--objectives", ",".join(objectives)]
        for key, bound in (constraints or {}).items():
            argv += ["--constraint", f"{key}={bound}"]
        for override in self._overrides:
            argv += ["--set", override]
        parser = _Arguments(prog="tradeloom")
        add_sweep_parser(parser.add_subparsers(parser_class=_Arguments))
        keep = tempfile.TemporaryDirectory(prefix=f"tradeloom-{self.name}-sweep-")
        folder = Path(keep.name) / "sweep" if out is None else _path(out, "out", "a sweep folder")
        argv += ["--out", os.fspath(folder)]
        bars = getattr(self.config.data.params, "frame", None)  # (`FrameParams.frame`)
        if bars is not None:  # a sweep's workers are processes: they read the frame's file
            section = dict(self.config.document.get("data") or {})
            section = _written(bars, Path(keep.name) / "bars.parquet", section)
            argv += ["--set", f"data={json.dumps(section)}"]
        try:
            args = _parse(parser, argv)
            with _quiet(quiet):
                outcome = sweep(resolve_settings(args))
            ranked = pd.DataFrame(outcome.ranked).reset_index(drop=True)
        finally:
            keep.cleanup()
        overfitting = outcome.overfitting or {}
        ranked.attrs["overfitting"] = overfitting
        ranked.attrs["pbo"] = (overfitting.get("pbo") or {}).get("probability")
        ranked.attrs["summary"] = list(outcome.lines)
        ranked.attrs["sweep_dir"] = None if out is None else str(outcome.out)
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
    """A run: held in memory (`Strategy.backtest` without a folder), or a run folder
    (backtest, paper or live; SQLite or PostgreSQL journal), read-only.

    Made by `Strategy.backtest` or `open_run`. Each table is read when asked for: a held
    run's from memory (as its file would read back), a folder's from its file (a paper
    run being written gives its rows of that moment). What is read from a whole folder
    (`plot`, `journal`) is read, for a held run, from a copy saved into a temporary
    folder the first time (as `save` writes it), removed with the `Run`.
    """

    def __init__(
        self, run_dir: Path | None, *, keep: object | None = None, held: HeldRun | None = None
    ) -> None:
        self.run_dir = run_dir
        """The run folder (None: the run is held in memory; `save` writes one)."""
        self._held = held
        self._keep = keep  # a temporary folder that lives as long as this run
        self._copy: Path | None = None  # a held run saved into a temporary folder
        if keep is not None and hasattr(keep, "cleanup"):
            weakref.finalize(self, keep.cleanup)

    def __repr__(self) -> str:
        where = "held in memory" if self.run_dir is None else str(self.run_dir)
        return f"<tradeloom.Run {where}>"

    @_user_errors
    def save(self, run_dir: str | os.PathLike[str] | bytes) -> Run:
        """Write the run's folder, as ``tradeloom run --out run_dir`` writes it; return
        the run of that folder.

        The same files a backtest of the command writes, from the same rows: its
        tables, ``metrics.json``, ``report.html`` (``outputs``), its models and its
        journal (the rows as journaled during the run, chained in the folder).

        Args:
            run_dir: A new or empty folder.

        Raises:
            UserError: This run is a folder already, or ``run_dir`` is a file or holds
                files.
        """
        folder = _path(run_dir, "run_dir", "a run folder")
        if self._held is None:
            raise UserError(
                f"run_dir: this run is the folder {self.run_dir} already; copy that folder "
                "to keep it elsewhere"
            )
        return Run(self._held.save(folder, option="run_dir"))

    @property
    @_user_errors
    def metrics(self) -> dict[str, Any]:
        """Return ``metrics.json`` as it is (a held run's: its ``run_dir`` None)."""
        if self._held is not None:  # as metrics.json reads back
            from tradeloom.reporting.outputs import metrics_text

            return json.loads(metrics_text(self._held.metrics))  # type: ignore[no-any-return]
        from tradeloom.files.reading import read_json

        metrics = read_json(self._folder() / "metrics.json", "a run's metrics")
        if not isinstance(metrics, dict):
            raise UserError(f"{self.run_dir}/metrics.json: expected an object of metrics")
        return metrics

    @property
    @_user_errors
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
        return run_stats(metrics, name=str(metrics.get("strategy") or self.name))

    @property
    @_user_errors
    def name(self) -> str:
        """Return the strategy's name."""
        if self._held is not None:
            return self._held.name
        return str(self.metrics.get("strategy") or self._folder().name)

    @property
    @_user_errors
    def mode(self) -> str:
        """Return ``backtest``, ``paper`` or ``live``."""
        return str(self.metrics.get("mode") or "backtest")

    @property
    @_user_errors
    def equity(self) -> pd.DataFrame:
        """Return the equity curve (``equity.csv`` or ``equity.parquet``), indexed by UTC
        timestamp."""
        return self._bar_table("equity").set_index("timestamp")

    @property
    @_user_errors
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
    @_user_errors
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

        if self._held is not None:
            return self._bar_table("positions")
        written = read_table(self._folder(), "positions")
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
    @_user_errors
    def trades(self) -> pd.DataFrame:
        """Return ``trades.csv`` or ``trades.parquet`` (entry and exit times as UTC
        datetimes)."""
        return self._table("trades")

    @property
    @_user_errors
    def orders(self) -> pd.DataFrame:
        """Return ``orders.csv`` or ``orders.parquet``; for a paper or live run (which
        writes neither), the journal's ``order`` events."""
        return self._table("orders", journaled="order")

    @property
    @_user_errors
    def fills(self) -> pd.DataFrame:
        """Return ``fills.csv`` or ``fills.parquet``; for a paper or live run (which writes
        neither), the journal's ``fill`` events."""
        return self._table("fills", journaled="fill")

    @property
    @_user_errors
    def features(self) -> pd.DataFrame:
        """Return each bar's features, probability and signal (``features.parquet``; a
        universe of more than 50 symbols: the rows of the 50 its report charts, the most
        traded); for a paper or live run, each live bar's probability from its journal
        beside the features it wrote."""
        import pandas as pd

        from tradeloom.reporting.exports import FEATURES_FILE
        from tradeloom.reporting.run_data import live_features, load_run, parquet_table

        if self._held is not None:
            if FEATURES_FILE not in self._held.tables:
                return pd.DataFrame()  # outputs.features: false
            return self._held_table(
                FEATURES_FILE, lambda folder: parquet_table(folder / FEATURES_FILE)
            )
        folder = self._folder()
        path = folder / FEATURES_FILE
        # a regular file (a FIFO or a device is not one): no wait
        written = parquet_table(path) if path.is_file() else None
        if written is not None and self.mode == "backtest":
            return written
        journaled = load_run(folder).features
        if journaled is None:
            return pd.DataFrame() if written is None else written
        if written is not None:
            written["timestamp"] = pd.to_datetime(written["timestamp"], utc=True)
            keep = [c for c in ("timestamp", "symbol", "probability") if c in journaled]
            return live_features(journaled[keep], written)
        return journaled

    @_user_errors
    def journal(self, kind: str) -> pd.DataFrame:
        """Return the journal's events of one kind (``fill``, ``order``, ``signal``...).

        Raises:
            UserError: No such kind (the message lists them), or no readable journal.
        """
        from tradeloom.journal import KINDS, JournalError, journal_path, read_frame

        if not isinstance(kind, str) or kind not in KINDS:
            raise UserError(f"kind: no journal kind {kind!r}; kinds: {', '.join(sorted(KINDS))}")
        try:
            return read_frame(journal_path(self._whole()), kind)
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

        panels = report_panels(load_run(self._whole()))
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

        Raises:
            UserError: The run is held in memory (`save` writes its folder, the report
                with it).
        """
        from tradeloom.reporting.report import write_report

        return write_report(self._folder(), single_file=single_file)

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

    def _folder(self) -> Path:
        """Return the run's folder (a held run has none: `save` writes one)."""
        if self.run_dir is None:
            raise UserError(
                "the run is held in memory and has no folder yet; run.save(run_dir) writes "
                "its folder, report.html with it"
            )
        return self.run_dir

    def _whole(self) -> Path:
        """Return a folder holding the whole run: its own, or a held run's copy."""
        if self._held is None:
            return self._folder()
        if self._copy is None:
            keep = tempfile.TemporaryDirectory(prefix=f"tradeloom-{self._held.name}-")
            weakref.finalize(self, keep.cleanup)
            self._copy = self._held.save(Path(keep.name) / self._held.journal.identity.run_id)
        return self._copy

    def _held_table(self, name: str, read: Callable[[Path], pd.DataFrame]) -> pd.DataFrame:
        """Return a held run's table ``name`` as its file reads back (``read``: from a
        folder holding it): from its rows where that is certain, else from the file
        written alone into a temporary folder."""
        from tradeloom.reporting.run_data import table_as_read

        assert self._held is not None
        same = table_as_read(name, self._held.tables[name]())
        if same is not None:
            return same
        output = next(o for o in self._held.outputs if name in o.names)
        with tempfile.TemporaryDirectory(prefix="tradeloom-table-") as folder:
            output.write(Path(folder))
            return read(Path(folder))

    def _bar_table(self, table: str) -> pd.DataFrame:
        from tradeloom.reporting.run_data import read_table
        from tradeloom.reporting.run_tables import table_file

        if self._held is not None:
            name = table_file(Path(), table, self._held.tables)
            assert name is not None
            return self._held_table(name, lambda folder: _read_table(folder, table))
        frame = read_table(self._folder(), table)
        if frame is None:
            raise UserError(f"{self.run_dir}: has no {table}.csv; is it a finished run folder?")
        return frame

    def _table(self, table: str, journaled: str | None = None) -> pd.DataFrame:
        """Return a table of events (``orders``, ``fills``, ``trades``), CSV or Parquet,
        as the report reads it: its numbers checked, its times UTC."""
        from tradeloom.reporting.run_data import read_table
        from tradeloom.reporting.run_tables import table_file

        if self._held is not None:
            name = table_file(Path(), table, self._held.tables)
            assert name is not None
            return self._held_table(name, lambda folder: _read_table(folder, table))
        frame = read_table(self._folder(), table)
        if frame is None and journaled is not None and self.mode != "backtest":
            return self.journal(journaled)
        if frame is None:
            raise UserError(f"{self.run_dir}: has no {table}.csv; is it a finished run folder?")
        return frame


def _read_table(folder: Path, table: str) -> pd.DataFrame:
    from tradeloom.reporting.run_data import read_table

    frame = read_table(folder, table)
    assert frame is not None  # (written there)
    return frame


@_user_errors
def open_run(run_dir: str | os.PathLike[str] | bytes) -> Run:
    """Open a run folder that ``tradeloom run`` or `Run.save` wrote, read-only.

    Raises:
        UserError: Not a folder, or not a run's (no ``metrics.json`` and equity table).
    """
    folder = _path(run_dir, "run_dir", "a run folder")
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


_DRIVERS = ("auto", "batch", "per_bar")


def _kind(value: Any) -> str:
    """Return what ``value`` is, for a message: its type's name."""
    return type(value).__name__


def _path(value: Any, argument: str, what: str) -> Path:
    """Return ``argument``'s ``value`` as a path (text, bytes or a path-like object).

    Raises:
        UserError: It is none of these, or empty.
    """
    try:
        text = os.fsdecode(value)
    except TypeError:
        raise UserError(f"{argument}: expected {what}'s path, was {_kind(value)}") from None
    if not text.strip():
        raise UserError(f"{argument}: expected {what}'s path, was empty (use . for here)")
    if "\0" in text:
        raise UserError(f"{argument}: a path holds no NUL character, was {text!r}")
    return Path(text).expanduser()


def _check_symbol(symbol: Any, argument: str) -> None:
    from tradeloom.plugins.data.universe import symbol_problem

    if not isinstance(symbol, str):
        raise UserError(
            f"{argument}: expected a market symbol such as BTC/USDT, was {_kind(symbol)}"
        )
    problem = symbol_problem(symbol)
    if problem is not None:
        raise UserError(
            f"{argument}: {problem}; write a market symbol such as BTC/USDT, was {symbol!r}"
        )


def _check_timeframe(timeframe: Any) -> None:
    from tradeloom.time.timeframes import parse_timeframe

    if not isinstance(timeframe, str):
        raise UserError(f"timeframe: expected a bar length such as 1h, was {_kind(timeframe)}")
    try:
        parse_timeframe(timeframe)
    except ValueError as exc:
        raise UserError(f"timeframe: {exc}") from None


def _frame_section(
    bars: pd.DataFrame, old: Any, kind: str, params: Any, symbol: str | None
) -> dict[str, Any]:
    """Return the data section of ``bars`` handed as a frame: ``kind: frame`` and the
    settings of the section ``old`` (of ``kind``, its keys ``params``) a frame keeps
    (`tradeloom.plugins.data.frame.kept_settings`); its market (``symbol``, else the
    section's), or a universe of the frame's symbol column (``symbol``: that one's rows;
    a long file's section: the rows it chose).

    Raises:
        UserError: The frame is not bars: no rows, no times, a column missing or twice,
            a symbol that is not a market symbol.
    """
    from tradeloom.plugins.data.frame import frame_symbols, kept_settings, timestamp_problem

    section: dict[str, Any] = {"kind": "frame", **kept_settings(old, kind)}
    names = [str(c).strip().lower() for c in bars.columns]
    twice = sorted({str(c) for c, n in zip(bars.columns, names, strict=True) if names.count(n) > 1})
    if twice:
        raise UserError(f"bars: the columns {', '.join(twice)} appear twice (names in any case)")
    missing = [c for c in _OHLC if c not in names]
    if missing:
        raise UserError(
            f"bars: no {', '.join(missing)} column; expected timestamp, open, high, low, "
            f"close (volume optional), was {', '.join(map(str, bars.columns)) or 'none'}"
        )
    problem = timestamp_problem(bars, str(section.get("timestamp_column", "timestamp")))
    if problem is not None:
        raise UserError(f"bars: {problem}")
    if not len(bars):
        raise UserError("bars: the DataFrame has no rows")
    # a long file's section chose its rows (a frame's section took the frame's symbols)
    long = kind != "frame" and isinstance(old, dict) and isinstance(old.get("symbol_column"), str)
    column = next(
        (c for c in (section.get("symbol_column"), "symbol") if c and str(c).lower() in names),
        None,
    )
    if column is None:  # one market: the section's
        section.pop("symbol_column", None)
        section.pop("symbols", None)
        section["symbol"] = (
            symbol if symbol is not None else section.get("symbol") or _market(params)
        )
        return section
    section["symbol_column"] = column
    if symbol is not None:  # that market's rows
        section.pop("symbols", None)
        section["symbol"] = symbol
    elif not long:  # a universe of the frame's symbols
        section.pop("symbol", None)
        symbols = frame_symbols(bars, column)
        for found in symbols:
            _check_symbol(found, f"bars: column {column}")
        if not symbols:
            raise UserError(f"bars: column {column} names no symbol")
        section["symbols"] = symbols
    return section


def _market(params: Any) -> str:
    """Return the market a data section named, or its file's (the csv source's default)."""
    symbol = getattr(params, "symbol", None)
    if isinstance(symbol, str):
        return symbol
    path = getattr(params, "path", None)
    if isinstance(path, str) and "{symbol}" not in path:
        return Path(path).stem
    raise UserError("symbol: name the market of the bars (with_data(bars, symbol='BTC/USDT'))")


def _new_file(path: Any) -> Path:
    file = _path(path, "path", "a new file").resolve()
    if file.exists() or file.is_symlink():  # never written over: it may be the user's own
        raise UserError(f"path: {file} exists; give a new file to write the bars to")
    return file


def _written(bars: pd.DataFrame, file: Path, section: Mapping[str, Any]) -> dict[str, Any]:
    """Write ``bars`` into ``file`` (``.parquet``: Parquet, else CSV, its times UTC ISO
    8601) and return ``section`` reading them from there (``kind: parquet`` or ``csv``)."""
    import pandas as pd

    from tradeloom.plugins.data.frame import with_timestamps

    column = str(section.get("timestamp_column", "timestamp"))
    frame = with_timestamps(bars, column)
    kind = "parquet" if file.suffix.lower() == ".parquet" else "csv"
    file.parent.mkdir(parents=True, exist_ok=True)
    if kind == "parquet":
        frame.to_parquet(file, index=False)
    else:
        times = next(c for c in frame.columns if str(c).strip().lower() == column.lower())
        values = frame[times]
        if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(
            values.dtype
        ):
            stamps = pd.DatetimeIndex(values)
            stamps = stamps.tz_localize("UTC") if stamps.tz is None else stamps.tz_convert("UTC")
            frame = frame.assign(**{str(times): stamps.strftime("%Y-%m-%dT%H:%M:%S.%fZ")})
        frame.to_csv(file, index=False)
    rest = {k: v for k, v in section.items() if k != "kind"}
    return {"kind": kind, "path": str(file), **rest}


def _yaml_text(document: Any) -> str:
    """Return a document (a notebook's dict) as YAML text.

    Raises:
        UserError: It holds a value YAML cannot (a numpy array, an object).
    """
    import yaml

    try:
        return str(yaml.safe_dump(document, sort_keys=False))
    except yaml.YAMLError as exc:  # a value YAML cannot hold (a numpy number, an object)
        value = exc.args[-1] if exc.args else exc
        raise UserError(
            f"{_DICT_SOURCE}: {value!r} cannot be written as YAML; give plain numbers, "
            "strings, booleans, lists and dicts"
        ) from None


def _absolute_paths(document: Mapping[str, Any], folder: Path) -> dict[str, Any]:
    """Return ``document`` with each component's relative ``path`` made absolute and numpy
    scalars as Python numbers.

    Raises:
        UserError: A dict or list holds itself (a document is a tree).
    """
    inside: list[int] = []  # the containers around the value being walked

    def walk(value: Any, where: str) -> Any:
        if type(value).__module__ == "numpy" and hasattr(value, "item"):
            return value.item()  # np.float64(0.3) from a notebook's arithmetic: 0.3
        if not isinstance(value, Mapping | list):
            return value
        if id(value) in inside:
            raise UserError(
                f"{_DICT_SOURCE}: {where or 'the document'}: a dict or list inside itself; "
                "give plain dicts, lists and values"
            )
        inside.append(id(value))
        try:
            if isinstance(value, list):
                return [walk(v, f"{where}.{i}".lstrip(".")) for i, v in enumerate(value)]
            out = {k: walk(v, f"{where}.{k}".lstrip(".")) for k, v in value.items()}
        finally:
            inside.pop()
        path = out.get("path")
        if isinstance(path, str) and path and not Path(path).expanduser().is_absolute():
            out["path"] = str(folder / path)
        return out

    return walk(document, "")  # type: ignore[no-any-return]
