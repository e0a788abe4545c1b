"""The command's process ends as Python's exit would, minus the teardown (`leave`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

_CHILD = """
import atexit, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from tradeloom.cli.leave import leave

out = Path(sys.argv[1])

def late_thread():
    time.sleep(0.3)
    (out / "thread").write_text("joined")

def pooled():
    time.sleep(0.3)
    (out / "pool").write_text("ran")

threading.Thread(target=late_thread).start()          # not a daemon: waited for
ThreadPoolExecutor(max_workers=1).submit(pooled)      # the pool's exit hook joins it
atexit.register(lambda: (out / "atexit").write_text("ran"))
log = open(out / "buffered", "w")                      # closed by atexit, not by us
atexit.register(log.close)
log.write("x" * 100)
sys.stdout.write("no newline, still buffered")        # a pipe: block-buffered

class TornDown:
    def __del__(self):                                 # runs only in the module teardown
        (out / "torn_down").write_text("yes")

kept = TornDown()                                     # a module global: alive until then
leave(int(sys.argv[2]))
"""


@pytest.mark.parametrize("code", [0, 2, 3])
def test_leave_exits_with_the_code_after_threads_hooks_and_buffers(
    tmp_path: Path, code: int
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path), str(code)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        code,
        "no newline, still buffered",
        "",
    )
    assert (tmp_path / "thread").read_text() == "joined"
    assert (tmp_path / "pool").read_text() == "ran"
    assert (tmp_path / "atexit").read_text() == "ran"
    assert (tmp_path / "buffered").read_text() == "x" * 100
    assert not (tmp_path / "torn_down").exists()  # the teardown leave skips


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "tradeloom.cli"],
        [sys.executable, "-m", "tradeloom.cli.main"],
        [str(Path(sys.executable).with_name("tradeloom"))],
    ],
    ids=["-m tradeloom.cli", "-m tradeloom.cli.main", "console script"],
)
def test_every_way_of_calling_the_command_exits_with_its_code(
    tmp_path: Path, command: list[str]
) -> None:
    if not Path(command[0]).exists():
        pytest.skip(f"{command[0]} is not installed next to this interpreter")
    missing = subprocess.run(
        [*command, "validate", "missing.yaml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert (missing.returncode, missing.stderr) == (2, "missing.yaml: no such file\n")
    usage = subprocess.run([*command, "no-such-command"], capture_output=True, text=True)
    assert usage.returncode == 2 and "invalid choice: 'no-such-command'" in usage.stderr
    version = subprocess.run([*command, "--version"], capture_output=True, text=True)
    assert (version.returncode, version.stderr) == (0, "")
    assert version.stdout.startswith("tradeloom ")
