"""Challengers in shadow: candidate models that decide on a paper or live run's bars.

Each entry of ``challengers:`` is the strategy with another model (and optionally its
own signal rule and sizing). `ShadowBooks` gives each its own `LiveSession` over the
run's history: the same features, stepped bar by bar, its own model trained on the
walk-forward plan, its own signal, risk engine and book, and the strategy's simulated
venue (the run's paper fill model: its prices, fees and slippage) run by the compiled
core, as a paper run of that candidate alone would. A challenger never sends an order:
its session journals to memory and hears no observer, and only its book is journaled,
in the run's journal, as ``challenger_fill`` (each simulated fill) and
``challenger_bar`` (its probabilities, signals, positions, cash and equity at each
clock bar's close, after its fills).

A restart rebuilds each challenger by replaying the journal's live bars through a new
session (deterministic: the same rows, the same seed) and journals only what the
journal lacks: the bars after the challenger's last ``challenger_bar`` (a kill -9 lost
the rest of that tick), and no fill twice.

A challenger that raises (its training, its model's prediction, any step of its bar) is
dropped, journaled once as ``challenger_failed`` with what it raised, and the run trades
on: a candidate never stops the champion. A restart does not start it again.

A challenger with ``promote_when:`` has its gate read at each of its bars
(`tradeloom.live.lifecycle.promotion_gate`) over its journaled book (each ``challenger_bar`` row
holds the champion's equity too), and each change of verdict is journaled as
``challenger_gate`` with its evidence. One whose verdict is ``promote`` is `promotable`:
the runner swaps its model in (``model_swapped`` by ``gate``, request
``challenger:NAME``) and `retire` stops its shadow; a restart reads the gate's rows
and the swaps from the journal, so it neither promotes twice nor starts the promoted one
again. A gate with a canary promotes through it, and the champion's model then decides
in shadow as one more book here, ``(champion)`` (`tradeloom.live.lifecycle.canary`).

A hot reload adds or removes challengers while the run runs
(`tradeloom.live.lifecycle.challenger_roster`): an added one is started by `start_shadow` over the
history the run has then, and a restart starts it over the same history again (``heads``
of `open_shadow_books`), stepping it on the journal's bars after that history only.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import structlog

from tradeloom.core import layout as L
from tradeloom.domain import Universe
from tradeloom.engine.events import Recorder
from tradeloom.engine.features import universe_features
from tradeloom.engine.model_in_force import PROMOTION_PREFIX, promoted_name
from tradeloom.engine.wiring import Pipeline, candidate_components, challenger_config
from tradeloom.errors import ConfigError
from tradeloom.journal import (
    ChallengerBar,
    ChallengerFailed,
    ChallengerFill,
    ChallengerGate,
    FillEvent,
    JournalStore,
    LiveBar,
    SignalEvent,
    journal_path,
    read_frames,
)
from tradeloom.live.lifecycle.model_swap import model_problems
from tradeloom.live.lifecycle.prediction_health import HealthBook, health_json, horizon_of
from tradeloom.live.lifecycle.promotion_gate import PROMOTE, GateTally
from tradeloom.live.lifecycle.rules import DROPPED, PROMOTED, scoped
from tradeloom.live.recovery.replay import ScratchJournal, SilentHook
from tradeloom.live.tick.history import MarketHistory
from tradeloom.live.tick.session import LiveSession
from tradeloom.plugins.protocols_steps import LiveRows
from tradeloom.schemas.config import Challenger
from tradeloom.schemas.strategy import PromoteWhen

if TYPE_CHECKING:
    from tradeloom.live.recovery.journal_state import JournalState, LiveBarRow

__all__ = [
    "Journaled",
    "ShadowBooks",
    "candidate_pipeline",
    "drop",
    "journaled",
    "journaled_book",
    "open_shadow_books",
    "promoted_by",
    "promotion_request",
    "scoped",
    "start_shadow",
    "unfit",
]

_log = structlog.get_logger("tradeloom.live")


def candidate_pipeline(pipeline: Pipeline, challenger: Challenger) -> Pipeline:
    """Return ``pipeline`` with ``challenger``'s model (and signal rule and sizing), the
    rest of its components copies: a challenger's state is never the champion's.

    Raises:
        ConfigError: A factory refused the challenger's params.
    """
    config = pipeline.config
    document = dict(config.document)
    entries = document.pop("challengers", None) or []
    own: Mapping[str, Any] = next((e for e in entries if e.get("name") == challenger.name), {})
    candidate = replace(
        challenger_config(config, challenger),
        challengers=(),
        document={**document, **_sections(own, document)},
    )
    model, signal, sizer, problems = candidate_components(
        config, challenger, pipeline.feature_columns, pipeline.model
    )
    if problems:
        raise ConfigError(problems)
    return replace(
        pipeline,
        config=candidate,
        features=copy.deepcopy(pipeline.features),
        model=model,
        signal=signal,
        sizer=sizer,
        rules=copy.deepcopy(pipeline.rules),
        venue=copy.deepcopy(pipeline.venue),
        monitors=copy.deepcopy(pipeline.monitors),
        allocator=copy.deepcopy(pipeline.allocator),
    )


def _sections(entry: Mapping[str, Any], document: Mapping[str, Any]) -> dict[str, Any]:
    """The document's sections a challenger's entry replaces (its model, signal, sizing)."""
    sections: dict[str, Any] = {"model": entry.get("model", document.get("model"))}
    if entry.get("signal") is not None:
        sections["signal"] = entry["signal"]
    if entry.get("sizing") is not None:
        sections["risk"] = {**dict(document.get("risk") or {}), "sizing": entry["sizing"]}
    return sections


@dataclass
class _Book:
    """A challenger's journaled book as its gate reads it: its equity and the champion's
    at each of its bars, its fills, and its gate's last journaled verdict."""

    equity: list[float]
    champion: list[float]
    fills: int = 0
    verdict: str = ""
    probabilities: dict[int, list[float]] = field(default_factory=dict)
    """Its probabilities per symbol by bar (kept only for a gate with a health rule)."""
    health: HealthBook | None = field(default=None, repr=False, compare=False)
    """Its gate's health figures, kept up to date bar by bar (made at the first reading)."""
    tally: GateTally | None = field(default=None, repr=False, compare=False)
    """Its gate's t-test, kept up to date bar by bar (made at the first reading)."""


@dataclass
class _Shadow:
    """One challenger: its session, journaling to memory, and what it journaled."""

    name: str
    session: LiveSession
    scratch: ScratchJournal
    last_bar: int = -1
    """The last clock bar its book was journaled at (a restart's: the journal's)."""
    fills: frozenset[tuple[str, int]] = frozenset()
    """Its fills the journal holds, by ``(order_id, bar)`` (a restart's, never twice)."""
    gate: PromoteWhen | None = None
    """Its promotion gate (None: never promoted)."""
    book: _Book = field(default_factory=lambda: _Book([], []))
    """What its gate reads, as journaled (a restart's: from the journal)."""
    strategy: str = ""
    """The portfolio file's strategy it shadows ('' for a strategy run alone; its name is
    then ``STRATEGY/NAME``: `scoped`)."""


class ShadowBooks:
    """The run's challengers, each deciding on every bar the run processes.

    Args:
        journal: The run's journal (each challenger's book is journaled there).
        shadows: Each challenger's session, warmed up and trained.
        gone: The challengers no longer in shadow, by name: `DROPPED` or `PROMOTED`
            (a restart's, from the journal).

    Attributes:
        gone: The challengers no longer in shadow (what a promotion by hand is refused
            for: `tradeloom.live.lifecycle.rules.promotion_refusal`).
    """

    def __init__(
        self,
        journal: JournalStore,
        shadows: Sequence[_Shadow],
        gone: Mapping[str, str] | None = None,
    ) -> None:
        self.journal = journal
        self.shadows = list(shadows)
        self.gone: dict[str, str] = dict(gone or {})

    def step(
        self,
        time: pd.Timestamp,
        values: npt.ArrayLike,
        champion: float | Mapping[str, float] = float("nan"),
    ) -> None:
        """Hand the clock bar opening at ``time`` (each symbol's OHLCV) to every
        challenger; journal each one's new fills and its book at the bar's close (with
        ``champion``, the champion's equity then, or each challenger's by name: a
        portfolio file's strategy's own from the capital each started with; NaN: not
        known, a restart's replay), and its gate's verdict when it changed.

        A challenger that raises is dropped and journaled (`drop`); the others step on.
        """
        for shadow in tuple(self.shadows):
            if time <= shadow.session.history.last_time:
                continue  # a restart's replay of bars before it was added to the run
            bar = len(shadow.session.history)  # the index this bar takes
            against = (
                champion.get(shadow.name, float("nan"))
                if isinstance(champion, Mapping)
                else champion
            )
            try:
                self._step(shadow, time, values, against)
            except Exception as exc:  # a candidate never stops the champion
                self.shadows.remove(shadow)
                self.gone[shadow.name] = DROPPED
                drop(self.journal, shadow.name, exc, bar=bar, time=time, strategy=shadow.strategy)

    def promotable(self) -> list[str]:
        """Return the challengers whose gate's verdict is ``promote``, in file order."""
        return [s.name for s in self.shadows if s.book.verdict == PROMOTE]

    def _step(
        self, shadow: _Shadow, time: pd.Timestamp, values: npt.ArrayLike, champion: float
    ) -> None:
        with structlog.contextvars.bound_contextvars(challenger=shadow.name):
            t = shadow.session.step(time, values)
        events = shadow.scratch.events
        shadow.scratch.events = []
        if t <= shadow.last_bar:  # a restart's replay: the journal has this bar's book
            return
        rows = _book_rows(shadow, t, time, events, champion)
        for row in rows:
            self.journal.append(row)
        shadow.last_bar = t
        if shadow.gate is not None and shadow.book.verdict != PROMOTE:  # a decision stands
            self._read_gate(shadow, shadow.gate, shadow.book, rows, t, time)

    def _read_gate(
        self,
        shadow: _Shadow,
        gate: PromoteWhen,
        book: _Book,
        rows: Sequence[ChallengerFill | ChallengerBar],
        t: int,
        time: pd.Timestamp,
    ) -> None:
        last = rows[-1]
        assert isinstance(last, ChallengerBar)
        book.equity.append(last.equity)
        book.champion.append(last.champion_equity)
        book.fills += len(rows) - 1
        health = None
        if gate.health:
            book.probabilities[t] = last.probabilities
            session = shadow.session
            closes = session.history.closes()
            horizon = horizon_of(session.p.model)
            if book.health is None or book.health.horizon != horizon:
                book.health = HealthBook(horizon)
            limit = gate.max_calibration_error
            health = book.health.judged(book.probabilities, closes, gate.min_samples, limit)
        if book.tally is None:
            book.tally = GateTally()
        book.tally.feed(book.equity, book.champion)
        if book.tally.verdict(gate, book.fills, health) == book.verdict:
            return
        if book.health is not None and health is not None:  # the whole book's figures
            closes = shadow.session.history.closes()
            health = book.health.health(book.probabilities, closes, gate.min_samples)
        reading = book.tally.reading(gate, book.fills, health)  # the row's figures, to the bit
        if reading.verdict == book.verdict:
            return
        book.verdict = reading.verdict
        self.journal.append(
            ChallengerGate(
                bar=t,
                timestamp=time,
                symbol=last.symbol,
                correlation_id=t,
                challenger=shadow.name,
                bars=reading.bars,
                fills=reading.fills,
                mean_difference=reading.mean_difference,
                t=reading.t,
                p=reading.p,
                alpha=gate.alpha,
                verdict=reading.verdict,
                health=health_json(reading.health) if gate.health else "",
                strategy=shadow.strategy,
            )
        )
        _log.warning(
            "challenger_gate", challenger=shadow.name, verdict=reading.verdict, p=reading.p
        )

    def add(self, shadow: _Shadow) -> None:
        """Decide with ``shadow`` too from the next bar (a challenger added to the running
        run: `start_shadow`)."""
        self.shadows.append(shadow)

    def replay(
        self,
        ticks: Sequence[tuple[int, pd.Timestamp, npt.ArrayLike]],
        champion: Mapping[int, float],
    ) -> None:
        """Step every challenger over a restart's ``ticks`` (clock bar, time, OHLCV),
        journaling only the bars its book lacks, each against ``champion``, the
        champion's equity at that bar's close as the replay had it: a decision the kill
        lost is taken again at the same bar with the same figures."""
        for t, time, values in ticks:
            self.step(time, values, champion.get(t, math.nan))

    def join(
        self,
        shadow: _Shadow,
        ticks: Sequence[tuple[int, pd.Timestamp, npt.ArrayLike]],
        *,
        last_bar: int,
        fills: frozenset[tuple[str, int]] = frozenset(),
        champion: Mapping[int, float] | None = None,
    ) -> None:
        """Add ``shadow`` after stepping it over ``ticks`` (the live bars so far: clock
        bar, time, OHLCV), its book journaled only after ``last_bar`` (and never a fill
        of ``fills`` again), against ``champion`` (`replay`; None: none known).

        Raises:
            Exception: Whatever a step of its bar raised (it is not added).
        """
        shadow.last_bar, shadow.fills = last_bar, fills
        known = champion or {}
        for t, time, values in ticks:
            self._step(shadow, time, values, known.get(t, math.nan))
        self.shadows.append(shadow)

    def retire(self, name: str, gone: str = PROMOTED) -> None:
        """Stop challenger ``name``'s shadow: it was promoted (its model is the
        champion's), or ``gone`` says why (`DROPPED`: its gate's swap was refused)."""
        self.shadows = [s for s in self.shadows if s.name != name]
        self.gone[name] = gone


def promotion_request(name: str, file: str = "") -> str:
    """Return the ``request`` of the ``model_swapped`` row that promotes challenger
    ``name``: ``challenger:NAME``, and ``@FILE`` when the mailbox's request ``file``
    asked for it (a name holds no ``@``; `tradeloom.engine.model_in_force.promoted_name`
    reads it back)."""
    return f"{PROMOTION_PREFIX}{name}" + (f"@{file}" if file else "")


def drop(
    journal: JournalStore,
    name: str,
    exc: BaseException,
    *,
    bar: int = -1,
    time: pd.Timestamp | None = None,
    strategy: str = "",
) -> None:
    """Journal that challenger ``name`` raised ``exc`` and is dropped (at ``bar``, opening
    at ``time``; -1: while it was started; ``strategy``: the portfolio file's strategy it
    shadowed)."""
    message = " ".join(f"{type(exc).__name__}: {exc}".split())
    _log.error("challenger_failed", challenger=name, error=message, bar=bar)
    at = {} if time is None else {"timestamp": time}
    journal.append(
        ChallengerFailed(
            bar=bar,
            correlation_id=bar,
            challenger=name,
            message=message,
            strategy=strategy,
            **at,
        )
    )


def _book_rows(
    shadow: _Shadow, t: int, time: pd.Timestamp, events: Sequence[object], champion: float
) -> list[ChallengerFill | ChallengerBar]:
    """The rows of a challenger's book at clock bar ``t``: its new fills, then its book."""
    session = shadow.session
    names = session.names
    probabilities = [float("nan")] * len(names)
    index = {name: s for s, name in enumerate(names)}
    rows: list[ChallengerFill | ChallengerBar] = []
    traded = 0.0
    signals = 0
    for event in events:
        if isinstance(event, FillEvent):
            traded += event.price * event.quantity
            if (event.order_id, event.bar) in shadow.fills:
                continue  # committed before the crash, with a book row that was not
            values = {f.name: getattr(event, f.name) for f in fields(event)}
            rows.append(ChallengerFill(**values, challenger=shadow.name, strategy=shadow.strategy))
        elif isinstance(event, SignalEvent):
            signals += 1
        elif isinstance(event, LiveBar) and event.symbol in index:
            probabilities[index[event.symbol]] = event.probability
    book = session.engine.portfolio
    rows.append(
        ChallengerBar(
            bar=t,
            timestamp=time,
            symbol=names[0] if len(names) == 1 else "",
            correlation_id=t,
            challenger=shadow.name,
            probabilities=probabilities,
            signals=signals,
            positions=[book.position_of(s) for s in range(len(names))],
            cash=book.cash,
            equity=float(session.engine.state.acct[L.A_EQUITY]),
            traded=traded,
            champion_equity=champion,
            strategy=shadow.strategy,
        )
    )
    return rows


def open_shadow_books(
    pipeline: Pipeline,
    journal: JournalStore,
    recorder: Recorder,
    head: Universe,
    state: JournalState | None,
    *,
    run_dir: Path,
    clock: Callable[[], pd.Timestamp],
    live_rows: Mapping[str, LiveRows] | None = None,
    heads: Mapping[str, Universe] | None = None,
    replayed: Mapping[int, float] | None = None,
) -> ShadowBooks | None:
    """Start the strategy's challengers over the history the run started from, or (with
    ``state``, a restart) rebuild them from the journal's live bars; None: it has none.

    Args:
        pipeline: The run's strategy (the champion's).
        journal: The run's journal.
        recorder: The run's recorder (its run and symbol stamp the challengers' rows).
        head: The history the run started from (before its first live bar).
        state: The journal, read (None: a new run).
        run_dir: The run directory (a restart reads the challengers' rows there).
        clock: The run's clock.
        live_rows: Per symbol, its extra columns as each bar closes (the run's).
        heads: The history each challenger added to the running run starts from, by
            name (`tradeloom.live.lifecycle.challenger_roster`; any other: ``head``).
        replayed: The champion's equity at each close the restart replayed, by bar
            (`tradeloom.live.tick.session.LiveSession.replayed_equity`): the books of the
            bars whose rows the kill lost compare with it, as the run's did.

    Raises:
        ConfigError: A challenger's component refused its params.
    """
    challengers = pipeline.config.challengers
    heads = heads or {}
    if not challengers:
        return None
    journaled = _journaled(run_dir) if state is not None else None
    done, fills, failed = journaled[:3] if journaled is not None else ({}, {}, frozenset())
    kept = journaled[3] if journaled is not None else {}
    promoted = _promoted(run_dir) if state is not None else frozenset()
    shadows = []
    gone: dict[str, str] = {}
    for challenger in challengers:
        if challenger.name in failed or challenger.name in promoted:
            # dropped, or promoted, before the restart: it stays so
            gone[challenger.name] = DROPPED if challenger.name in failed else PROMOTED
            continue
        candidate = candidate_pipeline(pipeline, challenger)
        refused = unfit(pipeline, candidate) if challenger.promote_when is not None else None
        if refused is not None:  # the swap of its promotion would refuse it: said now
            drop(journal, challenger.name, ValueError(refused))
            gone[challenger.name] = DROPPED
            continue
        try:
            shadow = start_shadow(
                challenger.name,
                candidate,
                recorder,
                heads.get(challenger.name, head),
                clock=clock,
                live_rows=live_rows,
            )
        except Exception as exc:  # a candidate never stops the champion
            drop(journal, challenger.name, exc)
            gone[challenger.name] = DROPPED
            continue
        shadow.last_bar = done.get(challenger.name, -1)
        shadow.fills = fills.get(challenger.name, frozenset())
        shadow.gate = challenger.promote_when
        shadow.book = kept.get(challenger.name, _Book([], []))
        shadows.append(shadow)
    books = ShadowBooks(journal, shadows, gone)
    if state is not None and shadows:
        books.replay(_ticks(shadows[0].session, state.bars), replayed or {})
    return books


def start_shadow(
    name: str,
    candidate: Pipeline,
    recorder: Recorder,
    head: Universe,
    *,
    clock: Callable[[], pd.Timestamp],
    live_rows: Mapping[str, LiveRows] | None = None,
) -> _Shadow:
    """Return a shadow named ``name`` deciding with ``candidate`` (`candidate_pipeline`),
    warmed up over ``head`` (the history the run started from) and trained, journaling to
    memory; `ShadowBooks.join` or `open_shadow_books` steps it over the live bars.

    Raises:
        Exception: Whatever its warm-up or training raised.
    """
    scratch = ScratchJournal(recorder.journal.identity)
    own = Recorder(scratch, SilentHook(), recorder.run, recorder.symbol)  # type: ignore[arg-type]
    history = MarketHistory(head, universe_features(candidate, head))
    session = LiveSession(
        candidate, own, history, order_id=_order_ids(name), clock=clock, live_rows=live_rows
    )
    with structlog.contextvars.bound_contextvars(challenger=name):
        session.warm_up()
        session.train(None, in_effect=True)
    scratch.events.clear()
    return _Shadow(name, session, scratch)


@dataclass(frozen=True)
class Journaled:
    """The challengers' books as the journal holds them (a restart's starting point).

    Attributes:
        last: Per challenger, the last bar of its book.
        fills: Per challenger, its fills by ``(order_id, bar)``.
        failed: The challengers dropped.
        books: Per challenger, its book as its gate reads it.
        promoted: The challengers promoted (`promoted_by`).
    """

    last: dict[str, int]
    fills: dict[str, frozenset[tuple[str, int]]]
    failed: frozenset[str]
    books: dict[str, _Book]
    promoted: frozenset[str]


def journaled(run_dir: Path) -> Journaled:
    """Return the challengers' books in the journal of the run in ``run_dir``."""
    return Journaled(*_journaled(run_dir), _promoted(run_dir))


def journaled_book(run_dir: Path, name: str) -> tuple[int, frozenset[tuple[str, int]], bool]:
    """Return the last bar of shadow ``name``'s book the journal holds (-1: none), its
    fills there by ``(order_id, bar)``, and whether it was dropped."""
    last, held, failed, _ = _journaled(run_dir)
    return last.get(name, -1), held.get(name, frozenset()), name in failed


def unfit(champion: Pipeline, candidate: Pipeline) -> str | None:
    """Why a gated challenger's model could not take the champion's place (its label,
    its calibration: `tradeloom.live.lifecycle.model_swap.model_problems`), None: it could."""
    problems = model_problems(champion.model, champion.sizer, candidate.model)
    return "; ".join(problems) or None


def _order_ids(name: str) -> Callable[[int], str]:
    """A challenger's n-th order's id (never sent: only its book's rows name it)."""
    return lambda n: f"shadow-{name}-{n}"


def _journaled(
    run_dir: Path,
) -> tuple[dict[str, int], dict[str, frozenset[tuple[str, int]]], frozenset[str], dict[str, _Book]]:
    """Per challenger, the last bar of its book and its fills the journal holds; the
    challengers it dropped; and each one's book as its gate reads it."""
    kinds = ["challenger_bar", "challenger_fill", "challenger_failed", "challenger_gate"]
    frames = read_frames(journal_path(run_dir), kinds)
    bars, fills = frames["challenger_bar"], frames["challenger_fill"]
    failed = frozenset(str(name) for name in frames["challenger_failed"]["challenger"])
    last = {str(k): int(v) for k, v in bars.groupby("challenger")["bar"].max().items()}
    held = {
        str(name): frozenset(zip(group["order_id"], group["bar"].astype(int), strict=True))
        for name, group in fills.groupby("challenger")
    }
    verdicts = {
        str(k): str(v)
        for k, v in frames["challenger_gate"].groupby("challenger")["verdict"].last().items()
    }
    books = {}
    for name, rows in bars.groupby("challenger", sort=False):
        rows = rows.drop_duplicates("bar", keep="first")
        books[str(name)] = _Book(
            rows["equity"].astype(float).tolist(),
            rows["champion_equity"].astype(float).tolist(),
            len(held.get(str(name), ())),
            verdicts.get(str(name), ""),
            {
                int(t): [math.nan if p is None else float(p) for p in ps]  # NaN is stored as null
                for t, ps in zip(rows["bar"], rows["probabilities"], strict=True)
            },
        )
    return last, held, failed, books


def _promoted(run_dir: Path) -> frozenset[str]:
    """The challengers the journal's ``model_swapped`` rows promoted (by their gate, or by
    hand: `promotion_request`)."""
    swaps = read_frames(journal_path(run_dir), ["model_swapped"])["model_swapped"]
    return promoted_by(swaps["request"])


def promoted_by(requests: Iterable[object]) -> frozenset[str]:
    """Return the challengers the ``request`` of ``model_swapped`` rows promoted
    (`promotion_request`)."""
    return frozenset(name for r in requests if (name := promoted_name(r)) is not None)


def _ticks(
    session: LiveSession, rows: Sequence[LiveBarRow]
) -> list[tuple[int, pd.Timestamp, npt.NDArray[np.float64]]]:
    """The journal's live ticks, in order, as `LiveSession.step` takes them (with their
    clock bar)."""
    ticks: dict[int, list[LiveBarRow]] = {}
    for row in rows:
        ticks.setdefault(row.index, []).append(row)
    return [(t, ticks[t][0].time, session.replayed(ticks[t])[0]) for t in sorted(ticks)]
