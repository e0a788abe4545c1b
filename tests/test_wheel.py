"""The built wheel installs and runs: ``tradeloom init demo``, then its strategy, offline.

The wheel is built from this clone without an isolated build environment (the [test]
extra holds hatchling and hatch-vcs) and installed with ``--no-deps --no-index`` into a
fresh venv layered over the suite's site-packages for the dependencies (`layered_venv`), so
nothing is downloaded. The clone's own editable install is in those site-packages too: the venv's
site-packages come first on ``sys.path``, and the test checks that the ``tradeloom`` the
commands import is the wheel's. The kernels are the clone's (the kernel cache is keyed by
the kernel modules' content, not by where they are installed), so nothing compiles anew.

On x86-64 the wheel also ships portable kernels (`rsi_step`'s, the ``portable_kernels``
fixture):
it is tagged for this Python and platform, and its kernels are loaded with an empty
kernel cache.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.plugin_venv import layered_venv
from tests.portable_kernels import probe, result
from tradeloom import __version__

ROOT = Path(__file__).resolve().parents[1]
_NOT_BUILT = (".git", "runs", "sweeps", "test-artifacts", "build", "dist", "*.egg-info",
              "__pycache__", ".*_cache", ".hypothesis", "_version.py")  # fmt: skip


@pytest.mark.slow
@pytest.mark.xdist_group("kernel_portable")  # the portable kernels are built once per worker
def test_the_wheel_installs_inits_a_project_and_runs_its_strategy(
    tmp_path: Path, portable_kernels: Path | None
) -> None:
    if not all(importlib.util.find_spec(name) for name in ("hatchling", "hatch_vcs")):
        pytest.skip("the build backend (hatchling, hatch-vcs: the [test] extra) is missing")
    dist = tmp_path / "dist"
    # Built from a copy of the clone: a build writes tradeloom/_version.py (hatch-vcs),
    # which the suite's other processes read meanwhile. The copy has no git history: the
    # version is the one the editable install took from it.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*_NOT_BUILT))
    env = {**os.environ, "SETUPTOOLS_SCM_PRETEND_VERSION": __version__}
    # the wheel ships portable kernels (rsi's; a release's: its strategies', warm --portable)
    shipped = None
    if portable_kernels is not None:
        shipped = f"tradeloom/_kernels/{portable_kernels.name}/"
        env["TRADELOOM_WHEEL_KERNELS"] = str(portable_kernels.parent)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(dist), str(source)],
        check=True, capture_output=True, timeout=300, env=env,
    )  # fmt: skip
    [wheel] = dist.glob("tradeloom-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert "tradeloom/_starter/strategies/btc_rf.yaml" in names
    assert "tradeloom/_starter/examples/tradeloom-example-plugin/pyproject.toml" in names
    assert "tradeloom/_version.py" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    if shipped is not None:  # numba's cache files are per Python and platform, as the tag
        assert not wheel.name.endswith("-py3-none-any.whl"), wheel.name
        assert f"{shipped}portable.json" in names
        assert any(n.startswith(f"{shipped}plugins/features/rsi.rsi_step-") for n in names)

    venv = tmp_path / "venv"
    layered_venv(venv)
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
         "-q", "--no-deps", "--no-index", str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONNOUSERSITE"] = "1"
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"

    def run(*argv: str, cwd: Path) -> str:
        done = subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    where = run(
        str(venv / "bin" / "python"), "-c", "import tradeloom; print(tradeloom.__file__)",
        cwd=tmp_path,
    )  # fmt: skip
    assert Path(where.strip()).is_relative_to(venv), f"not the wheel's tradeloom: {where}"
    if shipped is not None:  # an empty kernel cache: the shipped kernels are loaded
        empty = str(tmp_path / "empty")
        python = str(venv / "bin" / "python")
        done = probe(tmp_path, python=python, path=None, TRADELOOM_KERNEL_CACHE=empty)
        assert result(done)["misses"] == 0 and done.stderr == ""

    tradeloom = str(venv / "bin" / "tradeloom")
    run(tradeloom, "init", "demo", cwd=tmp_path)
    # shortened: the starter file is btc_rf.yaml, which test_cli.py runs whole
    short = ["data.bars=1200", "model.walk_forward.train_window=400",
             "model.walk_forward.retrain_every=400", "model.params.n_jobs=1"]  # fmt: skip
    sets = [word for value in short for word in ("--set", value)]
    out = run(tradeloom, "run", "strategy.yaml", *sets, cwd=tmp_path / "demo")
    assert "run directory" in out
    [run_dir] = (tmp_path / "demo" / "runs").glob("btc_rf-*")
    assert (run_dir / "report.html").is_file()
    assert (run_dir / "metrics.json").is_file()
