"""Replay a paper or live run's bars as a backtest and explain every difference
(``tradeloom parity RUN_DIR``, `Run.parity`).

1. The run's journal, verified first as ``tradeloom journal verify`` verifies it (a cut,
   broken or another run's journal is refused), gives the bars it saw, as it saw them
   (``live_bar`` rows), and each bar's probability, as the run's models gave it (the
   folds it trained, when it trained them): the replay's model is those probabilities
   (a ``precomputed`` model), so a retrain at another moment is not a false difference.
   The run's files are read by the safe reader (`tradeloom.files.reading`).
2. The replay is a backtest of the strategy document the run started under
   (``run_started``), on the bars it warmed up on (with no probability:
   `tradeloom.diagnostics.parity_history`) and then those bars, read with its data
   section's calendar, validation, series and book, from the run's starting cash,
   written to ``OUT/reference`` (a run folder like any other; an earlier parity's
   replay there is replaced).
3. Bar by bar, the two are compared: probability, signal, order (side, quantity,
   reason), fill (price, quantity, fee), position, cash and equity. Each difference
   gets a cause (`CAUSES`); the equity gap is split into P&L by cause, fill by fill,
   so that the causes sum to the gap, and what they do not explain is ``unexplained``.

One market or a universe: each fill, signal and order is compared in its own symbol,
and each cause's P&L is kept per symbol too (``by_symbol``). A router's fills are
compared venue by venue (the replay models each venue with its fees and its share of the
cash), each cause's P&L kept per venue too (``by_venue``). Sliced orders are compared
child by child (each child an order of its bar). A perpetual's funding: the replay books
the rates the run booked (its ``funding`` rows, as a file series), and each bar's
funding is compared. A run that allocates: the replay takes each rebalance as the run
journaled it (`tradeloom.diagnostics.parity_allocation`). A portfolio file's run: its
backtest over each member's books (`tradeloom.diagnostics.parity_portfolio`), weights
between them that move as the run decided them, each cause's P&L by member too
(``by_strategy``). A challenger's canary: the replay sizes entries at its share from its
start to its end (``canary_*`` rows, `tradeloom.engine.driver.Engine.replay_scales`); the
challengers are no part of the replay (they never trade). With a history fetched later (``--data``),
the bars it revises are a cause of their own (`tradeloom.diagnostics.parity_data`).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradeloom.diagnostics.parity_allocation import allocation_differences
from tradeloom.diagnostics.parity_compare import (
    Comparison,
    as_text,
    by_bar,
    close_enough,
    context,
    journal_rows,
    order_pairs,
    pick,
    same_lists,
)
from tradeloom.diagnostics.parity_data import Revision, book_revision, read_revision
from tradeloom.diagnostics.parity_journal import ParityJournal, read_journal, strategy_file
from tradeloom.diagnostics.parity_portfolio import SEPARATOR, by_strategy
from tradeloom.diagnostics.parity_replay import replay
from tradeloom.diagnostics.parity_result import (
    CAUSES,
    TOLERANCES,
    ParityResult,
    format_parity,
    parse_tolerances,
    write_parity,
)
from tradeloom.diagnostics.parity_text import LLM_CAUSE, llm_answer_changes
from tradeloom.errors import UserError
from tradeloom.files.writing import OutputFolder

__all__ = [
    "CAUSES",
    "TOLERANCES",
    "ParityResult",
    "format_parity",
    "parity",
    "parse_tolerances",
    "write_parity",
]

_DIFFERENCE_COLUMNS = (
    "timestamp", "bar", "symbol", "venue", "field", "run", "reference", "cause", "code", "pnl"
)  # fmt: skip


def parity(
    run_dir: Path,
    *,
    out: Path | None = None,
    tolerances: Mapping[str, float] | None = None,
    until_bar: int | None = None,
    data: Path | None = None,
    option: str = "--out",
) -> ParityResult:
    """Replay the run in ``run_dir`` as a backtest and compare it bar by bar.

    Args:
        run_dir: A paper or live run's folder.
        out: Where the replay's run folder (``reference``) goes (default:
            ``RUN_DIR/parity``); an earlier parity's replay there is replaced.
        tolerances: `TOLERANCES` with changes (`parse_tolerances`).
        until_bar: Compare the bars up to this one only (None: every bar): a run that
            trades on (`tradeloom.diagnostics.live_parity`).
        data: A history of the run's bars fetched later (``--data``): each bar that
            differs from the one the run saw is the cause ``data_revised``, and the
            run is compared with its replay on the history's bars
            (`tradeloom.diagnostics.parity_data`).
        option: How messages name ``out`` (the Python API's argument: ``out``).

    Raises:
        UserError: A folder without a journal, a journal `tradeloom.journal.verify`
            refuses (cut, its chain broken, another run's) or of another mode, a run
            file the safe reader refuses (`tradeloom.files.reading`), a strategy changed
            since the run (the key named), a shape parity does not compare yet, a
            ``data`` file of other symbols or not holding every bar the run saw, an
            ``out`` that cannot be written (`tradeloom.files.writing.OutputFolder`).
    """
    limits = dict(TOLERANCES if tolerances is None else tolerances)
    journal = read_journal(run_dir, until_bar)
    if not os.path.lexists(strategy_file(run_dir)):
        raise UserError(f"{run_dir}: no strategy.yaml; give the folder the run wrote")
    revision = None
    if data is not None:
        markets = {s: s.split(SEPARATOR, 1)[1] if journal.members else s for s in journal.symbols}
        revision = read_revision(data, journal.live, markets, limits)
    # made once the run is known sound: a folder that cannot be, one line
    folder = OutputFolder(run_dir / "parity" if out is None else out, option=option)
    reference = replay(journal, folder)
    if revision is None:
        result = _compare(run_dir, journal, reference, limits)
        return _by_strategy(journal, _with_answers(result, run_dir, limits))
    on_history = reference  # no bar revised: the same replay
    if revision.revised:
        on_history = replay(dataclasses.replace(journal, live=revision.live), folder, "revised")
    result = _compare(run_dir, journal, reference, limits, (revision, on_history))
    result.summary["data"] = {
        "file": str(data),
        "bars_revised": revision.bars,
        "fields_revised": len(revision.revised),
        "replay_on_data": str(on_history),
    }
    return _by_strategy(journal, _with_answers(result, run_dir, limits))


def _with_answers(result: ParityResult, run_dir: Path, limits: Mapping[str, float]) -> ParityResult:
    """Name each LLM answer the run read that a backtest reads otherwise
    (`tradeloom.diagnostics.parity_text`): a cause of its own, counted, with no P&L of
    its own (the replay trades on the run's probabilities, not its features)."""
    changes = llm_answer_changes(run_dir)
    if not changes:
        return result
    limit = limits.get(LLM_CAUSE, math.inf)
    row = pd.DataFrame(
        [{"count": len(changes), "pnl": 0.0, "limit": limit, "within": True}],
        index=pd.Index([LLM_CAUSE], name="cause"),
    )
    causes = pd.concat([result.causes, row]) if len(result.causes) else row
    summary = dict(result.summary)
    summary["causes"] = {
        **summary["causes"],
        LLM_CAUSE: {
            "count": len(changes),
            "pnl": 0.0,
            "limit": None if math.isinf(limit) else limit,
            "within": True,
        },
    }
    summary["llm_answers"] = [
        {"key": c.key, "how": c.how, "run": c.run, "backtest": c.backtest} for c in changes
    ]
    return dataclasses.replace(result, causes=causes, summary=summary)


def _by_strategy(journal: ParityJournal, result: ParityResult) -> ParityResult:
    """A portfolio file's: each cause's P&L by member strategy too (``by_strategy``)."""
    if journal.members:
        names = [str(m["name"]) for m in journal.members]
        result.summary["by_strategy"] = by_strategy(result.summary["by_symbol"], names)
    return result


def _compare(
    run_dir: Path,
    journal: ParityJournal,
    reference: Path,
    limits: dict[str, float],
    revised: tuple[Revision, Path] | None = None,
) -> ParityResult:
    from tradeloom.reporting.run_data import read_table
    from tradeloom.reporting.run_tables import table_file

    ctx = context(journal, limits)
    seen = Comparison(journal, ctx, limits)
    # the replay's bar h + i is the run's i-th live bar (h: the warm-up's bars it played)
    h = journal.history_bars
    to_run = {h + i: bar for i, bar in enumerate(seen.bars)}

    # probabilities: the replay's model reads the run's; a difference is the replay's own
    # (a portfolio's replay writes no features table: its members' models are the same)
    ref_p = [] if journal.members else _probabilities(reference / "features.parquet", journal, h)
    for r, theirs in zip(journal.live if ref_p else [], ref_p, strict=True):
        p = r.values["probability"]
        mine = math.nan if p is None else float(p)
        if not (math.isnan(mine) and math.isnan(theirs)) and not close_enough(mine, theirs, limits):
            seen.note(r.bar, r.symbol, "probability", mine, theirs, "unexplained")

    # fills, order by order, in the order of their first bar
    pairs, only_mine, only_theirs = order_pairs(journal, reference, to_run)
    work: list[tuple[int, int, Any]] = [(min(f.bar for f in a), 0, (a, b)) for a, b in pairs]
    work += [(f.bar, 1, (f, 1.0)) for f in only_mine]
    work += [(f.bar, 1, (f, -1.0)) for f in only_theirs]
    for _, unmatched, item in sorted(work, key=lambda w: (w[0], w[1])):
        if unmatched:
            seen.unmatched(*item)
        else:
            seen.order_fills(*item)

    # a late rebalance: the replay's solve beside the weights the run held
    for bar, mine_w, theirs_w, code in allocation_differences(
        journal.rows["allocation_decided"], reference, to_run
    ):
        seen.note(bar, "", "allocation", mine_w, theirs_w, "late_decision", code)

    # a perpetual's funding, bar by bar: the same rates, on the positions each held
    funded = by_bar(journal_rows(reference, "funding"), lambda b: to_run.get(b, b))
    mine_funded = by_bar(journal.rows["funding"], lambda b: b)
    for bar, symbol in sorted(set(mine_funded) | set(funded)):
        paid = math.fsum(float(r.values["amount"]) for r in mine_funded.get((bar, symbol), []))
        booked = math.fsum(float(r.values["amount"]) for r in funded.get((bar, symbol), []))
        if not close_enough(paid, booked, limits):
            seen.funding(bar, symbol, paid, booked)

    # signals and orders, bar by bar (after the fills: a size follows the fills before it)
    for kind, keys in (("signal", ("direction",)), ("order", ("side", "reason", "quantity"))):
        mine_by = by_bar(journal.rows[kind], lambda b: b)
        theirs_by = by_bar(journal_rows(reference, kind), lambda b: to_run.get(b, b))
        for bar, symbol in sorted(set(mine_by) | set(theirs_by)):
            a = [pick(r, keys) for r in mine_by.get((bar, symbol), [])]
            b = [pick(r, keys) for r in theirs_by.get((bar, symbol), [])]
            if not same_lists(a, b, limits):
                cause = seen.explain(bar, symbol, decided=True)
                seen.note(bar, symbol, kind, as_text(a), as_text(b), *cause)

    # the equity gap against the P&L the causes explain
    run_equity = read_table(run_dir, "equity")
    ref_equity = read_table(reference, "equity")
    if run_equity is None or ref_equity is None:
        raise UserError(f"{run_dir}: no equity table (equity.csv); is the run finished?")
    if "equity" not in run_equity.columns:
        raise UserError(
            f"{run_dir / str(table_file(run_dir, 'equity'))}: no equity column: damaged, or "
            "not a run's equity table"
        )
    n = len(seen.bars)
    mine_e = _equity_at(run_equity, [ctx.times[b] for b in seen.bars])
    theirs_e = ref_equity["equity"].to_numpy(np.float64)[h : h + n]
    gap = mine_e - theirs_e
    explained = np.sum(list(seen.pnl.values()), axis=0) if seen.pnl else np.zeros(n)
    residual = gap - explained
    off = np.abs(residual) > limits["absolute"] + limits["relative"] * np.abs(theirs_e)
    if off.any():
        first = int(np.argmax(off))
        at = seen.bars[first]
        seen.note(at, "", "equity", float(mine_e[first]), float(theirs_e[first]), "unexplained")
    # what is left: the two equity curves' rounding, or what no cause explains
    seen.pnl["unexplained"] = seen.pnl.get("unexplained", np.zeros(n)) + residual
    if revised is not None:  # against the replay on the history given: data_revised
        revision, on_history = revised
        history_e = ref_equity if on_history == reference else read_table(on_history, "equity")
        if history_e is None:
            raise UserError(f"{on_history}: the replay on {revision.file} wrote no equity")
        replayed, theirs_e = theirs_e, history_e["equity"].to_numpy(np.float64)[h : h + n]
        gap = mine_e - theirs_e
        book_revision(seen, revision, replayed, theirs_e)
    return _result(journal, reference, limits, seen, mine_e, theirs_e, gap)


def _probabilities(file: Path, journal: ParityJournal, history_bars: int) -> list[float]:
    """The replay's probability of each live row (a universe's by time and symbol; one
    market's after the ``history_bars`` of its warm-up)."""
    frame = pd.read_parquet(file)
    if "symbol" not in frame.columns:
        return [float(x) for x in frame["probability"].to_numpy(np.float64)[history_bars:]]
    if "timestamp" in frame.columns:
        frame = frame.set_index("timestamp")
    times = pd.DatetimeIndex(frame.index)
    times = times.tz_localize("UTC") if times.tz is None else times.tz_convert("UTC")
    of = dict(zip(zip(times, frame["symbol"], strict=True), frame["probability"], strict=True))
    return [
        float(of.get((pd.Timestamp(r.timestamp).tz_convert("UTC"), r.symbol), math.nan))
        for r in journal.live
    ]


def _equity_at(table: pd.DataFrame, times: Sequence[pd.Timestamp]) -> np.ndarray:
    frame = table.set_index(pd.to_datetime(table["timestamp"], utc=True))
    wanted = pd.DatetimeIndex(times).tz_convert("UTC")
    values: np.ndarray = frame["equity"].reindex(wanted).to_numpy(np.float64)
    return values


def _result(
    journal: ParityJournal,
    reference: Path,
    limits: dict[str, float],
    seen: Comparison,
    mine: np.ndarray,
    theirs: np.ndarray,
    gap: np.ndarray,
) -> ParityResult:
    pnl = seen.pnl
    bars = pd.DataFrame(
        {
            "timestamp": pd.DatetimeIndex([seen.ctx.times[b] for b in seen.bars]),
            "bar": seen.bars,
            "run_equity": mine,
            "reference_equity": theirs,
            "gap": gap,
        }
    )
    for cause in CAUSES:
        if cause in pnl:
            bars[cause] = pnl[cause]
    diffs = pd.DataFrame(seen.differences, columns=list(_DIFFERENCE_COLUMNS)).sort_values(
        ["bar", "symbol", "venue", "field"], kind="stable", ignore_index=True
    )
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
        rows.append(
            {"cause": cause, "count": count, "pnl": total, "limit": limit, "within": within}
        )
    causes = pd.DataFrame(rows, columns=["cause", "count", "pnl", "limit", "within"]).set_index(
        "cause"
    )
    first = None
    if len(diffs):
        d = diffs.iloc[0]
        first = {
            "timestamp": pd.Timestamp(d["timestamp"]).isoformat(),
            "bar": int(d["bar"]),
            "symbol": str(d["symbol"]),
            "field": str(d["field"]),
            "cause": str(d["cause"]),
        }
    passed = bool(causes["within"].all()) if len(causes) else True
    summary = {
        "mode": journal.mode,
        "symbol": ", ".join(journal.symbols),
        "symbols": journal.symbols,
        "bars": len(seen.bars),
        "first_bar": int(seen.bars[0]),
        "last_bar": int(seen.bars[-1]),
        "reference": str(reference),
        "run_equity": float(mine[-1]),
        "reference_equity": float(theirs[-1]),
        "equity_gap": float(gap[-1]),
        "unexplained_pnl": unexplained_pnl,
        "differences": len(diffs),
        "first_divergence": first,
        "causes": {
            c: {
                "count": int(r["count"]),
                "pnl": float(r["pnl"]),
                "limit": None if math.isinf(r["limit"]) else float(r["limit"]),
                "within": bool(r["within"]),
            }
            for c, r in causes.iterrows()
        },
        "by_symbol": {
            symbol: {c: by[c] for c in CAUSES if c in by} for symbol, by in seen.by_symbol.items()
        },
        "by_venue": {
            venue: {c: by[c] for c in CAUSES if c in by} for venue, by in seen.by_venue.items()
        },
        "tolerances": {k: (None if math.isinf(v) else v) for k, v in limits.items()},
        # the bars the run warmed up on, which the replay played first (0 and why: none)
        "warm_up": {"bars": journal.history_bars, "note": journal.history_note},
        "passed": passed,
    }
    return ParityResult(bars, diffs, causes, summary)
