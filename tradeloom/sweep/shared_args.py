"""Find the argument objects that several tasks share, to send each once, not per task.

A sweep's variants often take the same object (one array of model predictions, one
frame of bars) and differ in a few numbers. Sent with every task, that object is pickled
once per task; the pool and the cluster send it once per worker instead. Sharing is by
identity (the same object), which is what a caller builds when it passes one array to
many tasks, and costs no hashing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tradeloom.sweep.task import Task

__all__ = ["SharedRef", "shared_arguments"]

_PLAIN = (int, float, complex, str, bytes, bool, type(None))


@dataclass(frozen=True)
class SharedRef:
    """Stands for a shared argument in a task sent to a worker, which swaps it back.

    Attributes:
        ident: The shared object's index in the sweep's shared arguments.
    """

    ident: int


def shared_arguments(tasks: Sequence[Task]) -> dict[int, Any]:
    """Return the argument objects more than one task passes, by ``id``.

    Numbers, strings, bytes and None are never shared: they pickle in a few bytes.
    """
    seen: set[int] = set()
    shared: dict[int, Any] = {}
    for task in tasks:
        for arg in task.args:
            if isinstance(arg, _PLAIN):
                continue
            if id(arg) in seen:
                shared[id(arg)] = arg
            seen.add(id(arg))
    return shared
