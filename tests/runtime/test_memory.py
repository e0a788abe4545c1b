"""The allocator keeps the memory a run frees for its next arrays, unless told otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tradeloom.runtime.memory import ENV


def _glibc() -> bool:
    try:
        return sys.platform.startswith("linux") and bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (ValueError, OSError):
        return False


pytestmark = pytest.mark.skipif(not _glibc(), reason="glibc's malloc only")

# a second round of twelve 8 MB arrays, every page written, after the first was freed:
# the page faults it takes, with transparent huge pages off for the process (a kernel
# that backs every large mapping with them would fault 2 MB at a time)
_ROUNDS = textwrap.dedent(
    """
    import ctypes, resource, sys
    PR_SET_THP_DISABLE = 41
    if ctypes.CDLL(None).prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0:
        print("no-prctl 0")
        sys.exit()
    import numpy as np
    from tradeloom.runtime.memory import keep_freed_memory
    kept = keep_freed_memory() if sys.argv[1] == "keep" else None
    def arrays():
        made = [np.ones(1 << 20) for _ in range(12)]
        del made
    arrays()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    arrays()
    print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)
_OWN = ("MALLOC_", "GLIBC_TUNABLES", ENV)


def second_round(mode: str, **env: str) -> tuple[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", _ROUNDS, mode],
        capture_output=True,
        text=True,
        check=True,
        env={**{k: v for k, v in os.environ.items() if not k.startswith(_OWN)}, **env},
    )
    kept, faults = done.stdout.split()
    if kept == "no-prctl":
        pytest.skip("this kernel cannot turn transparent huge pages off for a process")
    return kept, int(faults)


def test_freed_arrays_pages_are_taken_again_without_a_fault() -> None:
    _, by_default = second_round("default")
    kept, faults = second_round("keep")
    assert kept == "True"
    assert by_default > 20_000  # 96 MB handed back and taken again, page by page
    assert faults < by_default // 20


@pytest.mark.parametrize(
    "env",
    [
        {ENV: "0"},
        {"MALLOC_TRIM_THRESHOLD_": "131072"},
        {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=131072"},
    ],
    ids=["told-not-to", "malloc-variable", "glibc-tunable"],
)
def test_a_process_that_chose_its_allocators_settings_keeps_them(env: dict[str, str]) -> None:
    kept, faults = second_round("keep", **env)
    assert kept == "False"
    assert faults > 20_000  # the heap handed its free top back, as glibc does
