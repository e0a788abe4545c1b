"""The sweep's worker processes (a local pool, a Dask cluster) unpickle the toy tasks by
their module name, ``tests.sweep.tasks_fixture``: the processes this one starts get the
repository's root on their path (this process has it: pytest puts the root of the
``tests`` package there)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH", "")) if p)
