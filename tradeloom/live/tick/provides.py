"""``isinstance`` against a runtime-checkable protocol, at the cost of a dict lookup.

A tick asks of its model, venue and feed what they can do (`LiveModel`,
`LiveAnomalyGate`, `LiveTrainer`, `ProtectsPositions`, `LiveFeed`...). ``isinstance``
with a ``typing.Protocol`` walks the protocol's members on every call (about 8 us each
on Python 3.11: several per tick). `provides` gives the same answer from the object's
class, remembered: an object's class decides it unless the object holds one of the
protocol's members as its own attribute, or its class forwards what it lacks to another
object (``__getattr__``: the single-market form's adapters,
`tradeloom.plugins.protocols_symbols`), which are then asked each time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeGuard, TypeVar

__all__ = ["provides"]

T = TypeVar("T")

_answers: dict[tuple[type, type], bool] = {}
_members: dict[type, tuple[str, ...]] = {}


def provides(obj: object, protocol: Callable[..., T]) -> TypeGuard[T]:
    """Return ``isinstance(obj, protocol)``, remembered per class of ``obj``.

    Args:
        obj: What is asked about.
        protocol: A ``@runtime_checkable`` protocol (typed as a callable: mypy takes a
            protocol there, not as a ``type``).
    """
    kind: type = protocol  # type: ignore[assignment]  # (not `cast`: a call per ask)
    own: dict[str, Any] | None = getattr(obj, "__dict__", None)
    if own:
        names = _members.get(kind)
        if names is None:
            names = _members[kind] = _protocol_members(kind)
        if any(name in own for name in names):
            return isinstance(obj, kind)  # its own attribute decides: not remembered
    key = (type(obj), kind)
    answer = _answers.get(key)
    if answer is None:
        answer = isinstance(obj, kind)
        if not hasattr(type(obj), "__getattr__"):  # an adapter's answer is what it wraps'
            _answers[key] = answer
    return answer


def _protocol_members(protocol: type) -> tuple[str, ...]:
    """The names ``isinstance`` checks (typing's own list: 3.12 keeps it on the class)."""
    names = getattr(protocol, "__protocol_attrs__", None)
    if names is None:
        import typing

        names = typing._get_protocol_attrs(protocol)  # type: ignore[attr-defined]
    return tuple(sorted(names))
