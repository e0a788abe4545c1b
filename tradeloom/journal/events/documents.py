"""Text: a document a scorer could not turn into numbers; one a feed brought that was refused.

One frozen dataclass per kind (`tradeloom.journal.events`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tradeloom.journal.events.base import Event, kind
from tradeloom.runtime.lazy import pandas as pd

__all__ = ["DocumentRefused", "DocumentUnscored"]


@kind("document_unscored", read_by=("restart", "status_error"))
@dataclass(frozen=True, kw_only=True)
class DocumentUnscored(Event):
    """A document's scores are NaN: the model gave no answer, or one that did not parse.

    Never a silent zero: the feature's values at the bars that see the document leave
    it out, and this row says why.

    Attributes:
        feature: The text feature that asked (its column prefix).
        document_id: The document's id in its source.
        visible: When the document became visible (UTC).
        reason: Why it has no scores, in one line (``timeout after 30 s``,
            ``answer not JSON: 'Sure! ...'``, ``sentiment: 1.5 above max 1``).
        strategy: The portfolio file's strategy whose feature it is ('' for a strategy
            run alone): two strategies may name a feature alike, and score one document
            each their own way.
    """

    feature: str
    document_id: str
    visible: pd.Timestamp
    reason: str
    strategy: str = field(default="", metadata={"added": True})


@kind("document_refused", read_by=("status_error",))
@dataclass(frozen=True, kw_only=True)
class DocumentRefused(Event):
    """A document a text source's feed brought that the run did not keep.

    Never a crash and never a silent drop: the run goes on without it, and this row says
    where it came from and what was wrong (the checks of a file's rows).

    Attributes:
        source: The text source (its ``data.auxiliary`` name).
        where: Where it came from (``nats news.btc (stream NEWS) seq 17``,
            ``GET http://host/news?since=41 item 3``).
        received: When it arrived (UTC).
        reason: What was wrong, in one line.
    """

    source: str
    where: str
    received: pd.Timestamp
    reason: str
