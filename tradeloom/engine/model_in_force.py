"""The model in force, in words, by a run's journal: what status, the console and a
refusal name.

A paper or live run decides with its strategy's own model until a ``model_swapped`` row
(a swap asked through the mailbox, a hot reload, a gate's or an operator's promotion, a
canary's or a watch's rollback) puts another in force from the next bar. The last such
row of a strategy names the model in force: a promoted challenger by its name, the
champion back from a canary or a watch by the rollback row at its bar, any other by
where it came from; with the row's bar, who asked and the model file's SHA-256, so the
words say where the hash lives (the journal's row, or the strategy file's model
section). A portfolio file's run names each strategy's (its ``strategy_at_start``
rows, ``model_swapped.strategy``).

The rows are plain mappings by column name (a journal frame's records, or the rows the
status reader holds), so every reader calls the one rule.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import PurePath
from typing import Any

__all__ = [
    "PROMOTION_PREFIX",
    "described_section",
    "in_force_words",
    "models_in_force",
    "promoted_name",
]

PROMOTION_PREFIX = "challenger:"
"""How the ``request`` of a ``model_swapped`` row that promoted a challenger starts
(``challenger:NAME``, and ``@FILE`` when a mailbox's request file asked)."""


def promoted_name(request: object) -> str | None:
    """Return the challenger a ``model_swapped`` row's ``request`` promoted (None: none)."""
    text = str(request)
    if not text.startswith(PROMOTION_PREFIX):
        return None
    return text[len(PROMOTION_PREFIX) :].split("@", 1)[0]


def described_section(section: object) -> str:
    """Return a ``model`` section of a strategy document in words: a saved model by where
    it comes from (a run and its fold, a file), one that trains by its kind."""
    if not isinstance(section, Mapping):
        return "the strategy's own model"
    # a folder's or a file's name, not its path: the console shows these words too
    if "from_run" in section:
        fold = section.get("fold")
        which = "latest fold" if fold is None else f"fold {fold}"
        return f"the saved model of run {PurePath(str(section['from_run'])).name} ({which})"
    if "path" in section:
        return f"the saved model {PurePath(str(section['path'])).name}"
    kind = section.get("kind", "?")
    estimator = section.get("estimator")
    of = f" ({estimator})" if isinstance(estimator, str) else ""
    return f"the strategy's own {kind} model{of}, trained in the run"


def in_force_words(
    swapped: Mapping[str, Any] | None,
    own: object,
    canary_back: Iterable[Mapping[str, Any]] = (),
    watch_back: Iterable[Mapping[str, Any]] = (),
) -> str:
    """Return one strategy's model in force in words.

    Args:
        swapped: Its last ``model_swapped`` row (None: never swapped).
        own: Its ``model`` section, as the strategy document in force says it (the words
            when never swapped: `described_section`).
        canary_back: The journal's ``canary_rolled_back`` rows (the one at the swap's bar
            says whose canary it ended).
        watch_back: Its ``promotion_rolled_back`` rows (a watch's rollback).
    """
    if swapped is None:
        return described_section(own)
    bar = int(swapped["bar"])
    name = promoted_name(swapped["request"])
    canary = [str(r["challenger"]) for r in canary_back if int(r["bar"]) == bar]
    watch = [str(r["challenger"]) for r in watch_back if int(r["bar"]) == bar]
    if name is not None:
        what = f"challenger {name}'s model{_own_rule(swapped)}"
    elif canary:
        what = f"the champion's model, back from challenger {canary[-1]}'s canary"
    elif watch:
        what = f"the previous champion's model, back from challenger {watch[-1]}'s watch"
    else:
        what = str(swapped["source"])
    return f"{what}, since bar {bar} (by {swapped['by']}, sha256 {str(swapped['sha256'])[:12]})"


def _own_rule(swapped: Mapping[str, Any]) -> str:
    """Return the words a promotion's row adds for the challenger's own signal rule and
    sizing put in force with its model (``model_swapped.signal`` and ``sizing``, JSON;
    '' where the strategy file's stay, or in an older journal without the columns)."""
    parts = [
        f"its {label} {_section_words(swapped.get(column))}"
        for column, label in (("signal", "signal rule"), ("sizing", "sizing"))
        if swapped.get(column)
    ]
    return f" with {' and '.join(parts)}" if parts else ""


def _section_words(text: object) -> str:
    """Return a journaled section (JSON) as ``kind (key value, ...)``: its scalar
    settings, what an operator reads to tell one rule from another."""
    try:
        section = json.loads(str(text))
    except ValueError:
        return str(text)
    if not isinstance(section, Mapping):
        return str(text)
    kind = section.get("kind", "?")
    settings = [
        f"{key} {value}"
        for key, value in section.items()
        if key != "kind" and isinstance(value, str | int | float | bool)
    ]
    return f"{kind} ({', '.join(settings)})" if settings else str(kind)


def models_in_force(
    swaps: Sequence[Mapping[str, Any]],
    sections: Mapping[str, object],
    canary_back: Sequence[Mapping[str, Any]] = (),
    watch_back: Sequence[Mapping[str, Any]] = (),
) -> dict[str, str]:
    """Return each strategy's model in force in words (`in_force_words`), by strategy
    name ('' for a strategy run alone), in the order of ``sections``.

    Args:
        swaps: The journal's ``model_swapped`` rows, in order.
        sections: Each strategy's ``model`` section in force, by name ('' alone): the
            strategy document's, or a portfolio file's strategies' (``strategy_at_start``).
        canary_back: The journal's ``canary_rolled_back`` rows.
        watch_back: Its ``promotion_rolled_back`` rows.
    """
    last: dict[str, Mapping[str, Any]] = {}
    for row in swaps:
        last[str(row.get("strategy") or "")] = row
    return {
        name: in_force_words(last.get(name), section, canary_back, watch_back)
        for name, section in sections.items()
    }
