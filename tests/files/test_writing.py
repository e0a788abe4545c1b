"""`OutputFolder.subfolder`: a subfolder a command writes whole (parity's replay) is
replaced when the command wrote it before, and refused, in one line, when it did not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tradeloom.files.writing import MANIFEST, OutputFolder, UnsafeOutput


def test_its_own_subfolder_is_replaced_and_anything_else_refused(tmp_path: Path) -> None:
    folder = OutputFolder(tmp_path / "out")
    made = folder.subfolder("reference")
    assert made == tmp_path / "out" / "reference" and not made.exists()  # the command makes it
    assert (tmp_path / "out" / MANIFEST).read_text() == "reference/\n"  # listed before written
    made.mkdir()
    (made / "journal.sqlite").write_text("an earlier replay")
    again = OutputFolder(tmp_path / "out").subfolder("reference")  # a second command
    assert again == made and not again.exists()

    (tmp_path / "out" / "empty").mkdir()
    assert folder.subfolder("empty").is_dir()  # an empty folder is taken as it is

    def refused(name: str, what: str) -> None:
        path = tmp_path / "out" / name
        with pytest.raises(UnsafeOutput) as caught:
            folder.subfolder(name)
        assert str(caught.value) == (
            f"{path}: is {what} tradeloom did not write there; refusing to replace it: move "
            "it away or give another --out"
        )

    (tmp_path / "out" / "mine").mkdir()
    (tmp_path / "out" / "mine" / "notes.txt").write_text("mine")
    refused("mine", "a folder")
    assert (tmp_path / "out" / "mine" / "notes.txt").read_text() == "mine"
    (tmp_path / "out" / "file").write_text("mine")
    refused("file", "a file")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "kept.txt").write_text("kept")
    os.symlink(tmp_path / "elsewhere", tmp_path / "out" / "link")
    refused("link", "a link")
    os.mkfifo(tmp_path / "out" / "fifo")
    refused("fifo", "a FIFO (named pipe)")
    assert (tmp_path / "elsewhere" / "kept.txt").read_text() == "kept"  # never followed
    with pytest.raises(
        UnsafeOutput, match=r"^.*/out/\.\./x: leads out of .*/out; refusing to write$"
    ):
        folder.subfolder("../x")
