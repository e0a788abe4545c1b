"""What parity reads of a paper or live run (`ParityJournal`): its journal, verified first,
and its strategy file, checked against the documents the run traded
(`tradeloom.diagnostics.parity`)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from tradeloom.diagnostics.parity_allocation import rebalances
from tradeloom.diagnostics.parity_history import history
from tradeloom.diagnostics.parity_portfolio import SEPARATOR, given_weights, member_documents
from tradeloom.engine.allocation import GivenWeights
from tradeloom.errors import UserError
from tradeloom.files.reading import NotAFile, read_yaml
from tradeloom.journal import journal_path, read_rows, verify
from tradeloom.reporting.settings_diff import flatten
from tradeloom.schemas.file_kind import is_portfolio_document

__all__ = [
    "ParityJournal",
    "read_journal",
    "strategy_file",
]


@dataclass
class ParityJournal:
    """What parity reads of a run's journal: its mode, starting cash, each market's lot
    (``dust``, by symbol), the strategy it started under, its live bars, its symbols (in
    the order the run played them), the rows by kind and an allocating run's
    rebalances."""

    mode: str
    capital: float
    dust: dict[str, float]
    document: dict[str, Any]
    live: list[Any]
    rows: dict[str, list[Any]]
    symbols: list[str] = field(default_factory=list)
    rebalances: dict[int, tuple[str, str, list[float] | None]] = field(default_factory=dict)
    """An allocating run's decisions, by their bar's open time (`parity_allocation`)."""
    scales: list[tuple[int, float]] = field(default_factory=list)
    """Each change of the share of the sizing's size (a canary's start and end): ``(open
    time of its bar, UTC ns, fraction)``, in force from the next bar (``Pipeline.scales``)."""
    members: list[dict[str, Any]] = field(default_factory=list)
    """A portfolio file's run: each member strategy's document (`parity_portfolio`)."""
    weights: GivenWeights | None = None
    """A portfolio file's run: the weights between its strategies as it decided them
    (None: fixed)."""
    path: Path = field(default_factory=Path)
    """The journal."""
    source: str = ""
    """The strategy file as the run named it (``run_started``: from the folder it was
    started in)."""
    rules: list[tuple[int, str, str]] = field(default_factory=list)
    """Each change of the signal rule or the sizing a ``model_swapped`` row made (a
    promotion's, and the rollback or swap that ended it): ``(open time of its bar, UTC ns,
    signal, sizing)``, each section as JSON ('' the strategy's own), in force from the
    next bar (``Pipeline.signal_rules``)."""
    member_rules: dict[str, list[tuple[int, str, str]]] = field(default_factory=dict)
    """A portfolio file's run: per member strategy, each change of its signal rule or
    sizing its ``model_swapped`` rows made, as ``rules`` (none: not in the mapping)."""
    history: pd.DataFrame | None = None
    """The bars the run warmed up on (`tradeloom.diagnostics.parity_history.history`:
    ``timestamp``, ``symbol``, OHLCV), which
    the replay plays first, with no probability; None: none (the replay starts at the
    first live bar)."""
    history_note: str = ""
    """Why the history is not replayed ('' when it is, or the run has none)."""

    @property
    def history_bars(self) -> int:
        """Return how many bars of the replay's clock come before the first live bar."""
        return 0 if self.history is None else int(self.history["timestamp"].nunique())


def read_journal(run_dir: Path, until_bar: int | None = None) -> ParityJournal:
    """Return what parity reads of the run in ``run_dir`` (its rows up to ``until_bar``; None: all).

    Raises:
        UserError: No journal, one `tradeloom.journal.verify` refuses, a strategy.yaml
            changed since the run, not a paper or live run's, or no bar played.
    """
    path = journal_path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: not a directory; give a paper or live run's folder")
    if not path.is_file():
        raise UserError(
            f"{run_dir}: no journal ({path.name}); give the folder a paper or live run wrote"
        )
    # strategy.yaml against the documents the run traded (read by the safe reader), then
    # the journal as `tradeloom journal verify`, `status` and `report` check it: a cut,
    # broken or another run's journal is no truth to replay. The file first: its message
    # names the key that changed, where the chain's would name two hashes.
    documents = [
        r.values.get("document") for r in read_rows(path, ["run_started", "config_reloaded"])
    ]
    if documents and isinstance(documents[0], dict) and os.path.lexists(strategy_file(run_dir)):
        _check_strategy(run_dir, documents)  # a paper or live run's (none: once read, below)
    verify(path)
    kinds = (
        "run_started",
        "live_bar",
        "venue_fill",
        "order_state",
        "signal",
        "order",
        "fill",
        "rejection",
        "order_cancelled",
        "config_reloaded",
        "restarted",
        "halt",
        "control_request",
        "trading_state",
        "sliced_order",
        "route_decision",
        "funding",
        "market_at_start",
        "allocation_decided",
        "venue_at_start",
        "strategy_at_start",
        "warm_up",
        "model_swapped",
        *_CANARY_ROWS,
    )
    rows: dict[str, list[Any]] = {kind: [] for kind in kinds}
    for row in read_rows(path, kinds):  # a journal of another format: its JournalError
        if until_bar is None or row.bar <= until_bar:
            rows[row.kind].append(row)
    starts = rows["run_started"]
    if not starts:
        raise UserError(f"{path}: no run_started row; not a run's journal")
    start = starts[0].values
    if start["mode"] not in ("paper", "live"):
        raise UserError(
            f"{path}: a {start['mode']} run's journal; parity replays a paper or live run"
        )
    if not rows["live_bar"]:
        raise UserError(f"{path}: no live_bar rows; the run played no bar to compare")
    document = start.get("document")
    if not isinstance(document, dict):
        raise UserError(
            f"{path}: the run_started row keeps no strategy document; parity needs the "
            "strategy the run started under"
        )
    members: list[dict[str, Any]] = []
    if is_portfolio_document(document):  # its strategies as they started (or their files)
        members = [r.values["document"] for r in rows["strategy_at_start"]] or member_documents(
            document, str(start.get("source") or ""), path
        )
    symbols = list(dict.fromkeys(r.symbol for r in rows["live_bar"]))
    dust = dict.fromkeys(symbols, float(start.get("dust") or 0.0))
    for r in rows["market_at_start"]:  # a universe's live run: each market's lot
        dust[r.symbol] = float(r.values.get("dust") or 0.0)
    for book in symbols if members else []:  # a portfolio's book: its market's lot
        market = book.split(SEPARATOR, 1)[1]
        dust[book] = dust.get(market, dust[book])
    for r in rows["venue_at_start"]:  # a router's live run: its market's lot at each venue
        for symbol in symbols:
            dust[symbol] = max(dust[symbol], float(r.values.get("dust") or 0.0))
    journal = ParityJournal(
        str(start["mode"]),
        float(start["capital"]),
        dust,
        document,
        rows["live_bar"],
        rows,
        symbols,
        {} if members else rebalances(rows["allocation_decided"], symbols, path),
        _scales(rows),
        members,
        given_weights(document, members, rows, path) if members else None,
        path,
        str(start.get("source") or ""),
    )
    journal.rules = _rules(rows)
    if members:  # a portfolio's books start at their first live bar
        ruled = {str(m["name"]): _rules(rows, str(m["name"])) for m in members}
        journal.member_rules = {name: changes for name, changes in ruled.items() if changes}
        return journal
    found, note = history(document, journal.source, rows["warm_up"], symbols)
    return dataclasses.replace(journal, history=found, history_note=note)


_CANARY_ROWS = ("canary_started", "canary_passed", "canary_rolled_back")


def _scales(rows: Mapping[str, list[Any]]) -> list[tuple[int, float]]:
    """Each canary's share of the size from its start to its end, by its bar's open time
    (as a restart replays them: `tradeloom.live.recovery.journal_state.JournalState.scales`)."""
    opens = {r.bar: pd.Timestamp(r.timestamp).value for r in rows["live_bar"]}
    changes = sorted(
        (r.seq, opens[r.bar], float(r.values["fraction"]) if kind == _CANARY_ROWS[0] else 1.0)
        for kind in _CANARY_ROWS
        for r in rows[kind]
        if r.bar in opens
    )
    return [(time, fraction) for _, time, fraction in changes]


def _rules(rows: Mapping[str, list[Any]], strategy: str = "") -> list[tuple[int, str, str]]:
    """Each change of the signal rule or the sizing in force by a ``model_swapped`` row of
    the strategy run alone (``strategy``: of that portfolio file's member), by its bar's
    open time (as a restart replays them: `tradeloom.live.recovery.journal_state.
    JournalState.rules`, ``member_rules``)."""
    opens = {r.bar: pd.Timestamp(r.timestamp).value for r in rows["live_bar"]}
    changes, now = [], ("", "")
    for r in sorted(rows["model_swapped"], key=lambda r: r.seq):
        texts = (str(r.values.get("signal") or ""), str(r.values.get("sizing") or ""))
        if (r.values.get("strategy") or "") != strategy or texts == now or r.bar not in opens:
            continue
        changes.append((opens[r.bar], *texts))
        now = texts
    return changes


def strategy_file(run_dir: Path) -> Path:
    """Return the run's strategy file (``strategy.yaml`` in its folder)."""
    return run_dir / "strategy.yaml"


def _check_strategy(run_dir: Path, known: Sequence[Any]) -> None:
    """Refuse a strategy.yaml that is none of ``known``, the documents the run started
    under and reloaded, naming the first key that differs from the last."""
    file = strategy_file(run_dir)
    try:  # the safe reader every reader of a run folder uses (a FIFO, a bomb: one line)
        written = read_yaml(file, "a run's strategy file")
    except NotAFile as exc:
        if exc.mode is not None:
            raise
        raise UserError(f"{run_dir}: no strategy.yaml; give the folder the run wrote") from None
    if any(written == doc for doc in known):
        return
    mine, theirs = flatten(written), flatten(known[-1])
    keys = [k for k in dict.fromkeys([*theirs, *mine]) if mine.get(k) != theirs.get(k)]
    key = keys[0] if keys else "(its layout)"
    raise UserError(
        f"{file}: changed since the run: {key} is {mine.get(key)!r}, the run traded "
        f"{theirs.get(key)!r}; restore the file the run wrote"
    )
