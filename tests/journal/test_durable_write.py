"""`tradeloom.journal.durable.replace_durably` writes every byte, however few each
`os.write` takes (it may write fewer than it was given, and says how many)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tradeloom.journal import durable
from tradeloom.journal.durable import replace_durably


def test_a_short_write_is_written_on_until_the_file_is_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write
    calls: list[int] = []

    def short_write(fd: int, data: bytes | memoryview) -> int:
        calls.append(len(data))
        return real_write(fd, bytes(data)[:3])  # at most 3 bytes a call

    monkeypatch.setattr(durable.os, "write", short_write)
    path = tmp_path / "mark.json"
    path.write_bytes(b"old")
    data = b'{"sent": 12345, "key": "abcdef"}'

    replace_durably(path, data)

    assert path.read_bytes() == data
    assert len(calls) == -(-len(data) // 3)  # each call given what was left
    assert calls[0] == len(data)
    assert not path.with_name("mark.json.tmp").exists()
