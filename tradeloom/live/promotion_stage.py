"""The run's promotions at each bar's close and by hand: the gate's, the canary's, an operator's.

`PromotionStage.after_bar` runs after the challengers stepped on the bar the run just
closed: with a canary in progress (`tradeloom.live.canary`) it reads the rollback rules
and rolls back when one fires, or passes the canary once its bars are done; otherwise it
promotes a challenger whose gate passed (`tradeloom.live.promotion`). One promotion at a
time: no gate promotes while a canary is in progress.

`promotion_problems` checks an operator's request against the journal before it is sent
(``tradeloom promote``, the console's API), and `promotion_choices` tells the console's
run page which requests would pass that check now (its promote and rollback buttons).

`PromotionStage.asked` answers an operator's ``promote`` or ``rollback`` request (the
mailbox's, `tradeloom.engine.control.request_promote`, ``request_rollback``) at a bar
boundary: ``promote NAME`` promotes challenger NAME (through its canary when its gate
declares one) or, when NAME's canary is in progress, makes it the full champion now;
``rollback`` rolls the canary in progress back. A request that cannot be carried out is
journaled as ``model_swap_refused`` with why, in one line. The runner commits and then
marks the request done, so a restart finds it answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradeloom.live.canary import (
    CHAMPION_SHADOW,
    Canary,
    Shadowing,
    fired,
    pass_canary,
    restore_canary,
    roll_back,
)
from tradeloom.live.challengers import ShadowBooks, promoted_by, promotion_request
from tradeloom.live.model_swap import SwapRefused, journal_refusal

if TYPE_CHECKING:
    import pandas as pd

    from tradeloom.engine.control import ControlRequest
    from tradeloom.engine.events import Recorder
    from tradeloom.live.journal_state import JournalState
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
    """

    books: ShadowBooks
    files: RunFiles
    plugins: Plugins
    recorder: Recorder
    shadowing: Shadowing
    canary: Canary | None = None

    def after_bar(self, session: LiveSession) -> None:
        """Read the canary's rules at the close of the bar ``session`` just ran, or
        promote a challenger whose gate passed (`tradeloom.live.promotion`)."""
        canary = self.canary
        if canary is None:
            self._promote_passed(session)
            return
        canary.observe(session)
        self.review(session)

    def decide_again(self, session: LiveSession) -> None:
        """Decide again, after a restart, what `after_bar` decided at the last bar's close
        (its row read from the journal): a kill -9 between a decision and its commit
        decides the same at the same bar, the canary's rules or a gate's standing
        ``promote`` verdict."""
        if self.canary is None:
            self._promote_passed(session)
        else:
            self.review(session)

    def _promote_passed(self, session: LiveSession) -> None:
        from tradeloom.live import promotion  # the module's: tests stand in for it

        self.canary = promotion.promote_passed(
            self.books, self.files, self.plugins, session, self.recorder, self.shadowing
        )

    def review(self, session: LiveSession) -> None:
        """Read the canary's rules at the last bar's close: roll back when one fires, pass
        it when its bars are done (a restart reads them again at its last bar: a kill -9
        between a decision and its commit decides the same at the same bar)."""
        canary = self.canary
        if canary is None or canary.stuck:
            return
        figures = canary.figures(session)
        rule = fired(canary.rules, figures)
        bars = len(session.history) - 1 - canary.started.bar
        if rule is not None:
            name, figure, limit = rule
            reason = f"{name}: {figure:.6g} past the limit {limit:.6g} after {bars} bars"
            if roll_back(
                canary,
                self.books,
                self.files,
                self.plugins,
                session,
                self.recorder,
                by="canary",
                reason=reason,
                rule=rule,
            ):
                self.canary = None
        elif bars >= canary.started.bars:
            reason = f"{bars} bars at {canary.started.fraction:g} of the size, no rule fired"
            pass_canary(canary, self.books, session, self.recorder, by="canary", reason=reason)
            self.canary = None

    def asked(self, request: ControlRequest, session: LiveSession) -> None:
        """Carry out an operator's ``promote`` or ``rollback`` request, or journal why
        not (``model_swap_refused``); the caller commits."""
        from tradeloom.live import promotion

        file = "" if request.path is None else request.path.name
        canary = self.canary
        by, reason = request.by, request.reason
        if request.action == "rollback":
            if canary is None:
                refuse_request(self.recorder, session, request, "no canary is in progress")
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
            pass_canary(
                canary, self.books, session, self.recorder, by=by, reason=reason, request=file
            )
            self.canary = None
        elif canary is not None:
            why = f"the canary of {canary.name} is in progress: promote or roll it back first"
            refuse_request(self.recorder, session, request, why)
        elif name not in shadows:
            held = ", ".join(shadows) or "none"
            why = f"no challenger {name} in shadow (in shadow: {held})"
            refuse_request(self.recorder, session, request, why)
        else:
            self.canary = promotion.promote(
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
            )


def refuse_request(
    recorder: Recorder, session: LiveSession, request: ControlRequest, why: str
) -> None:
    """Journal an operator's ``promote`` or ``rollback`` request refused at the last bar
    (``model_swap_refused``: ``{action} refused: {why}``); the caller commits."""
    file = "" if request.path is None else request.path.name
    source = "rollback" if request.action == "rollback" else f"challenger {request.challenger}"
    refused = SwapRefused(source, (f"{request.action} refused: {why}",))
    bar = len(session.history) - 1
    journal_refusal(recorder, bar, refused, by=request.by, reason=request.reason, request=file)


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
    last = len(session.history) - 1
    # the model changed at the last bar (a promotion, a rollback, by hand too) or a
    # canary ended there: its close's decision was committed, one promotion a bar
    swapped = state.swapped is not None and state.swapped.bar == last
    ended = bool(state.scales) and state.scales[-1][0] == last
    if stage.canary is not None or not (swapped or ended):
        stage.decide_again(session)
    return stage


def promotion_problems(run_dir: Path, challenger: str | None) -> list[str]:
    """Return why the run in ``run_dir`` would refuse to promote ``challenger`` (None: to
    roll its canary back), as far as its journal tells here (the running process checks
    again at the bar boundary).

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
        rollback: A canary is in progress: a rollback would not be refused.
        in_force: The model that decides, in words: the last model swap's (a promoted
            challenger's by its name), with its bar and who asked; or the strategy's own.
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
        entries = []
    names = dict.fromkeys(str(e.get("name")) for e in entries)
    promote = tuple(n for n in names if not promotions.problems(n, entries))
    return PromotionChoices(promote, promotions.in_canary is not None, promotions.in_force)


@dataclass(frozen=True)
class _Promotions:
    """What a run's journal tells of its promotions: the canary in progress, the
    challengers dropped and those promoted."""

    run_dir: Path
    in_canary: str | None
    dropped: frozenset[str]
    promoted: frozenset[str]
    in_force: str

    @classmethod
    def read(cls, run_dir: Path) -> _Promotions:
        from tradeloom.journal import journal_path, read_frames

        kinds = ["challenger_failed", "model_swapped", "canary_started", "canary_passed",
                 "canary_rolled_back"]  # fmt: skip
        frames = read_frames(journal_path(run_dir), kinds)
        started = frames["canary_started"]
        ended = len(frames["canary_passed"]) + len(frames["canary_rolled_back"])
        in_canary = str(started["challenger"].iloc[-1]) if len(started) > ended else None
        swapped = frames["model_swapped"]
        return cls(
            run_dir,
            in_canary,
            frozenset(frames["challenger_failed"]["challenger"].astype(str)),
            promoted_by(swapped["request"]),
            _in_force(swapped, frames["canary_rolled_back"]),
        )

    def entries(self) -> list[dict[str, Any]]:
        """Return the ``challengers:`` entries of the strategy the run trades under.

        Raises:
            UserError: The journal records no strategy document.
        """
        from tradeloom.live.model_swap import in_force_document

        _, document = in_force_document(self.run_dir)
        return [e for e in document.get("challengers") or () if isinstance(e, dict)]

    def problems(
        self, challenger: str | None, entries: list[dict[str, Any]] | None = None
    ) -> list[str]:
        """`promotion_problems` (``entries``: `entries`, when read already)."""
        in_canary = self.in_canary
        if challenger is None:
            return [] if in_canary is not None else ["rollback: no canary is in progress"]
        if in_canary is not None:
            if in_canary == challenger:
                return []
            return [
                f"--challenger: the canary of {in_canary} is in progress; promote or roll it "
                "back first"
            ]
        entries = self.entries() if entries is None else entries
        names = [str(e.get("name")) for e in entries]
        if challenger not in names:
            held = ", ".join(names) or "none"
            return [f"--challenger: the strategy has no challenger {challenger} (it has: {held})"]
        model = next(e.get("model") for e in entries if e.get("name") == challenger)
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


def _in_force(swapped: pd.DataFrame, rolled_back: pd.DataFrame) -> str:
    """The model in force, in words, by the journal's ``model_swapped`` rows (and the
    ``canary_rolled_back`` row a rollback's swap shares its bar with)."""
    own = swapped[swapped["strategy"].astype(str) == ""] if len(swapped) else swapped
    if not len(own):
        return "the strategy's own model"
    last = own.iloc[-1]
    bar = int(last["bar"])
    name = next(iter(promoted_by([last["request"]])), None)
    back = rolled_back[rolled_back["bar"] == bar] if len(rolled_back) else rolled_back
    if name is not None:
        what = f"challenger {name}'s model"
    elif len(back):
        what = f"the champion's model, back from challenger {back['challenger'].iloc[-1]}'s canary"
    else:
        what = str(last["source"])
    return f"{what}, since bar {bar} (by {last['by']})"
