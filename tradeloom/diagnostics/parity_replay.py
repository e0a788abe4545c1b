"""The replay of a paper or live run as a backtest (`replay`): the strategy it started under
over the bars it saw, its probabilities as the model, its exchange account as the
simulated venue, written as a run folder (`tradeloom.diagnostics.parity`)."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from tradeloom.diagnostics.parity_journal import ParityJournal
from tradeloom.diagnostics.parity_portfolio import book_rows, run_replay
from tradeloom.diagnostics.parity_text import replay_text_features
from tradeloom.errors import UserError
from tradeloom.files.reading import require_regular
from tradeloom.files.writing import OutputFolder
from tradeloom.live.lifecycle.promoted_signal import signal_rules
from tradeloom.text.feeds import FEEDS_DIR

__all__ = [
    "replay",
]


_SIMULATED = "simulated"
_CCXT = "ccxt"
_ROUTER = "router"
_ACCOUNT_KEYS = frozenset({"exchange", "options", "config", "api_key", "secret", "password"})
"""An exchange account's keys (``ccxt``'s connection), which its simulated model has not."""


_OHLCV = ("open", "high", "low", "close", "volume")
_DATA_KEPT = ("timeframe", "calendar", "validation")
"""The run's data keys the replay's bars are read with (a file source's keys)."""
_FUNDING_RATE = "funding_rate"
"""An exchange's funding series: the replay books the rates the run booked instead."""
_BOOK_FILE = "book.parquet"
"""The order book a paper or live run saw, kept in its folder (`tradeloom.live.tick.book_feed`)."""
_DEFAULT_CASH = 100_000.0
"""``initial_cash``'s default (`SimulatedVenueParams`)."""


def _replay_document(
    journal: ParityJournal, bars_file: Path, funding_file: Path | None = None
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
    if isinstance(
        book, dict
    ):  # the book the run saw, as it kept it (`tradeloom.live.tick.book_feed`)
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
    # an LLM's answers: the run's, no model asked (`tradeloom.diagnostics.parity_text`)
    replay_text_features(document, journal.path.parent, Path(journal.source))
    return document


def _beside(journal: ParityJournal, series: dict[str, Any], where: str) -> dict[str, Any]:
    """``series`` with its relative ``path`` (and ``received``) resolved as the run
    resolved it: beside its strategy file (``run_started``'s ``source``, from the folder
    the run was started in); a text source's ``feed`` replaced by what the run kept of it
    (``documents/<name>.jsonl`` as ``received``: each document from its arrival).

    Raises:
        UserError: The file is not there (``where``: its key path).
    """
    series = dict(series)
    for key in ("path", "received"):
        path = series.get(key)
        if not isinstance(path, str):
            continue
        file = (Path(journal.source).parent / path).absolute()
        if not file.exists():
            raise UserError(
                f"{journal.path}: {where}.{key} {file} is not there; run parity from the "
                f"folder the run was started in (the run read it beside "
                f"{journal.source or 'its file'})"
            )
        series[key] = str(file)
    if series.get("feed") is not None:  # what the feed brought, as the run kept it
        series.pop("feed")
        kept = journal.path.parent / FEEDS_DIR / f"{series.get('name')}.jsonl"
        if kept.is_file():
            series["received"] = str(kept.absolute())
    return series


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


def replay(journal: ParityJournal, out: OutputFolder, name: str = "reference") -> Path:
    """Replay the run as a backtest into ``out``'s subfolder ``name``; return that folder.

    Raises:
        UserError: The run's strategy does not load now, or the replay refuses its
            input (its scratch files named as what they were written from).
    """
    from tradeloom.backtest.run import run_strategy
    from tradeloom.engine.wiring import build_pipeline
    from tradeloom.errors import ConfigError
    from tradeloom.schemas import load_strategy

    reference = out.subfolder(name)  # an earlier parity's replay: replaced
    with tempfile.TemporaryDirectory(prefix="tradeloom-parity-") as folder:
        try:
            if journal.members:  # a portfolio file: each member's books, one account
                files = _portfolio_files(journal, Path(folder))
                run_replay(files, reference, journal.weights, journal.member_rules)
                return reference
            file = _strategy_files(journal, Path(folder), "strategy")
            try:
                # the replay writes its features table whatever the run's outputs:
                # parity compares its probabilities with the run's
                config, plugins = load_strategy(file, ("outputs.features=true",))
            except ConfigError as exc:
                raise UserError(f"the run's strategy does not load now: {exc}") from None
            pipeline = build_pipeline(config)
            if journal.rebalances:  # the run's rebalances, not solved again
                pipeline = dataclasses.replace(pipeline, rebalances=journal.rebalances)
            if journal.scales:  # the run's canaries, each at its bar
                pipeline = dataclasses.replace(pipeline, scales=tuple(journal.scales))
            if journal.rules:  # the signal rules its promotions put in force, each at its bar
                pipeline = dataclasses.replace(
                    pipeline, signal_rules=signal_rules(config, plugins, journal.rules)
                )
            run_strategy(pipeline, plugins, out=reference)
        except UserError as exc:  # named by what the user has, not the replay's scratch files
            raise UserError(_scratch_named(str(exc), Path(folder), journal)) from None
    return reference


def _scratch_named(message: str, folder: Path, journal: ParityJournal) -> str:
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


def _strategy_files(journal: ParityJournal, folder: Path, stem: str) -> Path:
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


def _portfolio_files(journal: ParityJournal, folder: Path) -> Path:
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
