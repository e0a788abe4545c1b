"""A test plugin of tests/fixtures/plugins run through the real CLI, as its author runs it.

The single-market forms of the plugin contract (a data source's ``load``, a model's
``fit_predict``) still run, warned: their tests run the old form and today's form of the
same plugin and compare the files the two runs write.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests import forkserver

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "plugins"


def run_cli(folder: Path, name: str, text: str) -> subprocess.CompletedProcess[str]:
    """Write the strategy ``text`` as ``folder/name.yaml`` and run it into ``folder/name``,
    the fixture plugins importable and deprecations shown (a finished program hides them)."""
    (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    path = os.pathsep.join([str(ROOT), str(FIXTURES)])  # this checkout, and the plugins
    env = {**os.environ, "PYTHONPATH": path, "PYTHONWARNINGS": "default"}
    command = [sys.executable, "-m", "tradeloom.cli.main", "run", f"{name}.yaml", "--out", name]
    return forkserver.run(command, cwd=folder, env=env, capture_output=True, text=True)


def without_run_ids(text: str) -> str:
    """Return a table's text with each order id's run part (a hash of its strategy file,
    which differs between the two forms' files) made the same."""
    return re.sub(r"\bdemo-[0-9a-f]{8}-", "demo-RUN-", text)
