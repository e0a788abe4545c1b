"""The sweep's worker processes (a local pool, a Dask cluster) unpickle the toy tasks by
their module name, ``tests.sweep.tasks_fixture``: the repository's root goes on the path
of this process and of the workers it starts."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH", "")) if p)
