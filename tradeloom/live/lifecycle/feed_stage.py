"""What a paper or live run does with its text sources' feeds (``data.auxiliary`` kind
``text`` with ``feed:``): start them, take what they brought at each tick, stop them.

A stage like any (`tradeloom.live.tick.services.Stage`). Built with the run, before its
session: each feed is told the run's ``documents/`` folder and reads back what an
earlier start of the run kept there (a restart replays its bars over the same
documents). Started once the session is built, after the cursor it kept; at the start of
each tick, before any bar, what arrived is checked and kept (visible from its arrival),
and each refused document is a ``document_refused`` row.

A portfolio file's strategies each have theirs, driven alike (their data's feeds, not
only the account's, the first strategy's). A source's name is its file in the run
folder (``documents/<name>.jsonl``): two strategies whose sources of one name have a
feed are one source (validation refuses them otherwise,
`tradeloom.engine.portfolio_checks.feed_problems`), received once: the first one's is
driven, and the others read its documents (`tradeloom.text.feeds.ReceivingFeed.share`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from tradeloom.journal.events.documents import DocumentRefused
from tradeloom.live.tick.services import JournalLink, Markets, RunFiles, Stage
from tradeloom.plugins.protocols import LiveDocuments
from tradeloom.text.documents import DocumentFeed
from tradeloom.text.feeds import FEEDS_DIR, ReceivingFeed

if TYPE_CHECKING:
    from tradeloom.engine.wiring import Pipeline
    from tradeloom.live.recovery.journal_state import JournalState

__all__ = ["TextFeeds"]


class TextFeeds(Stage):
    """Drive the run's document feeds.

    Args:
        files, link, markets: The run's services.
    """

    def __init__(self, files: RunFiles, link: JournalLink, markets: Markets) -> None:
        self.files, self.link = files, link
        self.feeds = _driven(_pipelines(markets))
        for feed in self.feeds:
            feed.attach(files.run_dir / FEEDS_DIR)
        self._started = False

    def restore(self, state: JournalState | None) -> None:
        """Start the feeds (once; a journal's outage rebuilds the session, not them)."""
        if self._started:
            return
        self._started = True
        for feed in self.feeds:
            feed.start(lambda: int(self.files.now().value))

    def before_bars(self) -> None:
        """Keep what arrived; journal what was refused."""
        for feed in self.feeds:
            for refused in feed.take():
                self.link.recorder_or_fail.record(
                    DocumentRefused(
                        source=refused.source,
                        where=refused.where,
                        received=pd.Timestamp(refused.received_ns, tz="UTC"),
                        reason=refused.reason,
                    )
                )

    def close(self) -> None:
        """Stop the feeds."""
        for feed in self.feeds:
            feed.stop()
        self._started = False


def _pipelines(markets: Markets) -> Sequence[Pipeline]:
    """The account's pipeline, and of a portfolio file each strategy's (the first's data
    is the account's)."""
    portfolio = markets.portfolio
    return (markets.p,) if portfolio is None else (markets.p, *portfolio.pipelines)


def _driven(pipelines: Sequence[Pipeline]) -> list[ReceivingFeed]:
    """Return the feeds to drive: each name's first; a later one of that name (another
    strategy's, validated the same source) reads the first's documents."""
    first: dict[str, DocumentFeed] = {}
    driven: list[ReceivingFeed] = []
    for pipeline in pipelines:
        data = pipeline.data
        feeds = data.live_documents() if isinstance(data, LiveDocuments) else {}
        for name, feed in feeds.items():
            if not isinstance(feed, ReceivingFeed):
                continue
            kept = first.setdefault(name, feed)
            if kept is not feed:
                feed.share(kept)
            elif not any(feed is d for d in driven):  # (the account's data is the first's)
                driven.append(feed)
    return driven
