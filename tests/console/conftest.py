"""The console's tests: its run folders, made once per session (`console_runs`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("starlette")

# the browser helper of the report's tests
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reporting"))

from tests.console.console_runs import make_runs
from tradeloom.console.tokens import Sessions


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``runs/`` with ``one-bt``, ``many-bt``, ``one-paper-simulated`` and ``canary-bt``."""
    return make_runs(tmp_path_factory.mktemp("console-runs"))


@pytest.fixture
def sessions() -> Sessions:
    return Sessions()
