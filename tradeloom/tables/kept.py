"""A run's events of one kind, kept for its outputs: as objects, or as columns.

A paper or live run keeps each order, fill or signal as it comes, an object at a
time. A backtest's come at once, read back from the core's rows as columns
(`tradeloom.core.columns`): `Kept` holds them as those columns and builds the objects
only if someone reads them as objects. The outputs read columns (`Kept.column`,
`column`), which the objects give as well, so one function serves both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, overload

import pandas as pd

from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["Kept", "column", "times"]

T = TypeVar("T")


@dataclass(frozen=True)
class _Chunk:
    """Objects not built yet: their columns, and how to build them."""

    count: int
    columns: Mapping[str, Any]
    build: Callable[[], list[Any]]


class Kept(Sequence[T]):
    """A sequence of objects whose later part may be columns not built into objects yet.

    `append` adds an object, `add` a block of columns and the function that builds its
    objects. Its length and its columns cost no object; indexing or iterating builds
    every block not built yet, once.
    """

    def __init__(self, items: Sequence[T] = ()) -> None:
        self._items: list[T] = list(items)
        self._pending: list[_Chunk] = []

    def append(self, item: T) -> None:
        """Add ``item`` after everything kept."""
        self._settle()
        self._items.append(item)

    def add(self, count: int, columns: Mapping[str, Any], build: Callable[[], list[T]]) -> None:
        """Add ``count`` objects as ``columns`` (by attribute name: arrays, lists, or a
        DatetimeIndex), which ``build`` turns into the objects when they are read."""
        if count:
            self._pending.append(_Chunk(count, columns, build))

    def __len__(self) -> int:
        return len(self._items) + sum(chunk.count for chunk in self._pending)

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: int | slice) -> T | list[T]:
        self._settle()
        return self._items[index]

    def __iter__(self) -> Iterator[T]:
        self._settle()
        return iter(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Kept):
            other = list(other)
        return isinstance(other, list) and list(self) == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Kept({len(self)} items, {sum(c.count for c in self._pending)} as columns)"

    def column(self, name: str) -> npt.NDArray[Any]:
        """Return attribute ``name`` of every object, as an array (no object is built)."""
        parts = [_values([getattr(item, name) for item in self._items])] if self._items else []
        parts += [np.asarray(chunk.columns[name]) for chunk in self._pending]
        if not parts:
            return np.empty(0, dtype=object)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def times(self, name: str) -> pd.DatetimeIndex:
        """Return attribute ``name`` (a time) of every object, as a DatetimeIndex."""
        if not self._items and len(self._pending) == 1:
            value = self._pending[0].columns[name]
            if isinstance(value, pd.DatetimeIndex):
                return value
        stamps = [getattr(item, name) for item in self._items]
        for chunk in self._pending:
            stamps += list(chunk.columns[name])
        return pd.DatetimeIndex(stamps)

    def _settle(self) -> None:
        for chunk in self._pending:
            self._items += chunk.build()
        self._pending = []


def _values(values: list[Any]) -> npt.NDArray[Any]:
    if all(isinstance(v, str) for v in values):
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out
    return np.asarray(values)


def column(items: Sequence[Any], name: str) -> npt.NDArray[Any]:
    """Return attribute ``name`` of each of ``items`` (a `Kept`: from its columns)."""
    if isinstance(items, Kept):
        return items.column(name)
    return _values([getattr(item, name) for item in items]) if len(items) else np.empty(0)


def times(items: Sequence[Any], name: str) -> pd.DatetimeIndex:
    """Return attribute ``name`` (a time) of each of ``items`` as a DatetimeIndex."""
    if isinstance(items, Kept):
        return items.times(name)
    return pd.DatetimeIndex([getattr(item, name) for item in items])
