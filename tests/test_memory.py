"""The allocator keeps the memory a run frees for its next arrays, unless told otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

GLIBC = sys.platform.startswith("linux") and bool(os.confstr("CS_GNU_LIBC_VERSION"))

# a second round of twelve 8 MB arrays, every page written, after the first was freed:
# the page faults it takes (numpy's huge pages off, so that a fault is a 4 kB page)
_ROUNDS = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    from tradeloom.memory import keep_freed_memory
    np._core.multiarray._set_madvise_hugepage(False)
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


def second_round(mode: str, **env: str) -> tuple[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", _ROUNDS, mode],
        capture_output=True,
        text=True,
        check=True,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}, **env},
    )
    kept, faults = done.stdout.split()
    return kept, int(faults)


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_freed_arrays_pages_are_taken_again_without_a_fault() -> None:
    _, by_default = second_round("default")
    kept, faults = second_round("keep")
    assert kept == "True"
    assert by_default > 20_000  # 96 MB handed back and taken again, page by page
    assert faults < by_default // 20


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_a_process_that_set_glibcs_own_settings_keeps_them() -> None:
    kept, faults = second_round("keep", MALLOC_TRIM_THRESHOLD_="131072")
    assert kept == "False"
    assert faults > 20_000  # the heap handed its free top back, as asked
