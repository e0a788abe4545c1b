"""What a portfolio file's strategies cannot run together, found before any bar.

A group of the portfolio's ``risk.portfolio`` must name markets its strategies trade,
the strategies' bars must share one clock, and two text sources of one name with a
feed must be one source (`feed_problems`). Validation checks both with what the
strategy files declare (their data's symbols, and a clock a source knows before loading:
`tradeloom.plugins.protocols.KnownClock`); a backtest checks them again on the loaded
bars, for a source that says neither before loading. Either way the same message at the
same key of the portfolio file (`group_problems`, `clock_problem`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from tradeloom.engine.wiring import Pipeline, traded_symbols
from tradeloom.errors import Problem
from tradeloom.plugins.protocols import JoinsAuxiliary, KnownClock
from tradeloom.schemas.portfolio_file import PortfolioConfig
from tradeloom.time.timeframes import parse_timeframe

__all__ = [
    "clock_problem",
    "clock_text",
    "feed_problems",
    "group_problems",
    "portfolio_problems",
]


def portfolio_problems(portfolio: PortfolioConfig, pipelines: Sequence[Pipeline]) -> list[Problem]:
    """Return what keeps ``portfolio``'s built strategies from running together, as far
    as their files say before any bar: a group naming a market no strategy trades (when
    every strategy lists its symbols), strategies on different clocks (when every data
    source declares its clock), two text sources of one name fed otherwise
    (`feed_problems`)."""
    problems = feed_problems(pipelines)
    traded = [traded_symbols(p.config) for p in pipelines]
    if all(traded):
        problems.extend(group_problems(portfolio, [s for symbols in traded for s in symbols]))
    clocks = [_declared_clock(p.data) for p in pipelines]
    if not clocks or any(c is None for c in clocks):
        return problems
    first = clocks[0]
    assert first is not None
    for k, clock in enumerate(clocks[1:], start=1):
        assert clock is not None
        if _regular(clock) != _regular(first):
            first_text = clock_text(first[0], _utc(first[1]), first[2])
            text = clock_text(clock[0], _utc(clock[1]), clock[2])
            problems.append(clock_problem(portfolio, pipelines, k, first_text, text))
    return problems


def feed_problems(pipelines: Sequence[Pipeline]) -> list[Problem]:
    """Return a problem for each strategy's text source with a feed whose name an earlier
    strategy's has with other settings (`tradeloom.plugins.data.auxiliary.FedSource`).

    A source's name is its file in the run folder (``documents/NAME.jsonl``, and its
    cursor): one name is one source, received once and read by each strategy naming it.
    Two that differ would write one file from two feeds, so the later one is refused,
    at the first key that differs in its strategy file.
    """
    problems: list[Problem] = []
    first: dict[str, tuple[Pipeline, dict[str, Any]]] = {}
    for pipeline in pipelines:
        data = pipeline.data
        fed = data.auxiliary.fed_sources() if isinstance(data, JoinsAuxiliary) else {}
        for name, source in fed.items():
            seen = first.setdefault(name, (pipeline, dict(source.settings)))
            if seen[0] is pipeline:
                continue
            keys = dict.fromkeys([*seen[1], *source.settings])
            differ = [k for k in keys if seen[1].get(k) != source.settings.get(k)]
            if not differ:
                continue
            config, where = pipeline.config, source.path(differ[0])
            problems.append(
                Problem(
                    config.locate(where),
                    where,
                    f"the text source '{name}' is {seen[0].config.name}'s too, with another "
                    f"{differ[0]}; a portfolio's strategies share documents/{name}.jsonl by "
                    f"name: give both the same source or name one otherwise",
                )
            )
    return problems


def group_problems(portfolio: PortfolioConfig, markets: Sequence[str]) -> list[Problem]:
    """Return a problem for each member of a group of the portfolio file's
    ``risk.portfolio.groups`` that is none of ``markets`` (the strategies' symbols)."""
    known = tuple(dict.fromkeys(markets))
    problems = []
    for name, members in portfolio.file.risk.portfolio.groups.items():
        where = f"risk.portfolio.groups.{name}"
        for symbol in members:
            if symbol not in known:
                problems.append(
                    Problem(
                        portfolio.locate(where),
                        where,
                        f"{symbol!r} is not a market of any strategy (they trade "
                        f"{', '.join(known)})",
                    )
                )
    return problems


def clock_problem(
    portfolio: PortfolioConfig, pipelines: Sequence[Pipeline], k: int, first: str, clock: str
) -> Problem:
    """Return the problem of the ``k``-th strategy, whose bars are on ``clock`` where the
    first strategy's are on ``first`` (`clock_text`), at its entry of the portfolio file."""
    where = f"strategies.{k}.file"
    return Problem(
        portfolio.locate(where),
        where,
        f"the strategies' bars must share one clock: {pipelines[0].config.name} has {first}, "
        f"{pipelines[k].config.name} has {clock}; give them the same timeframe, start and bars",
    )


def clock_text(timeframe: str, first: datetime, bars: int) -> str:
    """Return a clock as a message names it: ``1,500 1h bars from 2024-01-01T00:00Z``
    (``first``: the first bar's open, a UTC datetime or pandas Timestamp)."""
    return f"{bars:,} {timeframe} bars from {first:%Y-%m-%dT%H:%MZ}"


def _declared_clock(data: object) -> tuple[str, int, int] | None:
    return data.declared_clock() if isinstance(data, KnownClock) else None


def _regular(clock: tuple[str, int, int]) -> tuple[int, int, int]:
    return parse_timeframe(clock[0]), clock[1], clock[2]


def _utc(ns: int) -> datetime:
    seconds, rest = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest // 1000)
