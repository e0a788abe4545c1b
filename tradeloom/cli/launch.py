"""``tradeloom run FILE --mode paper|live``: the run directory, the runner, the loop."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from tradeloom.engine.run_dir import check_live_run_dir
from tradeloom.engine.stdout import silence_stdout
from tradeloom.engine.wiring import Pipeline
from tradeloom.live.lifecycle.stages import StageOptions
from tradeloom.live.tick.loop import run_forever, stop_on_signals
from tradeloom.live.tick.runner import LiveRunner, Mode, wall_clock
from tradeloom.plugins.manager import Plugins
from tradeloom.runtime.lazy import logger

if TYPE_CHECKING:
    from tradeloom.live.tick.portfolio_session import LivePortfolio
    from tradeloom.reporting.refusals import RefusalTable

__all__ = ["default_run_dir", "run_live"]

_log = logger("tradeloom.live")


class _BarLines:
    """Print one line per bar; a stdout that went away stops the lines, never the trading.

    A closed pipe (``tradeloom run ... | head``) or a lost terminal makes ``print`` raise
    in the middle of a tick: the lines stop, once logged, and stdout is pointed at
    /dev/null so that the interpreter's exit does not complain either.
    """

    def __init__(self) -> None:
        self.stopped = False

    def __call__(self, line: str) -> None:
        if self.stopped:
            return
        try:
            print(line, flush=True)
        except OSError as exc:
            self.stopped = True
            silence_stdout()
            _log.warning("bar_lines_stopped", error=f"{type(exc).__name__}: {exc}")


def default_run_dir(name: str, mode: Mode) -> Path:
    """Return ``runs/<name>-<mode>``: the same command restarts the same run."""
    return Path("runs") / f"{name}-{mode}"


def live_run_dir(name: str, mode: Mode, out: Path | None, *, simulated: bool) -> Path:
    """Return the run directory of a paper or live run of strategy ``name`` (``--out``,
    else the default for its mode and clock), resolved."""
    if out is not None:
        return out.resolve()
    if simulated:
        from tradeloom.live.tick.sim_clock import simulated_run_dir

        return simulated_run_dir(name).resolve()
    return default_run_dir(name, mode).resolve()


def run_live(
    pipeline: Pipeline,
    plugins: Plugins,
    *,
    mode: Mode,
    out: Path | None,
    overrides: Sequence[str] = (),
    max_bars: int | None = None,
    quiet: bool = False,
    speed: float | None = None,
    venue_latency: str | None = None,
    portfolio: LivePortfolio | None = None,
    notes: Sequence[str] = (),
) -> str:
    """Start (or restart) the run and trade until stopped; return a one-line summary (and,
    when it refused anything, its refusals by code and purpose, the exits refused warned).

    Unless ``quiet``, each bar traded prints one line on stdout (`LiveRunner.bar_line`).
    With ``speed`` (``--clock simulated``), a paper run trades the strategy's own bars
    served by the exchange emulator at that many times real time
    (`tradeloom.live.tick.sim_clock.SimulatedMarket`). With ``portfolio``, ``pipeline``
    is its account's (`tradeloom.live.tick.portfolio_session.account_pipeline`) and
    the strategies trade together on it (``--clock simulated`` only). ``venue_latency``
    (``--venue-latency``) names the realism profile whose latency the emulator holds
    market orders for, in place of the strategy's. ``notes`` are
    printed on stderr once the run has started (a run refused says its refusal alone).

    Raises:
        UserError: The run directory is not a run's, the metrics port is taken, or
            the simulated market cannot serve the strategy's data.
    """
    name = pipeline.config.name
    simulated = speed is not None
    run_dir = live_run_dir(name, mode, out, simulated=simulated)
    check_live_run_dir(out if out is not None else run_dir, given=out is not None)
    with ExitStack() as stack:
        clock: Callable[[], pd.Timestamp] = wall_clock
        loop: Callable[..., str] = run_forever
        if speed is not None:
            from tradeloom.live.tick.sim_clock import SimulatedMarket

            pipelines = () if portfolio is None else portfolio.pipelines
            market = stack.enter_context(
                SimulatedMarket(
                    pipeline,
                    run_dir,
                    speed=speed,
                    registry=plugins.registry,
                    pipelines=pipelines,
                    venue_latency=venue_latency,
                )
            )
            clock, loop = market.now, market.run
            if portfolio is None:
                pipeline = market.live_pipeline()
            else:
                pipeline = market.live_pipeline(pipeline, tuple(market.markets))
                live = tuple(market.live_pipeline(p) for p in portfolio.pipelines)
                portfolio = replace(portfolio, pipelines=live)
        runner = LiveRunner(
            pipeline,
            plugins,
            mode=mode,
            run_dir=run_dir,
            clock=clock,
            overrides=overrides,
            echo=None if quiet else _BarLines(),
            watch_file=portfolio is None,  # a portfolio file is not hot-reloaded
            portfolio=portfolio,
            stage_options=StageOptions(parity_check=_parity_check),
        )
        runner.attach_observers(stack)  # metrics and alerts: before any bar
        reason = "failed"
        with stop_on_signals() as stop:
            if threading.current_thread() is threading.main_thread():
                runner.inbox.install_signal_handlers()
            try:
                runner.start()
                for note in [*notes, *runner.files.notes]:
                    print(note, file=sys.stderr, flush=True)
                asked = [r.action for r in runner.inbox.pending()]
                halted = _halted_line(run_dir, killed=runner.session_or_fail.killed, asked=asked)
                if halted is not None:
                    print(halted, file=sys.stderr, flush=True)
                reason = loop(runner.ticking(), stop, max_bars=max_bars)
            except BaseException as exc:
                reason = f"{type(exc).__name__}: {exc}"
                raise
            finally:
                runner.stop(reason)
                runner.inbox.restore_signal_handlers()
    session = runner.session_or_fail
    book = session.engine.portfolio
    held = f"position {book.position:.8g}"
    symbols = session.engine.symbols
    if symbols is not None and len(symbols) > 1:  # a universe: each symbol's
        held = "positions " + ", ".join(
            f"{symbol} {book.position_of(s):.8g}" for s, symbol in enumerate(symbols)
        )
    line = f"{mode} run {run_dir}: {reason}; {held}, cash {book.cash:.2f}, state {session.state}"
    untrained = session.never_trained()
    if untrained is not None:
        _log.warning("model_never_trained", reason=untrained)
        # its exit code stays the stop's: a supervisor restarts a run that exits 1, and the
        # model of one that goes on may train at its next retraining
        line = f"{line}; health CRITICAL: {untrained}"
    return "\n".join([line, *_refusals(runner.recorder_or_fail.refusals())])


def _halted_line(run_dir: Path, *, killed: bool, asked: Sequence[str]) -> str | None:
    """What a restart of a run the kill switch holds (``killed``) says before its first
    bar (None: it is not, or a resume among the mailbox's ``asked`` actions, written while
    nothing ran, waits for this start)."""
    switches = [action for action in asked if action in ("kill", "resume")]
    if not killed or (switches and switches[-1] == "resume"):
        return None
    return (
        f"{run_dir}: the kill switch holds this run halted (journaled before this start); "
        f"it trades nothing until `tradeloom resume {run_dir}`"
    )


def _refusals(table: RefusalTable) -> list[str]:
    """The run's refusals by code and purpose, and the warning of its exits refused, as
    ``tradeloom status`` says them (none: no line)."""
    from tradeloom.reporting.refusals import exits_warning, refusal_lines

    if not table.rows:
        return []
    lines = [f"{label:<24}  {text}" for label, text in refusal_lines(table)]
    warning = exits_warning(table)
    return lines + ([f"{'WARNING':<24}  {warning}"] if warning else [])


def _parity_check(run_dir: Path, until_bar: int, window_bars: int, limit: float) -> dict[str, Any]:
    """The live parity monitor's comparison: the diagnostics layer's, in a process of
    its own (imported when a check runs: a run without ``live.parity`` never loads it)."""
    from tradeloom.diagnostics.live_parity import check_apart

    return check_apart(run_dir, until_bar, window_bars, limit)
