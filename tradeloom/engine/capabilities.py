"""What ``--mode paper`` and ``--mode live`` ask of a strategy's components.

A backtest needs each layer's protocol only. Trading live asks more, declared as
protocols in `tradeloom.plugins.protocols`: the data source must be a `LiveFeed`, the
model a `LiveModel`, and in live mode the account the orders go to must be a
`LiveVenue` with its keys. `live_problems` finds every component that falls short,
located at its ``kind`` key, so that ``tradeloom validate FILE --mode live`` and
``tradeloom run FILE --mode live`` refuse the file before the first bar.

Live mode trades on `live_account`: the ``execution`` component when it is a
`LiveVenue` (``kind: ccxt``), or, for a venue that only models its fills (a
`ModelledVenue`, such as the built-in ``kind: simulated``), the data source's exchange
with the data source's keys (the shorthand of a file written for paper trading).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from tradeloom.engine.funding import funding_series
from tradeloom.engine.universe_checks import declared_symbols
from tradeloom.errors import Problem
from tradeloom.plugins.component import ParamError
from tradeloom.plugins.protocols import (
    DescribedModel,
    JoinsAuxiliary,
    LiveFeed,
    LiveModel,
    LiveTrainer,
    LiveVenue,
    ModelParityNote,
    MultiVenue,
    NeedsCalibration,
    OrderKeys,
    PerSymbolModels,
    missing_members,
)
from tradeloom.plugins.protocols_books import LiveBookFeed
from tradeloom.plugins.protocols_venues import ModelledVenue
from tradeloom.schemas.config import ComponentConfig, StrategyConfig

__all__ = [
    "Mode",
    "calibration_metric",
    "calibration_warning",
    "fee_note",
    "live_account",
    "live_problems",
    "one_account_problems",
    "parity_notes",
    "uncalibrated",
]

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
    if isinstance(venue, ModelledVenue) and not isinstance(venue, MultiVenue):
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
    config: StrategyConfig,
    mode: Mode,
    *,
    data: object,
    model: object,
    venue: object,
    served: bool = False,
) -> list[Problem]:
    """Return a problem for each component that cannot run in ``mode`` (none: backtest).

    A component that failed to build (None) was reported already and is skipped.

    Args:
        config: The strategy.
        mode: ``backtest``, ``paper`` or ``live``.
        data: The built data source.
        model: The built model.
        venue: The built execution component.
        served: The bars are served by ``--clock simulated``'s emulator, which swaps the
            data source for a live one: any source will do.
    """
    if mode == "backtest":
        return []
    problems: list[Problem] = []
    if data is not None and not served and not isinstance(data, LiveFeed):
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
    symbols = declared_symbols(data) or 1
    if symbols > 1:
        problems.extend(_universe_problems(config, mode, data, model, symbols))
    auxiliary = data.auxiliary if isinstance(data, JoinsAuxiliary) else None
    book = auxiliary is not None and auxiliary.book is not None
    book_problem = _book_problem(config, mode, data, symbols)
    if book and book_problem is not None:
        where = f"{config.data.path}.order_book"
        problems.append(Problem(config.locate(where), where, book_problem))
    if book and auxiliary is not None and auxiliary.items:
        where = f"{config.data.path}.auxiliary"
        problems.append(
            Problem(
                config.locate(where),
                where,
                f"--mode {mode} reads either auxiliary series or data.order_book as bars "
                "close, not both yet; remove one, or run a backtest",
            )
        )
    if mode == "live":
        problems.extend(_swap_stop_problems(config, venue))
    if mode == "live" and isinstance(venue, MultiVenue):
        problems.extend(_router_problems(config, venue, symbols))
    elif mode == "live" and venue is not None and isinstance(data, LiveFeed):
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


def _swap_stop_problems(config: StrategyConfig, venue: object) -> list[Problem]:
    """A perpetual live sends its stop exits at the bar close (ccxt sends a swap's stops
    as Binance algo orders, which the exchange-side stops do not track): its backtest
    must fill them so too (``stops: bar_close``)."""
    if funding_series(venue) is None or not isinstance(venue, OrderKeys):
        return []
    orders = venue.order_keys
    levels = (config.stop_loss, config.take_profit, config.trailing_stop, config.break_even)
    partials = config.risk_scaling.take_profit_levels
    stopped = any(x is not None for x in levels) or bool(partials)
    if orders is None or orders.stops != "exchange" or not stopped:
        return []
    where = f"{config.execution.path}.orders.stops"
    return [
        Problem(
            config.locate(where),
            where,
            "--mode live sends a perpetual's stop-loss and take-profit exits (partial ones "
            "too) as market orders at the bar close (its stops do not rest at the exchange "
            "yet); set "
            "execution.orders.stops: bar_close, so that its backtest fills them so too",
        )
    ]


def parity_notes(config: StrategyConfig, model: object) -> list[Problem]:
    """Return a note for a model whose paper or live probabilities may differ from its
    backtest's in the last bits (`ModelParityNote`), located at ``model.estimator`` (or
    the model section); none for any other model.

    A note is not a problem: the file is valid and runs; ``tradeloom validate`` and a
    paper or live run print it once, so that nobody learns it from a journal.
    """
    note = model.parity_note if isinstance(model, ModelParityNote) else None
    if note is None:
        return []
    key = f"{config.model.path}.estimator"
    where = config.locate(key)
    if where == config.locate(config.model.path):  # no estimator key: a saved model
        key = config.model.path
    return [Problem(config.locate(key), key, f"note: {note}")]


def uncalibrated(sizer: object, model: object) -> bool:
    """Return whether ``sizer`` reads probabilities as probabilities (`NeedsCalibration`)
    and ``model`` says it is not calibrated (a swap refuses it, and a hot reload of the
    sizing to such a sizer while it is in force; every mode warns of it:
    `calibration_warning`)."""
    needs = isinstance(sizer, NeedsCalibration) and bool(sizer.needs_calibration)
    return needs and isinstance(model, DescribedModel) and not model.calibrated


def calibration_warning(config: StrategyConfig, sizer: object, model: object) -> Problem | None:
    """Return a warning when ``sizer`` needs a calibrated model and ``model`` is not one
    (`uncalibrated`, the rule a swap and a hot reload refuse by), located at
    ``risk.sizing.kind``; None otherwise.

    A warning is not a problem: the file is valid and runs. ``tradeloom validate``, a
    paper or live run (at its start) and a backtest's summary (``metrics.json``'s
    ``calibration_warning``) say it, so that a fractional Kelly sized on scores that are
    not probabilities is never silent.
    """
    if not uncalibrated(sizer, model):
        return None
    key = f"{config.sizing.path}.kind"
    return Problem(
        config.locate(key),
        key,
        f"{_WARNING}{config.sizing.kind} reads the probability as a probability (it needs "
        "a calibrated model) and the model is not calibrated; set model.calibration, or "
        "size with fixed_fraction",
    )


def calibration_metric(
    config: StrategyConfig, sizer: object, model: object, member: str = ""
) -> dict[str, str]:
    """Return ``metrics.json``'s ``calibration_warning`` (`calibration_warning` without
    its location, ``member``: the portfolio's strategy it is about), or nothing when it
    does not hold: the metrics of other runs are as they were."""
    warning = calibration_warning(config, sizer, model)
    if warning is None:
        return {}
    of = f"{member}: " if member else ""
    return {"calibration_warning": f"{of}{warning.path}: {warning.message.removeprefix(_WARNING)}"}


_WARNING = "warning: "


def fee_note(config: StrategyConfig, venue: object) -> Problem | None:
    """Return what ``--mode live`` does with ``execution.fee_bps``, or None (a venue that
    models no fills from the file's fee keys, no `ModelledVenue`: its keys are its own).

    A single exchange (``kind: ccxt``, or ``simulated`` on the data source's exchange)
    sizes buys with the market's taker fee as ccxt describes it, the rate journaled at
    the start (`tradeloom.live.accounts.account_venue.open_account_venue`); ``fee_bps`` models
    backtest and paper fills only. A router takes each venue's ``fee_bps`` as that
    account's taker tier (`tradeloom.live.accounts.router_venue.open_router_venue`): it ranks the
    venues by it and sizes buys with the largest. Either way a fill's fee is what the
    exchange reports. Located at ``execution.fee_bps`` (the router's venues, or
    ``execution`` when the key is not written).
    """
    if isinstance(venue, MultiVenue):
        key = f"{config.execution.path}.venues"
        said = (
            "--mode live takes each venue's fee_bps as that account's taker tier (and "
            "maker_fee_bps, else fee_bps, for resting orders): the router ranks the venues "
            "by it and sizes buys with the largest; a fill's fee is what the exchange reports"
        )
    elif isinstance(venue, ModelledVenue):
        key = f"{config.execution.path}.fee_bps"
        if config.locate(key) == config.locate(config.execution.path):
            key = config.execution.path  # not written: its default
        said = (
            "--mode live sizes buys with the market's taker fee as ccxt describes it and a "
            "fill's fee is what the exchange reports; execution.fee_bps (and maker_fee_bps) "
            "model backtest and paper fills only"
        )
    else:
        return None
    return Problem(config.locate(key), key, f"note: {said}")


def _book_problem(config: StrategyConfig, mode: Mode, data: object, symbols: int) -> str | None:
    """Return why ``data.order_book`` cannot be read live in ``mode``, or None."""
    if symbols > 1:
        return (
            f"--mode {mode} reads the order book of one market; remove data.order_book and "
            "the book features from a universe, or run a backtest"
        )
    if isinstance(data, LiveFeed) and not isinstance(data, LiveBookFeed):
        return (
            f"--mode {mode} reads the exchange's order book at each bar; '{config.data.kind}' "
            "cannot (it lacks live_book and order_book); use data kind ccxt"
        )
    return None


def _router_problems(config: StrategyConfig, router: MultiVenue, symbols: int) -> list[Problem]:
    """Return why ``router`` cannot trade live: a venue without an account or keys."""
    path = config.execution.path
    problems: list[Problem] = []
    if symbols > 1:
        where = f"{config.data.path}.symbols"
        problems.append(
            Problem(
                config.locate(where),
                where,
                "--mode live with execution kind router trades one symbol; list one",
            )
        )
    for terms in router.venue_terms():
        built = terms.component
        if not isinstance(built, LiveVenue):
            where = f"{path}.venues.{terms.index}.kind"
            problems.append(
                Problem(
                    config.locate(where),
                    where,
                    f"--mode live sends every venue's orders to its exchange: venue "
                    f"'{terms.name}' needs kind ccxt, was {terms.kind}",
                )
            )
            continue
        try:
            built.trading_client()
        except ParamError as exc:
            where = f"{path}.venues.{terms.index}" + (f".{exc.key}" if exc.key else "")
            problems.append(Problem(config.locate(where), where, exc.message))
    return problems


def _universe_problems(
    config: StrategyConfig, mode: Mode, data: object, model: object, symbols: int
) -> list[Problem]:
    """Return why a universe of ``symbols`` symbols cannot run in ``mode``, if it cannot."""
    problems: list[Problem] = []
    # a model that trains each symbol apart trades a copy per symbol, each trained (or
    # not) as one market's; any other trains over the universe and must do it live too
    pools = not isinstance(model, PerSymbolModels)
    if model is not None and pools and not isinstance(model, LiveTrainer):
        problems.append(
            _lacks(
                config,
                config.model,
                model,
                LiveTrainer,
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


def one_account_problems(
    strategies: Sequence[tuple[StrategyConfig, object]], venue: object
) -> list[Problem]:
    """Return why a portfolio's strategies cannot trade live on one exchange account.

    Each strategy's orders go to its market of the account the first strategy names
    (`live_account`: ``execution: {kind: ccxt}``, or the data source's exchange): every
    strategy must name that exchange.

    Args:
        strategies: Each strategy's file and built data source, in file order.
        venue: The account's execution component.
    """
    problems: list[Problem] = []
    first: str | None = None
    for config, data in strategies:
        account = live_account(config, data, venue)
        if isinstance(account, Problem):
            continue  # reported by live_problems
        path, component = account
        exchange = str(component.exchange)
        if first is None:
            first = exchange
        elif exchange != first:
            problems.append(
                Problem(
                    config.locate(path),
                    path,
                    f"--mode live trades a portfolio on one exchange account; this strategy "
                    f"trades on {exchange}, the first on {first}",
                )
            )
    return problems
