"""Orders sent in batches (``execution.orders.batch``): each child journaled as one order.

Through the real order layer, ccxt's ``binance`` and the emulator's
``/fapi/v1/batchOrders``: a batch the venue refuses a child of journals each child's own
end; a market that cannot batch (Binance spot) sends each child by itself with the same
journal rows; cancels of one market go in one request; the answers are matched by client
order id whatever order ccxt lists them in; and a file asking an exchange that cannot
batch is refused in one line. Kills -9 between the children: `test_fault_schedules`.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from tests.live.batch_rig import BATCH_ROUTE, SINGLE_ROUTE, SYMBOLS, BatchKill, batch_rig
from tests.live.test_ccxt_venue import BARS, START, MemoryJournal, order
from tradeloom.journal import read_rows
from tradeloom.live.orders.ccxt_venue import CcxtVenue
from tradeloom.live.orders.order_batch import OrderBatch, batch_size, match_answers
from tradeloom.plugins.component import BuildContext, ParamError
from tradeloom.plugins.execution.ccxt_execution import CcxtExecutionParams, build
from tradeloom.plugins.protocols_orders.order_state import OrderState, Transition
from tradeloom.testing import ExchangeEmulator

BTC, ETH = SYMBOLS


def test_a_child_refused_in_its_place_is_journaled_rejected_and_the_others_stand(
    tmp_path: Path,
) -> None:
    with batch_rig(tmp_path) as rig:
        decided = [
            (BTC, rig.order(BTC, 1, 0.01)),
            (ETH, rig.order(ETH, 1, 0.1)),
            (BTC, rig.order(BTC, -1, 0.005)),
        ]
        assert rig.bar(decided, BatchKill(refuse=(1,)))
        assert len(rig.emulator.requests(BATCH_ROUTE)) == 1
        assert rig.emulator.requests(SINGLE_ROUTE) == []
        rig.emulator.advance()
        rig.settle()
        last = rig.check()
        first, refused, third = (o.id for _, o in decided)
        assert (last[first], last[refused], last[third]) == ("filled", "rejected", "filled")
        (rejected,) = [
            r.values
            for r in read_rows(rig.path, ["order_state"])
            if r.values["state"] == "rejected"
        ]
        assert (rejected["client_id"], rejected["code"]) == (refused, "VENUE_REJECTED")
        assert rejected["message"] == 'binance {"code": -2019, "msg": "Margin is insufficient."}'
        # each child has its own intent, committed before the one request left
        sent = [r.values["id"] for r in read_rows(rig.path, ["order_sent"])]
        assert sent == [first, refused, third]
        assert rig.emulator.exchange.perp_position("BTCUSDT").amount == Decimal("0.005")


def test_a_market_that_cannot_batch_sends_each_child_alone_with_the_same_rows() -> None:
    """Binance spot: ccxt's ``binance`` refuses ``createOrders`` for it
    (`ccxt_capabilities.REFUSED`), so a batch's children go one by one, each journaled
    as an order sent alone is."""
    rows: dict[bool, list[tuple[str, OrderState, OrderState]]] = {}
    posts: dict[bool, int] = {}
    for batching in (False, True):
        with ExchangeEmulator(
            {"BTC/USDT": BARS}, {"USDT": Decimal(100_000), "BTC": Decimal(2)}, start=START
        ) as emulator:
            client = emulator.client(timeout=5000)
            journal = MemoryJournal(emulator)
            batch = OrderBatch(batch_size(client)) if batching else None
            venue = CcxtVenue(
                client,
                "BTC/USDT",
                journal,
                bar_clock=lambda: emulator.exchange.position,
                sleep=lambda _: None,
                batch=batch,
            )
            for n, side in ((1, 1), (2, -1), (3, 1)):
                venue.submit(order(n, side=side, quantity=0.05), batched=True)
            if batch is not None:
                assert batch.queued == 3 and emulator.requests("POST /api/v3/order") == []
            venue.flush_batch()
            assert emulator.requests(BATCH_ROUTE) == []
            posts[batching] = len(emulator.requests("POST /api/v3/order"))
            rows[batching] = sorted(
                (e.client_id, e.previous, e.state)
                for e in journal.events
                if isinstance(e, Transition)
            )
            assert [i.client_id for i in journal.intents] == [order(n).id for n in (1, 2, 3)]
            assert emulator.errors == []
    assert posts == {False: 3, True: 3}
    assert rows[True] == rows[False]
    assert Counter(state for _, _, state in rows[True])[OrderState.FILLED] == 3


def test_cancels_of_one_market_go_in_one_request(tmp_path: Path) -> None:
    with batch_rig(tmp_path) as rig:
        price = float(rig.emulator.exchange.current_price("BTCUSDT")) * 0.8
        resting = [rig.order(BTC, 1, 0.01) for _ in range(3)]
        venue = rig.venues[BTC]
        for o in resting:  # limit orders far below the market: they rest
            venue.submit(o, limit_price=round(price, 1), batched=True)
        venue.flush_batch()
        assert len(rig.emulator.requests(BATCH_ROUTE)) == 1
        report = venue.cancel_many([o.id for o in resting], reason="REPLACED")
        (request,) = rig.emulator.requests("DELETE /fapi/v1/batchOrders")
        assert rig.emulator.requests("DELETE /fapi/v1/order") == []
        assert sorted(c.order_id for c in report.cancellations) == sorted(o.id for o in resting)
        assert {c.reason for c in report.cancellations} == {"REPLACED"}
        assert all(venue.order(o.id).state is OrderState.CANCELLED for o in resting)
        assert rig.emulator.exchange.open_orders() == []
        assert request.params["symbol"] == "BTCUSDT"


def test_answers_are_matched_by_client_id_and_refusals_in_their_order() -> None:
    # ccxt's parse_orders sorts by time: the refusals (no time) first, in their order
    answers = [
        {"id": None, "clientOrderId": None, "info": {"code": -2019, "msg": "one"}},
        {"id": None, "clientOrderId": None, "info": {"code": -1013, "msg": "two"}},
        {"id": "7", "clientOrderId": "c"},
        {"id": "5", "clientOrderId": "a"},
        {"id": "9", "clientOrderId": "someone-else"},  # never assigned to a child
    ]
    matched = match_answers(["a", "b", "c", "d", "e"], answers)
    assert [m and (m.get("id"), (m.get("info") or {}).get("msg")) for m in matched] == [
        ("5", None),
        (None, "one"),
        ("7", None),
        (None, "two"),
        None,  # the list left it out: looked up by its client order id
    ]


def test_a_file_asking_an_exchange_that_cannot_batch_is_refused_in_one_line(
    tmp_path: Path,
) -> None:
    params = CcxtExecutionParams(exchange="alpaca", orders={"batch": True})
    with pytest.raises(ParamError) as caught:
        build(params, BuildContext("s", tmp_path, 1))
    assert caught.value.key == "orders.batch"
    assert caught.value.message == (
        "ccxt's alpaca cannot send orders in batches (it has no createOrders); remove orders.batch"
    )
    build(
        CcxtExecutionParams(exchange="binance", orders={"batch": True}),
        BuildContext("s", tmp_path, 1),
    )
