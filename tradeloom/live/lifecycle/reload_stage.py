"""The hot reload's stage: an edited strategy file taken in at the tick's bar boundary.

At the start of each tick, after the control requests and before any bar, the watcher
(`tradeloom.live.lifecycle.reload.StrategyWatcher`) says whether the file changed; a
valid edit is swapped in (`tradeloom.live.lifecycle.reload_apply.apply_reload`) with
``config_reloaded``, a changed ``model`` section swapped by the swap's path in the same
commit, a changed ``challengers:`` roster taken in from the next bar; an invalid one is
journaled (``config_reload_refused``) and the run trades on. A canary or a watch in
progress holds a ``model`` edit until it ends. A restart refuses a file changed while
the run was down in what a running strategy cannot take (`check`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import structlog

from tradeloom.engine.capabilities import uncalibrated
from tradeloom.errors import ConfigError
from tradeloom.journal import ConfigReloaded, ConfigReloadRefused
from tradeloom.live.lifecycle.model_swap import (
    ModelSwap,
    SwapRefused,
    already_in_force,
    checked_swap,
    described,
    is_kept,
    journal_swap,
    keep_file,
    standing_for,
)
from tradeloom.live.lifecycle.promoted_signal import rule_in_force
from tradeloom.live.lifecycle.reload import (
    CHALLENGERS,
    MODEL,
    Reload,
    ReloadRefused,
    StrategyWatcher,
)
from tradeloom.live.lifecycle.reload_apply import apply_reload
from tradeloom.live.tick.services import JournalLink, Markets, RunFiles, Stage

if TYPE_CHECKING:
    from tradeloom.live.lifecycle.challenger_roster import RosterChange
    from tradeloom.live.lifecycle.challenger_stages import Challengers
    from tradeloom.live.recovery.journal_state import JournalState

__all__ = ["HotReloadStage"]

_log = structlog.get_logger("tradeloom.live")


class HotReloadStage(Stage):
    """Take a valid edit of the strategy file in at the tick's bar boundary.

    Args:
        files, link, markets: The run's services.
        overrides: The run's ``--set`` values (re-applied to an edited file).
        watch_file: Watch the file (False: only the restart's checks).
        held: Why the model cannot change now (None: it can).
        shared: The challengers' stages' shared books and promotions (a roster edit
            changes them).
    """

    def __init__(
        self,
        files: RunFiles,
        link: JournalLink,
        markets: Markets,
        *,
        overrides: Sequence[str],
        watch_file: bool,
        held: Callable[[], str | None],
        shared: Challengers,
    ) -> None:
        self.files, self.link, self.markets = files, link, markets
        self.overrides = tuple(overrides)
        self.watch_file = watch_file
        self.held = held
        self.shared = shared
        self.watcher: StrategyWatcher | None = None
        self._held_edit = False
        """A reload of ``model`` was refused while a stage was in progress: the file is
        read again once none is (`before_bars`)."""

    def check(self, state: JournalState | None) -> None:
        """Refuse a restart whose file changed what a running strategy cannot swap (a
        ``model`` section that loads the copy of the model in force is no change), or a
        challenger's entry as a reload would refuse it: changed (`changed_entries`), or
        added under a removed one's name (`reused_names`). A new run: nothing to take up."""
        if state is None:
            return
        from tradeloom.live.lifecycle.challenger_roster import (
            changed_entries,
            reused_names,
            started_document,
        )
        from tradeloom.live.lifecycle.reload import changes_while_down

        files = self.files
        document, swapped = state.document, state.swapped
        problems = []
        if document is not None:
            section = files.config.document.get(MODEL)
            if swapped is not None and is_kept(section, swapped):
                document = {**document, MODEL: section}
            problems += changes_while_down(document, files.config, self.overrides)
            problems += changed_entries(document, files.config)
        if files.config.challengers:
            problems += reused_names(files.run_dir, files.config, started_document(files.run_dir))
        if problems:
            raise ConfigError(problems)

    def restore(self, state: JournalState | None) -> None:
        """Start watching the file (once: a journal's outage rebuilds the session only)."""
        if self.watch_file and self.watcher is None:
            self.watcher = StrategyWatcher(
                self.files.config.source,
                self.files.config,
                self.overrides,
                plugins=self.markets.plugins,
                kept=self._kept(state),
            )

    def _kept(self, state: JournalState | None) -> tuple[list[Any], Any, str] | None:
        """Return the ``model`` sections the run traded under since its last swap, the
        one it is built as, when a restart built the kept copy in their place, and where
        that copy is kept."""
        if state is None or state.swapped is None:
            return None
        stands = standing_for(self.files.run_dir)
        section = self.files.config.document.get(MODEL)
        if not stands or not is_kept(section, state.swapped):
            return None
        return stands[0], section, stands[2]

    def before_bars(self) -> None:
        """Take the file's edit in, or journal why not."""
        watcher = self.watcher
        if watcher is None:
            return
        if self._held_edit and self.held() is None:
            # the stage that refused the model's edit has ended: the file's version, if it
            # still stands, is taken now (its refusal said to wait for the end)
            self._held_edit = False
            watcher.look_again()
        outcome = watcher.check()
        if outcome is None:
            return
        recorder = self.link.recorder_or_fail
        session = self.markets.session_or_fail
        bar = len(session.history) - 1
        swap: tuple[ModelSwap, dict[str, Any]] | None = None
        held = self.held()
        if not isinstance(outcome, ReloadRefused) and MODEL in outcome.changed and held:
            self._held_edit = True
            outcome = ReloadRefused((f"{outcome.config.locate(MODEL)} model: {held}",))
        if not isinstance(outcome, ReloadRefused) and MODEL in outcome.changed:
            swap_or_not = self._reloaded_model(outcome)
            if isinstance(swap_or_not, ReloadRefused):
                outcome = swap_or_not
            else:
                swap = swap_or_not
        if not isinstance(outcome, ReloadRefused):
            outcome = _calibrated_enough(
                outcome, session.p.model if swap is None else swap[0].model
            )
        roster: RosterChange | None = None
        if not isinstance(outcome, ReloadRefused) and CHALLENGERS in outcome.changed:
            from tradeloom.live.lifecycle.challenger_roster import (
                roster_change,
                started_document,
                used_names,
            )

            files = self.files
            # an added challenger is built over the running strategy as the reload leaves
            # it, as a restart starts it (`open_shadow_books`): the running data (a text
            # source's documents) and copies of the running features, which ask the
            # running scorers, whose answers the run keeps (a reload changes neither);
            # the reload's newly built ones had no documents (the challenger failed) or
            # asked the model every headline again; the model is the reload's
            running = replace(outcome.apply(session.p), model=outcome.pipeline.model)
            roster_or_not = roster_change(
                files.config,
                running,
                used_names(files.run_dir, files.config, started_document(files.run_dir)),
            )
            if isinstance(roster_or_not, ReloadRefused):
                outcome = roster_or_not
            else:
                roster = roster_or_not
        if isinstance(outcome, ReloadRefused):
            # every refusal, the watcher's or one of the checks above: the next edit is
            # compared with the strategy running, not with the version refused
            if not watcher.refused(outcome):
                return  # this content, read again after a stage, refused as before
            errors = [str(e) for e in outcome.errors]
            recorder.record(ConfigReloadRefused(**recorder.at(bar), errors=errors))
            _log.error("config_reload_refused", errors=list(outcome.errors))
            return
        apply_reload(outcome, session, self.files)
        recorder.record(
            ConfigReloaded(
                **recorder.at(bar),
                changed=[str(c) for c in outcome.changed],
                changes=[str(c) for c in outcome.changes],
                document=dict(outcome.config.document),
            )
        )
        _log.warning("config_reloaded", changed=outcome.describe())
        if swap is not None:  # in the reload's commit: both or neither
            reason = "the strategy file's model section changed"
            journal_swap(recorder, session, *swap, by="reload", reason=reason)
            rule_in_force(self.files.config, self.markets.plugins, session, "")
        if roster is not None:  # in the reload's commit too: from the next bar
            shared = self.shared
            shadowing = shared.shadowing_or_fail
            shared.books = roster.apply(
                shared.books, self.link.journal_or_fail, recorder, session.history, shadowing
            )
            if shared.promotions is None:  # the run's first challengers: their gates too
                from tradeloom.live.lifecycle.promotion_stage import open_stage

                shared.promotions = open_stage(
                    shared.books,
                    None,
                    self.files,
                    self.markets.plugins,
                    session,
                    recorder,
                    shadowing,
                )

    def _reloaded_model(
        self, reload: Reload
    ) -> tuple[ModelSwap, dict[str, Any]] | ReloadRefused | None:
        """Check the model of a reload that changed the ``model`` section and keep its
        file; or the reload refused, located at the section; None: the section names the
        model in force (`already_in_force`), so nothing is swapped."""
        section = reload.config.document[MODEL]
        trusted = section.get("trusted_packages", ()) if isinstance(section, dict) else ()
        session = self.markets.session_or_fail
        swap = checked_swap(session, reload.pipeline.model, described(section), trusted)
        if isinstance(swap, ModelSwap) and already_in_force(session, swap):
            return None
        kept = swap if isinstance(swap, SwapRefused) else keep_file(self.files.run_dir, swap)
        if isinstance(kept, SwapRefused):
            where = reload.config.locate(MODEL)
            return ReloadRefused(tuple(f"{where} {line}" for line in kept.errors))
        assert isinstance(swap, ModelSwap)
        return swap, kept


def _calibrated_enough(reload: Reload, model: object) -> Reload | ReloadRefused:
    """Refuse a reload whose sizing needs a calibrated model when ``model``, the model
    in force after it, is not (every restart would refuse to put it back)."""
    if not uncalibrated(reload.pipeline.sizer, model):
        return reload
    return ReloadRefused(
        (
            f"{reload.config.locate('risk.sizing')} risk.sizing: reads the probability "
            "as a probability (it needs a calibrated model) and the model in force is "
            "not calibrated; keep the sizing, or swap in a model trained with "
            "model.calibration first",
        )
    )
