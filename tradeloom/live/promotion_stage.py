"""The run's promotions at each bar's close and by hand: the gate's, the canary's, an operator's.

`PromotionStage.after_bar` runs after the challengers stepped on the bar the run just
closed: with a canary in progress (`tradeloom.live.canary`) it reads the rollback rules
and rolls back when one fires, or passes the canary once its bars are done (starting
the watch its gate declares); with a watch after a full promotion in progress
(`tradeloom.live.promotion_watch`) it reads the watch's rules and rolls the promotion
back when one fires, or ends the watch once its bars are done; otherwise it promotes a
challenger whose gate passed (`tradeloom.live.promotion`). One promotion at a time: no
gate promotes while a canary or a watch is in progress.

`promotion_problems` checks an operator's request against the journal before it is sent
(``tradeloom promote``, the console's API), and `promotion_choices` tells the console's
run page which requests would pass that check now (its promote and rollback buttons).

`PromotionStage.asked` answers an operator's ``promote`` or ``rollback`` request (the
mailbox's, `tradeloom.engine.control.request_promote`, ``request_rollback``) at a bar
boundary: ``promote NAME`` promotes challenger NAME (through its canary when its gate
declares one) or, when NAME's canary is in progress, makes it the full champion now;
``rollback`` rolls the canary in progress back, or the watched promotion. A request that
cannot be carried out is journaled as ``model_swap_refused`` with why, in one line. The
runner commits and then marks the request done, so a restart finds it answered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradeloom.live.canary import (
    CHAMPION_SHADOW,
    Canary,
    Shadowing,
    Watched,
    fired,
    journal_lost_twin,
    pass_canary,
    restore_canary,
    roll_back,
)
from tradeloom.live.challengers import ShadowBooks, promoted_by, promotion_request
from tradeloom.live.model_swap import SwapRefused, journal_refusal
from tradeloom.live.promotion_watch import (
    Watch,
    pass_watch,
    restore_watch,
    roll_back_watch,
    watch_after,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pandas as pd

    from tradeloom.engine.control import ControlRequest
    from tradeloom.engine.events import Recorder
    from tradeloom.live.journal_state import JournalState
    from tradeloom.live.promotion import Member
    from tradeloom.live.services import RunFiles
    from tradeloom.live.session import LiveSession
    from tradeloom.plugins.manager import Plugins

__all__ = [
    "PromotionChoices",
    "PromotionStage",
    "open_stage",
    "promotion_choices",
    "promotion_problems",
    "refuse_request",
    "review_stage",
    "stage_in_progress",
]


@dataclass
class PromotionStage:
    """The run's challengers' promotions and the canary in progress.

    Attributes:
        books: The challengers in shadow (and the champion's, during a canary).
        files: The run's files (the strategy in force, the run directory).
        plugins: The running plugins (a swap builds its model with them).
        recorder: The run's recorder.
        shadowing: What a shadow of the run is built from.
        canary: The canary in progress (None: none).
        member: The portfolio file's strategy whose challengers these are (None: the
            strategy run alone's); its stage never has a canary or a watch.
        watch: The watch after a full promotion in progress (None: none).
    """

    books: ShadowBooks
    files: RunFiles
    plugins: Plugins
    recorder: Recorder
    shadowing: Shadowing
    canary: Canary | None = None
    member: Member | None = None
    watch: Watch | None = None

    def after_bar(self, session: LiveSession) -> None:
        """Read the canary's or the watch's rules at the close of the bar ``session``
        just ran, or promote a challenger whose gate passed (`tradeloom.live.promotion`)."""
        stage = self.canary or self.watch
        if stage is None:
            self._promote_passed(session)
            return
        journal_lost_twin(stage, session, self.recorder)
        stage.observe(session)
        self.review(session)

    def decide_again(self, session: LiveSession) -> None:
        """Decide again, after a restart, what `after_bar` decided at the last bar's close
        (its row read from the journal): a kill -9 between a decision and its commit
        decides the same at the same bar, the canary's rules or a gate's standing
        ``promote`` verdict."""
        if self.canary is None and self.watch is None:
            self._promote_passed(session)
        else:
            self.review(session)

    def _promote_passed(self, session: LiveSession) -> None:
        from tradeloom.live import promotion  # the module's: tests stand in for it

        self._take(
            promotion.promote_passed(
                self.books,
                self.files,
                self.plugins,
                session,
                self.recorder,
                self.shadowing,
                self.member,
            )
        )

    def _take(self, stage: Canary | Watch | None) -> None:
        """Hold the stage a promotion started (a canary, or a watch when it has none)."""
        if isinstance(stage, Watch):
            self.watch = stage
        else:
            self.canary = stage

    def review(self, session: LiveSession) -> None:
        """Read the canary's or the watch's rules at the last bar's close: roll back when
        one fires, pass it when its bars are done (a restart reads them again at its last
        bar: a kill -9 between a decision and its commit decides the same at the same bar)."""
        canary, watch = self.canary, self.watch
        if canary is not None:

            def back(reason: str, rule: tuple[str, float, float]) -> None:
                if roll_back(
                    canary, self.books, self.files, self.plugins, session, self.recorder,
                    by="canary", reason=reason, rule=rule,
                ):  # fmt: skip
                    self.canary = None

            def passed(bars: int) -> None:
                reason = f"{bars} bars at {canary.started.fraction:g} of the size, no rule fired"
                self._pass_canary(canary, session, by="canary", reason=reason)

            review_stage(canary, session, roll_back=back, pass_=passed)
        elif watch is not None:

            def back_watch(reason: str, rule: tuple[str, float, float]) -> None:
                if roll_back_watch(
                    watch, self.files, self.plugins, session, self.recorder,
                    by="watch", reason=reason, rule=rule,
                ):  # fmt: skip
                    self.watch = None
                self.books.journal.flush()

            def passed_watch(bars: int) -> None:
                pass_watch(watch, session, self.recorder)
                self.watch = None
                self.books.journal.flush()

            review_stage(watch, session, roll_back=back_watch, pass_=passed_watch)

    def _pass_canary(
        self, canary: Canary, session: LiveSession, *, by: str, reason: str, request: str = ""
    ) -> None:
        """Pass ``canary`` and start the watch its gate declared, in one commit."""
        books = self.books
        pass_canary(
            canary, books, session, self.recorder, by=by, reason=reason, request=request,
            commit=False,
        )  # fmt: skip
        self.canary = None
        self.watch = watch_after(
            canary, session, self.recorder, self.shadowing, by=by, run_dir=self.files.run_dir
        )
        books.journal.flush()

    def in_progress(self) -> str | None:
        """Why no other promotion and no model swap is taken now (`stage_in_progress`);
        None: no canary or watch is in progress."""
        canary, watch = self.canary, self.watch
        return stage_in_progress(
            None if canary is None else canary.name, None if watch is None else watch.name
        )

    def asked(self, request: ControlRequest, session: LiveSession) -> None:
        """Carry out an operator's ``promote`` or ``rollback`` request, or journal why
        not (``model_swap_refused``); the caller commits."""
        from tradeloom.live import promotion

        file = "" if request.path is None else request.path.name
        canary, watch = self.canary, self.watch
        by, reason = request.by, request.reason
        strategy = "" if self.member is None else self.member.strategy
        if request.action == "rollback":
            if watch is not None and canary is None:
                if roll_back_watch(
                    watch, self.files, self.plugins, session, self.recorder,
                    by=by, reason=reason, request=file,
                ):  # fmt: skip
                    self.watch = None
            elif canary is None:
                why = "no canary or watch is in progress"
                refuse_request(self.recorder, session, request, why, strategy)
            elif roll_back(
                canary,
                self.books,
                self.files,
                self.plugins,
                session,
                self.recorder,
                by=by,
                reason=reason,
                request=file,
            ):
                self.canary = None
            return
        name = request.challenger
        shadows = [s.name for s in self.books.shadows if s.name != CHAMPION_SHADOW]
        if canary is not None and canary.name == name:
            self._pass_canary(canary, session, by=by, reason=reason, request=file)
        elif (busy := self.in_progress()) is not None:
            refuse_request(self.recorder, session, request, busy, strategy)
        elif name not in shadows:
            held = ", ".join(shadows) or "none"
            why = f"no challenger {name} in shadow (in shadow: {held})"
            refuse_request(self.recorder, session, request, why, strategy)
        else:
            stage = promotion.promote(
                self.books,
                self.files,
                self.plugins,
                session,
                self.recorder,
                self.shadowing,
                name=name,
                by=by,
                reason=reason,
                request=promotion_request(name, file),
                member=self.member,
            )
            self._take(stage)


def review_stage(
    stage: Watched[Any],
    session: LiveSession,
    *,
    roll_back: Callable[[str, tuple[str, float, float]], None],
    pass_: Callable[[int], None],
) -> None:
    """Read the rules of ``stage`` (a canary or a watch) at the last bar's close: call
    ``roll_back(reason, rule)`` when one fires (``rule``: its name, figure and limit),
    or ``pass_(bars)`` when its bars are done; nothing once a rollback was refused
    (``stuck``: the run is halted)."""
    if stage.stuck:
        return
    figures = stage.figures(session)
    rule = fired(stage.rules, figures, stage.parity_gap(session))
    bars = len(session.history) - 1 - stage.started.bar
    if rule is not None:
        name, figure, limit = rule
        roll_back(f"{name}: {figure:.6g} past the limit {limit:.6g} after {bars} bars", rule)
    elif bars >= stage.started.bars:
        pass_(bars)


def stage_in_progress(canary: str | None, watch: str | None) -> str | None:
    """Why no promotion (but the canary's own to the full champion) and no model swap is
    taken now: the canary of challenger ``canary``, or the watch after challenger
    ``watch``'s full promotion, is in progress; None: neither is. The one wording of
    ``tradeloom promote``'s check, the run's refusal of a request and of a swap."""
    if canary is not None:
        return f"the canary of {canary} is in progress; promote or roll it back first"
    if watch is not None:
        return f"the watch of {watch}'s promotion is in progress; roll it back or wait for its end"
    return None


def refuse_request(
    recorder: Recorder,
    session: LiveSession,
    request: ControlRequest,
    why: str,
    strategy: str = "",
) -> None:
    """Journal an operator's ``promote`` or ``rollback`` request refused at the last bar
    (``model_swap_refused``: ``{action} refused: {why}``; ``strategy``: the portfolio
    file's strategy it was asked for); the caller commits."""
    file = "" if request.path is None else request.path.name
    source = "rollback" if request.action == "rollback" else f"challenger {request.challenger}"
    refused = SwapRefused(source, (f"{request.action} refused: {why}",))
    bar = len(session.history) - 1
    journal_refusal(
        recorder,
        bar,
        refused,
        by=request.by,
        reason=request.reason,
        request=file,
        strategy=strategy,
    )


def open_stage(
    books: ShadowBooks | None,
    state: JournalState | None,
    files: RunFiles,
    plugins: Plugins,
    session: LiveSession,
    recorder: Recorder,
    shadowing: Shadowing,
) -> PromotionStage | None:
    """Return the run's promotion stage (None: it has no challengers), with the journal's
    canary in progress taken up after a restart (`restore_canary`) and the last bar's
    decision made again (`PromotionStage.decide_again`).

    Args:
        books: The challengers in shadow (None: none; a restart with a canary in
            progress passes empty books, which the champion's shadow joins).
        state: The journal, read (None: a new run, or a reload's first challengers).
    """
    if books is None:
        return None
    stage = PromotionStage(books, files, plugins, recorder, shadowing)
    if state is None:
        return stage
    stage.canary = restore_canary(state, books, files, plugins, session, shadowing)
    stage.watch = restore_watch(state, files, plugins, session, shadowing)
    last = len(session.history) - 1
    # the model changed at the last bar (a promotion, a rollback, by hand too) or a
    # canary ended there: its close's decision was committed, one promotion a bar
    swapped = state.swapped is not None and state.swapped.bar == last
    ended = bool(state.scales) and state.scales[-1][0] == last
    if stage.canary is not None or stage.watch is not None or not (swapped or ended):
        stage.decide_again(session)
    return stage


def _entries(run_dir: Path, document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The run's ``challengers:`` entries by their run-wide name: a portfolio file's
    strategies' as ``STRATEGY/NAME`` (each strategy's document as the run started it)."""
    from tradeloom.journal import journal_path, read_frames
    from tradeloom.live.challengers import scoped

    if "strategies" not in document:
        listed = [(document, "")]
    else:
        rows = read_frames(journal_path(run_dir), ["strategy_at_start"])["strategy_at_start"]
        listed = [(r["document"], str(r["strategy"])) for _, r in rows.iterrows()]
    return {
        scoped(strategy, str(e.get("name"))): e
        for doc, strategy in listed
        if isinstance(doc, dict)
        for e in doc.get("challengers") or ()
        if isinstance(e, dict)
    }


def promotion_problems(run_dir: Path, challenger: str | None) -> list[str]:
    """Return why the run in ``run_dir`` would refuse to promote ``challenger`` (None: to
    roll its canary or its watched promotion back), as far as its journal tells here
    (the running process checks again at the bar boundary).

    Raises:
        UserError: The journal records no strategy document.
    """
    return _Promotions.read(run_dir).problems(challenger)


@dataclass(frozen=True)
class PromotionChoices:
    """What an operator may ask of a run's promotions now, as `promotion_problems` judges
    it (the console's promote and rollback buttons).

    Attributes:
        promote: The challengers a promotion of would not be refused, in the strategy's
            order (a canary's own: it becomes the full champion).
        rollback: A canary, or a watch after a full promotion, is in progress: a
            rollback would not be refused.
        in_force: The model that decides, in words: the last model swap's (a promoted
            challenger's by its name, the champion's back from a canary or a watch),
            with its bar and who asked; or the strategy's own. A portfolio file's run
            names each strategy's (``alpha: ...; beta: ...``).
    """

    promote: tuple[str, ...]
    rollback: bool
    in_force: str


def promotion_choices(run_dir: Path) -> PromotionChoices:
    """Return the promotions and the rollback the run in ``run_dir`` would take now, by
    its journal read once (`promotion_problems` for each of its challengers)."""
    from tradeloom.errors import UserError

    promotions = _Promotions.read(run_dir)
    try:
        entries = promotions.entries()
    except UserError:  # no strategy document journaled: no challenger to name
        entries = ({}, False)
    promote = tuple(n for n in entries[0] if not promotions.problems(n, entries))
    rollback = not promotions.problems(None)
    return PromotionChoices(promote, rollback, promotions.in_force)


@dataclass(frozen=True)
class _Promotions:
    """What a run's journal tells of its promotions: the canary or the watch in
    progress, the challengers dropped and those promoted."""

    run_dir: Path
    in_canary: str | None
    in_watch: str | None
    dropped: frozenset[str]
    promoted: frozenset[str]
    in_force: str

    @classmethod
    def read(cls, run_dir: Path) -> _Promotions:
        from tradeloom.journal import journal_path, read_frames

        kinds = ["challenger_failed", "model_swapped", "canary_started", "canary_passed",
                 "canary_rolled_back", "watch_started", "watch_passed",
                 "promotion_rolled_back", "strategy_at_start"]  # fmt: skip
        frames = read_frames(journal_path(run_dir), kinds)
        started = frames["canary_started"]
        ended = len(frames["canary_passed"]) + len(frames["canary_rolled_back"])
        in_canary = str(started["challenger"].iloc[-1]) if len(started) > ended else None
        watched = frames["watch_started"]
        ended = len(frames["watch_passed"]) + len(frames["promotion_rolled_back"])
        in_watch = str(watched["challenger"].iloc[-1]) if len(watched) > ended else None
        swapped = frames["model_swapped"]
        return cls(
            run_dir,
            in_canary,
            in_watch,
            frozenset(frames["challenger_failed"]["challenger"].astype(str)),
            promoted_by(swapped["request"]),
            _in_force(swapped, frames),
        )

    def entries(self) -> tuple[dict[str, dict[str, Any]], bool]:
        """Return the run's ``challengers:`` entries by their run-wide name (a portfolio
        file's strategies' as ``STRATEGY/NAME``, `_entries`), and whether the run is a
        portfolio file's.

        Raises:
            UserError: The journal records no strategy document.
        """
        from tradeloom.live.model_swap import in_force_document

        _, document = in_force_document(self.run_dir)
        return _entries(self.run_dir, document), "strategies" in document

    def problems(
        self,
        challenger: str | None,
        entries: tuple[dict[str, dict[str, Any]], bool] | None = None,
    ) -> list[str]:
        """`promotion_problems` (``entries``: `entries`, when read already)."""
        in_canary, in_watch = self.in_canary, self.in_watch
        if challenger is None:
            stage = in_canary is not None or in_watch is not None
            return [] if stage else ["rollback: no canary or watch is in progress"]
        if in_canary == challenger:
            return []
        if (why := stage_in_progress(in_canary, in_watch)) is not None:
            return [f"--challenger: {why}"]
        named, portfolio = self.entries() if entries is None else entries
        if challenger not in named:
            held = ", ".join(named) or "none"
            if portfolio:
                return [
                    f"--challenger: the portfolio file's strategies have no challenger "
                    f"{challenger} (they have: {held}; name one STRATEGY/NAME)"
                ]
            return [f"--challenger: the strategy has no challenger {challenger} (it has: {held})"]
        model = named[challenger].get("model")
        saved = isinstance(model, dict) and (
            model.get("kind") == "saved" or "from_run" in model or "path" in model
        )
        if not saved:
            return [
                f"--challenger: challenger {challenger}'s model trains in the run; a running "
                "run swaps in a saved model only (from_run: or path:)"
            ]
        if challenger in self.dropped or challenger in self.promoted:
            done = "was dropped" if challenger in self.dropped else "was promoted already"
            return [f"--challenger: challenger {challenger} {done}; it is no longer in shadow"]
        return []


def _in_force(swapped: pd.DataFrame, frames: Mapping[str, pd.DataFrame]) -> str:
    """The model in force, in words, by the journal's ``model_swapped`` rows (and the
    rollback row a rollback's swap shares its bar with, in ``frames``): a portfolio
    file's run's (its ``strategy_at_start`` rows) per strategy, ``STRATEGY: ...; ...``."""
    starts = frames["strategy_at_start"]
    members = list(dict.fromkeys(starts["strategy"].astype(str))) if len(starts) else []
    strategies = swapped["strategy"].astype(str) if len(swapped) else None
    if not members:
        own = swapped if strategies is None else swapped[strategies == ""]
        return _model_in_force(own, frames)
    return "; ".join(
        f"{member}: "
        + _model_in_force(swapped if strategies is None else swapped[strategies == member], frames)
        for member in members
    )


def _model_in_force(swapped: pd.DataFrame, frames: Mapping[str, pd.DataFrame]) -> str:
    """The model in force of one strategy, by its ``model_swapped`` rows."""
    if not len(swapped):
        return "the strategy's own model"
    last = swapped.iloc[-1]
    bar = int(last["bar"])
    name = next(iter(promoted_by([last["request"]])), None)
    if name is not None:
        what = f"challenger {name}'s model"
    elif (back := _rolled_back(frames, "canary_rolled_back", bar)) is not None:
        what = f"the champion's model, back from challenger {back}'s canary"
    elif (back := _rolled_back(frames, "promotion_rolled_back", bar)) is not None:
        what = f"the previous champion's model, back from challenger {back}'s watch"
    else:
        what = str(last["source"])
    return f"{what}, since bar {bar} (by {last['by']})"


def _rolled_back(frames: Mapping[str, pd.DataFrame], kind: str, bar: int) -> str | None:
    """The challenger a ``kind`` row (a canary's or a watch's rollback) at ``bar`` names."""
    rows = frames[kind]
    back = rows[rows["bar"] == bar] if len(rows) else rows
    return str(back["challenger"].iloc[-1]) if len(back) else None
