"""A run's status in words: the lines ``tradeloom status`` prints, the canary's and the
watch's stage as the console shows them, and each error kind's line."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from tradeloom.engine.status_figures import _iso
from tradeloom.engine.status_values import AllocationStatus, RunStatus
from tradeloom.journal.events import (
    ChallengerFailed,
    ConfigReloadRefused,
    ControlRefused,
    DocumentRefused,
    DocumentUnscored,
    FillRefused,
    HaltEvent,
    ModelSwapRefused,
    RunFailed,
    StaleData,
    StopFellBack,
    VenueUnreachable,
    dispatch,
)
from tradeloom.reporting.refusals import (
    RefusalTable,
    exits_warning,
    refusal_lines,
)

if TYPE_CHECKING:
    from tradeloom.reporting.book_figures import BookFigures

_ENDED = ("finished", "failed", "stopped")
"""The processes that trade no more: their state is the one they ended in."""

_MONITORS_SHOWN = 6
"""Above this many monitors (a universe's), the healthy ones are counted, not listed."""

__all__ = [
    "canary_line",
    "error_line",
    "format_status",
    "watch_line",
]


def format_status(status: RunStatus) -> str:
    """Return the status as lines for a person."""
    s = status
    lines = [f"run        {s.run_dir}"]
    what = f"{s.mode} run of '{s.strategy}'"
    if s.symbol:
        what += f", {s.symbol}"
    if s.timeframe:
        what += f" {s.timeframe}"
    lines.append(f"           {what}")
    lines.append(f"process    {s.process} ({s.process_detail})")
    lines.append(f"state      {_state_line(s)}")
    if s.last_bar is None:
        lines.append("last bar   none yet")
    else:
        age = "" if s.last_bar_age_seconds is None else f", {_ago(s.last_bar_age_seconds)}"
        lines.append(
            f"last bar   #{s.last_bar} {s.last_bar_time} (closed {s.last_bar_close_time}{age}), "
            f"close {_num(s.last_close)}"
        )
    lines.append(f"data       {s.staleness}")
    if s.equity is not None:
        ret = "" if s.total_return is None else f" ({s.total_return:+.2%} on {_money(s.capital)})"
        lines.append(f"equity     {_money(s.equity)}{ret}, cash {_money(s.cash)}")
    elif s.cash is not None:
        lines.append(f"equity     unknown (no close yet), cash {_money(s.cash)}")
    if s.day_pnl is not None:
        pct = "" if s.day_return is None else f" ({s.day_return:+.2%})"
        head = "last day  " if s.process in _ENDED else "today     "
        lines.append(f"{head} {s.day}: P&L {_signed_money(s.day_pnl)}{pct}")
    for i, (name, pnl) in enumerate(s.strategies.items()):
        head = "strategy   " if i == 0 else "           "
        lines.append(f"{head}{name}: P&L {_signed_money(pnl)}")
    if not s.positions:
        lines.append("position   flat")
    for i, p in enumerate(s.positions):
        head = "position   " if i == 0 else "           "
        text = f"{p.symbol} {p.quantity:+.8g}"
        if p.cost is not None:
            text += f" @ {_num(p.cost)}"
        if p.unrealized is not None:
            text += f", unrealized {_signed_money(p.unrealized)}"
        lines.append(head + text)
    if not s.open_orders:
        lines.append("orders     none open")
    for i, o in enumerate(s.open_orders):
        head = f"orders     {len(s.open_orders)} open: " if i == 0 else "             "
        filled = f", {o.filled:.8g} filled" if o.filled else ""
        lines.append(
            f"{head}{o.id} {o.side} {o.quantity:.8g} {o.symbol} (bar {o.bar}, {o.reason}{filled})"
        )
    for i, (name, words) in enumerate(s.models.items()):
        head = "model      " if i == 0 else "           "
        lines.append(head + (f"{name}: {words}" if name else words))
    if s.allocation is not None:
        lines.extend(_allocation_lines(s.allocation))
    if s.books:
        lines.extend(_book_lines(s.books))
    if s.canary is not None:
        lines.append(f"canary     {canary_line(s.canary)}")
    if s.watch is not None:
        lines.append(f"watch      {watch_line(s.watch)}")
    if s.parity is not None:
        last = s.parity
        verdict = {"ok": "ok", "diverged": "DIVERGED", "failed": "check failed"}
        lines.append(
            f"parity     {verdict.get(last['verdict'], last['verdict'])} at bar {last['bar']}: "
            f"{last['message']} (equity gap {_signed_money(last['equity_gap'])})"
        )
    if s.health is None:
        lines.append("health     no health changes journaled")
    else:
        lines.append(f"health     {_health_line(s)}")
    lines.append(
        f"counts     {s.bars} bars, {s.signals} signals, {s.orders} orders, {s.fills} fills, "
        f"{s.rejections} rejections"
    )
    table = RefusalTable.from_nested(s.refusals)
    (_, head), *codes = refusal_lines(table)
    lines.append(f"refusals   {head}")
    width = max((len(code.strip()) for code, _ in codes), default=0)
    lines.extend(f"           {code.strip():<{width}}  {text}" for code, text in codes)
    warning = exits_warning(table)
    if warning is not None:
        lines.append(f"WARNING    {warning}")
    if not s.errors:
        lines.append("errors     none")
    elif len(s.errors) > 1:
        lines.append(f"errors     the last {len(s.errors)}, oldest first:")
    for i, e in enumerate(s.errors):
        head = "errors     " if i == 0 and len(s.errors) == 1 else "           "
        where = f"{e['time']} " if e.get("time") else ""
        lines.append(f"{head}{where}{e['kind']}: {e['message']}")
    return "\n".join(lines)


def _state_line(s: RunStatus) -> str:
    if s.process in _ENDED and s.last_bar is None:
        return f"none: the run {s.process} before its first bar"
    state = s.state
    if s.state_code:
        state += f" ({s.state_code}: {s.state_reason})" if s.state_reason else f" ({s.state_code})"
    if s.state_since:
        state += f" since {s.state_since}"
    if s.process in _ENDED:  # the risk engine's last state, not a run still trading
        state += f", when it {s.process}"
    return state


def watch_line(w: dict[str, Any]) -> str:
    """Return the last watch after a full promotion (`RunStatus.watch`) in words, as
    ``tradeloom status`` and the console's run page show it."""
    name, bars = w["challenger"], w["bars"]
    if w["stage"] == "watch":
        return (
            f"{name}'s promotion watched since bar {w['since_bar']}: {bars} of "
            f"{w['of_bars']} bars (by {w['by']})"
        )
    if w["stage"] == "passed":
        return f"{name}'s promotion final after {bars} bars watched"
    rule = w.get("rule") or ""
    why = f"{rule} {_num(w.get('figure'))} past {_num(w.get('limit'))}" if rule else "by hand"
    return (
        f"{name}'s promotion rolled back after {bars} bars: {why} (by {w['by']}), the "
        "previous champion's model back"
    )


def canary_line(c: dict[str, Any]) -> str:
    """Return the last canary's stage (`RunStatus.canary`) in words, as ``tradeloom
    status`` and the console's run page show it."""
    name, bars = c["challenger"], c["bars"]
    if c["stage"] == "canary":
        return (
            f"{name} at {c['fraction']:.0%} of the champion's size since bar "
            f"{c['since_bar']}: {bars} of {c['of_bars']} bars (by {c['by']})"
        )
    if c["stage"] == "passed":
        return f"{name} passed after {bars} bars: the full champion (by {c['by']})"
    rule = c.get("rule") or ""
    why = f"{rule} {_num(c.get('figure'))} past {_num(c.get('limit'))}" if rule else "by hand"
    return f"{name} rolled back after {bars} bars: {why} (by {c['by']}), the champion's model back"


def _book_lines(books: list[BookFigures]) -> list[str]:
    """The champion's and each challenger's book, one line each, in aligned columns (the
    bar each book starts at when one was added to the running run)."""
    width = max(len(b.name) for b in books)
    gated = any(b.gate is not None for b in books)
    added = len({b.first_bar for b in books}) > 1
    lines = [
        f"books      {'':<{width}}  {'equity':>12}  {'return':>8}  {'sharpe':>7}  "
        f"{'fills':>5}  {'turnover':>8}  {'max dd':>7}  {'auc':>5}  {'ece':>6}"
        + ("  from bar" if added else "")
        + ("  gate" if gated else "")
    ]
    for b in books:
        ret = "-" if b.total_return is None else f"{b.total_return:+.2%}"
        sharpe = "-" if b.sharpe is None else f"{b.sharpe:.2f}"
        turnover = "-" if b.turnover is None else f"{b.turnover:.2f}x"
        drawdown = "-" if b.max_drawdown is None else f"{b.max_drawdown:.2%}"
        auc = "-" if b.auc is None else f"{b.auc:.3f}"
        ece = "-" if b.ece is None else f"{b.ece:.4f}"
        since = "-" if b.first_bar is None else str(b.first_bar)
        lines.append(
            f"           {b.name:<{width}}  {_money(b.equity):>12}  {ret:>8}  {sharpe:>7}  "
            f"{b.fills:>5}  {turnover:>8}  {drawdown:>7}  {auc:>5}  {ece:>6}"
            + (f"  {since:>8}" if added else "")
            + (f"  {b.gate or '-'}" if gated else "")
        )
    return lines


def _allocation_lines(a: AllocationStatus) -> list[str]:
    """The last rebalance, then target against held weight per symbol (a portfolio file's:
    per strategy), largest first."""
    when = f"bar {a.bar:,} {a.time or ''}".rstrip()
    outcome = a.status if a.status == "ok" else f"{a.status} ({a.message}): the last weights hold"
    lines = [
        f"allocation {a.allocator}, last rebalance {when}: {outcome}",
        f"           {a.rebalances:,} rebalances, {a.kept:,} kept the last weights",
    ]
    rows = [(w.symbol, w.target, w.held) for w in a.weights]
    rows.sort(key=lambda r: -max(abs(r[1] or 0.0), abs(r[2] or 0.0)))
    if a.others:
        rows.append((f"{a.others} more", a.others_target, a.others_held))
    held = "held now" if a.held_at == "now" else "held at it"
    width = max([len(a.weighs), *(len(name) for name, _, _ in rows)])
    lines.append(f"           {a.weighs:<{width}}  {'target':>8}  {held:>10}")
    lines.extend(
        f"           {name:<{width}}  {_weight(target):>8}  {_weight(now):>10}"
        for name, target, now in rows
    )
    return lines


def _weight(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2%}"


def _errors(row: Mapping[str, Any]) -> str:
    errors = row["errors"] if isinstance(row["errors"], list) else [row["errors"]]
    return "; ".join(str(e) for e in errors)


def _swap_refused(row: Mapping[str, Any]) -> str:
    of = f" of {row['strategy']}" if row.get("strategy") else ""
    return f"model swap{of} refused ({row['source']}, by {row['by']}): " + _errors(row)


def _unscored(row: Mapping[str, Any]) -> str:
    of = f"{row['strategy']}: " if row.get("strategy") else ""  # a portfolio's strategy
    return f"{of}{row['feature']}: document {row['document_id']} unscored: {row['reason']}"


def _control_refused(row: Mapping[str, Any]) -> str:
    more = f" (and {row['dropped']} more not journaled)" if row["dropped"] else ""
    return f"{row['by']}: {row['command']} refused: {row['reason']}{more}"


def _stop_fallback(row: Mapping[str, Any]) -> str:
    return (
        f"{row['client_id']}: {row['order_type']} at {row['trigger_price']:.8g} watched at "
        f"the bar close ({row['code']}: {row['reason']})"
    )


_ERROR_LINES: dict[str, tuple[str, Callable[[Mapping[str, Any]], str]]] = dispatch(
    {
        RunFailed: ("wall_time", lambda row: str(row["error"])),
        HaltEvent: ("timestamp", lambda row: f"{row['code']}: {row['message']}"),
        VenueUnreachable: ("timestamp", lambda row: f"{row['operation']}: {row['error']}"),
        StaleData: ("timestamp", lambda row: str(row["message"])),
        ConfigReloadRefused: ("timestamp", _errors),
        ModelSwapRefused: ("timestamp", _swap_refused),
        FillRefused: ("timestamp", lambda row: f"{row['client_id']}: {row['message']}"),
        ChallengerFailed: (
            "timestamp",
            lambda row: f"challenger {row['challenger']} dropped: {row['message']}",
        ),
        StopFellBack: ("timestamp", _stop_fallback),
        DocumentUnscored: ("visible", _unscored),
        DocumentRefused: (
            "received",
            lambda row: f"{row['source']}: {row['where']}: refused: {row['reason']}",
        ),
        ControlRefused: ("timestamp", _control_refused),
    },
    "status_error",
)
"""Each kind status lists among the run's errors (declared ``status_error``): the column
of its time, and its line."""


def error_line(kind: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """Return a row of a kind status lists among its errors as `RunStatus.errors` holds
    it: its bar (None: none), its time and its message on one line."""
    stamp, line = _ERROR_LINES[kind]
    message = line(row)
    bar = int(row["bar"])
    return {
        "bar": None if bar < 0 else bar,
        "time": _iso(row.get(stamp)),
        "message": " ".join(message.split()),
    }


def _duration(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} days"


def _ago(seconds: float) -> str:
    return f"{_duration(seconds)} ago" if seconds >= 0 else f"in {_duration(seconds)}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.8g}"


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _signed_money(value: float) -> str:
    return f"{value:+,.2f}"


def _health_line(s: RunStatus) -> str:
    # "CRITICAL at rolling_auc[IBM] (rolling_auc[AAPL] WARNING, rolling_auc[IBM] CRITICAL)"
    items = sorted(s.monitors.items())
    healthy = [k for k, v in items if v == "HEALTHY"]
    if len(items) > _MONITORS_SHOWN and healthy:
        shown = [f"{k} {v}" for k, v in items if v != "HEALTHY"]
        shown.append(f"{len(healthy)} more HEALTHY")
    else:
        shown = [f"{k} {v}" for k, v in items]
    if len(s.health_worst) == len(items) > 1:  # all alike: "HEALTHY at a, b, ..." says less
        return f"{s.health}, all {len(items)} monitors ({', '.join(k for k, _ in items)})"
    where = f" at {', '.join(s.health_worst)}" if s.health_worst else ""
    return f"{s.health}{where} ({', '.join(shown)})"
