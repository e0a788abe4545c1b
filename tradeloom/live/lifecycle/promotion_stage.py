"""The run's promotions at each bar's close and by hand: the gate's, the canary's, an operator's.

`PromotionStage.after_bar` runs after the challengers stepped on the bar the run just
closed: with a canary in progress (`tradeloom.live.lifecycle.canary`) it reads the rollback rules
and rolls back when one fires, or passes the canary once its bars are done (starting
the watch its gate declares); with a watch after a full promotion in progress
(`tradeloom.live.lifecycle.promotion_watch`) it reads the watch's rules and rolls the promotion
back when one fires, or ends the watch once its bars are done; otherwise it promotes a
challenger whose gate passed (`tradeloom.live.lifecycle.promotion`). One promotion at a time: no
gate promotes while a canary or a watch is in progress.

`promotion_problems` checks an operator's request against the journal before it is sent
(``tradeloom promote``, the console's API), by the rules the process applies when the
request arrives (`tradeloom.live.lifecycle.rules`, over `PromotionStage.lifecycle`
there), and `promotion_choices` tells the console's run page which requests would pass
that check now (its promote and rollback buttons).

`PromotionStage.asked` answers an operator's ``promote`` or ``rollback`` request (the
mailbox's, `tradeloom.engine.control.request_promote`, ``request_rollback``) at a bar
boundary: ``promote NAME`` promotes challenger NAME (through its canary when its gate
declares one) or, when NAME's canary is in progress, makes it the full champion now;
``rollback`` rolls the canary in progress back, or the watched promotion. A request that
cannot be carried out is journaled as ``model_swap_refused`` with why, in one line. The
runner commits and then marks the request done, so a restart finds it answered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradeloom.live.lifecycle.canary import Canary, pass_canary, restore_canary
from tradeloom.live.lifecycle.challengers import ShadowBooks, promotion_request
from tradeloom.live.lifecycle.model_swap import SwapRefused, journal_refusal
from tradeloom.live.lifecycle.promotion_watch import Watch, pass_watch, restore_watch, watch_after
from tradeloom.live.lifecycle.rules import (
    DROPPED,
    IN_SHADOW,
    LIFECYCLE_KINDS,
    Lifecycle,
    in_force_of,
    lifecycle_of_frames,
    promotion_refusal,
    read_lifecycle,
    rollback_refusal,
    scoped,
    stage_in_progress,
)
from tradeloom.live.lifecycle.watched import Shadowing, Watched, fired, journal_lost_twin, roll_back

if TYPE_CHECKING:
    import pandas as pd

    from tradeloom.engine.control_files import ControlRequest
    from tradeloom.engine.events import Recorder
    from tradeloom.live.lifecycle.promotion import Member
    from tradeloom.live.recovery.journal_state import JournalState
    from tradeloom.live.tick.services import RunFiles
    from tradeloom.live.tick.session import LiveSession
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
        just ran, or promote a challenger whose gate passed
        (`tradeloom.live.lifecycle.promotion`)."""
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
        from tradeloom.live.lifecycle import promotion  # the module's: tests stand in for it

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
                    canary, self.files, self.plugins, session, self.recorder,
                    by="canary", reason=reason, rule=rule, books=self.books,
                ):  # fmt: skip
                    self.canary = None

            def passed(bars: int) -> None:
                reason = f"{bars} bars at {canary.started.fraction:g} of the size, no rule fired"
                self._pass_canary(canary, session, by="canary", reason=reason)

            review_stage(canary, session, roll_back=back, pass_=passed)
        elif watch is not None:

            def back_watch(reason: str, rule: tuple[str, float, float]) -> None:
                if roll_back(
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

    def lifecycle(self, session: LiveSession) -> Lifecycle:
        """Return what the lifecycle's refusals read now (`tradeloom.live.lifecycle.rules`):
        the stage in progress, the model in force in ``session``, and each challenger of
        the strategy in force in shadow or gone (as the journal tells a command)."""
        strategy = "" if self.member is None else self.member.strategy
        config = self.files.config if self.member is None else self.member.config
        shadowed = {s.name for s in self.books.shadows}
        states = {}
        for entry in config.challengers:
            name = scoped(strategy, entry.name)
            states[name] = IN_SHADOW if name in shadowed else self.books.gone.get(name, DROPPED)
        canary, watch = self.canary, self.watch
        return Lifecycle(
            None if canary is None else canary.name,
            None if watch is None else watch.name,
            {strategy: in_force_of(session)},
            states,
            portfolio=self.member is not None,
        )

    def asked(
        self, request: ControlRequest, session: LiveSession, lifecycle: Lifecycle | None = None
    ) -> None:
        """Carry out an operator's ``promote`` or ``rollback`` request, or journal why
        not (``model_swap_refused``: `promotion_refusal`, `rollback_refusal` over
        ``lifecycle``, by default `lifecycle`'s); the caller commits."""
        from tradeloom.live.lifecycle import promotion

        file = "" if request.path is None else request.path.name
        canary, watch = self.canary, self.watch
        by, reason = request.by, request.reason
        strategy = "" if self.member is None else self.member.strategy
        now = self.lifecycle(session) if lifecycle is None else lifecycle
        if request.action == "rollback":
            if (why := rollback_refusal(now)) is not None:
                refuse_request(self.recorder, session, request, why, strategy)
            elif watch is not None and canary is None:
                if roll_back(
                    watch, self.files, self.plugins, session, self.recorder,
                    by=by, reason=reason, request=file,
                ):  # fmt: skip
                    self.watch = None
            elif canary is not None and roll_back(
                canary,
                self.files,
                self.plugins,
                session,
                self.recorder,
                by=by,
                reason=reason,
                request=file,
                books=self.books,
            ):
                self.canary = None
            return
        name = request.challenger or ""
        if (why := promotion_refusal(now, name)) is not None:
            refuse_request(self.recorder, session, request, why, strategy)
        elif canary is not None and canary.name == name:
            self._pass_canary(canary, session, by=by, reason=reason, request=file)
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
    gap = stage.parity_gap(session)
    rule = fired(stage.rules, stage.figures(session, judged=True), gap)
    if rule is not None:  # the row's figures, the whole book's (the same rule fires)
        rule = fired(stage.rules, stage.figures(session), gap)
    bars = len(session.history) - 1 - stage.started.bar
    if rule is not None:
        name, figure, limit = rule
        roll_back(f"{name}: {figure:.6g} past the limit {limit:.6g} after {bars} bars", rule)
    elif bars >= stage.started.bars:
        pass_(bars)


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
        time=session.history.time(bar),
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


def promotion_problems(run_dir: Path, challenger: str | None) -> list[str]:
    """Return why the run in ``run_dir`` would refuse to promote ``challenger`` (None: to
    roll its canary or its watched promotion back), as far as its journal tells here, by
    the rules the running process applies (`tradeloom.live.lifecycle.rules`; the process
    checks again at the bar boundary): a stage in progress, no such challenger or one no
    longer in shadow, then its model against the model in force (`model_precheck`: its
    label, its calibration, a saved file, the model in force already; a champion a
    canary's or a watch's rollback could not swap back in).

    Raises:
        UserError: The journal records no strategy document.
    """
    from tradeloom.live.lifecycle.model_swap import in_force_document, model_precheck

    lifecycle = read_lifecycle(run_dir)
    if challenger is None:
        why = rollback_refusal(lifecycle)
        return [] if why is None else [f"rollback: {why}"]
    if lifecycle.canary is None and lifecycle.watch is None:
        _, document = in_force_document(run_dir)  # refused when the journal has none
    why = promotion_refusal(lifecycle, challenger)
    if why is not None:
        return [f"--challenger: {why}"]
    if lifecycle.canary == challenger:
        return []  # its model is in force: the canary's end makes it the full champion
    _, document = in_force_document(run_dir)
    entry = _entry(run_dir, document, challenger)
    gate = entry.get("promote_when")
    staged = isinstance(gate, Mapping) and any(gate.get(k) is not None for k in ("canary", "watch"))
    strategy = challenger.split("/", 1)[0] if lifecycle.portfolio else None
    problems = model_precheck(run_dir, _section(entry), strategy, keep_champion=staged)
    return [f"--challenger: {challenger}: {problem}" for problem in problems]


def _entry(run_dir: Path, document: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The ``challengers:`` entry of run-wide name ``name`` ({}: none): a portfolio file's
    strategies' as their run started them (``strategy_at_start``)."""
    from tradeloom.journal import journal_path, read_frames

    listed: list[tuple[object, str]] = [(document, "")]
    if "strategies" in document:
        rows = read_frames(journal_path(run_dir), ["strategy_at_start"])["strategy_at_start"]
        listed = [(r["document"], str(r["strategy"])) for _, r in rows.iterrows()]
    for doc, strategy in listed:
        for entry in doc.get("challengers") or () if isinstance(doc, Mapping) else ():
            if isinstance(entry, Mapping) and scoped(strategy, str(entry.get("name"))) == name:
                return dict(entry)
    return {}


def _section(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A challenger's ``model`` section as its promotion swaps it in (`tradeloom.live.
    promotion`: a saved one's implied ``kind`` left out)."""
    section = entry.get("model")
    if not isinstance(section, Mapping):
        return {}
    return {k: v for k, v in section.items() if k != "kind" or v != "saved"}


@dataclass(frozen=True)
class PromotionChoices:
    """What an operator may ask of a run's promotions now, as the journal tells it (the
    console's promote and rollback buttons; `promotion_problems` checks the model too).

    Attributes:
        promote: The challengers a promotion of would not be refused, in the strategy's
            order (a canary's own: it becomes the full champion).
        rollback: A canary, or a watch after a full promotion, is in progress: a
            rollback would not be refused.
        in_force: The model that decides, in words (`tradeloom.engine.model_in_force`):
            the last model swap's (a promoted challenger's by its name, the champion's
            back from a canary or a watch), with its bar, who asked and its hash; or the
            strategy's own. A portfolio file's run names each strategy's (``alpha: ...;
            beta: ...``).
    """

    promote: tuple[str, ...]
    rollback: bool
    in_force: str


def promotion_choices(run_dir: Path) -> PromotionChoices:
    """Return the promotions and the rollback the run in ``run_dir`` would take now, by
    its journal read once (`promotion_refusal` for each of its challengers)."""
    from tradeloom.journal import journal_path, read_frames

    frames = read_frames(journal_path(run_dir), list(LIFECYCLE_KINDS))
    lifecycle = lifecycle_of_frames(frames)
    promote = tuple(n for n in lifecycle.challengers if promotion_refusal(lifecycle, n) is None)
    rollback = rollback_refusal(lifecycle) is None
    return PromotionChoices(promote, rollback, _in_force(frames))


def _in_force(frames: Mapping[str, pd.DataFrame]) -> str:
    """The model in force, in words, by the journal's frames (`models_in_force`): a
    portfolio file's run's per strategy, ``STRATEGY: ...; ...``."""
    from tradeloom.engine.model_in_force import models_in_force

    starts = frames["strategy_at_start"]
    if len(starts):
        sections = {str(r["strategy"]): _model_of(r["document"]) for _, r in starts.iterrows()}
    else:
        reloads, started = frames["config_reloaded"], frames["run_started"]
        document = (
            reloads["document"].iloc[-1]
            if len(reloads)
            else (started["document"].iloc[0] if len(started) else None)
        )
        sections = {"": _model_of(document)}

    def records(kind: str) -> list[dict[str, Any]]:
        return list(frames[kind].to_dict("records"))

    words = models_in_force(
        records("model_swapped"),
        sections,
        records("canary_rolled_back"),
        records("promotion_rolled_back"),
    )
    if list(words) == [""]:
        return words[""]
    return "; ".join(f"{name}: {said}" for name, said in words.items())


def _model_of(document: object) -> object:
    return document.get("model") if isinstance(document, Mapping) else None
