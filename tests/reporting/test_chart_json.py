"""A figure's texts written as JSON from their parts are plotly's JSON of the texts."""

from __future__ import annotations

import orjson
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st
from plotly.io.json import to_json_plotly

from tests.hunting import examples
from tradeloom.reporting.charts import json_text, json_text_array, json_texts


@settings(max_examples=examples(50), deadline=None)
@given(st.lists(st.lists(st.text(), min_size=1, max_size=3), max_size=20))
def test_texts_escaped_by_part_are_plotlys_json_of_the_whole(parts: list[list[str]]) -> None:
    """A hover text written from its parts each escaped once is the JSON plotly writes
    of the whole text: quotes, backslashes, controls, <, >, / and line separators."""
    texts = [[*p, "<br>", "</script>", "\u2028"] for p in parts]
    insides = ["".join(json_text(part) for part in text) for text in texts]
    written = orjson.dumps({"text": json_texts(insides)}).decode()
    assert written == to_json_plotly({"text": ["".join(text) for text in texts]})


@settings(max_examples=examples(50), deadline=None)
@given(st.lists(st.text(), max_size=20))
def test_an_arrow_array_of_insides_is_written_as_their_list(texts: list[str]) -> None:
    """The insides joined in Arrow (`json_text_array`) are `json_texts` of them."""
    insides = [json_text(text) for text in texts]
    written = orjson.dumps({"text": json_text_array(pa.array(insides, pa.string()))})
    assert written == orjson.dumps({"text": json_texts(insides)})
