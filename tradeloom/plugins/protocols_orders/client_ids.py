"""Client order ids: deterministic, and valid at the venue before anything is sent.

A client order id names an intent for good: the same strategy, run and sequence
number give the same id after a restart, so reconciliation can ask the venue
"do you have order X?" and a second send of X is refused by the venue as a
duplicate instead of doubling a position. Binance accepts 1 to 36 characters of
``[a-zA-Z0-9-_]`` (its ``newClientOrderId`` rule); an id outside it would be
refused only when the order is sent, so it is checked here first.
"""

from __future__ import annotations

import re

__all__ = [
    "CLIENT_ID_PATTERN",
    "MAX_CLIENT_ID_LENGTH",
    "check_client_id",
    "client_order_id",
    "derived_client_id",
]

MAX_CLIENT_ID_LENGTH = 36
"""Binance's limit on ``newClientOrderId``."""

CLIENT_ID_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,36}$")
"""What Binance accepts as a client order id."""

_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]+")
_SEQUENCE_DIGITS = 6


def check_client_id(client_id: str) -> str:
    """Return ``client_id`` if the venue will accept it.

    Raises:
        ValueError: It is empty, longer than 36 characters, or has a character
            outside ``[a-zA-Z0-9-_]`` (the message names the first one).
    """
    if CLIENT_ID_PATTERN.match(client_id):
        return client_id
    if not client_id:
        raise ValueError("client order id is empty; it needs 1 to 36 of [a-zA-Z0-9-_]")
    if len(client_id) > MAX_CLIENT_ID_LENGTH:
        raise ValueError(
            f"client order id '{client_id}' has {len(client_id)} characters; "
            f"the venue accepts at most {MAX_CLIENT_ID_LENGTH}"
        )
    bad = _UNSAFE.search(client_id)
    assert bad is not None
    raise ValueError(
        f"client order id '{client_id}' has '{bad.group()[0]}' at {bad.start()}; "
        "the venue accepts only [a-zA-Z0-9-_]"
    )


def client_order_id(strategy: str, run: str, sequence: int) -> str:
    """Return the id of a strategy's ``sequence``-th order in a run, valid at the venue.

    ``{strategy}-{run}-{sequence:06d}`` as the per-bar engine writes it, with the
    characters the venue refuses dropped from the strategy name and the name
    shortened so that the whole fits in 36 characters. The run key and sequence
    are kept whole: they make the id unique.

    Raises:
        ValueError: ``run`` has characters the venue refuses, or leaves no room for
            the strategy name; ``sequence`` is negative.
    """
    if sequence < 0:
        raise ValueError(f"sequence must be >= 0, was {sequence}")
    if _UNSAFE.search(run) or not run:
        raise ValueError(f"run key '{run}' must be 1 or more of [a-zA-Z0-9-_]")
    tail = f"-{run}-{sequence:0{_SEQUENCE_DIGITS}d}"
    room = MAX_CLIENT_ID_LENGTH - len(tail)
    name = _UNSAFE.sub("", strategy)[:room] if room > 0 else ""
    if not name:
        raise ValueError(
            f"client order id for strategy '{strategy}', run '{run}', sequence {sequence} "
            f"leaves no room for the strategy name in {MAX_CLIENT_ID_LENGTH} characters"
        )
    return check_client_id(name + tail)


_SUFFIX = re.compile(r"^[a-zA-Z0-9]{1,8}$")


def derived_client_id(parent: str, suffix: str) -> str:
    """Return the id of an order sent on behalf of ``parent``: a child or a fallback.

    ``{parent}-{suffix}`` (``...-000007-c2``: the second TWAP child; ``...-f``: the
    market order a limit order fell back to). A parent id is up to 36 characters
    already, so when the whole does not fit, characters are dropped from the front:
    the strategy name goes first, the run key and the sequence (what makes the id
    unique) stay. The same parent and suffix give the same id after a restart, so a
    child found at the venue is never sent again.

    Raises:
        ValueError: ``parent`` is not a valid client order id, or ``suffix`` is not 1
            to 8 of ``[a-zA-Z0-9]``.
    """
    check_client_id(parent)
    if not _SUFFIX.match(suffix):
        raise ValueError(f"client id suffix '{suffix}' must be 1 to 8 of [a-zA-Z0-9]")
    whole = f"{parent}-{suffix}"
    if len(whole) > MAX_CLIENT_ID_LENGTH:
        whole = whole[len(whole) - MAX_CLIENT_ID_LENGTH :].lstrip("-_")
    return check_client_id(whole)
