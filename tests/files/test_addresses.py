"""Paths as addresses: the SQLite URI of any file opens exactly that file, and a URL of
any run id gives that id back, whatever the folders are named."""

from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path
from urllib.parse import unquote_to_bytes, urlsplit

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.files.addresses import file_url, quote_path, sqlite_uri, url_path


def names() -> st.SearchStrategy[str]:
    """Folder names: any characters but ``/`` and NUL, or any bytes (not UTF-8 too)."""
    text = st.text(
        st.characters(exclude_characters="/\x00", exclude_categories=("Cs",)),
        min_size=1,
        max_size=40,
    )
    raw = st.binary(min_size=1, max_size=40).filter(lambda b: b"/" not in b and b"\x00" not in b)
    return (
        st.one_of(text, raw.map(os.fsdecode))
        .filter(lambda n: n not in (".", ".."))
        .filter(lambda n: len(os.fsencode(n)) <= 200)
    )


def test_quote_path_escapes_what_an_address_reads() -> None:
    assert quote_path("/runs/r#1/journal.sqlite") == "/runs/r%231/journal.sqlite"
    assert quote_path("a?b%c d'e\"f") == "a%3Fb%25c%20d%27e%22f"
    assert quote_path("caf\u00e9") == "caf%C3%A9"
    assert quote_path(os.fsdecode(b"\xff")) == "%FF"  # the file system's byte, as it is
    assert quote_path("-._~azAZ09/") == "-._~azAZ09/"


def test_the_sqlite_uri_is_absolute_with_an_empty_authority(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert sqlite_uri(Path("file:x/j#1"), "ro") == f"file://{tmp_path}/file%3Ax/j%231?mode=ro"
    assert sqlite_uri(Path("//srv/j"), "rw") == "file:////srv/j?mode=rw"


def test_a_file_url_is_what_pathlib_makes(tmp_path: Path) -> None:
    page = tmp_path / "r#1 caf\u00e9" / "report.html"
    assert file_url(page) == page.as_uri()
    assert file_url(Path("/runs/a?b/report.html")) == "file:///runs/a%3Fb/report.html"


@settings(max_examples=examples(400), deadline=None)
@given(name=names())
@example(name="r#1")
@example(name="a?mode=rwc")
@example(name="100%")
@example(name="file:x")
def test_the_sqlite_uri_opens_exactly_that_file(name: str) -> None:
    with tempfile.TemporaryDirectory() as parent:
        root = Path(parent)
        folder = root / name
        folder.mkdir()
        path = folder / "j.sqlite"
        made = sqlite3.connect(sqlite_uri(path, "rwc"), uri=True)
        made.execute("CREATE TABLE marker (name TEXT)")
        made.execute("INSERT INTO marker VALUES (?)", (name.encode("utf-8", "surrogateescape"),))
        made.commit()
        made.close()
        read = sqlite3.connect(sqlite_uri(path, "ro"), uri=True)
        try:
            (stored,) = read.execute("SELECT name FROM marker").fetchone()
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                read.execute("INSERT INTO marker VALUES ('x')")
        finally:
            read.close()
        assert stored == name.encode("utf-8", "surrogateescape")
        assert os.listdir(root) == [name]  # nothing beside the folder...
        assert os.listdir(folder) == ["j.sqlite"]  # ...nor in it
        with pytest.raises(sqlite3.OperationalError, match="unable to open"):
            sqlite3.connect(sqlite_uri(folder / "missing", "ro"), uri=True).close()
        assert os.listdir(folder) == ["j.sqlite"]  # mode=ro creates nothing


@settings(max_examples=examples(400))
@given(parts=st.lists(names(), min_size=1, max_size=3))
@example(parts=["paper1#x"])
def test_a_url_path_gives_back_its_parts(parts: list[str]) -> None:
    run_id = "0/" + "/".join(parts)
    url = url_path("/run", run_id)
    split = urlsplit("http://127.0.0.1:8470" + url)
    assert (split.path, split.query, split.fragment) == (url, "", "")
    assert unquote_to_bytes(url) == os.fsencode("/run/" + run_id)
    assert set(url) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/%")


def test_a_journal_named_file_colon_is_made_where_it_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite (built with SQLITE_USE_URI) read a plain name starting with file: as a URI:
    # the journal file:j.sqlite was made as j.sqlite, its tail record beside as named
    from tradeloom.journal import RunIdentity, open_journal, read_info

    monkeypatch.chdir(tmp_path)
    open_journal(Path("file:j.sqlite"), RunIdentity("s", "r", "paper")).close()
    assert sorted(os.listdir(tmp_path)) == ["file:j.sqlite", "file:j.sqlite.tail"]
    assert read_info(Path("file:j.sqlite")).identity.run_id == "r"
