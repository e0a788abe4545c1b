"""A kind's compiled row functions (`Schema.to_sql`, `Schema.words`) are the column codecs
applied one by one, and the chain's word order (`tradeloom.journal.chain`)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.journal.journal_values import events
from tradeloom.journal import KINDS, LiveBar
from tradeloom.journal.chain import pack_text
from tradeloom.journal.schema import _NULL_WORD, JournalValueError, schema_of

_INT64_MIN = -(2**63)


def by_column(event: Any) -> list[Any]:
    """The stored values as each column's encoder makes them, one call each."""
    schema = schema_of(event.KIND)
    values = attrgetter(*schema.names)(event)
    return [encode(v) for encode, v in zip(schema._encoders, values, strict=True)]


def words_by_rule(kind: str, seq: int, row: list[Any]) -> bytes:
    """The hash words as the chain's module docstring orders them."""
    schema = schema_of(kind)
    fixed = [seq]
    for i, column in zip(schema.fixed_index, schema.fixed_columns, strict=True):
        fixed.append(_NULL_WORD.get(column.codec, _INT64_MIN) if row[i] is None else row[i])
    parts = [schema.fixed_format.pack(*fixed), pack_text(kind)]
    for i in schema.text_index:
        if schema.columns[i].added and not row[i]:
            continue
        parts.append(pack_text(row[i]))
    return b"".join(parts)


def same(a: list[Any], b: list[Any]) -> bool:
    return len(a) == len(b) and all(
        (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
        or (x == y and type(x) is type(y) and str(x) == str(y))
        for x, y in zip(a, b, strict=True)
    )


@settings(max_examples=25, deadline=None)
@given(data=st.data(), seq=st.integers(1, 2**62))
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kinds_compiled_row_is_its_columns_encoders(
    kind: str, data: st.DataObject, seq: int
) -> None:
    event = data.draw(events(kind))
    row = schema_of(kind).to_sql(event)
    assert same(row, by_column(event))  # -0.0 stored as 0.0: str() tells them apart
    assert schema_of(kind).words(seq, row) == words_by_rule(kind, seq, row)
    stored, words = schema_of(kind).stored(event, seq)  # the row a store appends
    assert same(stored, [seq, *by_column(event), None])
    assert words == words_by_rule(kind, seq, row)


def _bar(**changes: Any) -> LiveBar:
    values: dict[str, Any] = dict(
        bar=7, timestamp=pd.Timestamp("2024-01-01", tz="UTC"), open=1.0, high=1.0, low=1.0,
        close=1.0, volume=1.0, probability=0.5, anomalous=False, anomaly_score=0.0,
        wall_time=pd.Timestamp("2024-01-01", tz="UTC"),
    )  # fmt: skip
    return LiveBar(**(values | changes))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("bar", 2**63, r"^live_bar\.bar: 9223372036854775808 does not fit a 64-bit integer$"),
        ("correlation_id", -(2**63) - 1, r"^live_bar\.correlation_id: -9223372036854775809 "),
    ],
)
def test_a_value_its_column_cannot_hold_names_the_field(
    field: str, value: int, message: str
) -> None:
    with pytest.raises(JournalValueError, match=message):
        schema_of("live_bar").to_sql(_bar(**{field: value}))


def test_a_time_given_as_another_type_is_stored_as_its_codec_stores_it() -> None:
    """Not a `pandas.Timestamp` (a datetime, nanoseconds, a text, None): the codec's way."""
    for when in (datetime(2024, 1, 1, 5, tzinfo=UTC), 1_704_085_200_000_000_000, None):
        event = _bar(wall_time=when)
        assert same(schema_of("live_bar").to_sql(event), by_column(event))
