"""Each record's emitter (`tradeloom.core.rows`) writes that record's fields, by name.

Every emitter is called with a distinct value for each of its fields (a plain argument,
a field of a named tuple, a value of a tuple of several, a figure of the trade array)
and its row is read back through the record (`tradeloom.core.records.split`): a field
the record and its emitter order or name differently lands in another column, and fails.
"""

from __future__ import annotations

import itertools
import typing
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.core import records, rows
from tradeloom.core.accounting import TRADE_FIELDS
from tradeloom.core.layout import C_COUNT, CUR_SIZE

HEAD = {"ev", "cur", "bar", "symbol"}
BAR, SYMBOL = 7, 3
UNUSED = "unused"
"""A field no emitter takes: its values are 0."""


def _arguments(record: records.Record) -> tuple[dict[str, Any], dict[str, Any], set[str]]:
    """Return the emitter's arguments, the value given for each name, and its plain ones."""
    emit = getattr(rows, f"emit_{record.name}")
    hints = typing.get_type_hints(emit.py_func)
    hints.pop("return")
    numbers = itertools.count(101.0)
    given: dict[str, Any] = {}

    def value(name: str) -> float:
        given[name] = next(numbers)
        return float(given[name])

    arguments: dict[str, Any] = {
        "ev": np.full((2, records.WIDTH), np.nan),
        "cur": np.zeros(CUR_SIZE, np.int64),
        "bar": BAR,
        "symbol": SYMBOL,
    }
    plain = set()
    for name, hint in hints.items():
        if name in HEAD:
            continue
        if hasattr(hint, "_fields"):  # a named tuple of fields
            arguments[name] = hint(*(value(f) for f in hint._fields))
        elif hint is np.ndarray:  # the figures of a round trip, the record's fields in order
            arguments[name] = np.array([value(f.name) for f in record.fields])
        elif hint == tuple[float, ...]:  # a field of several values: all it holds
            width = next(f.width for f in record.fields if f.name == name)
            given[name] = tuple(itertools.islice(numbers, width))
            arguments[name] = given[name]
            plain.add(name)
        else:
            arguments[name] = value(name)
            plain.add(name)
    for name in HEAD - hints.keys():
        arguments.pop(name)
    return arguments, given, plain


@pytest.mark.parametrize("record", records.RECORDS, ids=lambda r: r.name)
def test_each_emitter_writes_its_records_fields_by_name(record: records.Record) -> None:
    arguments, given, plain = _arguments(record)
    names = [f.name for f in record.fields]
    assert plain <= set(names), f"emit_{record.name} takes what its record lacks"
    assert set(names) - {UNUSED} <= given.keys(), f"emit_{record.name} lacks fields"
    ev, cur = arguments["ev"], arguments["cur"]
    getattr(rows, f"emit_{record.name}")(**arguments)
    assert cur[C_COUNT] == 1
    assert np.isfinite(ev[0]).all() and np.isnan(ev[1]).all()  # the whole row, no more
    columns = records.split(ev[:1])[record.name]
    symbol = SYMBOL if "symbol" in arguments else -1  # the account's
    assert (columns.bar[0], columns.symbol[0]) == (BAR, symbol)
    for f in record.fields:
        read = columns[f.name][0]
        if f.name == UNUSED:
            assert (read == 0.0).all()
        elif f.width > 1:
            wanted = given[f.name]
            assert tuple(read[: len(wanted)]) == wanted, f.name
            assert (read[len(wanted) :] == 0.0).all()
        else:
            assert read == given[f.name], f.name


def test_every_record_has_one_emitter_and_every_emitter_a_record() -> None:
    emitters = {name for name in rows.__all__ if name.startswith("emit_")}
    assert emitters == {f"emit_{r.name}" for r in records.RECORDS}


def test_a_trade_row_holds_the_trade_fields_in_order() -> None:
    assert tuple(f.name for f in records.TRADE.fields) == TRADE_FIELDS


def test_a_field_of_several_values_takes_fewer_and_zeroes_the_rest() -> None:
    ev, cur = np.full((1, records.WIDTH), np.nan), np.zeros(CUR_SIZE, np.int64)
    rows.emit_rejection(ev, cur, BAR, SYMBOL, 5, (), 9)
    columns = records.split(ev)["rejection"]
    assert (columns["code"][0], columns["purpose"][0]) == (5, 9)
    assert (columns["values"][0] == 0.0).all()


@settings(max_examples=examples(200), deadline=None)
@given(
    st.lists(st.sampled_from(sorted(r.code for r in records.RECORDS)), min_size=65, max_size=400)
)
def test_split_keeps_each_kinds_rows_in_their_order(kinds: list[int]) -> None:
    """Past the rows grouped by Python's dict, a kind's rows are gathered by one stable
    sort (of bytes, for codes that fit one): each kind's rows are where and as they were."""
    ev = np.zeros((len(kinds), records.WIDTH))
    ev[:, records.KIND] = kinds
    ev[:, records.BAR] = np.arange(len(kinds))  # each row told by its bar
    codes = np.array(kinds)
    parts = records.split(ev)
    names = {r.code: r.name for r in records.RECORDS}
    assert list(parts) == [names[c] for c in sorted(set(kinds))]
    for code in set(kinds):
        expected = np.flatnonzero(codes == code)
        assert (parts[names[code]].positions == expected).all()
        assert (parts[names[code]].bar == expected).all()


def test_split_refuses_a_kind_no_record_declares_past_a_byte() -> None:
    ev = np.zeros((100, records.WIDTH))
    ev[:, records.KIND] = records.SIGNAL.code
    ev[50, records.KIND] = 256 + records.SIGNAL.code  # as a byte: a signal
    with pytest.raises(ValueError, match=r"^unknown event row kind 2\d\d$"):
        records.split(ev)
