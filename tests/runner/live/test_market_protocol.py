"""A live account's markets are one protocol: nothing in live/ asks a market's class.

`tradeloom.live.market.Market` is what an account and a restart ask of a symbol's market,
one exchange (`ExchangeMarket`) or a router (`RouterVenue`) alike; a branch on either
class would be a place the protocol does not cover.
"""

from __future__ import annotations

import re
from pathlib import Path

import tradeloom.live

LIVE = Path(tradeloom.live.__file__).parent
BRANCH = re.compile(r"isinstance\([^)]*\b(ExchangeVenue|ExchangeMarket|RouterVenue)\b")


def test_no_module_of_live_branches_on_a_markets_class() -> None:
    found = [
        f"{path.name}:{n}: {line.strip()}"
        for path in sorted(LIVE.glob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if BRANCH.search(line)
    ]
    assert found == []


def test_the_check_finds_a_branch() -> None:
    assert BRANCH.search("if isinstance(market, ExchangeVenue):")
    assert BRANCH.search("x = m if isinstance(m, ExchangeVenue | RouterVenue) else None")
    assert not BRANCH.search("if isinstance(venue, AccountVenue):")
