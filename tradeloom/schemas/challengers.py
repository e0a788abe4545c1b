"""What ``challengers:`` must share with the strategy it shadows.

A challenger is a candidate for the champion's place: it reads the strategy's features
and is scored on the strategy's label, so its numbers and the champion's answer the same
question; its fills are simulated by the strategy's own ``execution: {kind: simulated}``
(the run's paper fill model), so a run whose execution is not that one cannot shadow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from tradeloom.errors import Problem
from tradeloom.schemas.config import ComponentConfig

__all__ = ["challenger_problems", "label_problem"]


def challenger_problems(
    data: Mapping[Any, Any],
    components: Mapping[str, ComponentConfig],
    locate: Callable[[str], str],
) -> Iterator[Problem]:
    """Yield a located problem for each challenger whose model's label differs from the
    strategy's, one for each with a promotion gate whose model is not a saved file, one
    for each canary the strategy cannot roll back (`_canary_problems`), and one when the
    strategy's execution cannot simulate their fills."""
    entries = data.get("challengers")
    if not isinstance(entries, list) or not entries:
        return
    execution = components.get("execution")
    if execution is not None and execution.kind != "simulated":
        where = "challengers"
        yield Problem(
            locate(where),
            where,
            "challengers simulate their fills with the strategy's execution: {kind: "
            f"simulated}}, the run's paper fill model; execution.kind is {execution.kind}",
        )
    for index, entry in enumerate(entries):
        model = components.get(f"challengers.{index}.model")
        gated = isinstance(entry, Mapping) and entry.get("promote_when") is not None
        if gated and model is not None and model.kind != "saved":
            where = f"challengers.{index}.promote_when"
            yield Problem(
                locate(where),
                where,
                "a challenger is promoted by swapping its model file in; give it a saved "
                f"model (from_run: RUN or path: with sha256), not one of kind {model.kind} "
                "that trains in the run",
            )
    champion = components.get("model")
    yield from _canary_problems(entries, champion, components, locate)
    if champion is None or champion.kind == "saved":
        return  # a saved model's label is in its file: compared once it is loaded
    label = _label(champion)
    for index in range(len(entries)):
        model = components.get(f"challengers.{index}.model")
        own = None if model is None else _label(model)
        if model is None or own == label or model.kind == "saved":
            continue  # a saved model's label is in its file: compared once it is loaded
        where = f"challengers.{index}.model.label"
        yield Problem(locate(where), where, label_problem(label, own))


def label_problem(label: Mapping[str, Any] | None, own: Mapping[str, Any] | None) -> str:
    """Return why a challenger whose model's label is ``own`` cannot shadow a strategy
    whose model's is ``label`` (each as its saved folds record it; None: it has none):
    the one wording of the file's check and of the run's, once a saved model's label is
    read from its file (`tradeloom.engine.wiring.candidate_components`)."""
    differ = sorted(set(label or {}) | set(own or {}))
    said = "; ".join(
        f"{key} must be {(label or {}).get(key)}, was {(own or {}).get(key)}"
        for key in differ
        if (label or {}).get(key) != (own or {}).get(key)
    )
    return f"a challenger is scored on the strategy's label: {said or 'the strategy has none'}"


def _canary_problems(
    entries: list[Any],
    champion: ComponentConfig | None,
    components: Mapping[str, ComponentConfig],
    locate: Callable[[str], str],
) -> Iterator[Problem]:
    """A canary's or a watch's rollback swaps the champion's model file back in, so the
    strategy's model must be a saved one; and a canary scales the sizing's size, which a
    strategy with ``allocation:`` (target weights) does not use."""
    for index, entry in enumerate(entries):
        gate = entry.get("promote_when") if isinstance(entry, Mapping) else None
        if not isinstance(gate, Mapping):
            continue
        for stage, what in (("canary", "a canary's"), ("watch", "a watch's")):
            where = f"challengers.{index}.promote_when.{stage}"
            if gate.get(stage) is not None and champion is not None and champion.kind != "saved":
                yield Problem(
                    locate(where),
                    where,
                    f"{what} rollback swaps the champion's model file back in; the strategy's "
                    f"model must be a saved model (from_run: RUN or path: with sha256), not "
                    f"one of kind {champion.kind} that trains in the run",
                )
        where = f"challengers.{index}.promote_when.canary"
        if gate.get("canary") is not None and components.get("allocation") is not None:
            yield Problem(
                locate(where),
                where,
                "a canary trades a fraction of the sizing's size; a strategy with "
                "allocation: trades target weights: drop canary or allocation",
            )


def _label(model: ComponentConfig) -> dict[str, Any] | None:
    label = getattr(model.params, "label", None)
    return None if label is None else dict(label.model_dump(mode="json"))
