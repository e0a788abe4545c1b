"""Parity of a portfolio file's run: each member strategy's books replayed on one account.

A portfolio's paper or live run journals each book (``STRATEGY:SYMBOL``) as a market of
its own: its bars as the run saw them and its model's probabilities (``live_bar``), its
orders and fills. The replay is the portfolio file's backtest (`run_portfolio`): each
member strategy rewritten as parity rewrites one strategy (its books' bars as a CSV
file, its probabilities as a ``precomputed`` model), the account's cash the run's. Its
books compare as a universe's symbols do; each cause's P&L is summed by member strategy
too (`by_strategy`). Each member is replayed under the document it started with (its
``strategy_at_start`` row), whatever its file holds now; a journal written before those
rows were journaled: its files, read where the run read them (`member_documents`). Weights
between the strategies that move (``risk_parity`` or ``inverse_volatility`` over a
window) are taken as the run journaled each decision (``allocation_decided``, its
``symbols`` the strategies), at the bar it decided them, never computed again
(`given_weights`): the replay's window would hold other returns (its bars only, not the
run's warm-up history). A journal written before those decisions were journaled is
refused in one line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from tradeloom.diagnostics.parity_allocation import rebalances
from tradeloom.engine.allocation import GivenWeights
from tradeloom.errors import UserError
from tradeloom.files.reading import read_yaml

__all__ = [
    "SEPARATOR",
    "book_rows",
    "by_strategy",
    "given_weights",
    "member_documents",
    "run_replay",
]

SEPARATOR = ":"
"""Between a book's strategy and symbol (`tradeloom.engine.account.SEPARATOR`)."""


def member_documents(document: Mapping[str, Any], source: str, path: Path) -> list[dict[str, Any]]:
    """Return each member strategy's document, read from its file beside ``source`` (the
    portfolio file as the run named it, from the folder the run was started in): a journal
    without ``strategy_at_start`` rows (written before tradeloom journaled them).

    Raises:
        UserError: A member file that is not there or not a strategy file.
    """
    folder = Path(source).parent
    found = []
    for i, entry in enumerate(document.get("strategies") or []):
        file = folder / str(entry["file"])
        if not file.is_file():
            raise UserError(
                f"{path}: strategies.{i}.file {file} is not there; run parity from the "
                "folder the run was started in (a portfolio's member files are read where "
                "the run read them)"
            )
        member = read_yaml(file, "a strategy file")
        if not isinstance(member, dict) or not isinstance(member.get("name"), str):
            raise UserError(f"{file}: not a strategy file (strategies.{i}.file of {path})")
        found.append(member)
    return found


def book_rows(rows: Sequence[Any], name: str) -> list[Any]:
    """Return the rows of member ``name``'s books, each named by its symbol alone."""
    prefix = f"{name}{SEPARATOR}"
    return [
        dataclasses.replace(r, symbol=r.symbol.removeprefix(prefix))
        for r in rows
        if r.symbol.startswith(prefix)
    ]


def given_weights(
    document: Mapping[str, Any],
    members: Sequence[Mapping[str, Any]],
    rows: Mapping[str, Sequence[Any]],
    path: Path,
) -> GivenWeights | None:
    """Return the weights between the strategies as the run decided them (None: fixed).

    Args:
        document: The portfolio file the run started under.
        members: Its strategies' documents.
        rows: The run's rows by kind: its decisions (``allocation_decided``, over the
            strategies' names), its orders and its live bars (the last decision before
            the first gives the weights the replay starts with; none: 1 / K).
        path: The journal (named in an error).

    Raises:
        UserError: A decision over other strategies; the weights move, the journal has
            no decision, yet the run sized an order after its window filled (when the
            first decision is journaled): a journal written before tradeloom journaled
            them.
    """
    allocation = document.get("allocation") or {}
    kind, window = allocation.get("kind", "fixed"), allocation.get("window")
    if kind == "fixed" or window is None:
        return None
    names = [str(m["name"]) for m in members]
    decided = rebalances(rows["allocation_decided"], names, path, "the portfolio's strategies are")
    sized = [o.bar for o in rows["order"] if o.values["reason"] in _SIZED and o.bar >= window]
    if not decided and sized:
        raise UserError(
            f"{path}: a portfolio whose weights move (allocation: {kind} over {window} "
            f"bars) sized an order at bar {sized[0]} with no allocation_decided row before "
            "it: a journal written before tradeloom journaled the weights between its "
            "strategies, so parity cannot replay them"
        )
    start: Sequence[float] = [1.0 / len(names)] * len(names)
    at: dict[int, tuple[str, str, list[float] | None]] = {}
    begins = pd.Timestamp(rows["live_bar"][0].timestamp).value
    for time_ns, decision in sorted(decided.items()):
        if time_ns >= begins:
            at[time_ns] = decision  # one that is not ok is journaled, the weights kept
        elif decision[2] is not None:
            start = decision[2]
    return GivenWeights(start, at, int(window), str(kind))


_SIZED = frozenset({"ENTRY", "REVERSE", "SCALE_IN"})
"""The orders a strategy's sizing sized: against its weight then."""


def run_replay(
    portfolio_file: Path,
    reference: Path,
    weights: GivenWeights | None,
    rules: Mapping[str, Sequence[tuple[int, str, str]]] | None = None,
) -> None:
    """Backtest the portfolio file the replay wrote into ``reference``, the weights
    between its strategies ``weights`` (None: as the file says), each member's signal
    rule and sizing changed where the run's promotions changed them (``rules``, by
    strategy: `tradeloom.live.lifecycle.promoted_signal.signal_rules`, each at its bar).

    Raises:
        UserError: It does not load now (a member's kind no longer installed).
    """
    from tradeloom.backtest.portfolio_run import run_portfolio
    from tradeloom.engine.wiring import build_pipeline
    from tradeloom.errors import ConfigError
    from tradeloom.live.lifecycle.promoted_signal import signal_rules
    from tradeloom.plugins.manager import load_plugins
    from tradeloom.schemas.portfolio_file import load_portfolio

    try:
        portfolio = load_portfolio(portfolio_file)
        pipelines = [build_pipeline(config) for config in portfolio.strategies]
    except ConfigError as exc:
        raise UserError(f"the run's portfolio does not load now: {exc}") from None
    modules = dict.fromkeys(m for config in portfolio.strategies for m in config.plugins)
    plugins = load_plugins(tuple(modules))
    for k, pipeline in enumerate(pipelines):
        changes = (rules or {}).get(pipeline.config.name)
        if changes:  # its promotions' rules and sizings, each from its bar (as the run's)
            ruled = signal_rules(pipeline.config, plugins, changes)
            pipelines[k] = dataclasses.replace(pipeline, signal_rules=ruled)
    run_portfolio(portfolio, pipelines, plugins, out=reference, given_weights=weights)


def by_strategy(
    by_symbol: Mapping[str, Mapping[str, float]], names: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Return each cause's P&L by member strategy: the sum over its books."""
    summed: dict[str, dict[str, float]] = {name: {} for name in names}
    for book, causes in by_symbol.items():
        name = book.split(SEPARATOR, 1)[0]
        into = summed.setdefault(name, {})
        for cause, pnl in causes.items():
            into[cause] = into.get(cause, 0.0) + pnl
    return summed
