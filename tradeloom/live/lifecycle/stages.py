"""A live run's stages, in the order the runner calls them (`tradeloom.live.tick.services.Stage`).

Every run: the kernels' forms (a first run's kernels compiled once they are cached). A
strategy run alone: the model swap (answers ``swap``), its challengers in shadow,
their promotions (answer ``promote`` and ``rollback``), the hot reload, and with
``live.parity`` the parity monitor. A portfolio file: the model swap, its strategies'
challengers, and the parity monitor (a portfolio file is not hot-reloaded). The order is
the tick's: the challengers step on a bar before their promotions read it; the parity
check is handed off after the commit.

The allocation deadline is not among them: it acts inside a bar's decision, not at its
boundary (`tradeloom.live.tick.allocation_solver.DeadlineSolver`, built by the session).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tradeloom.engine.control_files import ACTIONS, SESSION_ACTIONS
from tradeloom.live.lifecycle.challenger_stages import (
    Challengers,
    LiveRowsOf,
    MemberChallengers,
    Promotions,
    ShadowChallengers,
)
from tradeloom.live.lifecycle.feed_stage import TextFeeds
from tradeloom.live.lifecycle.kernel_forms import KernelForms
from tradeloom.live.lifecycle.parity_stage import ParityStage
from tradeloom.live.lifecycle.reload_stage import HotReloadStage
from tradeloom.live.lifecycle.swap_stage import ModelSwapStage
from tradeloom.live.lifecycle.text_stage import TextAnswers
from tradeloom.live.tick.services import JournalLink, Markets, RunFiles, Stage

if TYPE_CHECKING:
    from tradeloom.live.lifecycle.parity_monitor import Check

__all__ = ["StageOptions", "answering", "build_stages"]


@dataclass(frozen=True)
class StageOptions:
    """What the command that starts a run hands its stages from above live.

    Attributes:
        parity_check: The comparison ``live.parity`` runs, the diagnostics layer's
            (`tradeloom.diagnostics.live_parity.check_apart`); needed with ``live.parity``.
    """

    parity_check: Check | None = None


def build_stages(
    files: RunFiles,
    link: JournalLink,
    markets: Markets,
    *,
    overrides: Sequence[str],
    watch_file: bool,
    live_rows: LiveRowsOf,
    wake: Callable[[], None],
    ready: Callable[[], None] | None,
    options: StageOptions,
) -> list[Stage]:
    """Return the run's stages, in order.

    Args:
        files, link, markets: The run's services.
        overrides: The run's ``--set`` values (a hot reload applies them again).
        watch_file: Hot-reload the strategy file when it changes.
        live_rows: Each market's extra columns as its bars close (a shadow's too).
        wake: Wakes the runner to read its mailbox.
        ready: Blocks until the run's files reach the last bar (None: no files written).
        options: What the command starting the run hands the stages.

    Raises:
        ValueError: ``live.parity`` is declared and no comparison was handed down.
    """
    # the kernels' forms before anything of a bar; documents before any bar
    stages: list[Stage] = [KernelForms(), TextFeeds(files, link, markets)]

    def held() -> str | None:
        """Why the model cannot change now: the first stage that holds it says."""
        for stage in stages:
            if (note := stage.in_progress()) is not None:
                return note
        return None

    stages.append(ModelSwapStage(files, link, markets, held))
    if markets.portfolio is not None:
        stages.append(MemberChallengers(files, link, markets))
    else:
        shared = Challengers()
        stages += [
            ShadowChallengers(files, link, markets, shared, live_rows),
            Promotions(files, link, markets, shared),
            HotReloadStage(
                files,
                link,
                markets,
                overrides=overrides,
                watch_file=watch_file,
                held=held,
                shared=shared,
            ),
        ]
    stages.append(TextAnswers(files, link, markets))
    if files.config.live.parity is not None:
        parity_check = options.parity_check
        if parity_check is None:
            raise ValueError(
                "live.parity needs the comparison it runs "
                "(tradeloom.diagnostics.live_parity.check_apart), handed to the runner"
            )
        stages.append(
            ParityStage(
                files,
                link,
                markets,
                check=parity_check,
                ready=ready,
                wake=wake,
                held=held,
                live_rows=live_rows,
            )
        )
    return stages


def answering(stages: Sequence[Stage]) -> Mapping[str, Stage]:
    """Return the stage that answers each control action but the kill switch's (the
    session's own, `SESSION_ACTIONS`): the one table the runner routes requests by.

    Raises:
        ValueError: Two stages declare one action, a stage declares the session's or an
            unknown one, or an action is left unanswered.
    """
    table: dict[str, Stage] = {}
    for stage in stages:
        for action in stage.actions:
            if action in table:
                raise ValueError(
                    f"the control action {action!r} is answered by two stages: "
                    f"{type(table[action]).__name__} and {type(stage).__name__}"
                )
            table[action] = stage
    owed = set(ACTIONS) - set(SESSION_ACTIONS)
    if set(table) != owed:
        raise ValueError(
            f"the stages answer the control actions {sorted(table)}, not {sorted(owed)}"
        )
    return table
