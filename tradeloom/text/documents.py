"""A batch of timestamped documents, held column-wise, in the order they become visible."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["DocumentFeed", "Documents"]

_T = TypeVar("_T")


@dataclass(frozen=True, eq=False)
class Documents:
    """Documents column-wise: row ``i`` of every field is one document.

    Rows are sorted by ``visible_ns`` (ties keep their source order). A document is
    visible at a bar whose decision time (the bar's close) is at or after
    ``visible_ns``: its own time plus the source's ``available_after``, or its declared
    publication time. Never earlier: that is the point-in-time rule every text feature
    keeps, in every mode.

    Attributes:
        ids: Each document's id, unique within the source.
        stamped_ns: The document's own time (UTC nanoseconds since the epoch).
        visible_ns: When it becomes visible (UTC nanoseconds), ``>= stamped_ns``.
        texts: The body, normalised (Unicode NFC, whitespace collapsed), never empty.
        titles: The title, ``""`` where the source has none.
        sources: Where it came from (a feed's name), ``""`` where unknown.
        symbols: The symbols it is about; ``()`` for a document about the market as a
            whole (every symbol sees it).
    """

    ids: tuple[str, ...]
    stamped_ns: npt.NDArray[np.int64]
    visible_ns: npt.NDArray[np.int64]
    texts: tuple[str, ...]
    titles: tuple[str, ...]
    sources: tuple[str, ...]
    symbols: tuple[tuple[str, ...], ...]

    def __len__(self) -> int:
        return len(self.ids)

    def __post_init__(self) -> None:
        n = len(self.ids)
        lengths = {
            len(self.stamped_ns),
            len(self.visible_ns),
            len(self.texts),
            len(self.titles),
            len(self.sources),
            len(self.symbols),
        }
        if lengths != {n}:
            raise ValueError(f"Documents: fields of unequal lengths {sorted(lengths)}")

    def take(self, rows: npt.NDArray[np.intp]) -> Documents:
        """Return the documents at ``rows`` (positions, in the order given)."""
        picked = np.asarray(rows, dtype=np.intp).tolist()

        def pick(column: tuple[_T, ...]) -> tuple[_T, ...]:
            return tuple(map(column.__getitem__, picked))

        return Documents(
            ids=pick(self.ids),
            stamped_ns=self.stamped_ns[rows],
            visible_ns=self.visible_ns[rows],
            texts=pick(self.texts),
            titles=pick(self.titles),
            sources=pick(self.sources),
            symbols=pick(self.symbols),
        )

    @classmethod
    def empty(cls) -> Documents:
        """Return no documents."""
        return cls((), np.empty(0, np.int64), np.empty(0, np.int64), (), (), (), ())

    def visible_by(self, time_ns: int) -> Documents:
        """Return the documents visible at or before ``time_ns`` (what was known then)."""
        stop = int(np.searchsorted(self.visible_ns, time_ns, side="right"))
        return self if stop == len(self) else self.take(np.arange(stop))

    def rows_about(self, symbol: str | None) -> npt.NDArray[np.intp]:
        """Return the rows ``symbol`` sees: those about it and those about the whole market
        (``symbols == ()``), in order; ``None``: every row."""
        if symbol is None:
            return np.arange(len(self))
        # a feed names few symbols: each distinct tuple tested once
        sees = {about: not about or symbol in about for about in set(self.symbols)}
        mine = np.fromiter(map(sees.__getitem__, self.symbols), dtype=bool, count=len(self))
        return np.flatnonzero(mine).astype(np.intp, copy=False)


@runtime_checkable
class DocumentFeed(Protocol):
    """A text source's documents as a paper or live run knows them, growing as it runs."""

    def documents(self) -> Documents:
        """Return every document known now (read again if the source has grown), sorted
        by ``visible_ns`` as `Documents` are; a text feature keeps those visible at each
        bar's close."""
        ...
