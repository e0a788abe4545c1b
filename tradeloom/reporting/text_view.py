"""The report's table of the features that came from text: sources, scorers and cutoffs."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

__all__ = ["text_features_table"]


def text_features_table(m: Mapping[str, Any]) -> str:
    """Return the section naming each text feature (``metrics.json``'s ``text_features``):
    its columns, text source, scorer, knowledge cutoff and margin, leakage and masking, and
    the share of bars that saw a document dated before the cutoff ('' without any)."""
    entries = m.get("text_features") or []
    if not entries:
        return ""
    rows = "".join(
        "<tr>"
        f"<td>{escape(str(e.get('feature', '')))} ({escape(str(e.get('kind', '')))})</td>"
        f"<td>{escape(', '.join(e.get('columns') or []))}</td>"
        f"<td>{escape(str(e.get('source', '')))}</td>"
        f"<td>{escape(str(e.get('scorer', '')))}</td>"
        f"<td>{escape(_cutoff(e))}</td>"
        f"<td>{escape(', '.join(e.get('mask') or []) or '-')}</td>"
        f"<td>{_share(e)}</td>"
        "</tr>"
        for e in entries
    )
    warning = m.get("text_leakage_warning")
    note = (
        f"<p class='note text-leakage' id='text-leakage'>Warning: {escape(str(warning))}.</p>"
        if warning
        else ""
    )
    return (
        "<section id='text-features'><h2>Text features</h2><p class='note'>Features "
        "computed from documents: each bar sees those visible at its close. A model's "
        "knowledge cutoff: documents dated before it (plus the margin) may be known to the "
        f"model with what followed them.</p>{note}<div class='scroll'>"
        "<table class='text-features'><tr><th>feature</th><th>columns</th><th>source</th>"
        "<th>scorer</th><th>knowledge cutoff</th><th>masked</th>"
        f"<th>bars before the cutoff</th></tr>{rows}</table></div></section>"
    )


def _cutoff(e: Mapping[str, Any]) -> str:
    cutoff = e.get("knowledge_cutoff")
    if not cutoff:
        return "none (no model)"
    margin = e.get("cutoff_margin") or "0d"
    leakage = e.get("leakage") or "refused"
    return f"{cutoff} + {margin} (leakage {leakage})"


def _share(e: Mapping[str, Any]) -> str:
    if not e.get("knowledge_cutoff"):
        return "-"
    return f"{float(e.get('bars_before_cutoff') or 0.0):.1%}"
