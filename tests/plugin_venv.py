"""Throwaway virtual environments with plugin packages installed, for end-to-end tests.

`make_plugin_venv` creates a venv that sees everything the test interpreter has
installed (tradeloom included, editable or not) plus the packages given, installed
with pip from a copy of their source: the example plugin's users run ``tradeloom``
with the package installed by pip, and the interpreter running the tests stays as it
was. `PluginVenv.tradeloom` runs the command there.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import venv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_PLUGIN = ROOT / "examples" / "tradeloom-example-plugin"
EXAMPLE_GROUP = "example_plugin_venv"
"""The xdist group of the tests that run the CLI in the ``example_venv`` fixture."""


@dataclass(frozen=True)
class PluginVenv:
    """A virtual environment layered over this interpreter's packages.

    Attributes:
        path: Its folder.
        python: Its interpreter.
        site_packages: Its own site-packages (what was installed into it).
    """

    path: Path
    python: Path
    site_packages: Path

    def tradeloom(
        self, *args: str | Path, cwd: Path = ROOT, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """Run the ``tradeloom`` command in this environment and return the finished process."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        return subprocess.run(
            [str(self.python), "-m", "tradeloom.cli.main", *map(str, args)],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )


class ExampleCommands:
    """The shipped example files' commands in the example plugin's venv, each run once
    per session and read by every test that checks it (tests/test_example_plugin.py and
    tests/cli/test_cli.py's every-shipped-file tests ran the same ``validate`` and each
    file's run through a new interpreter twice).

    A run is ``--log-level info run FILE --out FOLDER`` (the file whole: the example
    plugin's observer logs at info), into a folder of its own that the tests only read.
    """

    def __init__(self, venv: PluginVenv, folder: Path) -> None:
        self.venv = venv
        self.folder = folder
        self._done: dict[tuple[str, ...], subprocess.CompletedProcess[str]] = {}

    def _once(self, *args: str) -> subprocess.CompletedProcess[str]:
        if args not in self._done:
            self._done[args] = self.venv.tradeloom(*args)
        return self._done[args]

    def validate(self, file: str) -> subprocess.CompletedProcess[str]:
        """``tradeloom validate FILE`` (a path relative to the checkout, as a user types it)."""
        return self._once("validate", file)

    def run(self, file: str) -> tuple[subprocess.CompletedProcess[str], Path]:
        """``tradeloom --log-level info run FILE``; return it and its run folder."""
        out = self.folder / Path(file).stem
        return self._once("--log-level", "info", "run", file, "--out", str(out)), out


def _parent_site_dirs() -> list[str]:
    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE and Path(site.getusersitepackages()).is_dir():
        dirs.append(site.getusersitepackages())
    return dirs


def layered_venv(path: Path, *, over: Sequence[str] | None = None) -> tuple[Path, Path]:
    """Create a venv at ``path`` layered over ``over`` (default: this interpreter's
    packages); return its interpreter and its own site-packages.

    The layer is a ``.pth`` file adding each site directory after the venv's own, so
    their ``.pth`` files are read too (editable installs work) and what is installed
    into the venv comes first. Not ``venv --system-site-packages``: that reaches the
    *base* interpreter's packages, not those of a virtualenv the suite runs in (a fresh
    clone's ``python -m venv v`` then the README's commands: ``No module named ...``).

    Args:
        path: Where to create it.
        over: Site directories it sees besides its own, in order.
    """
    venv.EnvBuilder(with_pip=False, clear=True).create(path)
    python = path / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    site_packages = Path(purelib)
    layered = _parent_site_dirs() if over is None else list(over)
    lines = "".join(f"import site; site.addsitedir({d!r})\n" for d in layered)
    (site_packages / "_tradeloom_tests_layer.pth").write_text(lines, encoding="utf-8")
    return python, site_packages


def make_plugin_venv(
    path: Path, packages: Sequence[Path], *, over: Sequence[str] | None = None
) -> PluginVenv:
    """Create a venv at ``path`` that sees ``over`` (default: this interpreter's packages).

    Each package folder is copied beside the venv and installed from the copy with pip
    (no dependencies, no build isolation, no index), so its source folder stays clean.

    Args:
        path: Where to create it.
        packages: Source folders of packages to install into it.
        over: Site directories it sees besides its own, in order (`layered_venv`).
    """
    python, site_packages = layered_venv(path, over=over)
    for source in packages:
        copy = path.parent / f"{path.name}-src-{source.name}"
        shutil.copytree(
            source, copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
        )
        result = subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--no-build-isolation",
                "--no-index",
                str(copy),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    return PluginVenv(path, python, site_packages)
