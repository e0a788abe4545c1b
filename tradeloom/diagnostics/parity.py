"""Replay a paper or live run's bars as a backtest and explain every difference
(``tradeloom parity RUN_DIR``, `Run.parity`).

1. The run's journal gives the bars it saw, as it saw them (``live_bar`` rows), and
   each bar's probability, as the run's models gave it (the folds it trained, when it
   trained them): the replay's model is those probabilities (a ``precomputed`` model),
   so a retrain at another moment is not a false difference.
2. The replay is a backtest of the strategy document the run started under
   (``run_started``), on those bars, from the run's starting cash, written to
   ``OUT/reference`` (a run folder like any other).
3. Bar by bar, the two are compared: probability, signal, order (side, quantity,
   reason), fill (price, quantity, fee), position, cash and equity. Each difference
   gets a cause (`CAUSES`); the equity gap is split into P&L by cause, fill by fill,
   so that the causes sum to the gap, and what they do not explain is ``unexplained``.

One market only: a universe, a portfolio file, a router, sliced orders and a perpetual's
funding are refused in one line (issue 69 lists them).
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from tradeloom.errors import UserError
from tradeloom.journal import JournalError, journal_path, read_rows
from tradeloom.reporting.settings_diff import flatten

__all__ = ["CAUSES", "TOLERANCES", "ParityResult", "format_parity", "parity", "parse_tolerances", "write_parity"]

CAUSES: dict[str, str] = {
    "slippage": "a fill's price differs from the simulated venue's (the venue's price)",
    "fee": "a fill's fee differs from the fee model's for its price and quantity",
    "partial_fill": "the venue filled less than the order's quantity",
    "rejection": "the venue rejected or cancelled an order the backtest filled (its code)",
    "late_bars": "bars missed or played late (an outage, a restart's catch-up)",
    "kill": "a kill or flatten the operator asked for",
    "hot_reload": "the strategy file was reloaded while the run traded",
    "knock_on": "a size or decision that follows an equity or position already apart",
    "unexplained": "a difference no journaled fact explains",
}
"""Every cause a difference is attributed to, with what it means."""

TOLERANCES: dict[str, float] = {
    "relative": 1e-9,
    "absolute": 1e-6,
    "late": 1.0,
}
"""The defaults of ``--tolerance``: numbers equal within ``relative``; money and the
equity residual within ``absolute``; a bar played more than ``late`` bars after its
close is late. A cause's name limits its |P&L| (default: none, ``unexplained``: 0)."""

_SIMULATED = "simulated"


@dataclass(frozen=True)
class ParityResult:
    """The comparison of a run with its replay.

    Attributes:
        bars: One row per bar the run saw: ``timestamp``, ``bar``, each side's
            ``equity`` (``run_equity``, ``reference_equity``), the ``gap`` and each
            cause's cumulative P&L (a column per cause).
        differences: One row per difference: ``timestamp``, ``bar``, ``field``,
            ``run``, ``reference``, ``cause``, ``code``, ``pnl``.
        causes: One row per cause found: ``count``, ``pnl``, ``limit``, ``within``.
        summary: What ``parity.json`` holds besides the tables.
    """

    bars: pd.DataFrame
    differences: pd.DataFrame
    causes: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Return whether every difference is explained and within its limit."""
        return bool(self.summary["passed"])


def parse_tolerances(words: Sequence[str]) -> dict[str, float]:
    """Return the tolerances with ``KEY=VALUE`` words applied over `TOLERANCES`.

    Raises:
        UserError: A word without ``=``, an unknown key, or a value that is not a
            non-negative number.
    """
    tolerances = dict(TOLERANCES)
    known = [*TOLERANCES, *CAUSES]
    for word in words:
        key, sep, text = word.partition("=")
        if not sep:
            raise UserError(f"--tolerance {word}: expected KEY=VALUE (keys: {', '.join(known)})")
        if key not in known:
            raise UserError(f"--tolerance {word}: no key {key!r}; keys: {', '.join(known)}")
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not value >= 0:
            raise UserError(f"--tolerance {word}: expected a number >= 0, was {text!r}")
        tolerances[key] = value
    return tolerances


# --- reading the run ------------------------------------------------------------------------


@dataclass
class _Journal:
    mode: str
    clock: str
    capital: float
    dust: float
    document: dict[str, Any]
    live: list[Any]
    rows: dict[str, list[Any]]


def _read_journal(run_dir: Path) -> _Journal:
    path = journal_path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: not a directory; give a paper or live run's folder")
    if not path.is_file():
        raise UserError(
            f"{run_dir}: no journal ({path.name}); give the folder a paper or live run wrote"
        )
    kinds = (
        "run_started", "live_bar", "venue_fill", "signal", "order", "fill", "rejection", "order_cancelled",
        "config_reloaded", "restarted", "halt", "control_request", "trading_state",
        "sliced_order", "route_decision", "funding",
    )  # fmt: skip
    rows: dict[str, list[Any]] = {kind: [] for kind in kinds}
    try:
        for row in read_rows(path, kinds):
            rows[row.kind].append(row)
    except JournalError:
        raise
    starts = rows["run_started"]
    if not starts:
        raise UserError(f"{path}: no run_started row; not a run's journal")
    start = starts[0].values
    if start["mode"] not in ("paper", "live"):
        raise UserError(
            f"{path}: a {start['mode']} run's journal; parity replays a paper or live run"
        )
    if not rows["live_bar"]:
        raise UserError(f"{path}: no live_bar rows; the run played no bar to compare")
    document = start.get("document")
    if not isinstance(document, dict):
        raise UserError(
            f"{path}: the run_started row keeps no strategy document; parity needs the "
            "strategy the run started under"
        )
    for kind in ("sliced_order", "route_decision", "funding"):
        if rows[kind]:
            raise UserError(
                f"{path}: {kind} rows: parity compares one market's plain orders for now "
                "(sliced orders, routers and funding: issue 69)"
            )
    symbols = {r.symbol for r in rows["live_bar"]}
    if len(symbols) != 1:
        raise UserError(
            f"{path}: {len(symbols)} markets ({', '.join(sorted(symbols))}); parity compares "
            "one market for now (universes: issue 69)"
        )
    capital = float(start["capital"])
    return _Journal(str(start["mode"]), str(start.get("clock") or ""), capital,
        float(start.get("dust") or 0.0), document, rows["live_bar"], rows)


def _check_strategy(run_dir: Path, journal: _Journal) -> None:
    """Refuse a strategy.yaml that is neither the document the run started under nor
    one it reloaded, naming the first key that differs."""
    file = run_dir / "strategy.yaml"
    if not file.is_file():
        raise UserError(f"{run_dir}: no strategy.yaml; give the folder the run wrote")
    try:
        written = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UserError(f"{file}: not a YAML strategy file ({type(exc).__name__})") from None
    known = [journal.document, *(r.values["document"] for r in journal.rows["config_reloaded"])]
    if any(written == doc for doc in known):
        return
    mine, theirs = flatten(written), flatten(known[-1])
    keys = [k for k in dict.fromkeys([*theirs, *mine]) if mine.get(k) != theirs.get(k)]
    key = keys[0] if keys else "(its layout)"
    raise UserError(
        f"{file}: changed since the run: {key} is {mine.get(key)!r}, the run traded "
        f"{theirs.get(key)!r}; restore the file the run wrote"
    )


# --- the replay -----------------------------------------------------------------------------


def _replay_document(journal: _Journal, bars_file: Path) -> dict[str, Any]:
    document = json.loads(json.dumps(journal.document))
    data = document.get("data") or {}
    execution = document.get("execution") or {}
    if execution.get("kind") != _SIMULATED:
        raise UserError(
            f"execution.kind: {execution.get('kind')!r}; parity replays a simulated venue's "
            "strategy for now (routers: issue 69)"
        )
    symbol = journal.live[0].symbol
    document["data"] = {"kind": "csv", "path": str(bars_file), "symbol": symbol}
    if "timeframe" in data:
        document["data"]["timeframe"] = data["timeframe"]
    model = document.get("model") or {}
    label = model.get("label") if isinstance(model, dict) else None
    horizon = label.get("horizon", 1) if isinstance(label, dict) else 1
    document["model"] = {"kind": "precomputed", "column": "p_up", "horizon": int(horizon)}
    if math.isfinite(journal.capital):
        execution["initial_cash"] = journal.capital
    document["execution"] = execution
    document.pop("live", None)
    return document


def _replay(journal: _Journal, out: Path) -> Path:
    from tradeloom.backtest.run import run_strategy
    from tradeloom.engine.wiring import build_pipeline
    from tradeloom.errors import ConfigError
    from tradeloom.schemas import load_strategy

    live = journal.live
    bars = pd.DataFrame({"timestamp": [pd.Timestamp(r.timestamp) for r in live]})
    for column in ("open", "high", "low", "close", "volume"):
        bars[column] = [float(r.values[column]) for r in live]
    bars["p_up"] = [
        math.nan if r.values["probability"] is None else float(r.values["probability"])
        for r in live
    ]
    reference = out / "reference"
    if reference.exists() and any(reference.iterdir()):
        raise UserError(f"{reference}: exists and holds files; give another --out")
    with tempfile.TemporaryDirectory(prefix="tradeloom-parity-") as folder:
        bars_file = Path(folder) / "bars.csv"
        bars.to_csv(bars_file, index=False)
        file = Path(folder) / "strategy.yaml"
        file.write_text(yaml.safe_dump(_replay_document(journal, bars_file), sort_keys=False))
        try:
            config, plugins = load_strategy(file, ())
        except ConfigError as exc:
            raise UserError(f"the run's strategy does not load now: {exc}") from None
        run_strategy(build_pipeline(config), plugins, out=reference)
    return reference


# --- comparing ------------------------------------------------------------------------------


@dataclass
class _Context:
    """The journaled facts that explain a difference, by the run's bar."""

    times: dict[int, pd.Timestamp]
    late: set[int]
    reload_bar: float
    kill_bar: float
    refused: dict[int, str]


def _context(journal: _Journal, tolerances: Mapping[str, float]) -> _Context:
    live = journal.live
    times = {r.bar: pd.Timestamp(r.timestamp) for r in live}
    step = _step(live)
    late: set[int] = set()
    previous: int | None = None
    for r in live:
        close = pd.Timestamp(r.timestamp) + step
        played = r.values.get("wall_time")
        # on a simulated clock (an emulator's market time) the wall time says nothing
        lag = (
            (pd.Timestamp(played) - close) / step
            if played is not None and journal.clock != "simulated"
            else 0.0
        )
        if lag > tolerances["late"] or (previous is not None and r.bar != previous + 1):
            late.add(r.bar)
        previous = r.bar
    for r in journal.rows["restarted"]:
        late.add(r.bar + 1)
    reloads = [r.bar for r in journal.rows["config_reloaded"]]
    kills = [
        r.bar
        for r in journal.rows["control_request"]
        if r.values.get("action") in ("kill", "flatten")
    ] + [r.bar for r in journal.rows["halt"] if "KILL" in str(r.values).upper()]
    refused: dict[int, str] = {}
    for r in journal.rows["rejection"]:
        refused.setdefault(r.bar, str(r.values.get("code")))
    for r in journal.rows["order_cancelled"]:
        refused.setdefault(r.bar, str(r.values.get("reason") or r.values.get("code") or "CANCEL"))
    return _Context(
        times,
        late,
        float(min(reloads)) if reloads else math.inf,
        float(min(kills)) if kills else math.inf,
        refused,
    )


def _step(live: Sequence[Any]) -> pd.Timedelta:
    times = pd.DatetimeIndex([pd.Timestamp(r.timestamp) for r in live])
    if len(times) < 2:
        return pd.Timedelta(hours=1)
    return pd.Timedelta(np.min(np.diff(times.asi8)))


def _event_cause(bar: int, ctx: _Context) -> tuple[str, str] | None:
    """The journaled event that explains a difference at ``bar`` (None: none)."""
    if bar in ctx.refused:
        return "rejection", ctx.refused[bar]
    if bar in ctx.late or bar - 1 in ctx.late:
        return "late_bars", ""
    if bar >= ctx.kill_bar:
        return "kill", ""
    if bar > ctx.reload_bar:
        return "hot_reload", ""
    return None


def _close(a: float, b: float, tolerances: Mapping[str, float]) -> bool:
    return math.isclose(a, b, rel_tol=tolerances["relative"], abs_tol=tolerances["absolute"])


def parity(
    run_dir: Path, *, out: Path | None = None, tolerances: Mapping[str, float] | None = None
) -> ParityResult:
    """Replay the run in ``run_dir`` as a backtest and compare it bar by bar.

    Args:
        run_dir: A paper or live run's folder.
        out: Where the replay's run folder (``reference``) goes (default:
            ``RUN_DIR/parity``).
        tolerances: `TOLERANCES` with changes (`parse_tolerances`).

    Raises:
        UserError: A folder without a journal, a journal of another format or another
            mode, a strategy changed since the run (the key named), a shape parity does
            not compare yet.
    """
    limits = dict(TOLERANCES if tolerances is None else tolerances)
    journal = _read_journal(run_dir)
    _check_strategy(run_dir, journal)
    out = run_dir / "parity" if out is None else out
    reference = _replay(journal, out)
    return _compare(run_dir, journal, reference, limits)


def _rows(path: Path, kind: str) -> list[Any]:
    return list(read_rows(journal_path(path), [kind]))


def _compare(
    run_dir: Path, journal: _Journal, reference: Path, limits: dict[str, float]
) -> ParityResult:
    from tradeloom.reporting.run_data import read_table

    ctx = _context(journal, limits)
    live_bars = [r.bar for r in journal.live]
    to_run = dict(enumerate(live_bars))  # the replay's bar i is the run's i-th live bar
    differences: list[dict[str, Any]] = []

    def note(bar: int, field_: str, mine: Any, theirs: Any, cause: str, code: str = "") -> None:
        differences.append(
            {
                "timestamp": ctx.times.get(bar, pd.NaT),
                "bar": bar,
                "field": field_,
                "run": mine,
                "reference": theirs,
                "cause": cause,
                "code": code,
                "pnl": 0.0,
            }
        )

    def explain(bar: int, earlier: bool) -> tuple[str, str]:
        event = _event_cause(bar, ctx)
        if event is not None:
            return event
        return ("knock_on", "") if earlier else ("unexplained", "")

    def diverged_before(bar: int) -> bool:
        return any(d["bar"] < bar and d["cause"] != "unexplained" for d in differences)

    # probabilities: the replay's model reads the run's; a difference is the replay's own
    ref_features = pd.read_parquet(reference / "features.parquet")
    ref_p = ref_features["probability"].to_numpy(np.float64)
    for i, r in enumerate(journal.live):
        p = r.values["probability"]
        mine = math.nan if p is None else float(p)
        if not (
            (math.isnan(mine) and math.isnan(ref_p[i])) or _close(mine, float(ref_p[i]), limits)
        ):
            note(r.bar, "probability", mine, float(ref_p[i]), "unexplained")

    # fills: matched by bar and side, P&L by cause at every bar's close
    closes = np.array([float(r.values["close"]) for r in journal.live])
    index = {bar: i for i, bar in enumerate(live_bars)}
    n = len(live_bars)
    pnl: dict[str, np.ndarray] = {}

    def book(cause: str, at: int, constant: float, quantity: float) -> None:
        """Add ``constant + quantity * close`` to ``cause``'s P&L from bar index ``at``."""
        series = pnl.setdefault(cause, np.zeros(n))
        if at < n:
            series[at:] += constant + quantity * closes[at:]

    ordered = {r.values["id"]: float(r.values["quantity"]) for r in journal.rows["order"]}
    filled: dict[str, float] = {}
    for r in journal.rows["fill"]:
        filled[r.values["order_id"]] = filled.get(r.values["order_id"], 0.0) + float(
            r.values["quantity"]
        )
    base = journal.live[0].symbol.split("/")[0]
    in_base: dict[str, float] = {}  # a buy's fee the venue took from the bought quantity
    for r in journal.rows["venue_fill"]:
        if r.values.get("fee_currency") == base:
            key = r.values["order_id"]
            in_base[key] = in_base.get(key, 0.0) + float(r.values["fee_cost"])
    mine_fills = _by_bar(journal.rows["fill"], lambda b: b)
    theirs_fills = _by_bar(_rows(reference, "fill"), lambda b: to_run.get(b, b))
    for bar in sorted(set(mine_fills) | set(theirs_fills)):
        at = index.get(bar, n)
        a = sorted(mine_fills.get(bar, []), key=lambda r: r.values["side"])
        b = sorted(theirs_fills.get(bar, []), key=lambda r: r.values["side"])
        pairs, only_mine, only_theirs = _match(a, b)
        for mine, theirs in pairs:
            _fill_pair(mine, theirs, bar, at, limits, ordered, filled, explain, diverged_before,
                       note, book, differences, journal.mode == "live", in_base, journal.dust)  # fmt: skip
        for row, sign in [(r, 1.0) for r in only_mine] + [(r, -1.0) for r in only_theirs]:
            v = row.values
            side, q, p, fee = float(v["side"]), float(v["quantity"]), float(v["price"]), float(v["fee"])
            cause, code = explain(row.correlation_id if sign > 0 else bar - 1, diverged_before(bar))
            if cause == "knock_on" or cause == "unexplained":
                cause, code = explain(bar, diverged_before(bar))
            constant = sign * (-side * q * p - fee)
            book(cause, at, constant, sign * side * q)
            a_text = _text([_pick(row, ("side", "quantity", "price"))]) if sign > 0 else ""
            b_text = "" if sign > 0 else _text([_pick(row, ("side", "quantity", "price"))])
            note(bar, "fill", a_text, b_text, cause, code)
            differences[-1]["pnl"] = constant + sign * side * q * closes[min(at, n - 1)]

    # signals and orders, bar by bar
    for kind, keys in (("signal", ("direction",)), ("order", ("side", "reason", "quantity"))):
        mine_by = _by_bar(journal.rows[kind], lambda b: b)
        theirs_by = _by_bar(_rows(reference, kind), lambda b: to_run.get(b, b))
        for bar in sorted(set(mine_by) | set(theirs_by)):
            a = [_pick(r, keys) for r in mine_by.get(bar, [])]
            b = [_pick(r, keys) for r in theirs_by.get(bar, [])]
            if not _same_lists(a, b, limits):
                cause, code = explain(bar, diverged_before(bar))
                note(bar, kind, _text(a), _text(b), cause, code)

    for d in differences:  # a quantity's P&L, at the last close
        if isinstance(d["pnl"], tuple):
            d["pnl"] = d["pnl"][0] + d["pnl"][1] * closes[-1]

    # the equity gap against the P&L the causes explain
    run_equity = read_table(run_dir, "equity")
    ref_equity = read_table(reference, "equity")
    if run_equity is None or ref_equity is None:
        raise UserError(f"{run_dir}: no equity table (equity.csv); is the run finished?")
    mine_e = _equity_at(run_equity, [ctx.times[b] for b in live_bars])
    theirs_e = ref_equity["equity"].to_numpy(np.float64)[:n]
    gap = mine_e - theirs_e
    explained = np.sum(list(pnl.values()), axis=0) if pnl else np.zeros(n)
    residual = gap - explained
    off = np.abs(residual) > limits["absolute"] + limits["relative"] * np.abs(theirs_e)
    if off.any():
        first = int(np.argmax(off))
        note(live_bars[first], "equity", float(mine_e[first]), float(theirs_e[first]),
             "unexplained")  # fmt: skip
    # the residual (the rounding of the two equity curves, or what no cause explains)
    pnl["unexplained"] = pnl.get("unexplained", np.zeros(n)) + residual

    return _result(journal, reference, limits, differences, pnl, mine_e, theirs_e, gap)


def _fill_pair(
    mine: Any,
    theirs: Any,
    bar: int,
    at: int,
    limits: Mapping[str, float],
    ordered: Mapping[str, float],
    filled: Mapping[str, float],
    explain: Any,
    diverged_before: Any,
    note: Any,
    book: Any,
    differences: list[dict[str, Any]],
    venue: bool,
    in_base: Mapping[str, float],
    dust: float,
) -> None:
    """Split a matched pair of fills' difference into slippage, fee and quantity.

    The run's fill moves the equity at close c by ``-s q p - f + s q c``; the
    replay's by the same with its own values. With the replay's fee rate
    ``k = f' / (q' p')``, the difference is exactly
    ``-(s + k) q (p - p')`` (slippage) ``+ s (q - q') (c - p') - k (q - q') p'``
    (quantity) ``- (f - k q p)`` (fee). A paper run's venue is the simulated one: its
    price and fee differ only for a journaled reason (a reload), else unexplained.
    """
    v, w = mine.values, theirs.values
    side = float(v["side"])
    q, p, f = float(v["quantity"]), float(v["price"]), float(v["fee"])
    q2, p2, f2 = float(w["quantity"]), float(w["price"]), float(w["fee"])
    k = f2 / (q2 * p2) if q2 * p2 > 0 else 0.0
    if not _close(p, p2, limits):
        cause, code = ("slippage", "") if venue else explain(bar, diverged_before(bar))
        book(cause, at, -(side + k) * q * (p - p2), 0.0)
        note(bar, "fill.price", p, p2, cause, code)
        differences[-1]["pnl"] = -(side + k) * q * (p - p2)
    if not _close(q, q2, limits):
        order = v["order_id"]
        short = ordered.get(order, q) - filled.get(order, q)  # what the venue did not deliver
        lot = max(dust, 1e-6 * ordered.get(order, q))  # rounded to the market's lot
        if order in in_base and short - in_base[order] <= lot:
            cause, code = "fee", "paid in the base currency"
        elif short > lot:
            cause, code = "partial_fill", ""
        else:
            cause, code = explain(bar, diverged_before(bar))
        constant = -side * (q - q2) * p2 - k * (q - q2) * p2
        book(cause, at, constant, side * (q - q2))
        note(bar, "fill.quantity", q, q2, cause, code)
        differences[-1]["pnl"] = (constant, side * (q - q2))  # at the last close, below
    if not _close(f, k * q * p, limits):
        cause, code = ("fee", "") if venue else explain(bar, diverged_before(bar))
        book(cause, at, -(f - k * q * p), 0.0)
        note(bar, "fill.fee", f, k * q * p, cause, code)
        differences[-1]["pnl"] = -(f - k * q * p)


def _match(a: list[Any], b: list[Any]) -> tuple[list[tuple[Any, Any]], list[Any], list[Any]]:
    pairs: list[tuple[Any, Any]] = []
    rest = list(b)
    only: list[Any] = []
    for row in a:
        same = next((r for r in rest if r.values["side"] == row.values["side"]), None)
        if same is None:
            only.append(row)
        else:
            rest.remove(same)
            pairs.append((row, same))
    return pairs, only, rest


def _by_bar(rows: Sequence[Any], bar_of: Any) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {}
    for r in rows:
        out.setdefault(int(bar_of(r.bar)), []).append(r)
    return out


def _pick(row: Any, keys: Sequence[str]) -> tuple[Any, ...]:
    return tuple(row.values.get(k) for k in keys)


def _same_lists(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]], limits: Any) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            if isinstance(u, float) and isinstance(v, float):
                if not _close(u, v, limits):
                    return False
            elif u != v:
                return False
    return True


def _text(values: list[tuple[Any, ...]]) -> str:
    return "; ".join(" ".join(f"{x:.10g}" if isinstance(x, float) else str(x) for x in v) for v in values)


def _equity_at(table: pd.DataFrame, times: Sequence[pd.Timestamp]) -> np.ndarray:
    frame = table.set_index(pd.to_datetime(table["timestamp"], utc=True))
    wanted = pd.DatetimeIndex(times).tz_convert("UTC")
    return frame["equity"].reindex(wanted).to_numpy(np.float64)


def _result(
    journal: _Journal,
    reference: Path,
    limits: dict[str, float],
    differences: list[dict[str, Any]],
    pnl: dict[str, np.ndarray],
    mine: np.ndarray,
    theirs: np.ndarray,
    gap: np.ndarray,
) -> ParityResult:
    live = journal.live
    bars = pd.DataFrame(
        {
            "timestamp": pd.DatetimeIndex([pd.Timestamp(r.timestamp) for r in live]),
            "bar": [r.bar for r in live],
            "run_equity": mine,
            "reference_equity": theirs,
            "gap": gap,
        }
    )
    for cause in CAUSES:
        if cause in pnl:
            bars[cause] = pnl[cause]
    diffs = pd.DataFrame(
        differences,
        columns=["timestamp", "bar", "field", "run", "reference", "cause", "code", "pnl"],
    ).sort_values(["bar", "field"], kind="stable", ignore_index=True)
    found = set(diffs["cause"]) | {c for c, s in pnl.items() if c != "unexplained" and s.any()}
    unexplained_pnl = float(pnl["unexplained"][-1])
    rows = []
    for cause in CAUSES:
        count = int((diffs["cause"] == cause).sum())
        total = float(pnl[cause][-1]) if cause in pnl else 0.0
        if cause not in found and not (cause == "unexplained" and count):
            continue
        limit = limits.get(cause, 0.0 if cause == "unexplained" else math.inf)
        within = abs(total) <= limit and not (cause == "unexplained" and count)
        rows.append({"cause": cause, "count": count, "pnl": total, "limit": limit,
                     "within": within})  # fmt: skip
    causes = pd.DataFrame(rows, columns=["cause", "count", "pnl", "limit", "within"]).set_index(
        "cause"
    )
    first = None
    if len(diffs):
        d = diffs.iloc[0]
        first = {
            "timestamp": pd.Timestamp(d["timestamp"]).isoformat(),
            "bar": int(d["bar"]),
            "field": str(d["field"]),
            "cause": str(d["cause"]),
        }
    passed = bool(causes["within"].all()) if len(causes) else True
    summary = {
        "mode": journal.mode,
        "symbol": live[0].symbol,
        "bars": len(live),
        "first_bar": int(live[0].bar),
        "last_bar": int(live[-1].bar),
        "reference": str(reference),
        "run_equity": float(mine[-1]),
        "reference_equity": float(theirs[-1]),
        "equity_gap": float(gap[-1]),
        "unexplained_pnl": unexplained_pnl,
        "differences": len(diffs),
        "first_divergence": first,
        "causes": {
            c: {"count": int(r["count"]), "pnl": float(r["pnl"]),
                "limit": None if math.isinf(r["limit"]) else float(r["limit"]),
                "within": bool(r["within"])}  # fmt: skip
            for c, r in causes.iterrows()
        },
        "tolerances": {k: (None if math.isinf(v) else v) for k, v in limits.items()},
        "passed": passed,
    }
    return ParityResult(bars, diffs, causes, summary)


def write_parity(result: ParityResult, out: Path) -> Path:
    """Write ``parity.json`` into ``out`` (the summary, each cause's P&L and every
    difference); return its path."""
    from tradeloom.files.writing import OutputFolder

    def value(x: Any) -> Any:
        if isinstance(x, pd.Timestamp):
            return x.isoformat()
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, np.generic):
            return value(x.item())
        return x

    differences = [
        {k: value(v) for k, v in row.items()}
        for row in result.differences.to_dict(orient="records")
    ]
    document = result.summary | {"differences_by_bar": differences}
    folder = OutputFolder(out, option="--out")
    return folder.write_text("parity.json", json.dumps(document, indent=2) + "\n")


def format_parity(result: ParityResult, run_dir: Path) -> str:
    """Return the printed summary: the runs, the first divergence, each cause's count
    and P&L (summing to the equity gap), and the verdict."""
    s = result.summary
    lines = [
        f"parity of {run_dir} ({s['mode']}, {s['symbol']}, {s['bars']} bars "
        f"{s['first_bar']}..{s['last_bar']}) against its replay {s['reference']}",
        f"equity: run {s['run_equity']:,.2f}, replay {s['reference_equity']:,.2f}, "
        f"gap {s['equity_gap']:+,.2f}",
    ]
    first = s["first_divergence"]
    if first is None:
        lines.append("no difference: every bar's probability, signal, order, fill and equity agree")
    else:
        lines.append(
            f"first divergence: bar {first['bar']} ({first['timestamp']}) "
            f"{first['field']}: {first['cause']}"
        )
        lines.append(f"{'cause':<14}{'count':>7}{'P&L':>14}  limit")
        for cause, row in result.causes.iterrows():
            limit = "none" if math.isinf(row["limit"]) else f"{row['limit']:g}"
            mark = "" if row["within"] else "  <- over"
            lines.append(f"{cause:<14}{row['count']:>7}{row['pnl']:>+14,.2f}  {limit}{mark}")
        lines.append(f"{'total':<14}{'':>7}{result.causes['pnl'].sum():>+14,.2f}")
    if result.passed:
        lines.append("parity: every difference explained and within its tolerance")
    else:
        bad = [str(c) for c, r in result.causes.iterrows() if not r["within"]]
        lines.append(f"parity: FAILED ({', '.join(bad)})")
    return "\n".join(lines)
