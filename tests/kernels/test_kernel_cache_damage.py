"""A damaged kernel cache costs a compile and one warning line, never a run.

A cache is warmed once in a temporary folder by a small command that calls one kernel
(`rsi_step`, which calls two more); each case damages a copy of it, as a crash, a full
disk, another program or a user would, and runs the command again: the same numbers,
at most one warning line, and no file in the package.

Read-only and full disks are simulated inside the child process (a ``sitecustomize``
on its path): the suite may run as root, whom a read-only mode does not stop, and
mounting a small tmpfs needs privileges a CI runner may not have. Under a "full disk"
the cache's files are written to ``/dev/full``, so that the error is the kernel's own
ENOSPC; under "read-only" every write under the cache folder fails with EROFS, as on
a read-only mount (the folder is also made read-only, which is enough for a user).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from tradeloom.kernels.cache import FORMAT

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "tradeloom"

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("kernel_cache_damage")]

_PROBE = textwrap.dedent(
    """
    import json
    from tradeloom.engine.logs import configure_logging
    configure_logging("warning", json=True)
    from tradeloom.plugins.features import rsi
    state = rsi.new_rsi_state()
    values = [rsi.rsi_step(state, c, 3) for c in (1.0, 2.0, 3.0, 2.5, 4.0)]
    stats = rsi.rsi_step.stats
    print(json.dumps({"values": repr(values), "misses": sum(stats.cache_misses.values())}))
    """
)

REFERENCE = "[nan, nan, nan, 80.0, 89.47368421052632]"

_FAULTS = textwrap.dedent(
    """
    # Injected by tests/kernels/test_kernel_cache_damage.py: the cache folder is on a full disk
    # (its files are written to /dev/full) or on a read-only one (EROFS).
    import builtins, errno, os

    _ROOT = os.environ["KERNEL_CACHE_FAULT_ROOT"]
    _FULL = os.environ["KERNEL_CACHE_FAULT"] == "full"
    _WRITES = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def _under(path):
        try:
            return os.path.abspath(os.fsdecode(path)).startswith(_ROOT)
        except TypeError:
            return False

    def _refuse(path):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))

    _open = builtins.open

    def open(file, mode="r", *args, **kwargs):
        if _under(file) and set(mode) & set("wax+"):
            if _FULL:
                return _open("/dev/full", mode.replace("x", "w"), *args, **kwargs)
            _refuse(file)
        return _open(file, mode, *args, **kwargs)

    builtins.open = open

    if not _FULL:
        _os_open = os.open

        def _checked_open(path, flags, *args, **kwargs):
            if flags & _WRITES and _under(path):
                _refuse(path)
            return _os_open(path, flags, *args, **kwargs)

        os.open = _checked_open

        def _refusing(original):
            def call(path, *args, **kwargs):
                if _under(path):
                    _refuse(path)
                return original(path, *args, **kwargs)
            return call

        for _name in ("mkdir", "rmdir", "unlink", "remove", "utime", "replace", "rename"):
            setattr(os, _name, _refusing(getattr(os, _name)))
    """
)


def _files(folder: Path) -> set[str]:
    """The package's files but Python's bytecode (the suite keeps it: tests/conftest.py),
    its ``__pycache__`` folders included: a kernel written there would still count."""
    return {
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.suffix != ".pyc" and not (p.name == "__pycache__" and p.is_dir())
    }


def _run(cache_home: Path, tmp_path: Path, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "TRADELOOM_K"))}
    env |= {"XDG_CACHE_HOME": str(cache_home), "PYTHONPATH": str(ROOT)} | env_extra
    return subprocess.run(
        [sys.executable, "-c", _PROBE],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
        cwd=tmp_path,
    )


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a cache home holding the probe's kernels (compiled once for the module)."""
    home = tmp_path_factory.mktemp("warm-cache")
    done = _run(home, home)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert json.loads(done.stdout)["values"] == REFERENCE
    return home


def _entry(home: Path, pattern: str) -> Path:
    [stamp] = (home / "tradeloom" / "kernels").iterdir()
    [path] = (stamp / "plugins" / "features").glob(pattern)
    return path


def _index(home: Path) -> Path:
    return _entry(home, "rsi.rsi_step-*.nbi")


def _data(home: Path) -> Path:
    return _entry(home, "rsi.rsi_step-*.nbc")


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _random_bytes(path: Path) -> None:
    path.write_bytes(random.Random(44).randbytes(64))


def _random_object_code(path: Path) -> None:
    # 64 random bytes over the machine code's header, the rest intact: numba unpickles
    # it and hands it to LLVM, which aborts the process (exit 134) without the digest
    data = bytearray(path.read_bytes())
    start = data.find(b"\x7fELF")
    assert start > 0
    data[start : start + 64] = random.Random(44).randbytes(64)
    path.write_bytes(bytes(data))


def _foreign(path: Path) -> None:
    # a whole, valid entry of another kernel: its own digest matches, not this name's
    path.write_bytes(next(path.parent.glob("smoothing.wilder_step-*.nbc")).read_bytes())


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _link_to_dev_zero(path: Path) -> None:
    path.unlink()
    path.symlink_to("/dev/zero")


def _directory(path: Path) -> None:
    path.unlink()
    (path / "inside").mkdir(parents=True)


DAMAGES: dict[str, tuple[Callable[[Path], Path], Callable[[Path], None]]] = {
    "truncated-index": (_index, _truncate),
    "truncated-data": (_data, _truncate),
    "random-bytes-data": (_data, _random_bytes),
    "random-object-code": (_data, _random_object_code),
    "foreign-data": (_data, _foreign),
    "fifo-index": (_index, _fifo),
    "dev-zero-data": (_data, _link_to_dev_zero),
    "directory-data": (_data, _directory),
}


def _one_warning(stderr: str, says: str) -> None:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    event = json.loads(lines[0])
    assert (event["event"], event["level"]) == ("kernel_cache", "warning")
    assert says in event["problem"], event["problem"]


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_entry_is_compiled_again_with_one_warning(
    damage: str, warm_cache: Path, tmp_path: Path
) -> None:
    home = tmp_path / "cache"
    shutil.copytree(warm_cache, home, symlinks=True)
    where, damage_it = DAMAGES[damage]
    path = where(home)
    damage_it(path)
    package_before = _files(PACKAGE)

    done = _run(home, tmp_path)

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["values"], result["misses"]) == (REFERENCE, 1)
    _one_warning(done.stderr, f"discarded the kernel cache entry {path}")
    # replaced by a good entry: the next run loads it
    assert stat.S_ISREG(path.lstat().st_mode)
    assert path.read_bytes().startswith(FORMAT)
    assert _files(PACKAGE) == package_before


@pytest.mark.parametrize("fault", ["read-only", "full"])
def test_a_cache_that_cannot_be_written_leaves_the_run_uncached_with_one_warning(
    fault: str, warm_cache: Path, tmp_path: Path
) -> None:
    home = tmp_path / "cache"
    shutil.copytree(warm_cache, home)
    stamp_folder = _index(home).parents[2]
    _index(home).unlink()  # this kernel must be compiled, and cannot be saved
    _data(home).unlink()
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(_FAULTS)
    folders = [p for p in home.rglob("*") if p.is_dir()]
    if fault == "read-only":
        for folder in folders:
            folder.chmod(0o555)
    package_before = _files(PACKAGE)
    try:
        done = _run(
            home,
            tmp_path,
            PYTHONPATH=f"{hooks}{os.pathsep}{ROOT}",
            KERNEL_CACHE_FAULT="full" if fault == "full" else "read-only",
            KERNEL_CACHE_FAULT_ROOT=str(home),
        )
    finally:
        for folder in folders:
            folder.chmod(0o755)

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["values"], result["misses"]) == (REFERENCE, 1)
    reason = "No space left on device" if fault == "full" else "Read-only file system"
    _one_warning(done.stderr, f"cannot write the kernel cache in {stamp_folder}")
    assert reason in done.stderr
    assert not list(stamp_folder.rglob("rsi.rsi_step-*"))  # nothing half-written left
    assert _files(PACKAGE) == package_before


def test_with_no_usable_cache_folder_kernels_compile_uncached_and_never_in_the_package(
    tmp_path: Path,
) -> None:
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    package_before = _files(PACKAGE)

    done = _run(tmp_path, tmp_path, TRADELOOM_KERNEL_CACHE=str(not_a_folder / "kernels"))

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["values"] == REFERENCE
    _one_warning(done.stderr, f"no usable kernel cache folder ({not_a_folder / 'kernels'}: ")
    assert _files(PACKAGE) == package_before
    assert not list(PACKAGE.rglob("*.nb[ic]"))
