"""A validated strategy of the Python API: `load` it, run it on other bars
(`Strategy.with_data`), backtest it, sweep it, check it for look-ahead.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from tradeloom.api.bars import (
    check_symbol,
    check_timeframe,
    frame_section,
    new_file,
    reread_section,
    written_section,
)
from tradeloom.api.calls import as_path, kind_of, progress_and_logs, user_errors
from tradeloom.api.documents import (
    DICT_SOURCE,
    absolute_paths,
    override_text,
    plain_value,
    yaml_text,
)
from tradeloom.api.run import Run
from tradeloom.errors import UserError

if TYPE_CHECKING:
    import pandas as pd

    from tradeloom.diagnostics.lookahead import LookaheadReport
    from tradeloom.engine.wiring import Pipeline
    from tradeloom.plugins.manager import Plugins
    from tradeloom.schemas.config import StrategyConfig
    from tradeloom.schemas.yaml_loader import YamlDocument

__all__ = ["Strategy", "load"]

_DRIVERS = ("auto", "batch", "per_bar")


@user_errors
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
    texts = tuple(override_text(key, value) for key, value in overrides.items())
    if isinstance(source, Mapping):
        strategy = Strategy._from_mapping(source, texts)
    else:
        strategy = Strategy._from_file(as_path(source, "source", "a strategy file"), texts)
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
        with progress_and_logs(False):
            if of is None:
                config, plugins = load_strategy(file, overrides, document=document)
            else:
                config, plugins = load_strategy(
                    file, overrides, document=document, load_plugins=of._same_plugins
                )
            if bars is not None:
                from tradeloom.api.bars import bind_bars

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
        text = yaml_text(absolute_paths(document, Path.cwd()))
        folder = tempfile.TemporaryDirectory(prefix="tradeloom-strategy-")
        file = Path(folder.name) / "strategy.yaml"
        file.write_text(text, encoding="utf-8")
        return cls._from_file(file, overrides, document_source=DICT_SOURCE, keep=[folder])

    @property
    @user_errors
    def name(self) -> str:
        """Return the strategy's name."""
        return self.config.name

    @property
    def document(self) -> dict[str, Any]:
        """Return the resolved strategy document (what a run writes as strategy.yaml)."""
        return dict(self.config.document)

    def __repr__(self) -> str:
        return f"<tradeloom.Strategy {self.name!r} from {self._document_source or self._file}>"

    @user_errors
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
            raise UserError(f"bars: expected a pandas DataFrame of bars, was {kind_of(bars)}")
        if symbol is not None:
            check_symbol(symbol, "symbol")
        if timeframe is not None:
            check_timeframe(timeframe)
        old = self.config.document.get("data") or {}
        data = self.config.data
        section = frame_section(bars, old, data.kind, data.params, symbol)
        if timeframe is not None:
            section["timeframe"] = timeframe
        frame: pd.DataFrame | None = bars
        if path is not None:  # the bars in a file the strategy reads: a file's run
            section = written_section(bars, new_file(path), section)
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

    @user_errors
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
        from tradeloom.kernels.first_run import chosen_forms

        if driver not in _DRIVERS:
            raise UserError(
                f"driver: expected {', '.join(_DRIVERS)}, was {driver!r} (the --driver of run)"
            )
        folder = None if out is None else as_path(out, "out", "a run folder")
        # the command's rules: its native threads, its kernels' forms on a first run
        rerun = functools.partial(self._warm_words, driver)
        with progress_and_logs(quiet), _native_threads(), chosen_forms(rerun):
            # components are built for each run: a run changes them (a model's folds)
            pipeline, self._built = self._built or build_pipeline(self.config), None
            if folder is None:
                return Run(None, held=hold_strategy(pipeline, self._plugins, driver=driver))
            outcome = run_strategy(pipeline, self._plugins, out=folder, driver=driver, option="out")
        return Run(outcome.run_dir)

    def _warm_words(self, driver: str, folder: Path) -> list[str]:
        """Return the ``tradeloom warm`` arguments that compile the kernels this strategy's
        backtest uses (`tradeloom.kernels.first_run.Rerun`), its inputs that only this
        process holds (a mapping's temporary file, a frame's bars) written into ``folder``."""
        file = self._file
        if self._document_source == DICT_SOURCE:  # its folder goes with this strategy
            file = Path(shutil.copyfile(file, folder / file.name))
        overrides = list(self._overrides)
        section = reread_section(self.config, folder / "bars.parquet")
        if section is not None:
            overrides.append(f"data={json.dumps(section)}")
        words = [str(file.resolve()), "--driver", driver.replace("_", "-")]
        return [*words, *(f"--set={word}" for word in overrides)]

    @user_errors
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
                f"{{'signal.threshold': [0.2, 0.3]}}, was {kind_of(grid)}"
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
        folder = Path(keep.name) / "sweep" if out is None else as_path(out, "out", "a sweep folder")
        argv += ["--out", os.fspath(folder)]
        # a sweep's workers are processes: they read a frame's bars from a file
        section = reread_section(self.config, Path(keep.name) / "bars.parquet")
        if section is not None:
            argv += ["--set", f"data={json.dumps(section)}"]
        try:
            args = _parse(parser, argv)
            with progress_and_logs(quiet), _native_threads():
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

    @user_errors
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

        # the internal runs' logs; the findings are printed below
        with progress_and_logs(True), _native_threads():
            return check_lookahead(
                self.config, points=points, seed=seed, progress=None if quiet else print
            )


def _native_threads() -> contextlib.AbstractContextManager[None]:
    """Return the block's native threads as the command's (`native_threads_in`)."""
    from tradeloom.runtime.threads import native_threads, native_threads_in

    try:
        return native_threads_in(native_threads())
    except ValueError as exc:  # TRADELOOM_THREADS, named
        raise UserError(str(exc)) from None


def _axis_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=plain_value)


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
