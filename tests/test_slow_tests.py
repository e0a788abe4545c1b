"""A plain ``pytest`` leaves the ``slow`` tests out, and runs them when asked (`tests.slow_tests`):
by marker, by naming their file or node id, or with ``TRADELOOM_SLOW=1``, serially and on
workers alike."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_CONFTEST = """\
from tests import slow_tests

def pytest_collection_modifyitems(config, items):
    items[:] = slow_tests.left_in(config, items)
"""

_TESTS = """\
import pytest

def test_quick():
    pass

@pytest.mark.slow
def test_long():
    pass
"""


def _passed(tmp: Path, *args: str, slow_env: bool = False, workers: int = 0) -> set[str]:
    """Run pytest over ``tmp`` with ``args``; return the node ids that passed."""
    (tmp / "pytest.ini").write_text("[pytest]\nmarkers =\n    slow: long\n")
    (tmp / "conftest.py").write_text(_CONFTEST)
    (tmp / "sub").mkdir(exist_ok=True)
    for name in ("test_a.py", "sub/test_b.py"):
        (tmp / name).write_text(_TESTS)
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    if slow_env:
        env["TRADELOOM_SLOW"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", str(workers), "-rA", "-p", "no:cacheprovider",
         "-c", str(tmp / "pytest.ini"), "--rootdir", str(tmp), *args],
        capture_output=True, text=True, cwd=tmp, timeout=300, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return set(re.findall(r"^PASSED (\S+)", done.stdout, re.M))


QUICK = {"test_a.py::test_quick", "sub/test_b.py::test_quick"}
LONG = {"test_a.py::test_long", "sub/test_b.py::test_long"}


@pytest.mark.parametrize("workers", [0, pytest.param(2, marks=pytest.mark.slow)])
def test_a_plain_run_leaves_the_slow_tests_out(tmp_path: Path, workers: int) -> None:
    assert _passed(tmp_path, workers=workers) == QUICK
    assert _passed(tmp_path, "sub", workers=workers) == {"sub/test_b.py::test_quick"}


@pytest.mark.parametrize("workers", [0, pytest.param(2, marks=pytest.mark.slow)])
def test_naming_a_file_or_a_node_runs_its_slow_tests(tmp_path: Path, workers: int) -> None:
    named = _passed(tmp_path, "sub/test_b.py", "test_a.py::test_long", workers=workers)
    assert named == {"sub/test_b.py::test_quick", "sub/test_b.py::test_long",
                     "test_a.py::test_long"}  # fmt: skip
    assert _passed(tmp_path, "sub", "test_a.py", workers=workers) == QUICK | {
        "test_a.py::test_long"
    }


def test_a_marker_or_the_environment_runs_them(tmp_path: Path) -> None:
    assert _passed(tmp_path, "-m", "slow") == LONG
    assert _passed(tmp_path, "-m", "slow or not slow") == QUICK | LONG
    assert _passed(tmp_path, "-m", "not slow") == QUICK
    assert _passed(tmp_path, slow_env=True) == QUICK | LONG
