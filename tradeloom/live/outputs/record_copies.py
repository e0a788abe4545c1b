"""The records a live run's files read (trades, orders, fills), handed over at the cost
of the new ones.

The engine's and recorder's lists only grow while a run lasts. `RecordCopies` keeps
a list of its own that it extends by the records appended since the last snapshot, and
hands the writer's thread a `Prefix` of it: the records up to then, which never change
afterwards (later ones are appended behind it). A copy, not the engine's own list, so
the writer never reads a list the trading thread is changing in place.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar, overload

__all__ = ["Prefix", "RecordCopies"]

T = TypeVar("T")


class Prefix(Sequence[T]):
    """The first ``length`` items of a list that only grows: a read-only view.

    Args:
        items: The list.
        length: How many of its first items the view holds.
    """

    __slots__ = ("_items", "_length")

    def __init__(self, items: list[T], length: int) -> None:
        self._items = items
        self._length = length

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[T]: ...
    def __getitem__(self, index: int | slice) -> T | Sequence[T]:
        if isinstance(index, slice):  # the slice's items only, not the whole prefix
            return [self._items[i] for i in range(*index.indices(self._length))]
        if not -self._length <= index < self._length:
            raise IndexError("Prefix index out of range")
        return self._items[index % self._length]

    def __iter__(self) -> Iterator[T]:
        items = self._items
        for i in range(self._length):
            yield items[i]

    def __repr__(self) -> str:
        return f"Prefix({list(self)!r})"


class RecordCopies:
    """Copies of append-only lists, extended by their new items at each `view`."""

    def __init__(self) -> None:
        self._copies: dict[str, list[Any]] = {}

    def view(self, name: str, records: Sequence[T]) -> Prefix[T]:
        """Return the records of ``records`` so far, copying only those new since the
        last view of ``name`` (all of them when the list is not the one copied: it is
        shorter, or its last copied record is another object)."""
        copy = self._copies.get(name)
        held = 0 if copy is None else len(copy)
        if copy is None or len(records) < held or (held and records[held - 1] is not copy[-1]):
            copy, held = [], 0  # a new list: views handed over keep the old one
            self._copies[name] = copy
        copy.extend(records[held:])
        return Prefix(copy, len(records))

    def clear(self) -> None:
        """Forget every copy (the next views copy their lists whole)."""
        self._copies.clear()
