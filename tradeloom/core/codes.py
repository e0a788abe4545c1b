"""Every reason code of the bar, its number in the compiled core, and its message.

The compiled step records a code as a small integer and the values behind it as
floats; this module is the one place that says what each number means and how
it reads. A rejection reads ``CODE: message`` with the values in it, e.g.
``MAX_DRAWDOWN_HALT: drawdown=0.1530, limit=0.15``. Adding a rule or a reason
means adding a row here and the branch that emits it in `tradeloom.core.bar`.
A built-in plugin's code (KELLY_NO_EDGE, MAX_DRAWDOWN_HALT) reads through that
plugin's message function, which the plugin's Python path calls too, so the
wording is written once for both drivers.

Codes that a third-party component or an exchange brings (a plugin's rejection
code, a venue's cancel reason) have no number here: a run interns them in its
`CodeTable` from `DYNAMIC_BASE` up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from tradeloom.core.kernels.labels import halt_message, trend_label, volatility_label
from tradeloom.core.kernels.sizing import no_edge_message, no_estimate_message

__all__ = [
    "CANCEL_NAMES",
    "CANCEL_REASONS",
    "CUT_CANCELS",
    "DUST_CODES",
    "DYNAMIC_BASE",
    "ENGINE_CANCELS",
    "EXIT_REASONS",
    "HALT_CODES",
    "HALT_NAMES",
    "ORDER_CHECKS",
    "ORDER_REASONS",
    "ORDER_REASON_NAMES",
    "OUTCOMES",
    "OUTCOME_NAMES",
    "PROTECTIVE_REASONS",
    "REJECTIONS",
    "REJECTION_NAMES",
    "RENAMED",
    "STATE_CHANGE_NAMES",
    "STATE_CODES",
    "STATE_NAMES",
    "Code",
    "CodeTable",
    "Family",
    "decision",
    "describe",
    "refusal_stage",
    "refused_exit",
]


@dataclass(frozen=True)
class Family:
    """One family of codes declared as a sequence of names: each name's number follows.

    The numbers are the journal's (a journal stores them), so a family's names are
    numbered in blocks from each block's first number, and a new name goes at a
    block's end or in a block of its own. The module's constants (``ENTRY``...) are
    bound from `numbers`, in the same order; a test checks each one by its name.

    Args:
        blocks: ``(first number, names...)`` each.
    """

    blocks: tuple[tuple[int | str, ...], ...]

    @property
    def names(self) -> dict[str, int]:
        """Return each name's number, in declaration order."""
        named: dict[str, int] = {}
        for first, *names in self.blocks:
            for k, name in enumerate(names):
                named[str(name)] = int(first) + k
        return named

    @property
    def numbers(self) -> tuple[int, ...]:
        """Return the numbers, in declaration order."""
        return tuple(self.names.values())


ORDER_REASON_NAMES = Family(
    (
        (1, "ENTRY", "REVERSE", "EXIT_SIGNAL", "EXIT_MAX_HOLDING", "EXIT_HALT",
         "EXIT_STOP_LOSS", "EXIT_TAKE_PROFIT", "EXIT_LIQUIDATION", "EXIT_TRAILING_STOP",
         "EXIT_BREAK_EVEN", "EXIT_TIME", "EXIT_FLATTEN"),
        (70, "SCALE_IN", "TAKE_PROFIT_PARTIAL"),  # scaling in and out (`core.scaling`)
        (90, "REBALANCE"),  # the allocation layer's target minus held (`engine.allocating`)
    )
)  # fmt: skip
"""Why the engine sent an order."""
(ENTRY, REVERSE, EXIT_SIGNAL, EXIT_MAX_HOLDING, EXIT_HALT,
 EXIT_STOP_LOSS, EXIT_TAKE_PROFIT, EXIT_LIQUIDATION, EXIT_TRAILING_STOP,
 EXIT_BREAK_EVEN, EXIT_TIME, EXIT_FLATTEN,
 SCALE_IN, TAKE_PROFIT_PARTIAL, REBALANCE) = ORDER_REASON_NAMES.numbers  # fmt: skip

_EXITS = tuple(n for name, n in ORDER_REASON_NAMES.names.items() if name.startswith("EXIT_"))

OUTCOME_NAMES = Family(((1, "accepted", "hold", "ignored", "filtered", "rejected"),))
"""What became of a signal."""
ACCEPTED, HOLD, IGNORED, FILTERED, REJECTED = OUTCOME_NAMES.numbers

REJECTION_NAMES = Family(
    (
        (20, "KELLY_NO_EDGE", "HALTED", "SHORT_NOT_ALLOWED", "NO_EQUITY", "ANOMALY",
         "DAILY_LOSS", "TRADING_HALTED", "TRADING_REDUCING", "ORDER_RATE",
         "MAX_ORDER_NOTIONAL", "MAX_POSITION_QUANTITY", "PRICE_COLLAR", "INSUFFICIENT_MARGIN",
         "RANK", "MAX_OPEN_POSITIONS", "MAX_WEIGHT", "MAX_GROSS_EXPOSURE",
         "MAX_NET_EXPOSURE", "GROUP_EXPOSURE", "CORRELATION"),
        # BELOW_MINIMUM is also a cancel reason: a fill the cash cuts below the minimum;
        # NO_RISK_ESTIMATE: volatility_target or risk_per_trade has no volatility or stop yet
        (44, "BELOW_MINIMUM", "COOLDOWN", "NO_RISK_ESTIMATE"),
        (72, "SCALE_IN_CAP"),  # scaling in (`tradeloom.core.scaling`)
        # a cancel the declared latency lets the order it cancels beat (`core.latency`)
        (74, "CANCEL_TOO_LATE"),
        # a replacement whose cancel a live venue could not confirm (`core.bar`'s send)
        (75, "CANCEL_UNCONFIRMED"),
    )
)  # fmt: skip
"""Why a signal's intent or an order was refused (``NO_EQUITY``: `NO_EQUITY_REJECT`)."""
(KELLY_NO_EDGE, HALTED, SHORT_NOT_ALLOWED, NO_EQUITY_REJECT, ANOMALY,
 DAILY_LOSS, TRADING_HALTED, TRADING_REDUCING, ORDER_RATE,
 MAX_ORDER_NOTIONAL, MAX_POSITION_QUANTITY, PRICE_COLLAR, INSUFFICIENT_MARGIN,
 RANK, MAX_OPEN_POSITIONS, MAX_WEIGHT, MAX_GROSS_EXPOSURE,
 MAX_NET_EXPOSURE, GROUP_EXPOSURE, CORRELATION,
 BELOW_MINIMUM, COOLDOWN, NO_RISK_ESTIMATE,
 SCALE_IN_CAP, CANCEL_TOO_LATE, CANCEL_UNCONFIRMED) = REJECTION_NAMES.numbers  # fmt: skip

HALT_NAMES = Family(((40, "MAX_DRAWDOWN_HALT", "HEALTH_HALT", "KILL_SWITCH", "NO_EQUITY"),))
"""Why trading stopped; a halt is latched (`KILL_SWITCH` alone is lifted by resume)."""
MAX_DRAWDOWN_HALT, HEALTH_HALT, KILL_SWITCH, NO_EQUITY = HALT_NAMES.numbers

STATE_CHANGE_NAMES = Family(((50, "DAY_ROLLOVER", "RESUME"),))
"""Why the trading state changed (besides `DAILY_LOSS` and `KILL_SWITCH`)."""
DAY_ROLLOVER, RESUME = STATE_CHANGE_NAMES.numbers

CANCEL_NAMES = Family(
    (
        (60, "REPLACED", "PROTECTIVE_EXIT", "INSUFFICIENT_CASH", "EXPIRED",
         "POST_ONLY_WOULD_CROSS", "UNFILLED_IOC", "UNFILLED_FOK",
         "LIMIT_FALLBACK", "LIMIT_EXPIRED"),
        # a router's rest no venue could take (`tradeloom.core.routing`); an
        # order a restart found decided and never sent (`tradeloom.live.recovery.handover`);
        # an acknowledged order lookups by client id found nowhere, what it filled booked
        # from the account's balance (`tradeloom.live.orders.ccxt_venue`)
        (80, "NO_ROUTE", "NOT_SENT", "ORDER_LOST"),
        (44, "BELOW_MINIMUM"),  # the rejection's code
    )
)  # fmt: skip
"""Why the venue stopped working an order (a venue may bring its own: interned)."""
(
    REPLACED,
    PROTECTIVE_EXIT,
    INSUFFICIENT_CASH,
    EXPIRED,
    POST_ONLY_WOULD_CROSS,
    UNFILLED_IOC,
    UNFILLED_FOK,
    LIMIT_FALLBACK,
    LIMIT_EXPIRED,
    NO_ROUTE,
    NOT_SENT,
    ORDER_LOST,
) = CANCEL_NAMES.numbers[:-1]  # fmt: skip (BELOW_MINIMUM: above)

ENGINE_CANCELS = frozenset({"REPLACED", "PROTECTIVE_EXIT", "LIMIT_FALLBACK"})
"""The cancel reasons that are the engine's own decision, not a refusal: a newer decision
replaced the order, a protective exit closed its position, a limit order's rest went on
as a market order. Every other reason (built-in, a venue's, a router's, a restart's, a
``REJECTED CODE`` a venue answered) stopped an order short of what it was for."""

CUT_CANCELS = frozenset({"INSUFFICIENT_CASH", "BELOW_MINIMUM"})
"""The cancel reasons of an order the venue's cash or minimum cut (what would fill, cut
below the order's quantity or to nothing)."""

EXIT_REASONS = frozenset(name for name in ORDER_REASON_NAMES.names if name.startswith("EXIT_")) | {
    "REVERSE",
    "TAKE_PROFIT_PARTIAL",
}
"""The order reasons of an order that closes (some of) a position: an exit, a reversal
(it closes before it opens the other side), a partial take-profit."""

PROTECTIVE_REASONS = frozenset(
    {"EXIT_STOP_LOSS", "EXIT_TRAILING_STOP", "EXIT_BREAK_EVEN", "EXIT_HALT", "EXIT_FLATTEN",
     "EXIT_LIQUIDATION"}
)  # fmt: skip
"""The exits that protect the account: a stop, a halt's exit, the kill switch's flatten, a
liquidation. One that could not be sent is the gravest refusal."""

DUST_CODES = frozenset({"BELOW_MINIMUM"})
"""Refusals of an order below the venue's minimum: an exit's leaves dust, which counts as
flat (`tradeloom.core.dust`), so no exit is missing."""

ORDER_CHECKS = frozenset(
    {"TRADING_HALTED", "TRADING_REDUCING", "ORDER_RATE", "MAX_ORDER_NOTIONAL",
     "MAX_POSITION_QUANTITY", "PRICE_COLLAR", "INSUFFICIENT_MARGIN"}
)  # fmt: skip
"""The pre-trade checks (`tradeloom.core.risk.pretrade_check`): they refuse an order, the
engine's exits included, where the other rejections refuse a signal (whose refused
reversal still exits what is held)."""


def refused_exit(code: str, purpose: str, *, cancelled: bool) -> bool:
    """Return whether a refusal left a position open that an order was to close.

    An exit's order (`EXIT_REASONS`) cancelled or cut short, or refused by a pre-trade
    check (`ORDER_CHECKS`); never one below the minimum (`DUST_CODES`: what it leaves
    counts as flat), nor a signal's refusal (its reversal still exits).

    Args:
        code: The rejection's code or the cancellation's reason.
        purpose: The order reason of what was refused.
        cancelled: Whether it is a cancellation's (else a rejection's).
    """
    if purpose not in EXIT_REASONS or code in DUST_CODES:
        return False
    return cancelled or code in ORDER_CHECKS


def refusal_stage(reason: str, *, cancelled: bool) -> str | None:
    """Return the stage of the refusal table a code counts in (None: not a refusal).

    Args:
        reason: The rejection's code, or the cancellation's reason.
        cancelled: Whether it is a cancellation's (else a rejection's).

    Returns:
        ``rejected`` (the risk layer refused an intent or an order before it was sent),
        ``cut`` (the venue's cash or minimum cut an order: `CUT_CANCELS`),
        ``cancelled`` (anything else stopped an order short: a router found no venue,
        a restart found it never sent, a venue refused or expired it), or None for the
        engine's own cancels (`ENGINE_CANCELS`).
    """
    if not cancelled:
        return "rejected"
    reason = RENAMED.get(reason, reason)
    if reason in ENGINE_CANCELS:
        return None
    return "cut" if reason in CUT_CANCELS else "cancelled"


STATE_NAMES = ("ACTIVE", "REDUCING", "HALTED")
"""Trading states, in the core's state array, by number."""
ACTIVE, REDUCING, HALTED_STATE = range(len(STATE_NAMES))

RENAMED: Mapping[str, str] = {"MAX_POSITION": "MAX_POSITION_QUANTITY"}
"""Codes journaled under a former name, to their name now: a journal written before the
rename reads (and restarts) with the name of today (`CodeTable.intern`,
`tradeloom.live.recovery.journal_state.read_state`). ``MAX_POSITION_QUANTITY`` is named after its
key, ``risk.limits.max_position_quantity``, beside the sizing's ``max_position``."""

DYNAMIC_BASE = 1000
"""First number a run gives a code it interns (a plugin's or a venue's)."""


@dataclass(frozen=True)
class Code:
    """A reason code: its number, its name, the values a row carries, and its message.

    Attributes:
        number: What the compiled core records.
        name: What the journal and the user read (``MAX_DRAWDOWN_HALT``).
        values: Names of the values the core records with it, in row order.
        message: Builds the message from the values and the run's `CodeTable`.
    """

    number: int
    name: str
    values: tuple[str, ...] = ()
    message: Callable[[Mapping[str, float], CodeTable], str] = field(
        default=lambda values, table: "", repr=False, compare=False
    )


_Message = Callable[[Mapping[str, float], "CodeTable"], str]
_Form = tuple[tuple[str, ...], _Message] | tuple[tuple[str, ...]]
"""A code's values and message (`Code.values`, `Code.message`), keyed by its number."""


def _f(value: float, digits: int = 4) -> str:
    return f"{value:.{digits}f}"


def _g(value: float) -> str:
    return f"{value:.10g}"


def _margin_source(v: Mapping[str, float]) -> str:
    """Name where a margin account's initial margin comes from (`MarginKernel.source`)."""
    source = int(v.get("source", 1))  # rows journaled before the source was: the key
    initial = _g(v["initial"])
    if source == 2:
        return (
            f"a venue with execution.allow_short and no execution.margin borrows at an "
            f"initial margin of {initial}: set execution.margin to change it"
        )
    if source == 3:
        return (
            f"a perpetual without execution.margin: an initial margin of {initial}; "
            f"set execution.margin to change it"
        )
    return f"execution.margin.initial={initial}"


def _below_minimum(v: Mapping[str, float], t: CodeTable) -> str:
    """Say why an order is below the venue's minimum, and what becomes of dust it meets.

    ``why`` is the order's reason: an exit's order is the whole position, so an exit
    below the minimum meets dust, which stays on the account, counted as flat.
    """
    quantity, lot = v["quantity"], v["lot"]
    reason = t.name(int(v["why"]))
    text = f"{reason} " if reason else ""
    if quantity <= lot:
        text += (
            f"quantity={_g(quantity)} is within the market's lot {_g(lot)} (its amount "
            "step or limits.amount.min)"
        )
    else:
        text += (
            f"quantity={_g(quantity)}, notional={_g(v['notional'])} is below the venue's "
            f"minimum order notional {_g(v['minimum'])} (execution.min_notional, or a live "
            "market's limits.cost.min)"
        )
    if int(v["why"]) in _EXITS:
        text += (
            "; the position is dust: it counts as flat and is carried until the symbol's "
            "next order takes it in"
        )
    return text


_REJECTION_FORMS: dict[int, _Form] = {
    KELLY_NO_EDGE: (
        ("kelly", "p_win", "payoff"),
        lambda v, t: no_edge_message(v["kelly"], v["p_win"], v["payoff"]),
    ),
    NO_RISK_ESTIMATE: (
        ("sizing", "bars", "window"),
        lambda v, t: no_estimate_message(v["sizing"], v["bars"], v["window"]),
    ),
    HALTED: (
        ("halt",),
        lambda v, t: f"trading is halted ({t.name(int(v['halt']))})",
    ),
    SHORT_NOT_ALLOWED: (
        (),
        lambda v, t: "short signal on a long-only venue (execution.allow_short: false)",
    ),
    NO_EQUITY_REJECT: (
        ("equity",),
        lambda v, t: f"equity={_f(v['equity'], 2)} <= 0",
    ),
    ANOMALY: (
        ("anomaly_score",),
        lambda v, t: (
            f"anomaly_score={_f(v['anomaly_score'])} < 0: the bar is unlike the "
            "model's training rows"
        ),
    ),
    DAILY_LOSS: (
        ("loss", "limit", "day_start_equity"),
        lambda v, t: (
            f"loss={_f(v['loss'])}, limit={_g(v['limit'])}, "
            f"day_start_equity={_g(v['day_start_equity'])}"
        ),
    ),
    TRADING_HALTED: (
        ("position", "side", "quantity", "why"),
        lambda v, t: f"trading is HALTED ({t.name(int(v['why']))}); only cancels are allowed",
    ),
    TRADING_REDUCING: (
        ("position", "after", "why"),
        lambda v, t: (
            f"trading is REDUCING ({t.name(int(v['why']))}); the order would "
            f"{'flip' if v['position'] * v['after'] < 0 else 'increase'} the position: "
            f"position={_g(v['position'])}, after={_g(v['after'])}"
        ),
    ),
    ORDER_RATE: (
        ("orders", "limit"),
        lambda v, t: f"orders_sent_last_60s={int(v['orders'])}, limit={int(v['limit'])}",
    ),
    MAX_ORDER_NOTIONAL: (
        ("notional", "limit"),
        lambda v, t: f"notional={_g(v['notional'])}, limit={_g(v['limit'])}",
    ),
    MAX_POSITION_QUANTITY: (
        ("position", "after", "limit"),
        lambda v, t: f"position_after={_g(v['after'])}, limit={_g(v['limit'])}",
    ),
    PRICE_COLLAR: (
        ("price", "reference", "collar", "low", "high"),
        lambda v, t: (
            f"price={_g(v['price'])}, reference={_g(v['reference'])}, "
            f"collar={_g(v['collar'])}, "
            f"allowed=[{_g(v['low'])}, {_g(v['high'])}]"
        ),
    ),
    INSUFFICIENT_MARGIN: (
        ("required", "equity", "initial", "source"),
        lambda v, t: (
            f"initial margin={_g(v['required'])} > equity={_g(v['equity'])} ({_margin_source(v)})"
        ),
    ),
    RANK: (
        ("rank", "top_k"),
        lambda v, t: (
            f"rank={int(v['rank'])} by confidence among this bar's candidates, "
            f"signal.top_k={int(v['top_k'])}"
        ),
    ),
    MAX_OPEN_POSITIONS: (
        ("open", "limit"),
        lambda v, t: (
            f"open_positions={int(v['open'])} (held and accepted this bar), limit={int(v['limit'])}"
        ),
    ),
    MAX_WEIGHT: (
        ("weight", "limit"),
        lambda v, t: f"weight={_f(v['weight'])} of equity, limit={_g(v['limit'])}",
    ),
    MAX_GROSS_EXPOSURE: (
        ("gross", "limit"),
        lambda v, t: f"gross_exposure_after={_f(v['gross'])} of equity, limit={_g(v['limit'])}",
    ),
    MAX_NET_EXPOSURE: (
        ("net", "limit"),
        lambda v, t: f"net_exposure_after={_f(v['net'])} of equity, limit={_g(v['limit'])}",
    ),
    GROUP_EXPOSURE: (
        ("group", "gross", "limit"),
        lambda v, t: (
            f"group {t.group(int(v['group']))}: gross_exposure_after={_f(v['gross'])} "
            f"of equity, limit={_g(v['limit'])}"
        ),
    ),
    CORRELATION: (
        ("other", "correlation", "limit", "window"),
        lambda v, t: (
            f"correlation={_f(v['correlation'])} with {t.symbol(int(v['other']))} "
            f"(signed by the two directions), limit={_g(v['limit'])}, "
            f"window={int(v['window'])} returns"
        ),
    ),
    BELOW_MINIMUM: (
        ("quantity", "notional", "minimum", "lot", "why"),
        _below_minimum,
    ),
    COOLDOWN: (
        ("bars", "cooldown", "exit_bar"),
        lambda v, t: (
            f"bars_since_exit={int(v['bars'])} < risk.cooldown_bars={int(v['cooldown'])} "
            f"(the last position was closed at bar {int(v['exit_bar'])})"
        ),
    ),
    SCALE_IN_CAP: (
        ("position", "cap"),
        lambda v, t: (
            f"position={_f(v['position'])} of equity, cap={_g(v['cap'])} "
            "(risk.scaling.scale_in.max_position): no room for an add"
        ),
    ),
    CANCEL_TOO_LATE: (
        ("order", "order_ms", "cancel_ms"),
        lambda v, t: (
            f"the cancel of order {int(v['order'])} reaches the venue {_g(v['cancel_ms'])} ms "
            f"after this close, the order {_g(v['order_ms'])} ms after it "
            "(execution.realism's latency): the order fills; the next decision sees it"
        ),
    ),
    CANCEL_UNCONFIRMED: (
        ("order",),
        lambda v, t: (
            f"order {int(v['order'])} works on at the venue: its cancel took no effect (not "
            "answered, or the order was not found while it may have filled); nothing more "
            "is sent for the symbol until its end and its fills are known"
        ),
    ),
}

_HALT_FORMS: dict[int, _Form] = {
    MAX_DRAWDOWN_HALT: (
        ("drawdown", "limit"),
        lambda v, t: halt_message(v["drawdown"], v["limit"]),
    ),
    HEALTH_HALT: (("value", "threshold"),),
    NO_EQUITY: (
        ("equity",),
        lambda v, t: (
            f"equity={_f(v['equity'], 2)} <= 0: the account has nothing left to trade with"
        ),
    ),
}


def _codes(family: Family, forms: Mapping[int, _Form] | None = None) -> tuple[Code, ...]:
    return tuple(
        Code(number, name, *(forms or {}).get(number, ())) for name, number in family.names.items()
    )


REJECTIONS = _codes(REJECTION_NAMES, _REJECTION_FORMS)
"""Why a signal's intent or an order was refused."""
HALT_CODES = _codes(HALT_NAMES, _HALT_FORMS)
"""Why trading stopped; a halt is latched (`KILL_SWITCH` alone is lifted by resume)."""
STATE_CODES = _codes(STATE_CHANGE_NAMES, {DAY_ROLLOVER: (("day",),)})
"""Why the trading state changed (besides `DAILY_LOSS` and `KILL_SWITCH`)."""
ORDER_REASONS = _codes(ORDER_REASON_NAMES)
"""Why the engine sent an order."""
CANCEL_REASONS = _codes(CANCEL_NAMES)
"""Why the venue stopped working an order."""
OUTCOMES = _codes(OUTCOME_NAMES)
"""What became of a signal."""

_BUILT_IN: dict[int, Code] = {
    code.number: code
    for table in (REJECTIONS, HALT_CODES, STATE_CODES, ORDER_REASONS, CANCEL_REASONS)
    for code in table
}
_BUILT_IN[DAILY_LOSS] = next(c for c in REJECTIONS if c.number == DAILY_LOSS)
_BUILT_IN[KILL_SWITCH] = next(c for c in HALT_CODES if c.number == KILL_SWITCH)
_BUILT_IN[BELOW_MINIMUM] = next(c for c in REJECTIONS if c.number == BELOW_MINIMUM)


class CodeTable:
    """The codes of one run: the built-in ones, and the ones it interned.

    A plugin's rejection code or a venue's cancel reason gets a number the first
    time the run meets it, so the compiled core can carry it like a built-in one.

    Args:
        symbols: The run's symbols, by index (a portfolio refusal names another symbol).
        groups: The names of ``risk.portfolio.groups``, by index.
    """

    def __init__(self, symbols: Sequence[str] = (), groups: Sequence[str] = ()) -> None:
        self._names: dict[int, str] = {}
        self._numbers: dict[str, int] = {}
        self.symbols = tuple(symbols)
        self.groups = tuple(groups)

    def symbol(self, index: int) -> str:
        """Return the name of symbol ``index`` (``#index`` when the table has no name for it)."""
        name = self.symbols[index] if 0 <= index < len(self.symbols) else ""
        return name or f"#{index}"

    def group(self, index: int) -> str:
        """Return the name of group ``index`` (``#index`` when the table has no names)."""
        return self.groups[index] if 0 <= index < len(self.groups) else f"#{index}"

    def intern(self, name: str) -> int:
        """Return the number of ``name``: a built-in code's (under its name now, or a former
        one: `RENAMED`), or a new one from `DYNAMIC_BASE`."""
        name = RENAMED.get(name, name)
        for code in _BUILT_IN.values():
            if code.name == name:
                return code.number
        number = self._numbers.get(name)
        if number is None:
            number = DYNAMIC_BASE + len(self._numbers)
            self._numbers[name] = number
            self._names[number] = name
        return number

    def name(self, number: int) -> str:
        """Return the name of code ``number`` ('' for 0)."""
        if number == 0:
            return ""
        code = _BUILT_IN.get(number)
        if code is not None:
            return code.name
        return self._names.get(number, f"CODE_{number}")

    def code(self, number: int) -> Code:
        """Return the built-in code ``number``.

        Raises:
            KeyError: ``number`` is not a built-in code.
        """
        return _BUILT_IN[number]


def describe(
    number: int, values: tuple[float, ...], table: CodeTable
) -> tuple[str, dict[str, float]]:
    """Return the message of built-in code ``number`` and its values by name.

    Args:
        number: The code.
        values: The values the core recorded with it, in `Code.values` order (extra
            ones are ignored).
        table: The run's codes (a message may name another code, e.g. HALTED's halt).
    """
    code = _BUILT_IN[number]
    named = {name: float(values[i]) for i, name in enumerate(code.values)}
    return code.message(named, table), {k: v for k, v in named.items() if not _hidden(k)}


def decision(
    outcome: int, reason: int, target: float, allowed_regimes: tuple[str, ...], table: CodeTable
) -> dict[str, object]:
    """Return the journal payload of a signal's decision that is not a rejection.

    Args:
        outcome: `ACCEPTED`, `HOLD`, `IGNORED` or `FILTERED`.
        reason: The order reason (accepted: the intent's; ignored: the exit's); the
            bar's regime code when filtered; a hold's: the side ``signal.sides`` trades
            (+1 long, -1 short) when it barred the signal's, else 0.
        target: The accepted intent's target fraction of equity.
        allowed_regimes: ``signal.regimes`` (a filtered decision names them).
        table: The run's codes.
    """
    if outcome == ACCEPTED:
        return {"outcome": "accepted", "reason": table.name(reason), "target_fraction": target}
    if outcome == HOLD and reason != 0:
        side, other = ("long", "short") if reason > 0 else ("short", "long")
        return {"outcome": "hold", "reason": f"signal.sides is {side}: no {other} position"}
    if outcome == HOLD:
        return {"outcome": "hold", "reason": "position already in the signal's direction"}
    if outcome == IGNORED:
        return {"outcome": "ignored", "reason": f"position is being closed ({table.name(reason)})"}
    trend, volatility = trend_label(reason), volatility_label(reason)
    return {
        "outcome": "filtered",
        "reason": f"regime ({trend}, {volatility}) is none of signal.regimes "
        f"({', '.join(allowed_regimes)})",
        "trend": trend,
        "volatility": volatility,
    }


def _hidden(name: str) -> bool:
    # codes carried as values to build the message, not journaled as numbers
    return name in ("halt", "why")
