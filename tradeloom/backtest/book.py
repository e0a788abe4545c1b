"""The book backtest's venue from a strategy's declarations: a realism profile and a feed.

`book_state` makes the state of `tradeloom.core.kernels.book` from L2 events
(`tradeloom.plugins.data.book_events`) and the ``execution.realism`` profile the bars
use: the same latency legs and seed (so an order draws the same milliseconds on bars
and on books), the profile's fee tier (else the strategy's ``fee_bps`` and
``maker_fee_bps``) and its queue model (else risk-averse). It lives with the venue that
fills a strategy file's orders on a book (`tradeloom.plugins.execution.book_venue`,
``execution.fill: book``) and is re-exported here for the benchmark and the tests.
"""

from __future__ import annotations

from tradeloom.plugins.execution.book_venue import book_state

__all__ = ["book_state"]
