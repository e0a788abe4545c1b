"""Parity of a portfolio file's run: each member strategy's books replayed on one account.

A portfolio's paper or live run journals each book (``STRATEGY:SYMBOL``) as a market of
its own: its bars as the run saw them and its model's probabilities (``live_bar``), its
orders and fills. The replay is the portfolio file's backtest (`run_portfolio`): each
member strategy rewritten as parity rewrites one strategy (its books' bars as a CSV
file, its probabilities as a ``precomputed`` model), the account's cash the run's. Its
books compare as a universe's symbols do; each cause's P&L is summed by member strategy
too (`by_strategy`). The member files are not in the journal (``run_started`` keeps the
portfolio file): they are read where the run read them (`member_documents`). Weights
between the strategies that move (``risk_parity`` over a window) are not journaled, so
such a run is refused in one line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tradeloom.errors import UserError
from tradeloom.files.reading import read_yaml

__all__ = ["SEPARATOR", "book_rows", "by_strategy", "member_documents", "run_replay"]

SEPARATOR = ":"
"""Between a book's strategy and symbol (`tradeloom.engine.account.SEPARATOR`)."""


def member_documents(document: Mapping[str, Any], source: str, path: Path) -> list[dict[str, Any]]:
    """Return each member strategy's document, read from its file beside ``source`` (the
    portfolio file as the run named it, from the folder the run was started in).

    Raises:
        UserError: Weights between the strategies that move (``risk_parity`` or
            ``inverse_volatility`` over a window): the run journals none, so the replay
            cannot take them; a member file that is not there or not a strategy file.
    """
    allocation = document.get("allocation") or {}
    if allocation.get("kind", "fixed") != "fixed" and allocation.get("window") is not None:
        raise UserError(
            f"{path}: a portfolio whose weights move (allocation: {allocation['kind']} over "
            f"{allocation['window']} bars); the run journals no weights between its "
            "strategies, so parity cannot replay them (issue 69): fixed weights only"
        )
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
    import dataclasses

    prefix = f"{name}{SEPARATOR}"
    return [
        dataclasses.replace(r, symbol=r.symbol.removeprefix(prefix))
        for r in rows
        if r.symbol.startswith(prefix)
    ]


def run_replay(portfolio_file: Path, reference: Path) -> None:
    """Backtest the portfolio file the replay wrote into ``reference``.

    Raises:
        UserError: It does not load now (a member's kind no longer installed).
    """
    from tradeloom.backtest.portfolio_run import run_portfolio
    from tradeloom.engine.wiring import build_pipeline
    from tradeloom.errors import ConfigError
    from tradeloom.plugins.manager import load_plugins
    from tradeloom.schemas.portfolio_file import load_portfolio

    try:
        portfolio = load_portfolio(portfolio_file)
        pipelines = [build_pipeline(config) for config in portfolio.strategies]
    except ConfigError as exc:
        raise UserError(f"the run's portfolio does not load now: {exc}") from None
    modules = dict.fromkeys(m for config in portfolio.strategies for m in config.plugins)
    run_portfolio(portfolio, pipelines, load_plugins(tuple(modules)), out=reference)


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
