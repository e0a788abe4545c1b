"""A model's lifecycle in a running run: challengers in shadow, the canary, the watch after
a promotion, the live parity monitor.

One frozen dataclass per kind (`tradeloom.journal.events`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from tradeloom.domain import (
    Fill,
)
from tradeloom.journal.events.base import Event, kind

_NAN = math.nan

__all__ = [
    "CanaryPassed",
    "CanaryRolledBack",
    "CanaryStarted",
    "ChallengerAdded",
    "ChallengerBar",
    "ChallengerFailed",
    "ChallengerFill",
    "ChallengerGate",
    "ChallengerRemoved",
    "ChallengerStarted",
    "ParityChecked",
    "ParityGapLost",
    "PromotionRolledBack",
    "WatchPassed",
    "WatchStarted",
]


@kind("challenger_fill", read_by=("status",))
@dataclass(frozen=True, kw_only=True)
class ChallengerFill(Fill, Event):
    """A fill a challenger's shadow book simulated (never sent): the run's paper fill
    model at the run's prices, fees and slippage (`tradeloom.domain.Fill`).

    Attributes:
        challenger: The challenger's name (``challengers[].name``).
        strategy: The portfolio file's strategy whose challenger it is ('' for a strategy
            run alone); ``challenger`` is then ``STRATEGY/NAME``.
    """

    challenger: str = ""
    strategy: str = field(default="", metadata={"added": True})


@kind("challenger_bar", read_by=("status",))
@dataclass(frozen=True, kw_only=True)
class ChallengerBar(Event):
    """A challenger's shadow book at a clock bar's close, journaled after its fills of
    that bar: a restart continues each book from its last ``challenger_bar``.

    Attributes:
        challenger: The challenger's name (``challengers[].name``).
        probabilities: Its model's probability per symbol (NaN: the symbol had no bar).
        signals: The signals its rule gave at this bar (entries, exits, reversals).
        positions: Its position per symbol, after the bar.
        cash: Its cash after the bar.
        equity: Its equity at the bar's close.
        traded: The notional its fills of this bar traded (sum of price x quantity).
        champion_equity: The champion's equity at the same close (its promotion gate
            compares the two books' per-bar returns); a portfolio file's strategy's: that
            strategy's own equity (`tradeloom.live.lifecycle.member_challengers.MemberEquity`).
        strategy: The portfolio file's strategy whose challenger it is ('' for a strategy
            run alone); ``challenger`` is then ``STRATEGY/NAME``.
    """

    challenger: str
    probabilities: list[float]
    signals: int
    positions: list[float]
    cash: float
    equity: float
    traded: float
    champion_equity: float = float("nan")
    strategy: str = field(default="", metadata={"added": True})


@kind("challenger_failed", read_by=("status", "status_error", "lifecycle"))
@dataclass(frozen=True, kw_only=True)
class ChallengerFailed(Event):
    """A challenger raised (building, training or deciding on a bar): it is dropped from
    the run, which trades on; a restart does not start it again.

    Attributes:
        challenger: The challenger's name (``challengers[].name``).
        message: What it raised, one line (``ExceptionType: message``).
        strategy: The portfolio file's strategy whose challenger it is ('' for a strategy
            run alone); ``challenger`` is then ``STRATEGY/NAME``.
    """

    challenger: str
    message: str
    strategy: str = field(default="", metadata={"added": True})


@kind("challenger_gate", read_by=("status",))
@dataclass(frozen=True, kw_only=True)
class ChallengerGate(Event):
    """A challenger's promotion gate changed its verdict at this bar's close, with the
    evidence (`tradeloom.live.lifecycle.promotion_gate`): ``waiting`` (too few bars or fills),
    ``hold`` (the test does not pass), ``promote`` (it passes: the champion's model is
    swapped for the challenger's in the same commit, ``model_swapped`` by ``gate``).

    Attributes:
        challenger: The challenger's name (``challengers[].name``).
        bars: The bars both books have (their per-bar returns are one fewer).
        fills: The challenger's simulated fills.
        mean_difference: The mean per-bar return difference, challenger minus champion.
        t: The paired t statistic (NaN: fewer than two returns, or no spread).
        p: Its one-sided p-value (NaN with ``t``).
        alpha: The gate's significance level.
        verdict: ``waiting``, ``hold`` or ``promote``.
        health: The figures its health rules read, as JSON (`tradeloom.live.
            prediction_health`): ``{"auc", "calibration_error", "samples"}`` over the
            challenger's resolved predictions, null where there are too few; '' when
            the gate has no health rule.
        strategy: The portfolio file's strategy whose challenger it is ('' for a strategy
            run alone); ``challenger`` is then ``STRATEGY/NAME``.
    """

    challenger: str
    bars: int
    fills: int
    mean_difference: float
    t: float
    p: float
    alpha: float
    verdict: str
    health: str = field(default="", metadata={"added": True})
    strategy: str = field(default="", metadata={"added": True})


@kind("challenger_started", read_by=("status",))
@dataclass(frozen=True, kw_only=True)
class ChallengerStarted(Event):
    """A portfolio file's strategy's challenger starts its shadow book, flat, with
    ``capital``: the strategy's share of the account at the run's first live bar (its
    weight then times the account's equity then). A restart reads the capital here.

    Attributes:
        challenger: Its name, ``STRATEGY/NAME``.
        strategy: The portfolio file's strategy whose challenger it is.
        capital: The cash its book starts with.
        first_bar: The first clock bar it decides on.
        entry: Its entry in the strategy file's ``challengers:`` as it started: a
            restart refuses one changed since (its book is this candidate's,
            `tradeloom.live.lifecycle.member_roster`).
    """

    challenger: str
    strategy: str
    capital: float
    first_bar: int
    entry: dict[str, Any]


@kind("challenger_added")
@dataclass(frozen=True, kw_only=True)
class ChallengerAdded(Event):
    """A hot reload added a challenger to the running run (its file's ``challengers:``
    gained an entry): its shadow book starts flat, with the run's starting capital, at
    ``first_bar``; a restart starts it there again.

    Attributes:
        challenger: The challenger's name (``challengers[].name``).
        first_bar: The first clock bar it decides on (the bar after this row's).
    """

    challenger: str
    first_bar: int


@kind("challenger_removed")
@dataclass(frozen=True, kw_only=True)
class ChallengerRemoved(Event):
    """A hot reload removed a challenger from the running run (its entry left the file's
    ``challengers:``): its shadow book ends at its last ``challenger_bar``; its name is
    not given to another challenger of the run.

    Attributes:
        challenger: The challenger's name (``challengers[].name``).
    """

    challenger: str


# --- a canary stage and its rollback (`tradeloom.live.lifecycle.canary`) ----------------


@kind("canary_started", read_by=("restart", "status", "lifecycle"))
@dataclass(frozen=True, kw_only=True)
class CanaryStarted(Event):
    """A challenger's model decides from the next bar on at a fraction of the champion's
    size (its ``model_swapped`` row is in the same commit); the champion's model decides
    in shadow (challenger ``(champion)``) until the canary passes or is rolled back.

    Attributes:
        challenger: The challenger's name (``challengers[].name``).
        fraction: The share of the sizing's size each entry takes.
        bars: The bars the canary lasts when no rollback rule fires.
        by: Who asked: ``gate``, or ``cli``, ``console``, ``api`` (by hand).
        reason: Why, in words.
        request: What it answers (``challenger:NAME``, ``@`` and the mailbox's request
            file by hand).
        champion: The champion's ``model`` section: the file a rollback swaps back in.
        champion_sha256: That file's SHA-256.
        equity: The run's equity at this bar's close (its drawdown is measured from here).
        rollback_when: The canary's rollback rules (``promote_when.canary.rollback_when``,
            every field, ``min_samples`` too) as JSON: a restart reads them here, not in
            the file, whose entry may have changed or gone since ('' in a journal written
            before they were journaled: the file's entry's).
        watch: The watch after its full promotion (``promote_when.watch``, every field)
            as JSON: its ``canary_passed`` starts it ('' none, or a journal written
            before watches were).
    """

    challenger: str
    fraction: float
    bars: int
    by: str
    reason: str
    request: str
    champion: dict[str, Any]
    champion_sha256: str
    equity: float
    rollback_when: str = field(default="", metadata={"added": True})
    watch: str = field(default="", metadata={"added": True})


@kind("canary_passed", read_by=("restart", "status", "lifecycle"))
@dataclass(frozen=True, kw_only=True)
class CanaryPassed(Event):
    """A canary ended with its candidate the full champion: its bars passed without a
    rollback rule firing (``by: canary``), or an operator promoted it by hand.

    Attributes:
        challenger: The challenger's name.
        bars: The bars the candidate decided at the canary's size.
        by: ``canary``, or ``cli``, ``console``, ``api``.
        reason: Why, in words.
        request: The mailbox's request file it answers ('' for ``canary``).
        drawdown: The run's drawdown from its highest close since the canary started.
        auc: The candidate's AUC over the canary's resolved predictions (NaN: too few).
        calibration_error: Their expected calibration error (NaN: too few).
        samples: How many resolved predictions those two read.
    """

    challenger: str
    bars: int
    by: str
    reason: str
    request: str
    drawdown: float
    auc: float
    calibration_error: float
    samples: int


@kind("canary_rolled_back", read_by=("restart", "status", "lifecycle"))
@dataclass(frozen=True, kw_only=True)
class CanaryRolledBack(Event):
    """A canary was rolled back: the champion's model decides again from the next bar at
    its full size (its ``model_swapped`` row is in the same commit).

    Attributes:
        challenger: The challenger's name.
        bars: The bars the candidate decided at the canary's size.
        by: ``canary`` (a rule fired), or ``cli``, ``console``, ``api``.
        rule: The rule that fired (``max_drawdown``, ``min_auc``,
            ``max_calibration_error``, ``max_parity_gap``; '' by hand).
        figure: Its figure at this bar's close (NaN by hand).
        limit: The rule's limit (NaN by hand).
        reason: Why, in words.
        request: The mailbox's request file it answers ('' for ``canary``).
        drawdown: As `CanaryPassed`.
        auc: As `CanaryPassed`.
        calibration_error: As `CanaryPassed`.
        samples: As `CanaryPassed`.
    """

    challenger: str
    bars: int
    by: str
    rule: str
    figure: float
    limit: float
    reason: str
    request: str
    drawdown: float
    auc: float
    calibration_error: float
    samples: int


# --- a watch after a full promotion (`tradeloom.live.lifecycle.promotion_watch`) ------------------


@kind("watch_started", read_by=("restart", "status", "lifecycle"))
@dataclass(frozen=True, kw_only=True)
class WatchStarted(Event):
    """A challenger became the full champion (its canary passed, or its promotion when it
    has none, in the same commit) and its ``promote_when.watch`` rules are read at each
    bar's close for ``bars`` bars: one that fires puts the previous champion back.

    Attributes:
        challenger: The challenger's name (``challengers[].name``).
        bars: The bars the watch lasts when no rollback rule fires.
        by: Who promoted: ``gate``, ``canary``, or ``cli``, ``console``, ``api``.
        reason: Why, in words.
        request: What the promotion answered (as its ``model_swapped`` or
            ``canary_passed`` row).
        champion: The previous champion's ``model`` section: the file a rollback swaps
            back in (kept in ``RUN_DIR/swapped/``).
        champion_sha256: That file's SHA-256.
        equity: The run's equity at this bar's close (the rules' figures start here).
        rollback_when: The watch's rollback rules, every field, as JSON (a restart reads
            them here, not in the file).
    """

    challenger: str
    bars: int
    by: str
    reason: str
    request: str
    champion: dict[str, Any]
    champion_sha256: str
    equity: float
    rollback_when: str


@kind("watch_passed", read_by=("restart", "status", "lifecycle"))
@dataclass(frozen=True, kw_only=True)
class WatchPassed(Event):
    """A watch ended with no rollback rule fired: the promotion is final.

    Attributes:
        challenger: The challenger's name.
        bars: The bars watched.
        drawdown: The run's drawdown from its highest close since the watch started.
        auc: The promoted model's AUC over the watch's resolved predictions (NaN: too few).
        calibration_error: Their expected calibration error (NaN: too few).
        samples: How many resolved predictions those two read.
        parity_gap: The run's return since the watch started minus its replay's (NaN:
            no ``max_parity_gap`` rule).
    """

    challenger: str
    bars: int
    drawdown: float
    auc: float
    calibration_error: float
    samples: int
    parity_gap: float


@kind("parity_gap_lost", read_by=("restart",))
@dataclass(frozen=True, kw_only=True)
class ParityGapLost(Event):
    """A canary's or a watch's ``max_parity_gap`` rule stopped reading its gap: the run's
    replay (`tradeloom.live.lifecycle.parity_twin`) cannot follow what the run did at this bar, so
    the rule reads no gap (NaN, never fires) until the stage ends; its other rules still
    read.

    Attributes:
        challenger: The challenger's name (the stage's).
        cause: ``reload`` (a hot reload: the replay trades the strategy the stage
            started with) or ``kill`` (the kill switch halted the run; the replay
            knows nothing of it).
        message: One line for a person.
    """

    challenger: str
    cause: str
    message: str


@kind("promotion_rolled_back", read_by=("restart", "status", "lifecycle"))
@dataclass(frozen=True, kw_only=True)
class PromotionRolledBack(Event):
    """A watched promotion was rolled back: the previous champion's model decides again
    from the next bar (its ``model_swapped`` row is in the same commit).

    Attributes:
        challenger: The challenger whose promotion was rolled back.
        bars: The bars watched.
        by: ``watch`` (a rule fired), or ``cli``, ``console``, ``api``.
        rule: The rule that fired ('' by hand).
        figure: Its figure at this bar's close (NaN by hand).
        limit: The rule's limit (NaN by hand).
        reason: Why, in words.
        request: The mailbox's request file it answers ('' for ``watch``).
        drawdown: As `WatchPassed`.
        auc: As `WatchPassed`.
        calibration_error: As `WatchPassed`.
        samples: As `WatchPassed`.
        parity_gap: As `WatchPassed`.
    """

    challenger: str
    bars: int
    by: str
    rule: str
    figure: float
    limit: float
    reason: str
    request: str
    drawdown: float
    auc: float
    calibration_error: float
    samples: int
    parity_gap: float


@kind("parity_checked", read_by=("status", "alert"))
@dataclass(frozen=True, kw_only=True)
class ParityChecked(Event):
    """The live parity monitor (``live.parity``) compared the run's last window of bars
    with its replay as a backtest (journaled at the tick after the check ended).

    Attributes:
        first_bar: The window's first bar.
        last_bar: The window's last bar (the last bar the check read; ``bar`` is the
            bar it was journaled at).
        equity_gap: The run's equity less the replay's at ``last_bar``.
        window_gap: How much of that gap arose inside the window.
        unexplained_pnl: The P&L inside the window that no journaled fact explains.
        max_unexplained: The threshold (``live.parity.max_unexplained``).
        first_divergence: The window's first difference (``bar N field: cause``; '':
            none).
        verdict: ``ok`` (nothing unexplained past the threshold), ``diverged`` or
            ``failed`` (the check could not run: ``message`` says why).
        message: One line for a person.
    """

    first_bar: int
    last_bar: int
    equity_gap: float
    window_gap: float
    unexplained_pnl: float
    max_unexplained: float
    first_divergence: str
    verdict: str
    message: str
