"""Pydantic errors in words: what was expected and what was there."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tradeloom.schemas.messages import FieldError, describe_validation_error, show


class Leg(BaseModel):
    model_config = ConfigDict(extra="forbid")
    venue: str
    weight: float = Field(default=1.0, gt=0)


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int = Field(default=1, ge=1, le=10)
    step: float = Field(default=0.5, multiple_of=0.5)
    either: int | str = 0
    mode: Literal["fast", "slow"] = "fast"
    tags: list[str] = Field(default_factory=list, max_length=2)
    code: Annotated[str, Field(min_length=2, max_length=4)] = "ab"
    legs: list[Leg] = Field(default_factory=list)
    by_name: dict[str, Leg] = Field(default_factory=dict)
    day: date | None = None
    odd: int = 1

    @field_validator("odd")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError("must be odd")
        return value


def _describe(data: dict[str, Any]) -> list[FieldError]:
    with pytest.raises(ValidationError) as caught:
        Model.model_validate(data)
    return describe_validation_error(caught.value, data, Model)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"count": 11}, FieldError(("count",), "must be <= 10, was 11")),
        ({"step": 0.7}, FieldError(("step",), "must be a multiple of 0.5, was 0.7")),
        ({"either": 1.5}, FieldError(("either",), "expected an integer or a string, was 1.5")),
        ({"mode": "fastest"}, FieldError(("mode",), "expected 'fast' or 'slow', was 'fastest'")),
        (
            {"tags": ["a", "b", "c"]},
            FieldError(("tags",), "must have at most 2 items, was 3 items"),
        ),
        ({"code": "a"}, FieldError(("code",), "must be at least 2 characters long, was 'a'")),
        (
            {"code": "abcde"},
            FieldError(("code",), "must be at most 4 characters long, was 'abcde'"),
        ),
        (
            {"legs": [{"venue": "x"}, {"venue": "y", "weight": 0}]},
            FieldError(("legs", 1, "weight"), "must be > 0, was 0"),
        ),
        (
            {"by_name": {"a": {"venue": "x", "wieght": 2}}},
            FieldError(
                ("by_name", "a", "wieght"), "unknown key (did you mean 'weight'?)", at_key=True
            ),
        ),
        ({"day": "soon"}, FieldError(("day",), "expected a date such as 2024-01-01, was 'soon'")),
        ({"odd": 4}, FieldError(("odd",), "must be odd, was 4")),
        ({"legs": "x"}, FieldError(("legs",), "expected a list, was 'x'")),
        ({"by_name": []}, FieldError(("by_name",), "expected a mapping, was an empty list")),
    ],
)
def test_messages(data: dict[str, Any], expected: FieldError) -> None:
    assert _describe(data) == [expected]


def test_a_misspelt_required_key() -> None:
    """One mistake, one line: the unknown key's, naming the key it misspells (not also
    that key as missing)."""
    assert _describe({"legs": [{"venu": "x"}]}) == [
        FieldError(("legs", 0, "venu"), "unknown key (did you mean 'venue'?)", at_key=True),
    ]
    assert _describe({"legs": [{"Venue": "x"}]}) == [  # another case is a near miss too
        FieldError(("legs", 0, "Venue"), "unknown key (did you mean 'venue'?)", at_key=True),
    ]
    assert _describe({"legs": [{"place": "x"}]}) == [  # no near miss: both are said
        FieldError(("legs", 0, "venue"), "required key is missing", missing=True),
        FieldError(("legs", 0, "place"), "unknown key; valid keys: venue, weight", at_key=True),
    ]


def test_an_unknown_key_of_a_nested_list_model() -> None:
    errors = _describe({"legs": [{"venue": "x", "weigth": 1}]})
    assert errors == [
        FieldError(("legs", 0, "weigth"), "unknown key (did you mean 'weight'?)", at_key=True)
    ]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("x", "'x'"),
        ("a" * 80, repr("a" * 57 + "...")),
        (True, "true"),
        (None, "null"),
        (1.5, "1.5"),
        (date(2024, 1, 2), "2024-01-02"),
        ({}, "a mapping"),
        ([], "an empty list"),
        ([1], "a list"),
        (object(), "an object"),
        (b"x", "a bytes"),
    ],
)
def test_show(value: Any, shown: str) -> None:
    assert show(value) == shown


_VALUES = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5), st.dates()
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)


@given(
    data=st.dictionaries(
        st.sampled_from([*Model.model_fields, "extra", "legs"]), _VALUES, max_size=6
    )
)
def test_no_pydantic_wording_leaks(data: dict[str, Any]) -> None:
    try:
        Model.model_validate(data)
    except ValidationError as exc:
        for error in describe_validation_error(exc, data, Model):
            assert "Input should" not in error.message
            assert "http" not in error.message
            assert "pydantic" not in error.message.lower()
            assert error.message
