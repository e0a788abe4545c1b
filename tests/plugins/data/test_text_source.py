"""Reading a text source: every cell as written, normalised once, checked in one pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradeloom.plugins.data.text_source import TextColumns, read_documents
from tradeloom.plugins.data.validation import DataValidationError

COLUMNS = TextColumns(timestamp="time", id="id", symbols="symbols", title="title")


def read(path: Path, policy: str = "reject"):  # type: ignore[no-untyped-def]
    return read_documents(
        path, label="news", delay_ns=0, columns=COLUMNS, max_chars=30, policy=policy
    )


def test_cells_that_look_like_numbers_stay_as_written(tmp_path: Path) -> None:
    path = tmp_path / "news.csv"
    path.write_text(
        "id,time,symbols,title,text\n"
        "007,2024-01-01T00:00:00Z,,1.50,True\n"
        "1.50,2024-01-01T01:00:00Z,BTC/USDT; ETH/USDT,,2\n",
        encoding="utf-8",
    )
    documents = read(path)
    assert documents.ids == ("007", "1.50")
    assert documents.texts == ("True", "2")
    assert documents.titles == ("1.50", "")
    assert documents.symbols == ((), ("BTC/USDT", "ETH/USDT"))


def test_only_texts_that_need_it_are_normalised_and_the_rest_kept(tmp_path: Path) -> None:
    path = tmp_path / "news.csv"
    path.write_bytes(
        "\ufeffid,time,symbols,title,text\n"
        'a,2024-01-01T00:00:00Z,,  T ,"two  spaces\n and a line "\n'
        "b,2024-01-01T01:00:00Z,,,Cafe\u0301 ctrl\x07\n"
        "c,2024-01-01T02:00:00Z,,,plain text\n".encode()
    )
    documents = read(path)
    assert documents.texts == ("two spaces and a line", "Caf\u00e9 ctrl", "plain text")
    assert documents.titles == ("T", "", "")


def test_every_problem_is_found_in_one_pass(tmp_path: Path) -> None:
    path = tmp_path / "news.csv"
    path.write_text(
        "id,time,symbols,title,text\n"
        "a,2024-01-01T02:00:00Z,,,  \n"
        "a,2024-01-01T03:00:00Z,,,x\n"
        "a,2024-01-01T04:00:00Z,,,y\n"
        "b,2024-01-01T01:00:00Z,,,a text much longer than thirty characters\n",
        encoding="utf-8",
    )
    with pytest.raises(DataValidationError) as caught:
        read(path)
    said = str(caught.value)
    for what in (
        "1 row has an empty text (first at 2024-01-01T02:00Z, line 2)",
        "1 row has a text longer than max_chars (30) (first at 2024-01-01T01:00Z, line 5)",
        "1 row has the id of an earlier row (first at 2024-01-01T04:00Z, line 4)",
        "1 row has a time earlier than the row before (first at 2024-01-01T01:00Z, line 5)",
    ):
        assert what in said
    repaired = read(path, "repair")
    assert repaired.ids == ("b", "a")
    assert repaired.texts == ("a text much longer than thirty", "x")
