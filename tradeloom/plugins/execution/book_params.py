"""Keys of ``execution.book``: the recorded order book ``execution.fill: book`` fills against.

The book itself is read and replayed by `tradeloom.plugins.execution.book_venue`; this
module holds only the keys, so that validating a file imports nothing more.
"""

from __future__ import annotations

from pydantic import Field

from tradeloom.plugins.component import Params

__all__ = ["BookParams"]


class BookParams(Params):
    """Keys of ``execution.book``: the recorded book ``fill: book`` fills against."""

    source: str = Field(
        min_length=1,
        description="The recorded book, relative to the strategy file: the snapshots "
        "`tradeloom data record-book` writes (.parquet or .csv) or hftbacktest's L2 event "
        "array (.npz with a 'data' array, or .npy).",
    )
    tick_size: float = Field(gt=0, description="The market's price step.")
    lot_size: float = Field(
        gt=0, description="The market's quantity step (orders are sent in whole lots)."
    )
    symbol: str | None = Field(
        default=None,
        min_length=1,
        description="The market the book records, checked against data.symbol (and the "
        "file's symbol column); None: the file's, if it names one.",
    )
