"""``signal.sides`` against the venue: which sides a strategy can trade where it trades.

A venue that forbids shorts (``allow_short`` false: a spot account, the default of
``execution``) refuses a short from flat (``SHORT_NOT_ALLOWED``, `tradeloom.core.bar`);
a down signal there only closes a long.

* `sides_problems`: ``signal.sides: short`` on such a venue is an error: the strategy
  could never open a position.
* `sides_warning`: a signal that may go short (``signal.sides: both``, the default) on
  such a venue is a warning, as a sizing that needs a calibrated model is
  (`tradeloom.engine.capabilities.calibration_warning`): the file is valid and runs,
  the refusals change nothing, but the journal fills with them; ``tradeloom validate``,
  a paper or live run (at its start) and a run's summary (``metrics.json``'s
  ``sides_warning``) say it, with the one key that says the strategy is long-only.

* `sides_warnings`: `sides_warning`, then the same line for each challenger whose own
  ``signal:`` may go short by its own ``sides``, naming it (one that does not write
  ``sides`` trades the strategy's, whose warning is said once).

* `market_sides`: live, the same against the exchange's markets, known once the run
  opens them at its start and at each restart: the markets decide, not the file. A spot
  market refuses shorts whatever ``execution.allow_short`` says, and a perpetual swap
  trades both sides though the file says ``allow_short: false``; the core trades the
  market's way, so a live run's start says what holds there (the file's venue is what
  ``tradeloom validate`` and a paper run say it against).

Neither holds with an allocation layer, whose weights decide the positions without
the signal stage: there ``signal.sides`` bars the other side in the weights' bounds
(`tradeloom.schemas.allocation.weight_constraints`), and validation refuses a side the
weights cannot keep to (`tradeloom.schemas.allocation.allocation_problems`).
"""

from __future__ import annotations

from dataclasses import replace

from tradeloom.errors import Problem
from tradeloom.schemas.config import Challenger, StrategyConfig

__all__ = ["market_sides", "sides_metric", "sides_problems", "sides_warning", "sides_warnings"]

_WARNING = "warning: "
_LONG_ONLY = "the venue trades long-only (execution.allow_short: false)"


def _long_only(config: StrategyConfig, venue: object) -> bool:
    return config.allocation is None and not bool(getattr(venue, "allow_short", True))


def _key(config: StrategyConfig, challenger: Challenger | None = None) -> str:
    """``signal.sides`` when the file writes it, else ``signal.kind`` (a challenger's:
    ``challengers.N.signal.*``)."""
    if challenger is not None:
        written = any(field == "signal_sides" for field, _ in challenger.signal_keys)
    else:
        signal = config.document.get("signal")
        written = isinstance(signal, dict) and "sides" in signal
    return f"{config.signal.path}.{'sides' if written else 'kind'}"


def sides_problems(
    config: StrategyConfig,
    venue: object,
    *,
    why: str = _LONG_ONLY,
    fix: str = "execution.allow_short: true",
) -> list[Problem]:
    """Return the problem of ``signal.sides: short`` on a venue that forbids shorts
    (``venue``: the strategy's, built; None when it failed to build: nothing to say;
    ``why``: what the message says makes it long-only; ``fix``: what lets it short)."""
    if venue is None or config.signal_sides != "short" or not _long_only(config, venue):
        return []
    key = f"{config.signal.path}.sides"
    return [
        Problem(
            config.locate(key),
            key,
            f"is short but {why}: the strategy could never open a position; set {fix}, or "
            "signal.sides: long",
        )
    ]


def sides_warning(
    config: StrategyConfig,
    venue: object,
    *,
    why: str = _LONG_ONLY,
    challenger: Challenger | None = None,
) -> Problem | None:
    """Return a warning when the signal may go short (``signal.sides: both``) and
    ``venue`` forbids shorts, located at ``signal.sides`` (or ``signal.kind`` when the
    file does not write it); None otherwise (``challenger``: ``config`` is the strategy
    as that challenger decides with it, and the line names it).

    A warning is not a problem: the file is valid and runs; each short signal from flat
    is refused ``SHORT_NOT_ALLOWED``, which changes no position.
    """
    if config.signal_sides != "both" or not _long_only(config, venue):
        return None
    key = _key(config, challenger)
    said = "" if key.endswith(".sides") else ", the default"
    whose = "the signal" if challenger is None else f"challenger {challenger.name}'s signal"
    fix = "signal.sides" if challenger is None else f"{config.signal.path}.sides"
    return Problem(
        config.locate(key),
        key,
        f"{_WARNING}{whose} may go short (signal.sides: both{said}) but {why}: "
        f"every down signal while flat is refused SHORT_NOT_ALLOWED; set {fix}: long",
    )


def sides_warnings(
    config: StrategyConfig, venue: object, *, why: str = _LONG_ONLY
) -> list[Problem]:
    """Return `sides_warning` of the strategy, then of each challenger whose own
    ``signal:`` writes ``sides`` (as it decides in shadow, and after its promotion),
    naming it; one that does not trades the strategy's sides, whose warning says it."""
    said = [sides_warning(config, venue, why=why)]
    for challenger in config.challengers:
        if not any(field == "signal_sides" for field, _ in challenger.signal_keys):
            continue  # the strategy's sides: its warning is the strategy's
        own = replace(
            config, signal=challenger.signal or config.signal, **dict(challenger.signal_keys)
        )
        said.append(sides_warning(own, venue, why=why, challenger=challenger))
    return [warning for warning in said if warning is not None]


def market_sides(
    config: StrategyConfig, account: object, declared: object
) -> tuple[list[Problem], list[Problem]]:
    """Return what ``signal.sides`` meets on a live run's exchange markets, which decide
    (a new run's start and each restart's): `sides_problems` and `sides_warnings`
    against ``account`` (the account venue opened: ``allow_short`` when every market is
    a perpetual swap, ``markets`` by symbol), said of its spot markets; or, when the
    file's venue ``declared`` forbids shorts and the markets allow them (perpetual
    swaps), a warning that the run trades both sides there (the file's long-only
    warning does not hold). Nothing with an allocation layer (its weights' bounds).
    """
    if config.allocation is not None:
        return [], []
    filed = bool(getattr(declared, "allow_short", False))
    markets = getattr(account, "markets", {})
    if _shorts(account):
        return [], [] if filed else _both_sides(config, markets)
    spot = [str(s) for s, m in markets.items() if not getattr(m, "swap", False)]
    named = f"the exchange's market {', '.join(spot) or '?'} is spot (no shorts)"
    why = (
        f"{named}, though the file's venue allows them (execution.allow_short)"
        if filed
        else f"{named} and execution.allow_short is false"
    )
    fix = "a perpetual swap market (data.symbol BASE/QUOTE:QUOTE)"
    return sides_problems(config, account, why=why, fix=fix), sides_warnings(
        config, account, why=why
    )


def _both_sides(config: StrategyConfig, markets: dict[str, object]) -> list[Problem]:
    """The warning of a file that says long-only on markets that are all perpetual
    swaps: the core trades the market's way, both sides."""
    if config.signal_sides == "long":
        return []
    key = "execution.allow_short"
    swaps = ", ".join(str(s) for s in markets) or "?"
    return [
        Problem(
            config.locate(key),
            key,
            f"{_WARNING}is false but the exchange's market {swaps} is a perpetual swap, "
            "which trades both sides: the run opens shorts as its signal gives them "
            f"(signal.sides: {config.signal_sides}); set signal.sides: long to trade long only",
        )
    ]


def _shorts(venue: object) -> bool:
    return bool(getattr(venue, "allow_short", True))


def sides_metric(config: StrategyConfig, venue: object, member: str = "") -> dict[str, str]:
    """Return ``metrics.json``'s ``sides_warning`` (`sides_warning` without its
    location, ``member``: the portfolio's strategy it is about), or nothing when it does
    not hold: the metrics of other runs are as they were."""
    warning = sides_warning(config, venue)
    if warning is None:
        return {}
    of = f"{member}: " if member else ""
    return {"sides_warning": f"{of}{warning.path}: {warning.message.removeprefix(_WARNING)}"}
