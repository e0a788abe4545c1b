"""`read_yaml_kept`: a YAML file parsed once while it stays the same, each caller given its
own copy, and parsed again once it changes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.builders import counted_yaml_parses
from tradeloom.files.reading import NotAFile, read_yaml_kept


@pytest.fixture
def parses() -> Iterator[list[Path]]:
    with counted_yaml_parses() as seen:
        yield seen


def test_a_file_is_parsed_once_and_each_reader_gets_its_own_copy(
    tmp_path: Path, parses: list[Path]
) -> None:
    path = tmp_path / "strategy.yaml"
    path.write_text("name: a\nrisk: {max: 1}\n")
    first = read_yaml_kept(path, "a file")
    first["risk"]["max"] = 99  # a reader that changes its copy changes no other's
    assert read_yaml_kept(path, "a file") == {"name": "a", "risk": {"max": 1}}
    assert parses == [path]


def test_a_changed_file_is_parsed_again(tmp_path: Path, parses: list[Path]) -> None:
    path = tmp_path / "strategy.yaml"
    path.write_text("name: a\n")
    assert read_yaml_kept(path, "a file") == {"name": "a"}
    path.write_text("name: bb\n")
    os.utime(path, ns=(1, 1))  # another modification time, whatever the clock's grain
    assert read_yaml_kept(path, "a file") == {"name": "bb"}
    assert parses == [path, path]


def test_a_path_that_is_not_a_file_is_refused_each_time(tmp_path: Path, parses: list[Path]) -> None:
    for _ in range(2):
        with pytest.raises(NotAFile):
            read_yaml_kept(tmp_path, "a file")
