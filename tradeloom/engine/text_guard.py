"""Text features against the data before any bar (sources, the cutoff guard); what a run says.

* Each text source a text feature reads (``of:``) is declared under ``data.auxiliary``
  with ``kind: text`` (`text_problems`).
* The knowledge-cutoff guard (`tradeloom.text.cutoff`): a feature whose scorer learnt
  the world up to a cutoff may not score documents dated before it (plus its margin),
  unless ``leakage: accepted`` (then `text_notes` warns, in validate and when a run
  starts, and a run's ``metrics.json`` names the share of bars affected) or its texts are
  masked (``mask: [entities, dates]``). Only a feature with a cutoff reads its source's
  documents here.
* `text_metrics`: the ``text_features`` block of a run's ``metrics.json`` (which features
  came from text, their scorers and cutoffs) and its ``text_leakage_warning``; nothing
  for a strategy without text features, whose metrics stay as they were.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tradeloom.domain import Universe
from tradeloom.errors import DataError, Problem
from tradeloom.plugins.protocols import JoinsAuxiliary, KnownClock, ReadsText
from tradeloom.schemas.config import ComponentConfig, StrategyConfig
from tradeloom.suggestions import did_you_mean
from tradeloom.text.cutoff import CutoffGuard, bars_affected, leaked
from tradeloom.text.documents import Documents
from tradeloom.time.timeframes import format_timestamp, parse_timeframe

__all__ = ["text_metrics", "text_notes", "text_problems"]

_WARNING = "warning: "


def _text_features(
    features: Sequence[tuple[ComponentConfig, object]],
) -> list[tuple[ComponentConfig, ReadsText]]:
    return [(item, f) for item, f in features if isinstance(f, ReadsText)]


def _key(config: StrategyConfig, item: ComponentConfig, key: str) -> str:
    """The path of the entry's ``key`` when the file writes it, else of the entry's kind."""
    node: Any = config.document
    for part in item.path.split("."):
        node = node[int(part)] if isinstance(node, list) else node.get(part, {})
    return (
        f"{item.path}.{key}" if isinstance(node, Mapping) and key in node else f"{item.path}.kind"
    )


def _symbols(config: StrategyConfig) -> tuple[str, ...] | None:
    params = config.data.params
    symbols = getattr(params, "symbols", None)
    if symbols:
        return tuple(symbols)
    symbol = getattr(params, "symbol", None)
    return (symbol,) if isinstance(symbol, str) else None


def _decision_range(data: object) -> tuple[int | None, int | None]:
    clock = data.declared_clock() if isinstance(data, KnownClock) else None
    if clock is None:
        return None, None
    timeframe, first, bars = clock
    step = parse_timeframe(timeframe) * 1_000_000_000
    return first + step, first + bars * step


def _when(guard: CutoffGuard) -> str:
    assert guard.cutoff is not None
    declared = guard.declared or format_timestamp(guard.cutoff)
    if guard.margin.strip() in ("0s", "0m", "0h", "0d", "0w"):
        return f"the knowledge cutoff {declared} ({format_timestamp(guard.cutoff)})"
    return f"the knowledge cutoff {declared} + {guard.margin} ({format_timestamp(guard.cutoff)})"


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "0.0%"


def text_problems(
    config: StrategyConfig, data: object, features: Sequence[tuple[ComponentConfig, object]]
) -> list[Problem]:
    """Return a problem for a text source not declared, a text source that cannot be
    read, and documents scored before a cutoff that is neither accepted nor mitigated."""
    text = _text_features(features)
    if data is None or not text:
        return []
    declared = data.auxiliary.text_names() if isinstance(data, JoinsAuxiliary) else None
    problems: list[Problem] = []
    guarded = []
    for item, feature in text:
        for source in feature.text_sources():
            if declared is not None and source not in declared:
                path = _key(config, item, "of")
                has = ", ".join(declared) if declared else "none"
                problems.append(
                    Problem(
                        config.locate(path),
                        path,
                        f"no text source '{source}'{did_you_mean(source, list(declared))} "
                        f"(the data's text sources: {has}); declare it under data.auxiliary "
                        "with kind: text",
                    )
                )
                break
        else:
            guard = feature.cutoff_guard()
            if guard.cutoff is not None and guard.leakage != "accepted" and not guard.mitigated:
                guarded.append((item, guard))
    if not guarded:
        return problems
    documents = _documents(config, data, problems)
    for item, guard, before, total in _leaks(config, data, documents, guarded):
        path = _key(config, item, "knowledge_cutoff")
        problems.append(
            Problem(
                config.locate(path),
                path,
                f"{before:,} of the {total:,} documents of text source '{guard.source}' "
                f"it scores ({_share(before, total)}) are dated before {_when(guard)}: its "
                "model may know what followed them; use documents after it, mask them "
                "(mask: [entities, dates]) or accept it (leakage: accepted)",
            )
        )
    return problems


def _leaks(
    config: StrategyConfig,
    data: object,
    documents: Mapping[str, Documents],
    guarded: Sequence[tuple[ComponentConfig, CutoffGuard]],
) -> list[tuple[ComponentConfig, CutoffGuard, int, int]]:
    """Return each guarded feature that scores documents dated before its cutoff, with how
    many of how many it scores (the refusal and the accepted warning count alike)."""
    first, last = _decision_range(data)
    found = []
    for item, guard in guarded:
        docs = documents.get(guard.source)
        if docs is None:
            continue
        before, total = leaked(docs, guard, _symbols(config), first, last)
        if before:
            found.append((item, guard, before, total))
    return found


def _documents(
    config: StrategyConfig, data: object, problems: list[Problem]
) -> dict[str, Documents]:
    if not isinstance(data, JoinsAuxiliary):
        return {}
    try:
        return data.auxiliary.documents()
    except DataError as exc:
        path = f"{config.data.path}.auxiliary"
        problems.extend(Problem(config.locate(path), path, line) for line in exc.lines())
        return {}


def text_notes(
    config: StrategyConfig, data: object, features: Sequence[tuple[ComponentConfig, object]]
) -> list[Problem]:
    """Return a warning for each text feature that accepts documents dated before its
    model's knowledge cutoff and scores some (validate says them, a run when it starts)."""
    accepted = [
        (item, f.cutoff_guard())
        for item, f in _text_features(features)
        if f.cutoff_guard().cutoff is not None and f.cutoff_guard().leakage == "accepted"
    ]
    if data is None or not accepted:
        return []
    try:
        documents = data.auxiliary.documents() if isinstance(data, JoinsAuxiliary) else {}
    except DataError:
        return []  # the run refuses the file with its lines
    notes = []
    for item, guard, before, total in _leaks(config, data, documents, accepted):
        path = _key(config, item, "leakage")
        notes.append(
            Problem(
                config.locate(path),
                path,
                f"{_WARNING}leakage accepted: {before:,} of the {total:,} documents of text "
                f"source '{guard.source}' it scores ({_share(before, total)}) are dated "
                f"before {_when(guard)}; its model may know what followed them",
            )
        )
    return notes


def text_metrics(
    config: StrategyConfig, features: Sequence[object], universe: Universe | None
) -> dict[str, Any]:
    """Return ``metrics.json``'s ``text_features`` (one entry per text feature: its
    columns, source, scorer, cutoff, margin, leakage, masking and the share of bars that
    see a document dated before the cutoff) and ``text_leakage_warning`` (where leakage
    is accepted and bars are affected); nothing without text features. Without a
    ``universe`` (a paper or live run's metrics) the share is None."""
    entries: list[dict[str, Any]] = []
    warnings: list[str] = []
    for item, feature in _text_features(list(zip(config.features, features, strict=True))):
        guard = feature.cutoff_guard()
        affected = 0
        seen = 0
        for bars in universe.bars if universe is not None else ():
            documents = bars.documents.get(guard.source)
            if documents is None:
                continue
            decisions = bars.frame.index.as_unit("ns").asi8 + bars.timeframe_seconds * 1_000_000_000
            affected += bars_affected(documents, guard, bars.symbol, decisions)
            seen += len(decisions)
        share = affected / seen if seen else 0.0
        entries.append(
            {
                "feature": item.path,
                "kind": item.kind,
                "columns": list(feature.columns()) if hasattr(feature, "columns") else [],
                "source": guard.source,
                "scorer": guard.identity,
                "knowledge_cutoff": guard.declared,
                "cutoff_margin": guard.margin if guard.cutoff is not None else None,
                "leakage": guard.leakage if guard.cutoff is not None else None,
                "mask": list(guard.mask),
                "bars_before_cutoff": round(float(share), 6) if universe is not None else None,
            }
        )
        if guard.cutoff is not None and guard.leakage == "accepted" and affected:
            warnings.append(
                f"{item.path}: leakage accepted: {share:.1%} of bars see documents dated "
                f"before {_when(guard)}"
            )
    if not entries:
        return {}
    out: dict[str, Any] = {"text_features": entries}
    if warnings:
        out["text_leakage_warning"] = "; ".join(warnings)
    return out
