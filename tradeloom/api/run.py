"""A run read by the Python API: held in memory or a run folder, its tables, metrics,
journal, plot and report (`Run`, `open_run`).
"""

from __future__ import annotations

import json
import os
import tempfile
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradeloom.api.calls import as_path, user_errors
from tradeloom.errors import UserError

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

    from tradeloom.backtest.held_run import HeldRun
    from tradeloom.diagnostics.parity import ParityResult

__all__ = ["Run", "open_run"]

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

    @user_errors
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
        folder = as_path(run_dir, "run_dir", "a run folder")
        if self._held is None:
            raise UserError(
                f"run_dir: this run is the folder {self.run_dir} already; copy that folder "
                "to keep it elsewhere"
            )
        return Run(self._held.save(folder, option="run_dir"))

    @property
    @user_errors
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
    @user_errors
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
    @user_errors
    def name(self) -> str:
        """Return the strategy's name."""
        if self._held is not None:
            return self._held.name
        return str(self.metrics.get("strategy") or self._folder().name)

    @property
    @user_errors
    def mode(self) -> str:
        """Return ``backtest``, ``paper`` or ``live``."""
        return str(self.metrics.get("mode") or "backtest")

    @property
    @user_errors
    def equity(self) -> pd.DataFrame:
        """Return the equity curve (``equity.csv`` or ``equity.parquet``), indexed by UTC
        timestamp."""
        return self._table("equity").set_index("timestamp")

    @property
    @user_errors
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
    @user_errors
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
            return self._table("positions")
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
    @user_errors
    def trades(self) -> pd.DataFrame:
        """Return ``trades.csv`` or ``trades.parquet`` (entry and exit times as UTC
        datetimes)."""
        return self._table("trades")

    @property
    @user_errors
    def orders(self) -> pd.DataFrame:
        """Return ``orders.csv`` or ``orders.parquet``; for a paper or live run (which
        writes neither), the journal's ``order`` events."""
        return self._table("orders", journaled="order")

    @property
    @user_errors
    def fills(self) -> pd.DataFrame:
        """Return ``fills.csv`` or ``fills.parquet``; for a paper or live run (which writes
        neither), the journal's ``fill`` events."""
        return self._table("fills", journaled="fill")

    @property
    @user_errors
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

    @user_errors
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

    @user_errors
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

    @user_errors
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

    @user_errors
    def parity(
        self,
        out: str | os.PathLike[str] | bytes | None = None,
        *,
        tolerances: Mapping[str, float] | None = None,
        data: str | os.PathLike[str] | bytes | None = None,
    ) -> ParityResult:
        """Replay this paper or live run's bars as a backtest and explain every
        difference, as ``tradeloom parity`` does; return the comparison as frames.

        Args:
            out: Where the replay's run folder (``reference``) goes (default:
                ``RUN_DIR/parity``).
            tolerances: ``--tolerance`` settings (``{"slippage": 25}``) over the
                defaults.
            data: A history of the run's bars fetched later (``--data``): the bars that
                differ from the ones the run saw are the cause ``data_revised``.

        Returns:
            `tradeloom.diagnostics.parity.ParityResult`: ``bars`` (each bar's equity of
            both, the gap and each cause's P&L), ``differences``, ``causes`` and the
            ``summary``; ``passed`` as the command's exit code says.

        Raises:
            UserError: Not a paper or live run with its journal, a strategy changed since
                the run, a tolerance that is not one, a ``data`` file of other symbols or
                not holding every bar the run saw.
        """
        from tradeloom.diagnostics.parity import parity, parse_tolerances

        words = [f"{k}={v}" for k, v in (tolerances or {}).items()]
        folder = None if out is None else as_path(out, "out", "a folder")
        history = None if data is None else as_path(data, "data", "a file")
        return parity(
            self._folder(),
            out=folder,
            tolerances=parse_tolerances(words),
            data=history,
            option="out",
        )

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

    def _table(self, table: str, journaled: str | None = None) -> pd.DataFrame:
        """Return a per-bar table (``equity``, ``positions``) or a table of events
        (``orders``, ``fills``, ``trades``), CSV or Parquet, as the report reads it: its
        numbers checked, its times UTC; a paper or live run's events from its journal."""
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


@user_errors
def open_run(run_dir: str | os.PathLike[str] | bytes) -> Run:
    """Open a run folder that ``tradeloom run`` or `Run.save` wrote, read-only.

    Raises:
        UserError: Not a folder, or not a run's (no ``metrics.json`` and equity table).
    """
    folder = as_path(run_dir, "run_dir", "a run folder")
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
