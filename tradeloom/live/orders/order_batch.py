"""Orders of one bar sent together: ccxt's ``createOrders``, each child journaled as one order.

``execution.orders.batch: true`` makes the live account's markets share one `OrderBatch`.
An order the engine decides is checked and journaled at once, as every order is
(`tradeloom.live.orders.ccxt_venue.CcxtVenue.submit`: its ``order_sent`` intent, its
``submitted`` state); it is not sent then but queued here, and the bar's queued orders
leave together when the bar's decisions are done (`flush`: before the account polls,
cancels or rests stops; at the latest after the bar). The intents are committed
(durably) once for the batch, before its first request leaves (`BatchJournal`): a kill
before that commit loses them, and nothing was sent. Each child keeps
its own client order id, so every rule of a single order holds for it:

- sent once: a child is in one request only, and ccxt's retry is off;
- answered in its place: an accepted child is ``ACCEPTED`` with what it filled, a child
  the venue refused in its place is ``REJECTED`` with the venue's code and message (the
  others stand), and one refused as a duplicate is looked up;
- a request whose answer is lost (a timeout, a dropped connection, a venue that acted on
  some children and died) leaves every child ``UNKNOWN``: each is looked up by its
  client order id, found and adopted, or taken as never arrived once the venue's window
  is over (``ORDER_NEVER_ARRIVED``), never sent again; a request the venue refused
  whole (a malformed batch) rejects each child;
- a kill -9 anywhere in between is a restart's business as for any order: an intent
  without an end is looked up by its client order id (`tradeloom.live.recovery`).

The children leave in the order the engine decided them (exits and reductions before
entries), at most `OrderBatch.size` to a request (Binance USD-M: 5). ccxt's answer list
is not in the request's order (its ``parse_orders`` sorts by time, a refusal first): a
child is matched by its client order id, a refusal (which carries none) to the children
left unmatched in their order. Where the market cannot batch (ccxt's ``binance`` refuses
``createOrders`` for spot: `tradeloom.live.orders.ccxt_capabilities.REFUSED`) or a
request would hold one child, each child is sent by itself, with the same journal rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from tradeloom.runtime.lazy import logger

__all__ = ["BATCH_SIZES", "BatchJournal", "BatchVenue", "OrderBatch", "batch_size"]

_log = logger("tradeloom.execution")

BATCH_SIZES: Mapping[str, int] = {"binance": 5}
"""Most orders one ``createOrders`` request takes, by the ccxt class (a subclass inherits
its parent's): Binance's USD-M and COIN-M ``batchOrders`` take 5."""

_DEFAULT_SIZE = 5


@runtime_checkable
class BatchJournal(Protocol):
    """A journal that commits a batch's intents at once (`JournalOrders`): each is
    journaled by ``intend`` and all are committed by ``commit_intents`` before the
    request leaves. A journal without these commits each intent alone
    (``before_send``)."""

    def intend(self, order: Any) -> None:
        """Journal an intent, not committed yet."""
        ...

    def commit_intents(self) -> None:
        """Commit the intents journaled (durably), then advance the sent-id mark."""
        ...


class BatchVenue(Protocol):
    """What a batch asks of the venue of each child (`CcxtVenue`)."""

    @property
    def calls(self) -> Any:
        """The market's ccxt calls (`MarketCalls`)."""
        ...

    def send_now(self, client_id: str) -> None:
        """Send one journaled order by itself; hold what happened."""
        ...

    def commit_intents(self) -> None:
        """Commit the intents of its orders journaled for the batch (before any leaves)."""
        ...

    def batch_child(self, client_id: str) -> dict[str, Any]:
        """Return the order as one child of ccxt's ``createOrders``."""
        ...

    def child_answered(self, client_id: str, answer: Mapping[str, Any]) -> None:
        """Take the venue's answer in the child's place; hold what happened."""
        ...

    def child_failed(self, client_id: str, error: BaseException) -> None:
        """Classify what the batch's send raised for the child; hold what happened."""
        ...


def batch_size(client: Any) -> int:
    """Return the most children one ``createOrders`` request of ``client`` takes."""
    for klass in type(client).__mro__:
        size = BATCH_SIZES.get(klass.__name__)
        if size is not None:
            return size
    return _DEFAULT_SIZE


class OrderBatch:
    """The orders journaled and not yet sent, of every market on one ccxt client.

    Args:
        size: Most children one request takes.

    Attributes:
        requests: How many batch requests were sent (for the benchmark and the logs).
    """

    def __init__(self, size: int = _DEFAULT_SIZE) -> None:
        if size < 1:
            raise ValueError(f"a batch holds at least one order, was {size}")
        self.size = size
        self.requests = 0
        self._queued: list[tuple[BatchVenue, str]] = []

    @property
    def queued(self) -> int:
        """How many orders wait to be sent."""
        return len(self._queued)

    def queue(self, venue: BatchVenue, client_id: str) -> None:
        """Hold an order ``venue`` journaled (its intent committed) until `flush`."""
        self._queued.append((venue, client_id))

    def flush(self) -> None:
        """Send every queued order, in the order queued, ``size`` to a request.

        What the venue answers is held by each child's venue and reported by its next
        call (`CcxtVenue.held`), as a submit's report is delivered at the next bar.
        """
        queued, self._queued = self._queued, []
        committed: set[int] = set()
        for venue, _ in queued:  # every intent durable before the first request leaves
            if id(venue) not in committed:
                committed.add(id(venue))
                venue.commit_intents()
        chunks = [queued[start : start + self.size] for start in range(0, len(queued), self.size)]
        for k, chunk in enumerate(chunks):
            try:
                self._send(chunk)
            except BaseException:
                # the chunks not tried wait for the next flush (their intents committed,
                # none of them sent); the one in flight is its venues' to settle
                self._queued[:0] = [child for later in chunks[k + 1 :] for child in later]
                raise

    def _send(self, chunk: Sequence[tuple[BatchVenue, str]]) -> None:
        lead = chunk[0][0]
        if len(chunk) == 1 or not lead.calls.capabilities.can("createOrders"):
            for venue, client_id in chunk:
                venue.send_now(client_id)
            return
        children = [venue.batch_child(client_id) for venue, client_id in chunk]
        self.requests += 1
        try:
            answers = lead.calls.create_orders(children)
        except Exception as error:  # classified per child, as a single send's
            for venue, client_id in chunk:
                venue.child_failed(client_id, error)
            return
        matched = match_answers([client_id for _, client_id in chunk], answers)
        for (venue, client_id), answer in zip(chunk, matched, strict=True):
            if answer is None:  # the venue's list left it out: look it up
                venue.child_failed(client_id, LookupError("no answer in the batch's list"))
            else:
                venue.child_answered(client_id, answer)
        _log.debug("batch_sent", children=len(chunk))


def match_answers(
    client_ids: Sequence[str], answers: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any] | None]:
    """Return each child's answer in ``answers`` (ccxt's ``createOrders`` list), in order.

    A child is matched by its client order id; the answers that carry neither it nor a
    venue id (refusals in their place) go to the children left, in the request's order
    (Python's sort, which ccxt's ``parse_orders`` uses, keeps their order). A child
    nothing is left for gets None (it is looked up by its client order id).
    """
    by_client: dict[str, Mapping[str, Any]] = {}
    anonymous: list[Mapping[str, Any]] = []
    for answer in answers:
        client_id = answer.get("clientOrderId")
        if client_id is not None and str(client_id) in client_ids:
            by_client[str(client_id)] = answer
        elif answer.get("id") is None:  # a refusal; an order not ours is never assigned
            anonymous.append(answer)
    matched: list[Mapping[str, Any] | None] = []
    for client_id in client_ids:
        found = by_client.get(client_id)
        if found is None and anonymous:
            found = anonymous.pop(0)
        matched.append(found)
    return matched
