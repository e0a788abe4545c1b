"""The model lifecycle's refusals, written once: a swap, a promotion, a rollback.

A running run refuses, at its bar boundary: a model swap (or a promotion) to the model in
force already; a swap or a promotion while a canary or the watch after a full promotion
is in progress (but the canary's own promotion to the full champion); the promotion of a
challenger the strategy does not have, or no longer has in shadow (dropped, promoted);
a rollback with no canary and no watch in progress. Its commands (``tradeloom swap``,
``promote``, ``rollback``, and the console's and the HTTP API's doors) refuse the same
before they ask, in one line and exit 2 (400), by the same functions over the same
facts: a `Lifecycle`, which the running process takes from its memory
(`tradeloom.live.lifecycle.promotion_stage.PromotionStage.lifecycle`, `in_force_of`) and a
command from the run's journal (`read_lifecycle`). The process checks again when a
request arrives (the journal may have moved since; only it can predict the last bar):
what it refuses it journals (``model_swap_refused``) in the same words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradeloom.engine.model_in_force import promoted_name
from tradeloom.journal.events import kinds_read_by
from tradeloom.plugins.protocols import SavedModelFile

if TYPE_CHECKING:
    from tradeloom.journal import ModelSwapped
    from tradeloom.live.tick.session import LiveSession

__all__ = [
    "DROPPED",
    "IN_SHADOW",
    "LIFECYCLE_KINDS",
    "PROMOTED",
    "InForce",
    "Lifecycle",
    "in_force_of",
    "in_force_origin",
    "in_force_refusal",
    "lifecycle_of_frames",
    "promotion_refusal",
    "read_lifecycle",
    "rollback_refusal",
    "scoped",
    "stage_in_progress",
    "unkept_champion",
]

IN_SHADOW = "in shadow"
"""A challenger that decides in shadow: it may be promoted."""

DROPPED = "dropped"
"""A challenger that raised, or whose promotion its gate's swap refused: not again."""

PROMOTED = "promoted"
"""A challenger promoted (by its gate or by hand): its shadow stopped for good."""


@dataclass(frozen=True)
class InForce:
    """The model that decides a strategy's bars now.

    Attributes:
        sha256: Its file's SHA-256 ('' for a model trained in the run).
        origin: Where that hash comes from, in words (`in_force_origin`).
    """

    sha256: str
    origin: str


@dataclass(frozen=True)
class Lifecycle:
    """What a run's lifecycle refusals read, at a bar boundary.

    Attributes:
        canary: The challenger whose canary is in progress (None: none).
        watch: The challenger whose watch after a full promotion is in progress (None).
        in_force: Each strategy's model in force, by its name ('' for a strategy run
            alone; a portfolio file's strategies by theirs).
        challengers: Each challenger of the strategy in force, by its run-wide name (a
            portfolio file's ``STRATEGY/NAME``), in the file's order: `IN_SHADOW`,
            `DROPPED` or `PROMOTED`.
        portfolio: The run trades a portfolio file's strategies.
    """

    canary: str | None = None
    watch: str | None = None
    in_force: Mapping[str, InForce] = field(default_factory=dict)
    challengers: Mapping[str, str] = field(default_factory=dict)
    portfolio: bool = False


def stage_in_progress(canary: str | None, watch: str | None) -> str | None:
    """Why no promotion (but the canary's own to the full champion) and no model swap is
    taken now: the canary of challenger ``canary``, or the watch after challenger
    ``watch``'s full promotion, is in progress; None: neither is."""
    if canary is not None:
        return f"the canary of {canary} is in progress; promote or roll it back first"
    if watch is not None:
        return f"the watch of {watch}'s promotion is in progress; roll it back or wait for its end"
    return None


def in_force_refusal(lifecycle: Lifecycle, sha256: str, strategy: str = "") -> str | None:
    """Why a model whose file's SHA-256 is ``sha256`` changes nothing for ``strategy``
    ('' alone): it is the model in force (the same file), said with where its hash comes
    from; None: it is another model."""
    now = lifecycle.in_force.get(strategy)
    if now is None or not sha256 or sha256 != now.sha256:
        return None
    return f"model: it is the model in force already (sha256 {sha256}, {now.origin})"


def promotion_refusal(lifecycle: Lifecycle, name: str) -> str | None:
    """Why challenger ``name`` cannot be promoted now, before its model is read: a stage
    in progress (not its own canary's: that promotes it to the full champion), no such
    challenger, or one no longer in shadow; None: it may be."""
    if lifecycle.canary is not None and lifecycle.canary == name:
        return None
    if (busy := stage_in_progress(lifecycle.canary, lifecycle.watch)) is not None:
        return busy
    state = lifecycle.challengers.get(name)
    if state is None:
        held = ", ".join(lifecycle.challengers) or "none"
        if lifecycle.portfolio:
            return (
                f"the portfolio file's strategies have no challenger {name} (they have: "
                f"{held}; name one STRATEGY/NAME)"
            )
        return f"the strategy has no challenger {name} (it has: {held})"
    if state == DROPPED:
        return f"challenger {name} was dropped; it is no longer in shadow"
    if state == PROMOTED:
        return f"challenger {name} was promoted already; it is no longer in shadow"
    return None


def rollback_refusal(lifecycle: Lifecycle) -> str | None:
    """Why nothing can be rolled back now: no canary and no watch is in progress."""
    if lifecycle.canary is None and lifecycle.watch is None:
        return "no canary or watch is in progress"
    return None


def unkept_champion(model: object) -> str | None:
    """Why the champion's ``model`` could not be swapped back in by a canary's or a
    watch's rollback (it is not a saved file); None: it could."""
    if isinstance(model, SavedModelFile):
        return None
    return "model: the champion's model is not a saved file a rollback could swap back in"


def scoped(strategy: str, name: str) -> str:
    """Return the run-wide name of challenger ``name`` of the portfolio file's strategy
    ``strategy`` (``STRATEGY/NAME``; a strategy run alone: ``name``)."""
    return f"{strategy}/{name}" if strategy else name


def in_force_origin(swapped: ModelSwapped | Mapping[str, Any] | None) -> str:
    """Return where the hash of the model in force comes from, in words: the journal's
    last ``model_swapped`` row of its strategy (its bar and who asked), or the strategy
    file's ``model`` section (None: never swapped)."""
    if swapped is None:
        return "the strategy file's model section"
    if isinstance(swapped, Mapping):
        bar, by = swapped["bar"], swapped["by"]
    else:
        bar, by = swapped.bar, swapped.by
    return f"the journal's model_swapped row of bar {bar}, by {by}"


def in_force_of(session: LiveSession) -> InForce:
    """Return the model in force in ``session`` (a portfolio file's member: its own)."""
    model = session.p.model
    sha = str(model.loaded_from["sha256"]) if isinstance(model, SavedModelFile) else ""
    return InForce(sha, in_force_origin(session.swapped))


LIFECYCLE_KINDS = kinds_read_by("lifecycle")
"""The journal's kinds a run's `Lifecycle` is read from (and its model in force's words):
those declared read by a ``lifecycle`` (`tradeloom.journal.events.Reader`)."""


def read_lifecycle(run_dir: Path) -> Lifecycle:
    """Return the lifecycle of the run in ``run_dir`` as its journal tells it
    (`lifecycle_of_frames`)."""
    from tradeloom.journal import journal_path, read_frames

    return lifecycle_of_frames(read_frames(journal_path(run_dir), list(LIFECYCLE_KINDS)))


def lifecycle_of_frames(frames: Mapping[str, Any]) -> Lifecycle:
    """Return a run's lifecycle from its journal's frames of `LIFECYCLE_KINDS`: the canary
    or the watch in progress, each challenger of the strategy in force (its document's
    at the start, or at its last hot reload; a portfolio file's strategies' as they
    started) in shadow, dropped (``challenger_failed``) or promoted (``model_swapped``,
    `tradeloom.engine.model_in_force.promoted_name`). Its models in force are not read
    (`tradeloom.live.lifecycle.model_swap.precheck` builds them, their hashes with them)."""
    started = frames["canary_started"]
    ended = len(frames["canary_passed"]) + len(frames["canary_rolled_back"])
    canary = str(started["challenger"].iloc[-1]) if len(started) > ended else None
    watched = frames["watch_started"]
    ended = len(frames["watch_passed"]) + len(frames["promotion_rolled_back"])
    watch = str(watched["challenger"].iloc[-1]) if len(watched) > ended else None
    dropped = frozenset(frames["challenger_failed"]["challenger"].astype(str))
    promoted = {promoted_name(r) for r in frames["model_swapped"]["request"]} - {None}
    members = frames["strategy_at_start"]
    if len(members):
        listed = [(r["document"], str(r["strategy"])) for _, r in members.iterrows()]
    else:
        reloads, starts = frames["config_reloaded"], frames["run_started"]
        if len(reloads):  # the document in force: the last reload's, else the first start's
            listed = [(reloads["document"].iloc[-1], "")]
        else:
            listed = [(starts["document"].iloc[0], "")] if len(starts) else []
    names = [
        scoped(strategy, str(e.get("name")))
        for document, strategy in listed
        if isinstance(document, Mapping)
        for e in document.get("challengers") or ()
        if isinstance(e, Mapping)
    ]
    states = {
        n: DROPPED if n in dropped else PROMOTED if n in promoted else IN_SHADOW for n in names
    }
    return Lifecycle(canary, watch, {}, states, portfolio=bool(len(members)))
