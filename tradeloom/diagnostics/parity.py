"""Replay a paper or live run's bars as a backtest and explain every difference
(``tradeloom parity RUN_DIR``, `Run.parity`).

1. The run's journal, verified first as ``tradeloom journal verify`` verifies it (a cut,
   broken or another run's journal is refused), gives the bars it saw, as it saw them
   (``live_bar`` rows), and each bar's probability, as the run's models gave it (the
   folds it trained, when it trained them): the replay's model is those probabilities
   (a ``precomputed`` model), so a retrain at another moment is not a false difference.
   The run's files are read by the safe reader (`tradeloom.files.reading`).
2. The replay is a backtest of the strategy document the run started under
   (``run_started``), on the bars it warmed up on (with no probability:
   `tradeloom.diagnostics.parity_history`) and then those bars, read with its data
   section's calendar, validation, series and book, from the run's starting cash,
   written to ``OUT/reference`` (a run folder like any other; an earlier parity's
   replay there is replaced).
3. Bar by bar, the two are compared: probability, signal, order (side, quantity,
   reason), fill (price, quantity, fee), position, cash and equity. Each difference
   gets a cause (`CAUSES`); the equity gap is split into P&L by cause, fill by fill,
   so that the causes sum to the gap, and what they do not explain is ``unexplained``.

One market or a universe: each fill, signal and order is compared in its own symbol,
and each cause's P&L is kept per symbol too (``by_symbol``). A router's fills are
compared venue by venue (the replay models each venue with its fees and its share of the
cash), each cause's P&L kept per venue too (``by_venue``). Sliced orders are compared
child by child (each child an order of its bar). A perpetual's funding: the replay books
the rates the run booked (its ``funding`` rows, as a file series), and each bar's
funding is compared. A run that allocates: the replay takes each rebalance as the run
journaled it (`tradeloom.diagnostics.parity_allocation`). A portfolio file's run: its
backtest over each member's books (`tradeloom.diagnostics.parity_portfolio`), weights
between them that move as the run decided them, each cause's P&L by member too
(``by_strategy``). A challenger's canary: the replay sizes entries at its share from its
start to its end (``canary_*`` rows, `tradeloom.engine.driver.Engine.replay_scales`); the
challengers are no part of the replay (they never trade). With a history fetched later (``--data``),
the bars it revises are a cause of their own (`tradeloom.diagnostics.parity_data`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from tradeloom.diagnostics.parity_allocation import (
    allocation_differences,
    late_decisions,
    rebalances,
)
from tradeloom.diagnostics.parity_data import Revision, book_revision, read_revision
from tradeloom.diagnostics.parity_history import history
from tradeloom.diagnostics.parity_knock_on import ExplainedSoFar
from tradeloom.diagnostics.parity_portfolio import (
    SEPARATOR,
    book_rows,
    by_strategy,
    given_weights,
    member_documents,
    run_replay,
)
from tradeloom.engine.allocation import GivenWeights
from tradeloom.errors import UserError
from tradeloom.files.reading import NotAFile, read_yaml, require_regular
from tradeloom.files.writing import OutputFolder
from tradeloom.journal import journal_path, read_rows, verify
from tradeloom.reporting.settings_diff import flatten
from tradeloom.schemas.file_kind import is_portfolio_document

__all__ = [
    "CAUSES",
    "TOLERANCES",
    "ParityResult",
    "format_parity",
    "parity",
    "parse_tolerances",
    "write_parity",
]

CAUSES: dict[str, str] = {
    "slippage": "a fill's price differs from the simulated venue's (the venue's price)",
    "fee": "a fill's fee differs from the fee model's for its price and quantity",
    "partial_fill": "the venue filled less than the order's quantity",
    "rejection": "the venue rejected or cancelled an order the backtest filled (its code)",
    "late_bars": "bars missed or played late (an outage, a restart's catch-up)",
    "late_decision": "a rebalance the run decided late (its solve passed its deadline): "
    "the last weights held where the replay traded its solve",
    "kill": "a kill or flatten the operator asked for",
    "funding": "a perpetual's funding differs (the position it was paid on, or its rate)",
    "hot_reload": "the strategy file was reloaded while the run traded",
    "data_revised": "a bar the run saw differs from the history given later (--data): the "
    "replay on the run's bars against the replay on the history's",
    "knock_on": "a size or decision that follows an equity or position already apart",
    "unexplained": "a difference no journaled fact explains",
}
"""Every cause a difference is attributed to, with what it means."""

TOLERANCES: dict[str, float] = {
    "relative": 1e-9,
    "absolute": 1e-6,
    "late": 1.0,
}
"""The defaults of ``--tolerance``: numbers equal within ``relative``; money and the
equity residual within ``absolute``; a bar played ``late`` bars or more after its close
is late (its order went out once the next bar had closed too). A cause's name limits its
|P&L| (default: none, ``unexplained``: 0)."""

_SIMULATED = "simulated"
_CCXT = "ccxt"
_ROUTER = "router"
_ACCOUNT_KEYS = frozenset({"exchange", "options", "config", "api_key", "secret", "password"})
"""An exchange account's keys (``ccxt``'s connection), which its simulated model has not."""
_DIFFERENCE_COLUMNS = (
    "timestamp", "bar", "symbol", "venue", "field", "run", "reference", "cause", "code", "pnl"
)  # fmt: skip
_OHLCV = ("open", "high", "low", "close", "volume")
_DATA_KEPT = ("timeframe", "calendar", "validation")
"""The run's data keys the replay's bars are read with (a file source's keys)."""
_FUNDING_RATE = "funding_rate"
"""An exchange's funding series: the replay books the rates the run booked instead."""
_BOOK_FILE = "book.parquet"
"""The order book a paper or live run saw, kept in its folder (`tradeloom.live.book_feed`)."""
_DEFAULT_CASH = 100_000.0
"""``initial_cash``'s default (`SimulatedVenueParams`)."""


@dataclass(frozen=True)
class ParityResult:
    """The comparison of a run with its replay.

    Attributes:
        bars: One row per bar the run saw (a universe: per bar of its clock):
            ``timestamp``, ``bar``, each side's ``equity`` (``run_equity``,
            ``reference_equity``), the ``gap`` and each cause's cumulative P&L (a column
            per cause).
        differences: One row per difference: ``timestamp``, ``bar``, ``symbol`` (''
            for the account's equity), ``venue`` (a router's; ''), ``field``, ``run``,
            ``reference``, ``cause``, ``code``, ``pnl``.
        causes: One row per cause found: ``count``, ``pnl``, ``limit``, ``within``.
        summary: What ``parity.json`` holds besides the tables.
    """

    bars: pd.DataFrame
    differences: pd.DataFrame
    causes: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Return whether every difference is explained and within its limit."""
        return bool(self.summary["passed"])


def parse_tolerances(words: Sequence[str]) -> dict[str, float]:
    """Return the tolerances with ``KEY=VALUE`` words applied over `TOLERANCES`.

    Raises:
        UserError: A word without ``=``, an unknown key, or a value that is not a
            finite number >= 0 (``relative``: below 1): an infinite tolerance (``1e309``
            reads as one) or a relative one of 1 passes any difference.
    """
    tolerances = dict(TOLERANCES)
    known = [*TOLERANCES, *CAUSES]
    for word in words:
        key, sep, text = word.partition("=")
        if not sep:
            raise UserError(f"--tolerance {word}: expected KEY=VALUE (keys: {', '.join(known)})")
        if key not in known:
            raise UserError(f"--tolerance {word}: no key {key!r}; keys: {', '.join(known)}")
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value >= 0):
            raise UserError(f"--tolerance {word}: expected a finite number >= 0, was {text!r}")
        if key == "relative" and value >= 1:
            raise UserError(
                f"--tolerance {word}: expected a share below 1 (1 passes any two numbers of "
                f"one sign), was {text!r}"
            )
        tolerances[key] = value
    return tolerances


# --- reading the run ------------------------------------------------------------------------


@dataclass
class _Journal:
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


def _read_journal(run_dir: Path, until_bar: int | None = None) -> _Journal:
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
    if documents and isinstance(documents[0], dict) and os.path.lexists(_strategy_file(run_dir)):
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
    journal = _Journal(
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
    if members:  # a portfolio's books start at their first live bar
        return journal
    found, note = history(document, journal.source, rows["warm_up"], symbols)
    return dataclasses.replace(journal, history=found, history_note=note)


_CANARY_ROWS = ("canary_started", "canary_passed", "canary_rolled_back")


def _scales(rows: Mapping[str, list[Any]]) -> list[tuple[int, float]]:
    """Each canary's share of the size from its start to its end, by its bar's open time
    (as a restart replays them: `tradeloom.live.journal_state.JournalState.scales`)."""
    opens = {r.bar: pd.Timestamp(r.timestamp).value for r in rows["live_bar"]}
    changes = sorted(
        (r.seq, opens[r.bar], float(r.values["fraction"]) if kind == _CANARY_ROWS[0] else 1.0)
        for kind in _CANARY_ROWS
        for r in rows[kind]
        if r.bar in opens
    )
    return [(time, fraction) for _, time, fraction in changes]


def _strategy_file(run_dir: Path) -> Path:
    return run_dir / "strategy.yaml"


def _check_strategy(run_dir: Path, known: Sequence[Any]) -> None:
    """Refuse a strategy.yaml that is none of ``known``, the documents the run started
    under and reloaded, naming the first key that differs from the last."""
    file = _strategy_file(run_dir)
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


# --- the replay -----------------------------------------------------------------------------


def _replay_document(
    journal: _Journal, bars_file: Path, funding_file: Path | None = None
) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(json.dumps(journal.document))
    data = document.get("data") or {}
    execution = _replay_execution(document.get("execution") or {}, journal.capital)
    if len(journal.symbols) == 1:
        document["data"] = {"kind": "csv", "path": str(bars_file), "symbol": journal.symbols[0]}
    else:
        document["data"] = {
            "kind": "csv",
            "path": str(bars_file),
            "symbols": journal.symbols,
            "symbol_column": "symbol",
        }
    # the run's bars as its data section reads them: its calendar's closures are no gaps,
    # its validation's repairs are no refusal, its series and book beside them
    document["data"] |= {key: data[key] for key in _DATA_KEPT if key in data}
    auxiliary = [
        _beside(journal, series, f"data.auxiliary.{i}")
        for i, series in enumerate(data.get("auxiliary") or [])
        if isinstance(series, dict) and series.get("kind") != _FUNDING_RATE
    ]
    if funding_file is not None:  # the rates the run booked, at the bars it booked them
        series = {"name": execution.get("funding"), "kind": "file", "path": str(funding_file)}
        series |= {"column": "rate", "symbol_column": "symbol", "available_after": "0s"}
        auxiliary.append(series)
    if auxiliary:
        document["data"]["auxiliary"] = auxiliary
    book = data.get("order_book")
    if isinstance(book, dict):  # the book the run saw, as it kept it (`tradeloom.live.book_feed`)
        kept = journal.path.parent / _BOOK_FILE
        require_regular(kept, "the order book the run saw")
        document["data"]["order_book"] = {**book, "path": str(kept.absolute())}
    _health_without_retraining(document)
    model = document.get("model") or {}
    label = model.get("label") if isinstance(model, dict) else None
    horizon = label.get("horizon", 1) if isinstance(label, dict) else 1
    document["model"] = {"kind": "precomputed", "column": "p_up", "horizon": int(horizon)}
    document["execution"] = execution
    document.pop("live", None)
    # challengers never trade (their shadows decide nothing the run did), and a promotion
    # is in the journaled probabilities: the replay has none to check or run
    document.pop("challengers", None)
    return document


def _beside(journal: _Journal, series: dict[str, Any], where: str) -> dict[str, Any]:
    """``series`` with its relative ``path`` resolved as the run resolved it: beside its
    strategy file (``run_started``'s ``source``, from the folder the run was started in).

    Raises:
        UserError: The file is not there (``where``: its key path).
    """
    path = series.get("path")
    if not isinstance(path, str):
        return series
    file = (Path(journal.source).parent / path).absolute()
    if not file.exists():
        raise UserError(
            f"{journal.path}: {where}.path {file} is not there; run parity from the folder "
            f"the run was started in (the run read it beside {journal.source or 'its file'})"
        )
    return {**series, "path": str(file)}


def _health_without_retraining(document: dict[str, Any]) -> None:
    """A health rule's ``retrain`` is in the run's journaled probabilities; the replay's
    model (precomputed: them) has nothing to retrain, so the rule only warns there."""
    for rule in document.get("health") or []:
        if isinstance(rule, dict) and rule.get("action") == "retrain":
            rule["action"] = "warn"


def _replay_execution(execution: dict[str, Any], capital: float) -> dict[str, Any]:
    """The run's execution as the replay models it: an exchange account (``ccxt``) as
    the simulated venue with its fees and cash, a router's venues each so, from the
    run's starting cash (a router's split over its venues as the file splits it)."""
    kind = execution.get("kind")
    if kind == _ROUTER:
        venues = [_simulated(v, f"execution.venues.{i}") for i, v in enumerate(execution["venues"])]
        cash = math.fsum(float(v.get("initial_cash", _DEFAULT_CASH)) for v in venues)
        if math.isfinite(capital) and cash > 0:
            for v in venues:
                v["initial_cash"] = float(v.get("initial_cash", _DEFAULT_CASH)) * capital / cash
        return {**execution, "venues": venues}
    execution = _simulated(execution, "execution")
    if math.isfinite(capital):
        execution["initial_cash"] = capital
    return execution


def _simulated(venue: dict[str, Any], where: str) -> dict[str, Any]:
    kind = venue.get("kind")
    if kind == _SIMULATED:
        return dict(venue)
    if kind == _CCXT:
        kept = {k: v for k, v in venue.items() if k not in _ACCOUNT_KEYS}
        return kept | {"kind": _SIMULATED}
    raise UserError(
        f"{where}.kind: {kind!r}; parity replays a simulated venue, an exchange account "
        "(ccxt) or a router of them"
    )


def _replay(journal: _Journal, out: OutputFolder, name: str = "reference") -> Path:
    from tradeloom.backtest.run import run_strategy
    from tradeloom.engine.wiring import build_pipeline
    from tradeloom.errors import ConfigError
    from tradeloom.schemas import load_strategy

    reference = out.subfolder(name)  # an earlier parity's replay: replaced
    with tempfile.TemporaryDirectory(prefix="tradeloom-parity-") as folder:
        try:
            if journal.members:  # a portfolio file: each member's books, one account
                run_replay(_portfolio_files(journal, Path(folder)), reference, journal.weights)
                return reference
            file = _strategy_files(journal, Path(folder), "strategy")
            try:
                config, plugins = load_strategy(file, ())
            except ConfigError as exc:
                raise UserError(f"the run's strategy does not load now: {exc}") from None
            pipeline = build_pipeline(config)
            if journal.rebalances:  # the run's rebalances, not solved again
                pipeline = dataclasses.replace(pipeline, rebalances=journal.rebalances)
            if journal.scales:  # the run's canaries, each at its bar
                pipeline = dataclasses.replace(pipeline, scales=tuple(journal.scales))
            run_strategy(pipeline, plugins, out=reference)
        except UserError as exc:  # named by what the user has, not the replay's scratch files
            raise UserError(_scratch_named(str(exc), Path(folder), journal)) from None
    return reference


def _scratch_named(message: str, folder: Path, journal: _Journal) -> str:
    """``message`` with the replay's scratch files named as what they were written from:
    its bars as the journal's ``live_bar`` rows, its strategy file as the one the run
    started under."""

    def named(match: re.Match[str]) -> str:
        stem, _, suffix = match.group(1).rpartition(".")
        if suffix == "csv":
            if stem.endswith("-funding"):
                return f"the funding the run booked ({journal.path}, its funding rows)"
            return f"the bars the run saw ({journal.path}, its live_bar rows)"
        file = journal.path.parent / "strategy.yaml"
        if stem in ("strategy", "portfolio"):
            return f"{file} (as the replay runs it)"
        return f"strategy {stem!r} of {file} (as the replay runs it)"

    return re.sub(re.escape(str(folder)) + r"/([^\s:,;]+)(:\d+:\d+)?", named, message)


def _strategy_files(journal: _Journal, folder: Path, stem: str) -> Path:
    """Write the replay's strategy file ``STEM.yaml`` and its bars (``STEM.csv``, the
    probabilities a column) and funding rates into ``folder``; return the file."""
    live = journal.live
    bars = pd.DataFrame({"timestamp": [pd.Timestamp(r.timestamp) for r in live]})
    bars["symbol"] = [r.symbol for r in live]
    for column in _OHLCV:
        bars[column] = [float(r.values[column]) for r in live]
    bars["p_up"] = [
        math.nan if r.values["probability"] is None else float(r.values["probability"])
        for r in live
    ]
    if journal.history is not None:  # the warm-up: its features, regimes and peaks; no orders
        bars = pd.concat([journal.history.assign(p_up=math.nan), bars], ignore_index=True)
    if len(journal.symbols) == 1:
        bars = bars.drop(columns="symbol")
    bars_file = folder / f"{stem}.csv"
    bars.to_csv(bars_file, index=False)
    funding_file = None
    data = journal.document.get("data") or {}
    series = [s for s in data.get("auxiliary") or [] if isinstance(s, dict)]
    if journal.rows["funding"] or any(s.get("kind") == _FUNDING_RATE for s in series):
        funding_file = folder / f"{stem}-funding.csv"
        funded = [
            (pd.Timestamp(r.timestamp), r.symbol, float(r.values["rate"]))
            for r in journal.rows["funding"]
        ]
        # none booked yet: a rate of 0 at the first bar (it books nothing), as a series
        # holds a row of each symbol
        booked = {symbol for _, symbol, _ in funded}
        first = pd.Timestamp(bars["timestamp"].iloc[0])
        funded += [(first, symbol, 0.0) for symbol in journal.symbols if symbol not in booked]
        frame = pd.DataFrame(funded, columns=["timestamp", "symbol", "rate"])
        frame.sort_values("timestamp", kind="stable").to_csv(funding_file, index=False)
    file = folder / f"{stem}.yaml"
    document = _replay_document(journal, bars_file, funding_file)
    file.write_text(yaml.safe_dump(document, sort_keys=False))
    return file


def _portfolio_files(journal: _Journal, folder: Path) -> Path:
    """Write the replay's portfolio file: each member strategy rewritten over its books
    (`_strategy_files`), the account's cash the run's; return it."""
    document: dict[str, Any] = json.loads(json.dumps(journal.document))
    for entry, member in zip(document["strategies"], journal.members, strict=True):
        name = str(member["name"])
        live = book_rows(journal.live, name)
        own = dataclasses.replace(
            journal,
            source=str(Path(journal.source).parent / str(entry["file"])),
            document=member,
            live=live,
            symbols=list(dict.fromkeys(r.symbol for r in live)),
            rows={**journal.rows, "funding": book_rows(journal.rows["funding"], name)},
        )
        entry["file"] = _strategy_files(own, folder, name).name
    if math.isfinite(journal.capital):
        document["initial_cash"] = journal.capital
    file = folder / "portfolio.yaml"
    file.write_text(yaml.safe_dump(document, sort_keys=False))
    return file


# --- comparing ------------------------------------------------------------------------------


@dataclass
class _Context:
    """The journaled facts that explain a difference, by the run's bar (a venue's
    refusal: by bar and symbol)."""

    times: dict[int, pd.Timestamp]
    late: set[int]
    reload_bar: float
    kill_bar: float
    refused: dict[tuple[int, str], str]
    late_decided: dict[int, str] = field(default_factory=dict)


def _context(journal: _Journal, tolerances: Mapping[str, float]) -> _Context:
    live = journal.live
    times = {r.bar: pd.Timestamp(r.timestamp) for r in live}
    step = _step(live)
    late: set[int] = set()
    previous: int | None = None
    for r in _first_rows(live):
        close = pd.Timestamp(r.timestamp) + step
        played = r.values.get("wall_time")
        # the run's clock: the wall's, or the simulated one's (an emulator's market time)
        lag = (pd.Timestamp(played) - close) / step if played is not None else 0.0
        # played a bar after its close: its order went out once the next bar had closed
        if (lag > 0 and lag >= tolerances["late"]) or (
            previous is not None and r.bar != previous + 1
        ):
            late.add(r.bar)
        previous = r.bar
    for r in journal.rows["restarted"]:
        late.add(r.bar + 1)
    reloads = [r.bar for r in journal.rows["config_reloaded"]]
    kills = [
        r.bar
        for r in journal.rows["control_request"]
        if r.values.get("action") in ("kill", "flatten")
    ] + [r.bar for r in journal.rows["trading_state"] if r.values.get("code") == "KILL_SWITCH"]
    refused: dict[tuple[int, str], str] = {}
    venue_said = {  # what the venue answered an order it refused (code: message)
        r.values["client_id"]: str(r.values.get("reason") or r.values.get("code"))
        for r in journal.rows["order_state"]
        if r.values.get("state") == "rejected"
    }
    for r in journal.rows["order_cancelled"]:
        said = venue_said.get(r.values.get("order_id"))
        refused.setdefault((r.bar, r.symbol), said or str(r.values.get("reason") or "CANCELLED"))
    children = {r.values["order_id"] for r in journal.rows["route_decision"]}
    for r in journal.rows["order_state"]:  # a router's child a venue refused: routed on
        if r.values.get("state") == "rejected" and r.values["client_id"] in children:
            refused.setdefault((r.bar, r.symbol), venue_said[r.values["client_id"]])
    return _Context(
        times,
        late,
        float(min(reloads)) if reloads else math.inf,
        float(min(kills)) if kills else math.inf,
        refused,
        late_decisions(journal.rows["allocation_decided"]),
    )


def _first_rows(live: Sequence[Any]) -> list[Any]:
    """Each bar's first live row, in order (a universe journals a row per symbol)."""
    first: dict[int, Any] = {}
    for r in live:
        first.setdefault(r.bar, r)
    return list(first.values())


def _step(live: Sequence[Any]) -> pd.Timedelta:
    times = pd.DatetimeIndex([pd.Timestamp(r.timestamp) for r in _first_rows(live)])
    if len(times) < 2:
        return pd.Timedelta(hours=1)
    return pd.Timedelta((times[1:] - times[:-1]).min())


def _event_cause(
    bar: int, symbol: str, ctx: _Context, *, filled: bool = False, sized: bool = False
) -> tuple[str, str] | None:
    """The journaled event that explains a difference at ``bar`` in ``symbol`` (None:
    none). A decision is late at a late bar or the bar after one; a fill (``filled``)
    only after one: a late bar's own open fill was ordered on time, before it. A fill's
    quantity (``sized``) is never late's: a late order is sent with its size."""
    if (bar, symbol) in ctx.refused:
        return "rejection", ctx.refused[bar, symbol]
    if bar in ctx.late_decided:
        return "late_decision", ctx.late_decided[bar]
    if not sized and (bar - 1 in ctx.late or (bar in ctx.late and not filled)):
        return "late_bars", ""
    if bar >= ctx.kill_bar:
        return "kill", ""
    if bar > ctx.reload_bar:
        return "hot_reload", ""
    return None


def _close(a: float, b: float, tolerances: Mapping[str, float]) -> bool:
    return math.isclose(a, b, rel_tol=tolerances["relative"], abs_tol=tolerances["absolute"])


def parity(
    run_dir: Path,
    *,
    out: Path | None = None,
    tolerances: Mapping[str, float] | None = None,
    until_bar: int | None = None,
    data: Path | None = None,
    option: str = "--out",
) -> ParityResult:
    """Replay the run in ``run_dir`` as a backtest and compare it bar by bar.

    Args:
        run_dir: A paper or live run's folder.
        out: Where the replay's run folder (``reference``) goes (default:
            ``RUN_DIR/parity``); an earlier parity's replay there is replaced.
        tolerances: `TOLERANCES` with changes (`parse_tolerances`).
        until_bar: Compare the bars up to this one only (None: every bar): a run that
            trades on (`tradeloom.diagnostics.live_parity`).
        data: A history of the run's bars fetched later (``--data``): each bar that
            differs from the one the run saw is the cause ``data_revised``, and the
            run is compared with its replay on the history's bars
            (`tradeloom.diagnostics.parity_data`).
        option: How messages name ``out`` (the Python API's argument: ``out``).

    Raises:
        UserError: A folder without a journal, a journal `tradeloom.journal.verify`
            refuses (cut, its chain broken, another run's) or of another mode, a run
            file the safe reader refuses (`tradeloom.files.reading`), a strategy changed
            since the run (the key named), a shape parity does not compare yet, a
            ``data`` file of other symbols or not holding every bar the run saw, an
            ``out`` that cannot be written (`tradeloom.files.writing.OutputFolder`).
    """
    limits = dict(TOLERANCES if tolerances is None else tolerances)
    journal = _read_journal(run_dir, until_bar)
    if not os.path.lexists(_strategy_file(run_dir)):
        raise UserError(f"{run_dir}: no strategy.yaml; give the folder the run wrote")
    revision = None
    if data is not None:
        markets = {s: s.split(SEPARATOR, 1)[1] if journal.members else s for s in journal.symbols}
        revision = read_revision(data, journal.live, markets, limits)
    # made once the run is known sound: a folder that cannot be, one line
    folder = OutputFolder(run_dir / "parity" if out is None else out, option=option)
    reference = _replay(journal, folder)
    if revision is None:
        return _by_strategy(journal, _compare(run_dir, journal, reference, limits))
    on_history = reference  # no bar revised: the same replay
    if revision.revised:
        on_history = _replay(dataclasses.replace(journal, live=revision.live), folder, "revised")
    result = _compare(run_dir, journal, reference, limits, (revision, on_history))
    result.summary["data"] = {
        "file": str(data),
        "bars_revised": revision.bars,
        "fields_revised": len(revision.revised),
        "replay_on_data": str(on_history),
    }
    return _by_strategy(journal, result)


def _by_strategy(journal: _Journal, result: ParityResult) -> ParityResult:
    """A portfolio file's: each cause's P&L by member strategy too (``by_strategy``)."""
    if journal.members:
        names = [str(m["name"]) for m in journal.members]
        result.summary["by_strategy"] = by_strategy(result.summary["by_symbol"], names)
    return result


def _rows(path: Path, kind: str) -> list[Any]:
    return list(read_rows(journal_path(path), [kind]))


class _Comparison:
    """The differences found so far and each cause's P&L at every live bar's close.

    A fill moves the equity at close c by ``-s q p - f + s q c`` (side s, quantity q,
    price p, fee f): its difference from the replay's fill is split exactly into causes
    (`fill_pair`), and a fill one side has and the other has not counts whole
    (`unmatched`); what the causes leave of the equity gap is ``unexplained``. In a
    universe each fill moves its own symbol's close; each cause's P&L is kept by symbol
    too (``by_symbol``, at the last close).
    """

    def __init__(self, journal: _Journal, ctx: _Context, limits: Mapping[str, float]) -> None:
        self.ctx = ctx
        self.limits = limits
        self.venue = journal.mode == "live"
        self.dust = journal.dust
        self.bars = [r.bar for r in _first_rows(journal.live)]
        self.index = {bar: i for i, bar in enumerate(self.bars)}
        self.closes: dict[str, np.ndarray] = {}  # a bar a symbol misses: its last close
        for symbol in journal.symbols:
            closes = pd.Series(np.nan, index=self.bars)
            mine = [r for r in journal.live if r.symbol == symbol]
            closes.loc[[r.bar for r in mine]] = [float(r.values["close"]) for r in mine]
            self.closes[symbol] = closes.ffill().fillna(0.0).to_numpy(np.float64)
        self.differences: list[dict[str, Any]] = []
        self.explained = ExplainedSoFar()  # what `explain` reads of them
        self.apart: dict[str, float] = {}  # the position only one side holds, by symbol
        self.apart_cause: dict[str, tuple[str, str]] = {}
        self.pnl: dict[str, np.ndarray] = {}
        self.by_symbol: dict[str, dict[str, float]] = {s: {} for s in journal.symbols}
        self.by_venue: dict[str, dict[str, float]] = {}  # a router's: by venue
        # by order and venue (a router's: what its children at the venue were sent)
        routes = {r.values["order_id"]: r for r in journal.rows["route_decision"]}
        self.ordered: dict[tuple[str, str], float] = {}
        for r in journal.rows["order"]:
            self.ordered[str(r.values["id"]), ""] = float(r.values["quantity"])
        for r in routes.values():
            key = (str(r.values["parent_id"]), str(r.values["venue"]))
            self.ordered[key] = self.ordered.get(key, 0.0) + float(r.values["quantity"])
        self.in_base: dict[tuple[str, str], float] = {}  # a buy's fee taken from the base
        for r in journal.rows["venue_fill"]:
            if r.values.get("fee_currency") == r.symbol.split("/")[0]:
                route = routes.get(r.values["order_id"])
                key = (
                    (str(r.values["order_id"]), "")
                    if route is None
                    else (str(route.values["parent_id"]), str(route.values["venue"]))
                )
                self.in_base[key] = self.in_base.get(key, 0.0) + float(r.values["fee_cost"])

    def note(
        self,
        bar: int,
        symbol: str,
        name: str,
        mine: Any,
        theirs: Any,
        cause: str,
        code: str = "",
        venue: str = "",
    ) -> dict[str, Any]:
        row = {
            "timestamp": self.ctx.times.get(bar, pd.NaT),
            "bar": bar,
            "symbol": symbol,
            "venue": venue,
            "field": name,
            "run": mine,
            "reference": theirs,
            "cause": cause,
            "code": code,
            "pnl": 0.0,
        }
        self.differences.append(row)
        self.explained.add(bar, name, cause)
        return row

    def explain(
        self,
        bar: int,
        symbol: str,
        *,
        decided: bool = False,
        filled: bool = False,
        sized: bool = False,
    ) -> tuple[str, str]:
        """The journaled event that explains a difference at ``bar`` (a fill's, with
        ``filled``; a fill's quantity, with ``sized``) in ``symbol``; else a knock-on of
        an explained difference before it (in any symbol: they share the equity; a
        decision, made at the bar's close, follows the fills at its open); else
        unexplained."""
        event = _event_cause(bar, symbol, self.ctx, filled=filled, sized=sized)
        if event is not None:
            return event
        earlier = self.explained.before(bar, decided=decided)
        return ("knock_on", "") if earlier else ("unexplained", "")

    def book(
        self, cause: str, at: _Fill, constant: float, quantity: float, bar: int | None = None
    ) -> float:
        """Add ``constant + quantity * close`` (the close of ``at``'s symbol) to
        ``cause``'s P&L from ``bar`` (default: ``at``'s) on; return it at the last close,
        counted to ``at``'s symbol and venue too."""
        series = self.pnl.setdefault(cause, np.zeros(len(self.bars)))
        closes = self.closes[at.symbol]
        i = self.index.get(at.bar if bar is None else bar, len(self.bars))
        series[i:] += constant + quantity * closes[i:]
        last = constant + quantity * float(closes[-1])
        for key, by in ((at.symbol, self.by_symbol), (at.venue, self.by_venue)):
            if key:
                causes = by.setdefault(key, {})
                causes[cause] = causes.get(cause, 0.0) + last
        return last

    def order_fills(self, mine: Sequence[Any], theirs: Sequence[Any]) -> None:
        """Split the difference of one order's fills, the run's against the replay's.

        The replay's fills are taken as one (quantity ``q'``, mean price ``p'``, fee
        ``f'``, at its first fill's bar), shared among the run's fills by quantity. Each
        run fill (``s q p f`` at its bar) against its share, with the replay's fee rate
        ``k = f' / (q' p')``, differs by exactly ``-(s + k) q (p - p')`` (the price)
        ``+ s (q - q') (c - p') - k (q - q') p'`` (the quantity) ``- (f - k q p)`` (the
        fee). The quantity's part is split at ``o``, the fill's share of what the run
        ordered: ``o - q'`` is the order's own size (a knock-on, a reload), ``q - o`` what
        the venue delivered of it (a partial fill, a fee taken in the base asset, the
        lot); a share filled at another bar than the replay's moves from that bar to its
        own (a partial fill's rest, a late order). The price of an order's later parts
        is the partial fill's, its first part's the venue's (slippage).

        A paper run's venue is the simulated one: its price and fee differ only for a
        journaled reason (a reload), else they are unexplained.
        """
        side = float(mine[0].values["side"])
        order = (str(mine[0].values["order_id"]), mine[0].venue)
        symbol, venue = mine[0].symbol, mine[0].venue
        q_ref = math.fsum(float(r.values["quantity"]) for r in theirs)
        cash_ref = math.fsum(float(r.values["quantity"]) * float(r.values["price"]) for r in theirs)
        f_ref = math.fsum(float(r.values["fee"]) for r in theirs)
        p_ref = cash_ref / q_ref if q_ref > 0 else 0.0
        k = f_ref / cash_ref if cash_ref > 0 else 0.0
        at_ref = theirs[0].bar_run
        total = math.fsum(float(r.values["quantity"]) for r in mine)
        spread = len(mine) > 1  # filled in parts
        parts: dict[str, list[Any]] = {"fill.price": [], "fill.quantity": [], "fill.fee": []}
        for n, row in enumerate(mine):
            q, p, f = (float(row.values[x]) for x in ("quantity", "price", "fee"))
            share = q / total if total > 0 else 0.0
            q2, f2 = share * q_ref, share * f_ref
            bar = row.bar
            if bar != at_ref:  # this share of the replay's fill, moved to the run's bar
                cause, code = (
                    ("partial_fill", "filled over several bars")
                    if spread
                    else self.explain(bar, symbol, filled=True)
                )
                constant, held = -side * q2 * p_ref - f2, side * q2
                self.book(cause, row, constant, held)
                self.book(cause, row, -constant, -held, bar=at_ref)
            if not _close(p, p_ref, self.limits):
                if n > 0:  # the rest of an order filled in parts, at a later price
                    cause, code = "partial_fill", "filled in parts"
                elif row.order_bar in self.ctx.late or bar in self.ctx.late:
                    cause, code = "late_bars", "sent at a late bar's price"
                else:
                    cause, code = (
                        ("slippage", "") if self.venue else self.explain(bar, symbol, filled=True)
                    )
                pnl = self.book(cause, row, -(side + k) * q * (p - p_ref), 0.0)
                parts["fill.price"].append((bar, p, p_ref, cause, code, pnl))
            if not _close(q, q2, self.limits):  # what the run ordered against the
                # replay's, then what the venue delivered of it (this fill's share of each)
                ordered = self.ordered.get(order, total)
                sent = share * ordered  # within the market's lot: the venue's rounding
                sent = q2 if abs(sent - q2) <= self._lot(symbol, ordered) else sent
                for a, b, delivered in ((sent, q2, False), (q, sent, True)):
                    if a == b:
                        continue
                    cause, code = (
                        self._quantity_cause(bar, symbol, order, total)
                        if delivered
                        else self.explain(bar, symbol, filled=True, sized=True)
                    )
                    pnl = self.book(cause, row, -(side + k) * (a - b) * p_ref, side * (a - b))
                    parts["fill.quantity"].append((bar, a, b, cause, code, pnl))
            if not _close(f, k * q * p, self.limits):
                cause, code = ("fee", "") if self.venue else self.explain(bar, symbol, filled=True)
                pnl = self.book(cause, row, -(f - k * q * p), 0.0)
                parts["fill.fee"].append((bar, f, k * q * p, cause, code, pnl))
        for name, found in parts.items():  # one row per field and cause of the order
            for cause, code in dict.fromkeys((c, d) for _, _, _, c, d, _ in found):
                some = [x for x in found if (x[3], x[4]) == (cause, code)]
                mine_value = math.fsum(x[1] for x in some) if name != "fill.price" else some[0][1]
                theirs_value = math.fsum(x[2] for x in some) if name != "fill.price" else some[0][2]
                noted = self.note(
                    some[0][0], symbol, name, mine_value, theirs_value, cause, code, venue
                )
                noted["pnl"] = math.fsum(x[5] for x in some)

    def _lot(self, symbol: str, ordered: float) -> float:
        """The market's lot, that an order of ``ordered`` may be rounded to."""
        return max(self.dust.get(symbol, 0.0), 1e-6 * ordered)

    def _quantity_cause(
        self, bar: int, symbol: str, order: tuple[str, str], filled: float
    ) -> tuple[str, str]:
        """The cause of what the venue delivered of an order differing from what the run
        ordered (``filled`` of it)."""
        ordered = self.ordered.get(order, filled)
        short = ordered - filled  # what the venue did not deliver
        lot = self._lot(symbol, ordered)
        if order in self.in_base and short - self.in_base[order] <= lot:
            return "fee", "paid in the base currency"
        if short > lot:
            return "partial_fill", ""
        cause = self.explain(bar, symbol, filled=True, sized=True)
        if cause[0] == "unexplained" and self.venue and short > 0.0:
            # nothing before it: the venue rounded the order down to the market's lot
            return "partial_fill", "rounded to the market's lot"
        return cause

    def funding(self, bar: int, symbol: str, mine: float, theirs: float) -> None:
        """Count the difference of a bar's funding in ``symbol`` (cash, at its bar)."""
        at = _Fill({}, bar, bar, symbol)
        pnl = self.book("funding", at, mine - theirs, 0.0)
        self.note(bar, symbol, "funding", mine, theirs, "funding")["pnl"] = pnl

    def unmatched(self, row: Any, sign: float) -> None:
        """Count a fill only the run (``sign`` 1) or only the replay (-1) has, whole.

        Its cause: the journaled event at its order's bar (a venue's rejection, a late
        bar) or its own; a fill that closes a position only one side holds takes the
        cause of the fill that opened it (a rejected entry's exit is the rejection's).
        """
        v = row.values
        bar, symbol = row.bar_run, row.symbol
        side, q, p, fee = (float(v[k]) for k in ("side", "quantity", "price", "fee"))
        delta = sign * side * q
        apart = self.apart.get(symbol, 0.0)
        if apart * delta < 0 and symbol in self.apart_cause:
            cause, code = self.apart_cause[symbol]
        else:
            cause, code = self.explain(row.order_bar, symbol)
            if cause in ("knock_on", "unexplained"):
                cause, code = self.explain(bar, symbol, filled=True)
            self.apart_cause[symbol] = (cause, code)
        self.apart[symbol] = apart = apart + delta
        if abs(apart) <= max(self.dust.get(symbol, 0.0), 1e-9 * q):
            self.apart[symbol] = 0.0
            self.apart_cause.pop(symbol, None)
        pnl = self.book(cause, row, sign * (-side * q * p - fee), delta)
        text = _text([_pick(row, ("side", "quantity", "price"))])
        mine, theirs = (text, "") if sign > 0 else ("", text)
        self.note(bar, symbol, "fill", mine, theirs, cause, code, row.venue)["pnl"] = pnl


@dataclass(frozen=True)
class _Fill:
    """A fill row, with its symbol, its bar and its order's bar as the run numbers them."""

    values: dict[str, Any]
    bar_run: int
    order_bar: int
    symbol: str
    venue: str = ""
    """A router's venue that filled it ('' without a router)."""

    @property
    def bar(self) -> int:
        return self.bar_run


def _order_pairs(
    journal: _Journal, reference: Path, to_run: Mapping[int, int]
) -> tuple[list[tuple[list[_Fill], list[_Fill]]], list[_Fill], list[_Fill]]:
    """Pair the run's orders with the replay's (by bar, symbol, side and reason, in order);
    return each pair's fills (a router's: venue by venue) and the fills of orders (or an
    order's venues) only one side has."""
    keyed: dict[tuple[int, str, int, str], list[str]] = {}
    for r in _rows(reference, "order"):
        bar = to_run.get(r.bar, r.bar)
        key = (bar, r.symbol, int(r.values["side"]), str(r.values["reason"]))
        keyed.setdefault(key, []).append(str(r.values["id"]))
    paired: dict[str, str] = {}
    for r in journal.rows["order"]:
        key = (r.bar, r.symbol, int(r.values["side"]), str(r.values["reason"]))
        if keyed.get(key):
            paired[str(r.values["id"])] = keyed[key].pop(0)
    ref = {kind: _rows(reference, kind) for kind in ("fill", "route_decision", "venue_fill")}
    theirs: dict[str, list[_Fill]] = {}
    for r, venue in zip(ref["fill"], _venues(ref), strict=True):
        fill = _Fill(
            dict(r.values),
            to_run.get(r.bar, r.bar),
            to_run.get(r.correlation_id, r.correlation_id),
            r.symbol,
            venue,
        )
        theirs.setdefault(str(r.values["order_id"]), []).append(fill)
    mine: dict[str, list[_Fill]] = {}
    for r, venue in zip(journal.rows["fill"], _venues(journal.rows), strict=True):
        mine.setdefault(str(r.values["order_id"]), []).append(
            _Fill(dict(r.values), r.bar, r.correlation_id, r.symbol, venue)
        )
    pairs = []
    only_mine: list[_Fill] = []
    for order, fills in mine.items():
        other = theirs.pop(paired.get(order, ""), [])
        for venue in dict.fromkeys(f.venue for f in [*fills, *other]):
            a = [f for f in fills if f.venue == venue]
            b = [f for f in other if f.venue == venue]
            if a and b:
                pairs.append((a, b))
            else:
                only_mine.extend(a)
                theirs.setdefault("", []).extend(b)
    only_theirs = [f for fills in theirs.values() for f in fills]
    return pairs, only_mine, only_theirs


def _venues(rows: Mapping[str, Sequence[Any]]) -> list[str]:
    """The venue of each fill row: a router reports its children's trades as the
    parent's fills, each journaled first as a ``venue_fill`` row of a child whose
    ``route_decision`` row names its venue; a fill is its parent's trade of that price,
    at its bar or the nearest ('' without a router). A partial fill's rest, traded at the
    next open, is booked with the first part when the run hears of both at once."""
    venue_of = {r.values["order_id"]: r.values for r in rows["route_decision"]}
    trades: dict[str, list[tuple[float, int, str]]] = {}
    for r in rows["venue_fill"]:
        route = venue_of.get(r.values["order_id"])
        if route is not None:
            trade = (float(r.values["price"]), r.bar, str(route["venue"]))
            trades.setdefault(str(route["parent_id"]), []).append(trade)
    venues = []
    for r in rows["fill"]:
        found = trades.get(str(r.values["order_id"]), [])
        price, bar = float(r.values["price"]), r.bar
        at = min(
            range(len(found)),
            key=lambda i: (abs(found[i][0] - price), abs(found[i][1] - bar)),
            default=None,
        )
        venues.append("" if at is None else found.pop(at)[2])
    return venues


def _compare(
    run_dir: Path,
    journal: _Journal,
    reference: Path,
    limits: dict[str, float],
    revised: tuple[Revision, Path] | None = None,
) -> ParityResult:
    from tradeloom.reporting.run_data import read_table
    from tradeloom.reporting.run_tables import table_file

    ctx = _context(journal, limits)
    seen = _Comparison(journal, ctx, limits)
    # the replay's bar h + i is the run's i-th live bar (h: the warm-up's bars it played)
    h = journal.history_bars
    to_run = {h + i: bar for i, bar in enumerate(seen.bars)}

    # probabilities: the replay's model reads the run's; a difference is the replay's own
    # (a portfolio's replay writes no features table: its members' models are the same)
    ref_p = [] if journal.members else _probabilities(reference / "features.parquet", journal, h)
    for r, theirs in zip(journal.live if ref_p else [], ref_p, strict=True):
        p = r.values["probability"]
        mine = math.nan if p is None else float(p)
        if not (math.isnan(mine) and math.isnan(theirs)) and not _close(mine, theirs, limits):
            seen.note(r.bar, r.symbol, "probability", mine, theirs, "unexplained")

    # fills, order by order, in the order of their first bar
    pairs, only_mine, only_theirs = _order_pairs(journal, reference, to_run)
    work: list[tuple[int, int, Any]] = [(min(f.bar for f in a), 0, (a, b)) for a, b in pairs]
    work += [(f.bar, 1, (f, 1.0)) for f in only_mine]
    work += [(f.bar, 1, (f, -1.0)) for f in only_theirs]
    for _, unmatched, item in sorted(work, key=lambda w: (w[0], w[1])):
        if unmatched:
            seen.unmatched(*item)
        else:
            seen.order_fills(*item)

    # a late rebalance: the replay's solve beside the weights the run held
    for bar, mine_w, theirs_w, code in allocation_differences(
        journal.rows["allocation_decided"], reference, to_run
    ):
        seen.note(bar, "", "allocation", mine_w, theirs_w, "late_decision", code)

    # a perpetual's funding, bar by bar: the same rates, on the positions each held
    funded = _by_bar(_rows(reference, "funding"), lambda b: to_run.get(b, b))
    mine_funded = _by_bar(journal.rows["funding"], lambda b: b)
    for bar, symbol in sorted(set(mine_funded) | set(funded)):
        paid = math.fsum(float(r.values["amount"]) for r in mine_funded.get((bar, symbol), []))
        booked = math.fsum(float(r.values["amount"]) for r in funded.get((bar, symbol), []))
        if not _close(paid, booked, limits):
            seen.funding(bar, symbol, paid, booked)

    # signals and orders, bar by bar (after the fills: a size follows the fills before it)
    for kind, keys in (("signal", ("direction",)), ("order", ("side", "reason", "quantity"))):
        mine_by = _by_bar(journal.rows[kind], lambda b: b)
        theirs_by = _by_bar(_rows(reference, kind), lambda b: to_run.get(b, b))
        for bar, symbol in sorted(set(mine_by) | set(theirs_by)):
            a = [_pick(r, keys) for r in mine_by.get((bar, symbol), [])]
            b = [_pick(r, keys) for r in theirs_by.get((bar, symbol), [])]
            if not _same_lists(a, b, limits):
                cause = seen.explain(bar, symbol, decided=True)
                seen.note(bar, symbol, kind, _text(a), _text(b), *cause)

    # the equity gap against the P&L the causes explain
    run_equity = read_table(run_dir, "equity")
    ref_equity = read_table(reference, "equity")
    if run_equity is None or ref_equity is None:
        raise UserError(f"{run_dir}: no equity table (equity.csv); is the run finished?")
    if "equity" not in run_equity.columns:
        raise UserError(
            f"{run_dir / str(table_file(run_dir, 'equity'))}: no equity column: damaged, or "
            "not a run's equity table"
        )
    n = len(seen.bars)
    mine_e = _equity_at(run_equity, [ctx.times[b] for b in seen.bars])
    theirs_e = ref_equity["equity"].to_numpy(np.float64)[h : h + n]
    gap = mine_e - theirs_e
    explained = np.sum(list(seen.pnl.values()), axis=0) if seen.pnl else np.zeros(n)
    residual = gap - explained
    off = np.abs(residual) > limits["absolute"] + limits["relative"] * np.abs(theirs_e)
    if off.any():
        first = int(np.argmax(off))
        at = seen.bars[first]
        seen.note(at, "", "equity", float(mine_e[first]), float(theirs_e[first]), "unexplained")
    # what is left: the two equity curves' rounding, or what no cause explains
    seen.pnl["unexplained"] = seen.pnl.get("unexplained", np.zeros(n)) + residual
    if revised is not None:  # against the replay on the history given: data_revised
        revision, on_history = revised
        history_e = ref_equity if on_history == reference else read_table(on_history, "equity")
        if history_e is None:
            raise UserError(f"{on_history}: the replay on {revision.file} wrote no equity")
        replayed, theirs_e = theirs_e, history_e["equity"].to_numpy(np.float64)[h : h + n]
        gap = mine_e - theirs_e
        book_revision(seen, revision, replayed, theirs_e)
    return _result(journal, reference, limits, seen, mine_e, theirs_e, gap)


def _probabilities(file: Path, journal: _Journal, history_bars: int) -> list[float]:
    """The replay's probability of each live row (a universe's by time and symbol; one
    market's after the ``history_bars`` of its warm-up)."""
    frame = pd.read_parquet(file)
    if "symbol" not in frame.columns:
        return [float(x) for x in frame["probability"].to_numpy(np.float64)[history_bars:]]
    if "timestamp" in frame.columns:
        frame = frame.set_index("timestamp")
    times = pd.DatetimeIndex(frame.index)
    times = times.tz_localize("UTC") if times.tz is None else times.tz_convert("UTC")
    of = dict(zip(zip(times, frame["symbol"], strict=True), frame["probability"], strict=True))
    return [
        float(of.get((pd.Timestamp(r.timestamp).tz_convert("UTC"), r.symbol), math.nan))
        for r in journal.live
    ]


def _by_bar(rows: Sequence[Any], bar_of: Any) -> dict[tuple[int, str], list[Any]]:
    out: dict[tuple[int, str], list[Any]] = {}
    for r in rows:
        out.setdefault((int(bar_of(r.bar)), r.symbol), []).append(r)
    return out


def _pick(row: Any, keys: Sequence[str]) -> tuple[Any, ...]:
    return tuple(row.values.get(k) for k in keys)


def _same_lists(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]], limits: Any) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            if isinstance(u, float) and isinstance(v, float):
                if not _close(u, v, limits):
                    return False
            elif u != v:
                return False
    return True


def _text(values: list[tuple[Any, ...]]) -> str:
    return "; ".join(
        " ".join(f"{x:.10g}" if isinstance(x, float) else str(x) for x in v) for v in values
    )


def _equity_at(table: pd.DataFrame, times: Sequence[pd.Timestamp]) -> np.ndarray:
    frame = table.set_index(pd.to_datetime(table["timestamp"], utc=True))
    wanted = pd.DatetimeIndex(times).tz_convert("UTC")
    values: np.ndarray = frame["equity"].reindex(wanted).to_numpy(np.float64)
    return values


def _result(
    journal: _Journal,
    reference: Path,
    limits: dict[str, float],
    seen: _Comparison,
    mine: np.ndarray,
    theirs: np.ndarray,
    gap: np.ndarray,
) -> ParityResult:
    pnl = seen.pnl
    bars = pd.DataFrame(
        {
            "timestamp": pd.DatetimeIndex([seen.ctx.times[b] for b in seen.bars]),
            "bar": seen.bars,
            "run_equity": mine,
            "reference_equity": theirs,
            "gap": gap,
        }
    )
    for cause in CAUSES:
        if cause in pnl:
            bars[cause] = pnl[cause]
    diffs = pd.DataFrame(seen.differences, columns=list(_DIFFERENCE_COLUMNS)).sort_values(
        ["bar", "symbol", "venue", "field"], kind="stable", ignore_index=True
    )
    found = set(diffs["cause"]) | {c for c, s in pnl.items() if c != "unexplained" and s.any()}
    unexplained_pnl = float(pnl["unexplained"][-1])
    rows = []
    for cause in CAUSES:
        count = int((diffs["cause"] == cause).sum())
        total = float(pnl[cause][-1]) if cause in pnl else 0.0
        if cause not in found and not (cause == "unexplained" and count):
            continue
        limit = limits.get(cause, 0.0 if cause == "unexplained" else math.inf)
        within = abs(total) <= limit and not (cause == "unexplained" and count)
        rows.append(
            {"cause": cause, "count": count, "pnl": total, "limit": limit, "within": within}
        )
    causes = pd.DataFrame(rows, columns=["cause", "count", "pnl", "limit", "within"]).set_index(
        "cause"
    )
    first = None
    if len(diffs):
        d = diffs.iloc[0]
        first = {
            "timestamp": pd.Timestamp(d["timestamp"]).isoformat(),
            "bar": int(d["bar"]),
            "symbol": str(d["symbol"]),
            "field": str(d["field"]),
            "cause": str(d["cause"]),
        }
    passed = bool(causes["within"].all()) if len(causes) else True
    summary = {
        "mode": journal.mode,
        "symbol": ", ".join(journal.symbols),
        "symbols": journal.symbols,
        "bars": len(seen.bars),
        "first_bar": int(seen.bars[0]),
        "last_bar": int(seen.bars[-1]),
        "reference": str(reference),
        "run_equity": float(mine[-1]),
        "reference_equity": float(theirs[-1]),
        "equity_gap": float(gap[-1]),
        "unexplained_pnl": unexplained_pnl,
        "differences": len(diffs),
        "first_divergence": first,
        "causes": {
            c: {
                "count": int(r["count"]),
                "pnl": float(r["pnl"]),
                "limit": None if math.isinf(r["limit"]) else float(r["limit"]),
                "within": bool(r["within"]),
            }
            for c, r in causes.iterrows()
        },
        "by_symbol": {
            symbol: {c: by[c] for c in CAUSES if c in by} for symbol, by in seen.by_symbol.items()
        },
        "by_venue": {
            venue: {c: by[c] for c in CAUSES if c in by} for venue, by in seen.by_venue.items()
        },
        "tolerances": {k: (None if math.isinf(v) else v) for k, v in limits.items()},
        # the bars the run warmed up on, which the replay played first (0 and why: none)
        "warm_up": {"bars": journal.history_bars, "note": journal.history_note},
        "passed": passed,
    }
    return ParityResult(bars, diffs, causes, summary)


def write_parity(
    result: ParityResult, out: Path, run_dir: Path, *, single_file: bool = False
) -> tuple[Path, Path]:
    """Write ``parity.json`` (the summary, each cause's P&L and every difference) and
    ``parity.html`` (both equity curves, the gap by cause, the divergent bars) into
    ``out``; return their paths.

    Args:
        single_file: Embed plotly.js in the page; by default it loads the copy the
            runs' reports share (beside ``run_dir``), or one written into ``out``.
    """
    from tradeloom.files.writing import OutputFolder
    from tradeloom.reporting.parity_page import parity_page
    from tradeloom.reporting.shared_plotly import shared_plotly

    def value(x: Any) -> Any:
        if isinstance(x, pd.Timestamp):
            return x.isoformat()
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, np.generic):
            return value(x.item())
        return x

    differences = [
        {k: value(v) for k, v in row.items()}
        for row in result.differences.to_dict(orient="records")
    ]
    document = result.summary | {"differences_by_bar": differences}
    folder = OutputFolder(out, option="--out")
    json_path = folder.write_text("parity.json", json.dumps(document, indent=2) + "\n")
    src = None
    if not single_file:
        src = shared_plotly(out, out, option="--out", reuse=[run_dir.absolute().parent])
    text = parity_page(
        result.bars, result.differences, result.causes, result.summary, CAUSES, plotly_src=src
    )
    return json_path, folder.write_text("parity.html", text)


def format_parity(result: ParityResult, run_dir: Path) -> str:
    """Return the printed summary: the runs, the first divergence, each cause's count
    and P&L (summing to the equity gap), and the verdict."""
    s = result.summary
    lines = [
        f"parity of {run_dir} ({s['mode']}, {s['symbol']}, {s['bars']} bars "
        f"{s['first_bar']}..{s['last_bar']}) against its replay {s['reference']}",
        f"equity: run {s['run_equity']:,.2f}, replay {s['reference_equity']:,.2f}, "
        f"gap {s['equity_gap']:+,.2f}",
    ]
    note = (s.get("warm_up") or {}).get("note")
    if note:
        lines.append(
            f"warm-up: not replayed ({note}); the replay starts at the first live bar, and "
            "what needs earlier bars (a regime, an ATR, a volatility) starts empty there"
        )
    data = s.get("data")
    if data is not None:
        lines.append(
            f"data: {data['bars_revised']} of the run's bars differ from {data['file']} "
            f"({data['fields_revised']} fields); the gap is against the replay on its bars"
        )
    first = s["first_divergence"]
    if first is None:
        lines.append("no difference: every bar's probability, signal, order, fill and equity agree")
    else:
        lines.append(
            f"first divergence: bar {first['bar']} ({first['timestamp']}) "
            f"{first['field']}: {first['cause']}"
        )
        lines.append(f"{'cause':<14}{'count':>7}{'P&L':>14}  limit")
        for cause, row in result.causes.iterrows():
            limit = "none" if math.isinf(row["limit"]) else f"{row['limit']:g}"
            mark = "" if row["within"] else "  <- over"
            lines.append(f"{cause:<14}{row['count']:>7}{row['pnl']:>+14,.2f}  {limit}{mark}")
        lines.append(f"{'total':<14}{'':>7}{result.causes['pnl'].sum():>+14,.2f}")
        shares = s["by_symbol"] if len(s["symbols"]) > 1 else {}
        for name, by in [*shares.items(), *s["by_venue"].items()]:  # a universe's, a router's
            shown = ", ".join(f"{c} {v:+,.2f}" for c, v in by.items()) or "no difference"
            lines.append(f"  {name}: {shown}")
    if result.passed:
        lines.append("parity: every difference explained and within its tolerance")
    else:
        bad = [str(c) for c, r in result.causes.iterrows() if not r["within"]]
        lines.append(f"parity: FAILED ({', '.join(bad)})")
    return "\n".join(lines)
