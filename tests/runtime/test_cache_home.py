"""Every cache of tradeloom lives under one folder, found by one rule (XDG base dirs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradeloom.kernels.cache_root import kernel_cache_root
from tradeloom.runtime import dataclass_code
from tradeloom.runtime.cache_home import cache_home


def test_xdg_cache_home_wins_and_empty_means_unset() -> None:
    assert cache_home({"XDG_CACHE_HOME": "/x"}) == Path("/x/tradeloom")
    assert cache_home({"XDG_CACHE_HOME": ""}) == Path.home() / ".cache" / "tradeloom"
    assert cache_home({}) == Path.home() / ".cache" / "tradeloom"


def test_the_kernels_and_the_dataclass_code_share_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("TRADELOOM_KERNEL_CACHE", raising=False)
    assert kernel_cache_root() == tmp_path / "tradeloom" / "kernels"
    assert dataclass_code.code_file().parent == tmp_path / "tradeloom" / "code"
