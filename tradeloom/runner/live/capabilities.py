"""What ``--mode paper`` and ``--mode live`` ask of a strategy's components.

A backtest needs each layer's protocol only. Trading live asks more, declared as
protocols in `tradeloom.plugins.protocols`: the data source must be a `LiveFeed`, the
model a `LiveModel`, and in live mode the account the orders go to must be a
`LiveVenue` with its keys. `live_problems` finds every component that falls short,
located at its ``kind`` key, so that ``tradeloom validate FILE --mode live`` and
``tradeloom run FILE --mode live`` refuse the file before the first bar.

Live mode trades on `live_account`: the ``execution`` component when it is a
`LiveVenue` (``kind: ccxt``), or, for the built-in ``kind: simulated``, the data
source's exchange with the data source's keys (the shorthand of a file written for
paper trading).
"""

from __future__ import annotations

from typing import Literal

from tradeloom.errors import Problem
from tradeloom.plugins.component import ParamError
from tradeloom.plugins.execution import simulated
from tradeloom.plugins.protocols import (
    LiveFeed,
    LiveModel,
    LiveUniverseFeed,
    LiveUniverseTrainer,
    LiveVenue,
    UniverseModel,
    missing_members,
)
from tradeloom.schemas.config import ComponentConfig, StrategyConfig

__all__ = ["Mode", "live_account", "live_problems"]

Mode = Literal["backtest", "paper", "live"]


def live_account(
    config: StrategyConfig, data: object, venue: object
) -> tuple[str, LiveVenue] | Problem:
    """Return the key path and component of the account a live run trades, or why none.

    Args:
        config: The strategy.
        data: Its built data source.
        venue: Its built execution component.
    """
    execution = config.execution
    if isinstance(venue, LiveVenue):
        return execution.path, venue
    if execution.registered.component.factory is simulated.build:
        if isinstance(data, LiveVenue):
            return config.data.path, data
        return _lacks(
            config,
            config.data,
            data,
            LiveVenue,
            "--mode live with execution kind simulated trades on the data source's exchange",
        )
    return _lacks(
        config,
        execution,
        venue,
        LiveVenue,
        "--mode live needs a venue that trades on an exchange (kind: ccxt)",
    )


def live_problems(
    config: StrategyConfig, mode: Mode, *, data: object, model: object, venue: object
) -> list[Problem]:
    """Return a problem for each component that cannot run in ``mode`` (none: backtest).

    A component that failed to build (None) was reported already and is skipped.

    Args:
        config: The strategy.
        mode: ``backtest``, ``paper`` or ``live``.
        data: The built data source.
        model: The built model.
        venue: The built execution component.
    """
    if mode == "backtest":
        return []
    problems: list[Problem] = []
    if data is not None and not isinstance(data, LiveFeed):
        problems.append(
            _lacks(
                config,
                config.data,
                data,
                LiveFeed,
                f"--mode {mode} needs live bars from an exchange (kind: ccxt)",
                "is a backtest source",
            )
        )
    if model is not None and not isinstance(model, LiveModel):
        problems.append(
            _lacks(
                config,
                config.model,
                model,
                LiveModel,
                f"--mode {mode} needs a model that predicts one bar at a time",
            )
        )
    symbols = getattr(config.data.params, "symbols", None) or ()
    if len(symbols) > 1:
        problems.extend(_universe_problems(config, mode, data, model, len(symbols)))
    auxiliary = getattr(data, "auxiliary", None)
    book_problem = _book_problem(config, mode, data, len(symbols))
    if getattr(auxiliary, "book", None) is not None and book_problem is not None:
        where = f"{config.data.path}.order_book"
        problems.append(Problem(config.locate(where), where, book_problem))
    if getattr(auxiliary, "items", None):
        where = f"{config.data.path}.auxiliary"
        problems.append(
            Problem(
                config.locate(where),
                where,
                f"--mode {mode} does not read auxiliary series yet (only backtests join "
                "them); remove data.auxiliary and the series features, or run a backtest",
            )
        )
    if mode == "live" and venue is not None and isinstance(data, LiveFeed):
        account = live_account(config, data, venue)
        if isinstance(account, Problem):
            problems.append(account)
        else:
            path, component = account
            try:
                component.trading_client()
            except ParamError as exc:
                where = f"{path}.{exc.key}" if exc.key else path
                problems.append(Problem(config.locate(where), where, exc.message))
    return problems


def _book_problem(config: StrategyConfig, mode: Mode, data: object, symbols: int) -> str | None:
    """Return why ``data.order_book`` cannot be read live in ``mode``, or None."""
    if symbols > 1:
        return (
            f"--mode {mode} reads the order book of one market; remove data.order_book and "
            "the book features from a universe, or run a backtest"
        )
    if isinstance(data, LiveFeed) and not callable(getattr(data, "live_book", None)):
        return (
            f"--mode {mode} reads the exchange's order book at each bar; '{config.data.kind}' "
            "cannot (it lacks live_book and order_book); use data kind ccxt"
        )
    return None


def _universe_problems(
    config: StrategyConfig, mode: Mode, data: object, model: object, symbols: int
) -> list[Problem]:
    """Return why a universe of ``symbols`` symbols cannot run in ``mode``, if it cannot."""
    problems: list[Problem] = []
    if isinstance(data, LiveFeed) and not isinstance(data, LiveUniverseFeed):
        # (a source that is no live feed at all is reported once, as such)
        problems.append(
            _lacks(
                config,
                config.data,
                data,
                LiveUniverseFeed,
                f"--mode {mode} over a universe needs each symbol's live bars (kind: ccxt)",
            )
        )
    if isinstance(model, UniverseModel) and not isinstance(model, LiveUniverseTrainer):
        problems.append(
            _lacks(
                config,
                config.model,
                model,
                LiveUniverseTrainer,
                f"--mode {mode} over a universe needs a model that trains its pooled folds "
                "one bar at a time",
            )
        )
    if config.live.retrain_cron is not None:
        problems.append(
            Problem(
                config.locate("live.retrain_cron"),
                "live.retrain_cron",
                f"--mode {mode} over a universe retrains on the walk-forward plan only; "
                "remove live.retrain_cron",
            )
        )
    return problems


def _lacks(
    config: StrategyConfig,
    item: ComponentConfig,
    built: object,
    protocol: type,
    need: str,
    verdict: str = "cannot",
) -> Problem:
    where = f"{item.path}.kind"
    names = missing_members(built, protocol)
    missing = ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)
    message = (
        f"{need}; '{item.kind}' (plugin {item.registered.plugin.name}) {verdict}: it lacks "
        f"{missing} ({protocol.__name__})"
    )
    return Problem(config.locate(where), where, message)
