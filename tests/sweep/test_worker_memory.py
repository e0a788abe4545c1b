"""A worker whose launcher set glibc's heap thresholds (Dask's nanny) gets them back."""

from __future__ import annotations

import ctypes
import sys

import pytest

from tradeloom.sweep.worker_memory import restore_heap_thresholds

glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not hasattr(ctypes.CDLL(None), "mallopt"),
    reason="glibc's mallopt",
)


@glibc
def test_a_dask_nanny_s_trim_threshold_is_set_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")  # distributed's pre-spawn-environ
    assert restore_heap_thresholds() is True


def test_a_process_launched_plainly_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("MALLOC_MMAP_MAX_", raising=False)
    assert restore_heap_thresholds() is False
