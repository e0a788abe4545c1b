"""The core's parameters, state slots and codes are declared once (issue 45, item 3).

numba freezes module-level ints into the kernels, so the slots and codes stay plain
constants: the slots numbered by `tradeloom.core.layout.Slots` as they are declared,
the codes bound from each family's sequence of names (`tradeloom.core.codes.Family`).
These tests hold the constants to the declarations.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tradeloom.core import codes
from tradeloom.core import layout as L

_ALIASES = {(codes.REJECTION_NAMES, "NO_EQUITY"): "NO_EQUITY_REJECT"}
"""A family's name whose constant is named otherwise (the halt has the name too)."""

_FAMILIES = (
    codes.ORDER_REASON_NAMES,
    codes.OUTCOME_NAMES,
    codes.REJECTION_NAMES,
    codes.HALT_NAMES,
    codes.STATE_CHANGE_NAMES,
    codes.CANCEL_NAMES,
)


@pytest.mark.parametrize("family", _FAMILIES)
def test_each_code_constant_is_its_names_number(family: codes.Family) -> None:
    for name, number in family.names.items():
        constant = _ALIASES.get((family, name), name.upper())
        assert getattr(codes, constant) == number, constant


def test_every_code_constant_is_in_a_family() -> None:
    declared = {
        _ALIASES.get((family, name), name.upper()) for family in _FAMILIES for name in family.names
    }
    constants = {
        name
        for name, value in vars(codes).items()
        if re.fullmatch(r"[A-Z][A-Z_]+", name) and type(value) is int
    }
    assert constants - declared == {"DYNAMIC_BASE", "ACTIVE", "REDUCING", "HALTED_STATE"}


def test_built_in_numbers_name_one_code() -> None:
    # BELOW_MINIMUM is both a rejection and a cancel reason; outcomes are numbered apart
    seen: dict[int, str] = {}
    for family in _FAMILIES:
        if family is codes.OUTCOME_NAMES:
            continue
        for name, number in family.names.items():
            assert seen.setdefault(number, name) == name, (number, name, seen[number])
    assert max(seen) < codes.DYNAMIC_BASE


def test_code_tables_come_from_the_families() -> None:
    assert [c.name for c in codes.ORDER_REASONS] == list(codes.ORDER_REASON_NAMES.names)
    assert [c.number for c in codes.REJECTIONS] == list(codes.REJECTION_NAMES.numbers)
    assert codes.CodeTable().name(codes.EXIT_STOP_LOSS) == "EXIT_STOP_LOSS"
    assert codes.CodeTable().intern("NO_EQUITY") == codes.NO_EQUITY_REJECT
    assert codes.STATE_NAMES[codes.HALTED_STATE] == "HALTED"


_SLOTS = (
    ("A_", L.ACCT_SIZE),
    ("S_", L.SYM_SIZE),
    ("P_", L.PRM_SIZE),
    ("C_", L.CUR_SIZE),
    ("IO_", L.IO_SIZE),
    ("STAGE_", L.STAGE_END + 1),
    ("NEED_", len(L.NEED_NAMES)),
)
_WIDE = {"S_ATR": 4, "S_VOL": 4, "P_TP_GAIN": L.MAX_TP_LEVELS, "P_TP_CLOSE": L.MAX_TP_LEVELS}


@pytest.mark.parametrize(("prefix", "size"), _SLOTS)
def test_slots_are_numbered_in_order_without_gaps_or_sharing(prefix: str, size: int) -> None:
    names = [
        n
        for n, value in vars(L).items()
        if n.startswith(prefix) and type(value) is int and n not in L._ENDS
    ]
    assert len(set(getattr(L, n) for n in names)) == len(names), "two names share a slot"
    at = 0
    for name in names:  # declaration order
        assert getattr(L, name) == at, name
        at += _WIDE.get(name, 1)
    assert at == size
    assert list(L.slot_names(prefix).values()) == names


def test_no_slot_is_numbered_by_hand() -> None:
    source = Path(L.__file__).read_text(encoding="utf-8")
    by_hand = re.findall(r"^(?:A|S|P|C|IO|STAGE|NEED)_\w+ = \d", source, flags=re.M)
    assert by_hand == []
    assert L.S_ATR_END == L.S_ATR + 4 and L.S_VOL_END == L.S_VOL + 4 == L.SYM_SIZE
