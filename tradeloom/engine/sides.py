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

* `market_sides`: live, the same two against the exchange's markets, known once the run
  opens them at its start: a spot market refuses shorts whatever
  ``execution.allow_short`` says, and the core then trades the market's way.

Neither holds with an allocation layer, whose weights decide the positions without
the signal stage: there ``signal.sides`` bars the other side in the weights' bounds
(`tradeloom.schemas.allocation.weight_constraints`), and validation refuses a side the
weights cannot keep to (`tradeloom.schemas.allocation.allocation_problems`).
"""

from __future__ import annotations

from tradeloom.errors import Problem
from tradeloom.schemas.config import StrategyConfig

__all__ = ["market_sides", "sides_metric", "sides_problems", "sides_warning"]

_WARNING = "warning: "
_LONG_ONLY = "the venue trades long-only (execution.allow_short: false)"


def _long_only(config: StrategyConfig, venue: object) -> bool:
    return config.allocation is None and not bool(getattr(venue, "allow_short", True))


def _key(config: StrategyConfig) -> str:
    """``signal.sides`` when the file writes it, else ``signal.kind``."""
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
    config: StrategyConfig, venue: object, *, why: str = _LONG_ONLY
) -> Problem | None:
    """Return a warning when the signal may go short (``signal.sides: both``) and
    ``venue`` forbids shorts, located at ``signal.sides`` (or ``signal.kind`` when the
    file does not write it); None otherwise.

    A warning is not a problem: the file is valid and runs; each short signal from flat
    is refused ``SHORT_NOT_ALLOWED``, which changes no position.
    """
    if config.signal_sides != "both" or not _long_only(config, venue):
        return None
    key = _key(config)
    said = "" if key.endswith(".sides") else ", the default"
    return Problem(
        config.locate(key),
        key,
        f"{_WARNING}the signal may go short (signal.sides: both{said}) but {why}: "
        "every down signal while flat is refused SHORT_NOT_ALLOWED; set signal.sides: long",
    )


def market_sides(
    config: StrategyConfig, account: object, declared: object
) -> tuple[list[Problem], Problem | None]:
    """Return what ``signal.sides`` meets on a live run's exchange markets that the file's
    venue did not say: `sides_problems` and `sides_warning` against ``account`` (the
    account venue opened at the start: ``allow_short`` when every market is a perpetual
    swap, ``markets`` by symbol), said of its spot markets; nothing when ``declared``
    (the file's venue) forbids shorts too (validate said it) or the markets allow them.
    """
    if not bool(getattr(declared, "allow_short", False)) or _shorts(account):
        return [], None
    markets = getattr(account, "markets", {})
    spot = [str(s) for s, m in markets.items() if not getattr(m, "swap", False)]
    why = (
        f"the exchange's market {', '.join(spot) or '?'} is spot (no shorts), though the "
        "file's venue allows them (execution.allow_short)"
    )
    fix = "a perpetual swap market (data.symbol BASE/QUOTE:QUOTE)"
    refused = sides_problems(config, account, why=why, fix=fix)
    return refused, sides_warning(config, account, why=why)


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
