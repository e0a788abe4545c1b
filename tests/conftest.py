"""The suite runs in parallel, and installs plugin packages only into throwaway venvs.

``pytest`` alone runs on every core (pytest-xdist: ``-n auto --dist loadgroup``), so
``.ci/run`` and the README's ``pytest`` are parallel without a flag; ``pytest -n 0``
or ``pytest -p no:xdist`` runs serially. Tests that share something built once per
worker (a virtual environment) carry ``@pytest.mark.xdist_group(name)``, so that
one worker builds it.

A test that needs the example plugin package installed, as its users have it, takes
the `example_venv` fixture (`plugin_venv.PluginVenv`): the interpreter running the
tests is never modified.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from hypothesis import HealthCheck, settings
from pg_server import PgSchema, pg_schema_of
from plugin_venv import EXAMPLE_PLUGIN, PluginVenv, make_plugin_venv

# Properties are about values, not speed: on a shared machine an example can take longer
# than hypothesis's default 200 ms deadline, or generate slower than its health check
# allows, which would fail a correct test.
settings.register_profile("tradeloom", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("tradeloom")


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """Default to ``-n auto`` and ``--dist loadgroup`` when xdist is loaded.

    Explicit options win: ``-n 0`` runs serially, ``--dist load`` ignores the groups.
    """
    if not config.pluginmanager.hasplugin("xdist") or "PYTEST_XDIST_WORKER" in os.environ:
        return
    if config.option.collectonly:
        return
    if config.option.numprocesses is None:
        config.option.numprocesses = "auto"
    if config.option.numprocesses != 0 and config.option.dist == "no":
        config.option.dist = "loadgroup"  # -n 2 alone keeps the groups too


def pytest_configure(config: pytest.Config) -> None:
    """Before a parallel run's workers start, compile the kernels once (`warm_kernels`).

    Only the controlling process of a run on several workers does it: a serial run
    compiles in one process anyway, and a worker has ``workerinput``.
    """
    workers = getattr(config.option, "numprocesses", None)
    if hasattr(config, "workerinput") or workers in (None, 0) or config.option.collectonly:
        return
    script = Path(__file__).resolve().parent / "warm_kernels.py"
    done = subprocess.run([sys.executable, str(script)], check=False)
    if done.returncode != 0:
        warnings.warn("the kernel cache is cold: each worker compiles its own", stacklevel=1)


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """A test that runs `main` configures structlog for the whole process (its log level);
    put the defaults back after every test, so that the next one sees all it logs."""
    yield
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def example_venv(tmp_path_factory: pytest.TempPathFactory) -> PluginVenv:
    """A venv with the example plugin package installed, as a plugin's user has it."""
    folder = tmp_path_factory.mktemp("example-venv")
    built = make_plugin_venv(folder / "venv", [EXAMPLE_PLUGIN])
    assert sys.prefix != str(built.path)
    return built


@pytest.fixture
def pg_schema(monkeypatch: pytest.MonkeyPatch) -> Iterator[PgSchema]:
    """A schema of its own on the real PostgreSQL server (`pg_server`), dropped after."""
    yield from pg_schema_of(monkeypatch)
