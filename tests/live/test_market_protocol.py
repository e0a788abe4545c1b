"""A live run's venues are protocols: nothing in live/ asks a venue's class.

`tradeloom.live.accounts.market.Market` is what an account and a restart ask of a symbol's market,
one exchange (`ExchangeMarket`) or a router (`RouterVenue`) alike; the runner asks the
account (`AccountVenue`) through `ExchangeAccount`, a portfolio its markets' lots through
`MarketLots` (the account's or the journal's replay of it, `ReplayVenue`), and a pipeline
whether it routes through `Pipeline.router` (a `MultiVenue`). A branch on any of those
classes would be a place the protocols do not cover.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import tradeloom.live
from tradeloom.core.costs import VenueCosts
from tradeloom.live.accounts.account_venue import AccountVenue
from tradeloom.live.accounts.market import ExchangeAccount
from tradeloom.live.recovery.replay_venue import ReplayVenue
from tradeloom.live.tick.provides import provides
from tradeloom.plugins.protocols import MarketLots

LIVE = Path(tradeloom.live.__file__).parent
VENUES = "ExchangeVenue|ExchangeMarket|RouterVenue|AccountVenue|ReplayVenue|MultiVenue"
BRANCH = re.compile(rf"isinstance\([^)]*\b({VENUES})\b")


def test_no_module_of_live_branches_on_a_markets_class() -> None:
    found = [
        f"{path.name}:{n}: {line.strip()}"
        for path in sorted(LIVE.rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if BRANCH.search(line)
    ]
    assert found == []


def test_the_check_finds_a_branch() -> None:
    assert BRANCH.search("if isinstance(market, ExchangeVenue):")
    assert BRANCH.search("x = m if isinstance(m, ExchangeVenue | RouterVenue) else None")
    assert BRANCH.search("if isinstance(venue, AccountVenue):")
    assert BRANCH.search("if isinstance(venue, AccountVenue | ReplayVenue) and venue.dusts:")
    assert BRANCH.search("and not isinstance(self.p.venue, MultiVenue)")
    assert not BRANCH.search("if provides(venue, ExchangeAccount):")


def _account(*refused: object) -> AccountVenue:
    market = SimpleNamespace(
        costs=VenueCosts.of(0.001),
        dust=0.0001,
        min_notional=5.0,
        refused=list(refused),
        one_exchange=None,  # a `Market` answers it (the account asks it once, at its start)
    )
    return AccountVenue({"BTC/USDT": market}, initial_cash=1000.0, symbol_of=lambda _: None)


def _replay() -> ReplayVenue:
    state = SimpleNamespace(routes={})
    return ReplayVenue(state, initial_cash=1000.0, costs=VenueCosts.of(0.001), dust=0.0)


def test_the_account_is_the_only_exchange_account_and_both_it_and_its_replay_have_lots() -> None:
    assert provides(_account(), ExchangeAccount)
    assert not provides(_replay(), ExchangeAccount)
    assert provides(_account(), MarketLots) and _account().dusts == (0.0001,)
    assert provides(_replay(), MarketLots) and _replay().dusts == ()
    assert not provides(object(), MarketLots)


def test_the_account_hands_over_the_first_refused_fill_and_forgets_the_rest() -> None:
    first, second = object(), object()
    account = _account(first, second)
    assert account.take_refused() is first
    assert account.take_refused() is None
