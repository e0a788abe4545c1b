"""The keys of ``live.events``: the brokers a paper or live run publishes its journal to.

Each entry names a component of the ``events`` layer by ``kind`` (built-in ``nats`` and
``redis_streams``; a plugin's), with two keys of its own (``name``, ``drain_seconds``)
and the kind's keys beside them, checked against the kind's params model by
`events_problems` when the file is loaded (``tradeloom validate`` says them too).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tradeloom.plugins.registry import Registry
from tradeloom.suggestions import did_you_mean

__all__ = ["OWN_KEYS", "EventsEntry", "events_params", "events_problems"]

OWN_KEYS = frozenset({"kind", "name", "drain_seconds"})
"""An entry's keys that are not its kind's."""


class EventsEntry(BaseModel):
    """One broker of ``live.events``: its kind, name and drain; the kind's own keys beside."""

    model_config = ConfigDict(extra="allow")

    kind: str = Field(
        description="The broker (`tradeloom plugins` lists the events kinds: nats, "
        "redis_streams, a plugin's)."
    )
    name: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="Names the entry's acknowledged position (`events/<name>.position`); "
        "default: its kind.",
    )
    drain_seconds: float = Field(
        default=5.0,
        ge=0,
        le=600,
        description="When the run ends, seconds to go on sending what is left (the rest is "
        "sent at its next start).",
    )

    @property
    def label(self) -> str:
        """The entry's name: ``name``, else its kind."""
        return self.name or self.kind


def events_params(
    entries: Sequence[EventsEntry], registry: Registry
) -> tuple[list[tuple[int, Any, Any]], list[tuple[str, str]]]:
    """Check each entry's kind and keys against the installed ``events`` components.

    Returns:
        ``(index, component, params)`` of each valid entry, and ``(key path, message)``
        of each problem (``live.events.N.KEY``), in the entries' order.
    """
    valid: list[tuple[int, Any, Any]] = []
    problems: list[tuple[str, str]] = []
    names: set[str] = set()
    for index, entry in enumerate(entries):
        base = f"live.events.{index}"
        if entry.label in names:
            problems.append(
                (f"{base}.name", f"another entry is named '{entry.label}': name each apart")
            )
            continue
        names.add(entry.label)
        found = registry.matches("events", entry.kind)
        if len(found) != 1:
            message = (
                registry.ambiguous_kind_message("events", entry.kind)
                if found
                else registry.unknown_kind_message("events", entry.kind)
            )
            problems.append((f"{base}.kind", message))
            continue
        component = found[0].component
        try:
            params = component.params.model_validate(dict(entry.model_extra or {}))
        except ValidationError as exc:
            for error in exc.errors():
                loc = [str(part) for part in error["loc"]]
                if error["type"] == "extra_forbidden":
                    fields = [*component.params.model_fields, *OWN_KEYS]
                    text = f"unknown key{did_you_mean(loc[-1], fields)}"
                else:
                    text = str(error["msg"]).removeprefix("Value error, ")
                problems.append((".".join([base, *loc]), text))
            continue
        valid.append((index, component, params))
    return valid, problems


def events_problems(
    entries: Sequence[EventsEntry], registry: Registry, locate: Callable[[str], str]
) -> list[tuple[str, str, str]]:
    """Return ``(FILE:LINE:COL, key path, message)`` of each problem of ``entries``."""
    return [(locate(path), path, text) for path, text in events_params(entries, registry)[1]]
