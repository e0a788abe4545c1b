"""Hypothesis strategies for every kind's fields, and what each value reads back as."""

from __future__ import annotations

import json
import math
import typing
from dataclasses import fields
from typing import Any

import pandas as pd
from hypothesis import strategies as st

from tradeloom.journal import Event
from tradeloom.journal.schema import Codec, Schema, jsonable, schema_of
from tradeloom.runtime.redaction import redact_text

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
TIMES = st.one_of(
    st.just(pd.NaT),
    st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1).map(
        lambda ns: pd.Timestamp(ns, tz="UTC")
    ),
)
FLOATS = st.floats(allow_nan=True, allow_infinity=True)
# texts: any Unicode but surrogates; none the secret redaction rewrites (its wire words,
# or a secret another test registered: Hypothesis draws texts from the code's constants,
# the emulator's API key among them)
TEXTS = st.text().filter(lambda t: redact_text(t) == t)
JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), TEXTS
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXTS, inner, max_size=4)),
    max_leaves=12,
)


def _json_for(annotation: Any) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if type(None) in args:
        inner = next(a for a in args if a is not type(None))
        return st.one_of(st.none(), _json_for(inner))
    if origin is list:
        return st.lists(_json_for(args[0]) if args else JSON, max_size=4)
    if origin is dict:
        return st.dictionaries(TEXTS, JSON, max_size=4)
    if annotation is str:
        return TEXTS
    return JSON


def value_strategy(schema: Schema, name: str) -> st.SearchStrategy[Any]:
    """Return values of the column ``name`` of ``schema``, edge cases included."""
    codec = next(c.codec for c in schema.columns if c.name == name)
    if codec is Codec.ID:
        return st.integers(min_value=-1, max_value=2**63 - 1)
    if codec is Codec.INT:
        return INT64
    if codec is Codec.BOOL:
        return st.booleans()
    if codec is Codec.FLOAT:
        return FLOATS
    if codec is Codec.TIME:
        return TIMES
    if codec is Codec.TEXT:
        return TEXTS
    if codec is Codec.OPT_TEXT:
        return st.one_of(st.none(), TEXTS)
    if codec is Codec.FLOAT_MAP:
        return st.dictionaries(TEXTS, FLOATS, max_size=4)
    hints = typing.get_type_hints(schema.cls)
    return _json_for(hints[name])


def events(kind: str) -> st.SearchStrategy[Event]:
    """Return events of ``kind`` with every journaled field drawn."""
    schema = schema_of(kind)
    return st.fixed_dictionaries(
        {c.name: value_strategy(schema, c.name) for c in schema.columns}
    ).map(lambda values: schema.cls(**values))


def expected(event: Event) -> dict[str, Any]:
    """Return the fields of ``event`` as the journal reads them back."""
    schema = schema_of(event.KIND)
    out = {}
    for column in schema.columns:
        value = getattr(event, column.name)
        if column.codec is Codec.FLOAT:
            value = float(value) + 0.0  # -0.0 reads back as 0.0
        elif column.codec is Codec.FLOAT_MAP:
            value = {k: v if math.isfinite(v) else math.nan for k, v in value.items()}
        elif column.codec is Codec.JSON:  # stored as redacted text (a wire word's value)
            value = _json_roundtrip(json.loads(redact_text(_dumped(value))))
        out[column.name] = value
    return out


def _json_roundtrip(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_roundtrip(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_roundtrip(v) for v in value]
    return value


def same(a: Any, b: Any) -> bool:
    """Equality where NaN equals NaN and floats compare by value and sign."""
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if a is pd.NaT or b is pd.NaT:
        return a is b
    return type(a) is type(b) and a == b


def journaled_fields(event: Event) -> dict[str, Any]:
    """Return the fields the journal stores, as the event holds them."""
    names = {c.name for c in schema_of(event.KIND).columns}
    return {f.name: getattr(event, f.name) for f in fields(event) if f.name in names}


def _dumped(value: Any) -> str:
    return json.dumps(
        jsonable(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
