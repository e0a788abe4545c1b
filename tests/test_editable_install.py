"""The README's ``pip install -e .`` imports the package from any working folder.

A Python (or Jupyter) started in the folder that holds the clone, itself named
``tradeloom``, finds the clone folder first on ``sys.path`` (``''``, the current folder):
with setuptools' editable install (an import hook after Python's path finder) the
clone folder was imported as an empty namespace package, and ``tradeloom.__version__``
failed. The editable install is now a .pth file naming the clone (hatchling's
``dev-mode-dirs``), and the path finder prefers the regular package it finds there.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.plugin_venv import layered_venv

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_import_tradeloom_from_the_folder_holding_the_clone(tmp_path: Path) -> None:
    clone = tmp_path / "tradeloom"
    clone.mkdir()
    for name in ("pyproject.toml", "README.md", "hatch_build.py"):
        shutil.copy(ROOT / name, clone / name)
    shutil.copytree(
        ROOT / "tradeloom", clone / "tradeloom", ignore=shutil.ignore_patterns("__pycache__")
    )
    # the suite's environment beneath it (pip and the dependencies), the clone above
    python, _ = layered_venv(tmp_path / "venv")
    # with the [test] extra's hatchling and hatch-vcs, no isolated build environment to download
    backend = ("hatchling", "hatch_vcs")
    built_here = all(importlib.util.find_spec(name) is not None for name in backend)
    isolation = ["--no-build-isolation"] if built_here else []
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         *isolation, "-e", str(clone)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip

    done = subprocess.run(
        [str(python), "-c", "import tradeloom; print(tradeloom.__version__, tradeloom.__file__)"],
        cwd=tmp_path,  # the clone's parent folder: '' on sys.path holds tradeloom/
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "", "SYSTEMROOT": ""},  # no PYTHONPATH: what the user's shell has
    )

    assert done.returncode == 0, done.stderr
    version, file = done.stdout.split()
    assert version == "0.1.dev0"  # the copy has no git history: pyproject's fallback-version
    assert Path(file) == clone / "tradeloom" / "__init__.py"
