"""What a parity finds (`ParityResult`), the causes it names and the tolerances it holds
them to, written as ``parity.json`` and ``parity.html`` and told in lines
(``tradeloom parity``; the comparison itself: `tradeloom.diagnostics.parity`)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradeloom.errors import UserError

__all__ = [
    "CAUSES",
    "TOLERANCES",
    "ParityResult",
    "format_parity",
    "parity_document",
    "parse_tolerances",
    "write_parity",
]


CAUSES: dict[str, str] = {
    "slippage": "a fill's price differs from the simulated venue's (the venue's price)",
    "fee": "a fill's fee differs from the fee model's for its price and quantity",
    "partial_fill": "the venue filled less than the order's quantity",
    "latency": "the venue filled an order sent on time at a later bar's open than the "
    "replay (its latency: `execution.realism`, or a venue slower than the file declares)",
    "rejection": "the venue rejected or cancelled an order the backtest filled (its code)",
    "late_bars": "bars missed or played late (an outage, a restart's catch-up)",
    "late_decision": "a rebalance the run decided late (its solve passed its deadline): "
    "the last weights held where the replay traded its solve",
    "kill": "a kill or flatten the operator asked for",
    "funding": "a perpetual's funding differs (the position it was paid on, or its rate)",
    "hot_reload": "the strategy file was reloaded while the run traded",
    "data_revised": "a bar the run saw differs from the history given later (--data): the "
    "replay on the run's bars against the replay on the history's",
    "knock_on": "a size or decision that follows an equity or position already apart",
    "llm_answer_changed": "an LLM's answer the run read differs from the one a backtest reads "
    "(the shared answers' cache): the same question answered otherwise, or asked live and "
    "never by the backtest",
    "unexplained": "a difference no journaled fact explains",
}
"""Every cause a difference is attributed to, with what it means."""

TOLERANCES: dict[str, float] = {
    "relative": 1e-9,
    "absolute": 1e-6,
    "late": 1.0,
}
"""The defaults of ``--tolerance``: numbers equal within ``relative``; money and the
equity residual within ``absolute``; a bar played ``late`` bars or more after its close
is late (its order went out once the next bar had closed too). A cause's name limits its
|P&L| (default: none, ``unexplained``: 0)."""


@dataclass(frozen=True)
class ParityResult:
    """The comparison of a run with its replay.

    Attributes:
        bars: One row per bar the run saw (a universe: per bar of its clock):
            ``timestamp``, ``bar``, each side's ``equity`` (``run_equity``,
            ``reference_equity``), the ``gap`` and each cause's cumulative P&L (a column
            per cause).
        differences: One row per difference: ``timestamp``, ``bar``, ``symbol`` (''
            for the account's equity), ``venue`` (a router's; ''), ``field``, ``run``,
            ``reference``, ``cause``, ``code``, ``pnl``.
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
            finite number >= 0 (``relative``: below 1): an infinite tolerance (``1e309``
            reads as one) or a relative one of 1 passes any difference.
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
        if not (math.isfinite(value) and value >= 0):
            raise UserError(f"--tolerance {word}: expected a finite number >= 0, was {text!r}")
        if key == "relative" and value >= 1:
            raise UserError(
                f"--tolerance {word}: expected a share below 1 (1 passes any two numbers of "
                f"one sign), was {text!r}"
            )
        tolerances[key] = value
    return tolerances


def write_parity(
    result: ParityResult, out: Path, run_dir: Path, *, single_file: bool = False
) -> tuple[Path, Path]:
    """Write ``parity.json`` (the summary, each cause's P&L and every difference) and
    ``parity.html`` (both equity curves, the gap by cause, the divergent bars) into
    ``out``; return their paths.

    Args:
        single_file: Embed plotly.js in the page; by default it loads the copy the
            runs' reports share (beside ``run_dir``), or one written into ``out``.
    """
    from tradeloom.files.writing import OutputFolder
    from tradeloom.reporting.parity_page import parity_page
    from tradeloom.reporting.shared_plotly import shared_plotly

    document = parity_document(result)
    folder = OutputFolder(out, option="--out")
    json_path = folder.write_text("parity.json", json.dumps(document, indent=2) + "\n")
    src = None
    if not single_file:
        src = shared_plotly(out, out, option="--out", reuse=[run_dir.absolute().parent])
    text = parity_page(
        result.bars, result.differences, result.causes, result.summary, CAUSES, plotly_src=src
    )
    return json_path, folder.write_text("parity.html", text)


def parity_document(result: ParityResult) -> dict[str, Any]:
    """Return what ``parity.json`` holds: the summary, each cause's P&L and every
    difference (``differences_by_bar``), as JSON values."""

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
    document: dict[str, Any] = result.summary | {"differences_by_bar": differences}
    return document


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
    note = (s.get("warm_up") or {}).get("note")
    if note:
        lines.append(
            f"warm-up: not replayed ({note}); the replay starts at the first live bar, and "
            "what needs earlier bars (a regime, an ATR, a volatility) starts empty there"
        )
    data = s.get("data")
    if data is not None:
        lines.append(
            f"data: {data['bars_revised']} of the run's bars differ from {data['file']} "
            f"({data['fields_revised']} fields); the gap is against the replay on its bars"
        )
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
        shares = s["by_symbol"] if len(s["symbols"]) > 1 else {}
        for name, by in [*shares.items(), *s["by_venue"].items()]:  # a universe's, a router's
            shown = ", ".join(f"{c} {v:+,.2f}" for c, v in by.items()) or "no difference"
            lines.append(f"  {name}: {shown}")
    answers = s.get("llm_answers")
    if answers:  # `tradeloom.diagnostics.parity_text`
        changed = sum(a["how"] == "changed" for a in answers)
        lines.append(
            f"llm_answer_changed: {len(answers)} LLM answers the run read are not a backtest's "
            f"({changed} answered otherwise, {len(answers) - changed} absent from the shared "
            "cache); parity.json lists them"
        )
    if result.passed:
        lines.append("parity: every difference explained and within its tolerance")
    else:
        bad = [str(c) for c, r in result.causes.iterrows() if not r["within"]]
        lines.append(f"parity: FAILED ({', '.join(bad)})")
    return "\n".join(lines)
