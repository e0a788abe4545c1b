"""The keys every built-in source shares for what it joins to its bars as-of.

``auxiliary`` (series that are not bars) and ``order_book`` (a recorded book) are
declared once here, with their descriptions, and built by one function
(`build_joined`), so that ``synthetic``, ``csv``/``parquet`` and ``ccxt`` read them
alike.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.data.auxiliary import Auxiliary, AuxiliaryParams, build_auxiliary
from tradeloom.plugins.data.order_book import OrderBookParams, build_order_book
from tradeloom.plugins.data.validation import ValidationPolicy

__all__ = ["AuxiliaryKey", "OrderBookKey", "build_joined"]

AuxiliaryKey = Annotated[
    list[AuxiliaryParams],
    Field(
        description="Series that are not bars (files), joined to the bars as-of with their "
        "publication delay; see the data reference."
    ),
]
"""The type of a source's ``auxiliary`` key (its default: ``Field(default_factory=list)``)."""

OrderBookKey = Annotated[
    OrderBookParams | None,
    Field(
        description="A recorded order book (tradeloom data record-book), joined to the bars "
        "as-of like an auxiliary series, for the spread_bps, book_imbalance and book_depth "
        "features; see the order-book guide."
    ),
]
"""The type of a source's ``order_book`` key (default None)."""


def build_joined(
    auxiliary: list[AuxiliaryParams],
    order_book: OrderBookParams | None,
    ctx: BuildContext,
    policy: ValidationPolicy,
    *,
    exchange: bool,
) -> Auxiliary:
    """Return the series a source joins to its bars: ``auxiliary`` and the recorded book.

    Args:
        auxiliary: The source's ``auxiliary`` key.
        order_book: The source's ``order_book`` key.
        ctx: Resolves relative paths.
        policy: The source's ``validation``.
        exchange: Whether the source is an exchange (``funding_rate`` allowed).

    Raises:
        ParamError: A file that does not exist, or ``funding_rate`` on a source that
            is not an exchange.
    """
    book = build_order_book(order_book, ctx)
    return build_auxiliary(auxiliary, ctx, policy, exchange=exchange, book=book)
