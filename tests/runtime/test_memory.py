"""The allocator keeps the memory a run frees for its next arrays, unless told otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

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
    from tradeloom.runtime.memory import keep_freed_memory, return_freed_memory
    kept = None
    for step in sys.argv[1].split("-"):  # keep, return, or one after the other
        kept = {"keep": keep_freed_memory, "return": return_freed_memory}.get(step, lambda: None)()
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


def test_a_universes_run_hands_freed_arrays_back_and_a_later_market_keeps_them_again() -> None:
    # a universe's run (issue 67): kept free, its many blocks fragmented the heaps
    returned, faults = second_round("keep-return")
    assert returned == "True"
    assert faults > 20_000  # each array mapped on its own, handed back when freed
    kept, faults = second_round("keep-return-keep")  # a later run of one market
    assert kept == "True"
    assert faults < 20_000 // 20


_ARROW_READ = textwrap.dedent(
    """
    import sys
    import numpy as np, pandas as pd
    from tradeloom.runtime.memory import release_arrow_pool
    def rss():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    path = sys.argv[1]
    pd.DataFrame({"x": np.arange(4_000_000.0), "s": ["a", "b"] * 2_000_000}).to_parquet(path)
    frame = pd.read_parquet(path)
    before = rss()
    release_arrow_pool()
    print(before - rss())
    """
)


def test_the_pages_a_parquet_read_left_in_arrows_pool_are_handed_back(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _ARROW_READ, str(tmp_path / "x.parquet")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(done.stdout) > 20  # MiB: the Arrow table freed once made into pandas
