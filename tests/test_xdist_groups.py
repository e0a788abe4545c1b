"""The suite's xdist groups hold: a group's tests run on one worker (`tests.xdist_groups`)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CONFTEST = "from tests.xdist_groups import pytest_collection_modifyitems_named_groups\n"

_TESTS = """\
import pytest

pytestmark = pytest.mark.xdist_group("shared")

@pytest.mark.parametrize("k", range(6))
def test_grouped(k):
    pass
"""


def test_a_groups_tests_run_on_one_worker_named_by_their_group(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # not the suite's settings
    (tmp_path / "conftest.py").write_text(_CONFTEST)
    for name in ("test_a.py", "test_b.py"):
        (tmp_path / name).write_text(_TESTS)
    (tmp_path / "test_c.py").write_text("def test_alone():\n    pass\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-v", "-p",
         "no:cacheprovider", "-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path),
         str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    ran = re.findall(r"^\[(gw\d)\] .* PASSED (\S+)", done.stdout, re.M)
    grouped = {worker for worker, nodeid in ran if nodeid.endswith("@shared")}
    assert len([n for _, n in ran if n.endswith("@shared")]) == 12, done.stdout
    assert len(grouped) == 1, done.stdout
    assert [n for _, n in ran if not n.endswith("@shared")] == ["test_c.py::test_alone"]
