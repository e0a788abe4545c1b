"""`tradeloom.kernels.jit.kernel` before numba is loaded: a lazy kernel, numba's at first use."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from tradeloom.kernels import cache as kernel_cache
from tradeloom.kernels import jit
from tradeloom.kernels.jit import LazyKernel

_PROBE = textwrap.dedent(
    """
    import pickle, sys
    import numpy as np
    from tradeloom.kernels.jit import LazyKernel
    from tradeloom.plugins.features import rsi, smoothing
    assert "numba" not in sys.modules, "importing kernels imported numba"
    assert isinstance(rsi.rsi_step, LazyKernel) and isinstance(smoothing.wilder_step, LazyKernel)
    assert pickle.loads(pickle.dumps(rsi.rsi_step)) is rsi.rsi_step
    state = rsi.new_rsi_state()
    values = [rsi.rsi_step(state, c, 3) for c in (1.0, 2.0, 3.0, 2.5, 4.0)]
    assert "numba" in sys.modules
    # the module's global is numba's dispatcher from then on; compiling rsi_step (an
    # empty cache) typed the lazy kernels it calls through their _numba_type_
    assert type(rsi.rsi_step).__name__ == "CPUDispatcher"
    assert type(smoothing.wilder_step).__name__ == "CPUDispatcher"
    print(values)
    """
)


def test_kernels_import_numba_at_their_first_call_and_give_the_compiled_numbers(
    tmp_path: Path,
) -> None:
    out = _probe(_PROBE, tmp_path)  # nothing cached: it compiles
    assert out.strip() == "[nan, nan, nan, 80.0, 89.47368421052632]"


def _probe(code: str, cache: Path) -> str:
    """Run ``code`` in a new interpreter with numba's cache in ``cache``; return its output."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_lazy_kernel_is_called_pickled_and_read_like_the_dispatcher() -> None:
    def _twice(x: float) -> float:
        return 2.0 * x

    lazy = LazyKernel(_twice)
    assert lazy.__name__ == "_twice"
    assert "not compiled yet" in repr(lazy)
    assert lazy(np.float64(1.5)) == 3.0
    assert lazy.py_func is _twice  # numba's dispatcher's own attribute
    assert lazy.signatures  # compiled for the float call


def test_a_kernel_whose_module_reads_numpy_lazily_compiles_with_numpy_itself() -> None:
    """A module may read numpy through `tradeloom.runtime.lazy` (validate imports it for its
    components and makes no array): numba types a global by its value, so the lazy module
    is swapped for numpy itself before the kernel is compiled."""
    import numba

    from tradeloom.runtime import lazy

    namespace = {"np": lazy.numpy}  # as `from tradeloom.runtime.lazy import numpy as np`
    exec("def _count(n):\n    return np.ones(n).sum() + n\n", namespace)
    compiled = LazyKernel(namespace["_count"], compiler=numba.njit)  # type: ignore[arg-type]
    assert compiled(3) == 6.0
    assert type(compiled.dispatcher()).__name__ == "CPUDispatcher"
    assert namespace["np"] is np  # the module's global is numpy from then on


def test_a_released_kernel_lets_go_of_the_gil_and_a_kernel_keeps_it() -> None:
    """The run folder's text kernels run in a worker beside the report (issue 47)."""

    def _sum(x: np.ndarray) -> float:
        return float(x.sum())

    for lazy, nogil in ((LazyKernel(_sum, nogil=True), True), (LazyKernel(_sum), False)):
        assert lazy(np.arange(3.0)) == 3.0
        assert lazy.targetoptions.get("nogil", False) is nogil
    released = jit.released_kernel(_sum)  # numba is loaded: the same
    assert released(np.arange(4.0)) == 6.0
    assert released.targetoptions["nogil"] is True


def test_a_lazy_core_kernel_compiles_as_the_core_kernel_it_stands_for() -> None:
    def _add(x: float) -> float:
        return x + 1.0

    lazy = LazyKernel(_add, compiler=jit._compile_core_kernel)  # before numba: the core's
    now = jit.core_kernel(_add)  # numba is loaded: lazy still (its Python form is kept)
    assert isinstance(now, LazyKernel)
    assert type(now.dispatcher()).__name__ == "CPUDispatcher"
    for options in (lazy.targetoptions, now.targetoptions):
        assert options["inline"] == "always" and options["_nrt"] is False
    looped = LazyKernel(_add, compiler=jit._compile_core_loop)
    assert looped(np.float64(1.5)) == 2.5
    assert "inline" not in looped.targetoptions and looped.targetoptions["_nrt"] is False


_CACHE_PROBE = textwrap.dedent(
    """
    import json
    from tradeloom.kernels.jit import package_stamp
    from tradeloom.plugins.features import rsi
    state = rsi.new_rsi_state()
    values = [rsi.rsi_step(state, c, 3) for c in (1.0, 2.0, 3.0, 2.5, 4.0)]
    stats = rsi.rsi_step.stats
    print(json.dumps({
        "file": rsi.__file__,
        "stamp": package_stamp(),
        "hits": sum(stats.cache_hits.values()),
        "misses": sum(stats.cache_misses.values()),
        "values": repr(values),
    }))
    """
)


def _probe_cache(package_parent: Path, cache: Path) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env |= {"TRADELOOM_KERNEL_CACHE": str(cache), "PYTHONPATH": str(package_parent)}
    done = subprocess.run(
        [sys.executable, "-c", _CACHE_PROBE],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
        cwd=package_parent,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.slow
def test_a_second_checkout_of_the_same_sources_loads_the_kernels_the_first_compiled(
    tmp_path: Path,
) -> None:
    """The kernel cache is per user and keyed on the sources, not on a checkout's path."""
    package = Path(__file__).resolve().parents[2] / "tradeloom"
    ignore = shutil.ignore_patterns("__pycache__")
    first, second = tmp_path / "clone-a", tmp_path / "clone-b"
    for clone in (first, second):
        shutil.copytree(package, clone / "tradeloom", ignore=ignore)
    cache = tmp_path / "kernels"

    compiled = _probe_cache(first, cache)
    assert compiled["file"] == str(first / "tradeloom" / "plugins" / "features" / "rsi.py")
    assert compiled["misses"] == 1 and compiled["hits"] == 0
    stamp = str(compiled["stamp"])
    [folder] = cache.iterdir()
    assert folder.name == stamp[:24]
    assert list((folder / "plugins" / "features").glob("rsi.rsi_step-*.nbi"))

    loaded = _probe_cache(second, cache)
    assert loaded["file"] == str(second / "tradeloom" / "plugins" / "features" / "rsi.py")
    assert (loaded["stamp"], loaded["hits"], loaded["misses"]) == (stamp, 1, 0)
    assert loaded["values"] == compiled["values"] == "[nan, nan, nan, 80.0, 89.47368421052632]"

    # an edited kernel module is another stamp: compiled again, in a folder of its own
    rsi_file = second / "tradeloom" / "plugins" / "features" / "rsi.py"
    rsi_file.write_text(rsi_file.read_text() + "\n# edited\n")
    edited = _probe_cache(second, cache)
    assert edited["stamp"] != stamp
    assert (edited["hits"], edited["misses"]) == (0, 1)
    assert len(list(cache.iterdir())) == 2


def test_stamps_unused_for_weeks_are_pruned_beyond_the_newest(tmp_path: Path) -> None:
    root = tmp_path / "kernels"
    keep = root / "current"
    now = time.time()
    ages = {"fresh": 1, "week": 7, "month-a": 30, "month-b": 31, "month-c": 32}
    for name, days in ages.items():
        (root / name / "core").mkdir(parents=True)
        os.utime(root / name, (now - days * 86400, now - days * 86400))
    keep.mkdir()

    kernel_cache._prune(root, keep=keep)

    # the newest KEEP_STAMPS (with the one in use) stay, and so does what is recent
    assert kernel_cache.KEEP_STAMPS == 4
    assert sorted(p.name for p in root.iterdir()) == ["current", "fresh", "month-a", "week"]


def test_the_stamp_covers_what_kernels_import() -> None:
    """numba freezes a kernel's globals into its code: a module of constants that a kernel
    module imports (a layout's column, a reason code) is part of the stamp, though it
    defines no kernel; a module no kernel module reaches is not."""
    sources = {
        Path("core/bar.py"): b"from tradeloom.kernels.jit import core_kernel\n"
        b"from tradeloom.core import codes, layout\n"
        b"from tradeloom.core.rows import (\n    emit,\n)\n",
        Path("core/codes.py"): b"EXIT = 3\n",
        Path("core/layout.py"): b"from tradeloom.core.records import FILL\n",
        Path("core/records.py"): b"FILL = 7\n",
        Path("core/rows.py"): b"import numpy\n",
        Path("core/__init__.py"): b"",
        Path("__init__.py"): b"",
        Path("reporting/report.py"): b"from tradeloom.core.layout import FILL\n",
    }
    assert jit._kernel_modules(sources) == {
        Path(name)
        for name in (
            "core/bar.py",
            "core/codes.py",
            "core/layout.py",
            "core/records.py",
            "core/rows.py",
            "core/__init__.py",
        )
    }
    package = Path(jit.__file__).parents[1]
    real = {path.relative_to(package): path.read_bytes() for path in package.rglob("*.py")}
    covered = jit._kernel_modules(real)
    assert {Path("core/layout.py"), Path("core/records.py"), Path("core/codes.py")} <= covered


def _branches(x: float) -> float:
    total = 0.0
    if x > 0.0:
        a = x * 2.0
        total += a
    if x > 1.0:
        b = x - 1.5
        total += b * b
    if x > 2.0:
        c = x / 4.0
        total -= c
    return total


def test_an_inlined_functions_blocks_are_copied_with_one_copy_of_its_scope(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from numba.core import inline_closurecall
    from numba.core.compiler import run_frontend

    numba = jit._numba()  # wraps the inliner; numba 0.68's source is the one written for
    assert inline_closurecall.InlineWorker.inline_ir.__wrapped__ is not None
    blocks = run_frontend(_branches).blocks
    copier = jit._OneMemoPerScope()
    copies = {label: copier.deepcopy(block) for label, block in blocks.items()}
    scopes = {id(block.scope) for block in copies.values()}
    assert len(blocks) > 4 and len(scopes) == 1
    assert scopes != {id(block.scope) for block in blocks.values()}
    for label, block in blocks.items():  # the same statements, the same names
        assert [str(s) for s in copies[label].body] == [str(s) for s in block.body]
    callee = numba.njit(inline="always")(_branches)

    def caller(x: float) -> float:
        return callee(x) + 1.0

    compiled = numba.njit(caller)
    copied: list[object] = []
    deepcopy = jit._OneMemoPerScope.deepcopy

    def counted(self: jit._OneMemoPerScope, block: object) -> object:
        copied.append(block)
        return deepcopy(self, block)

    monkeypatch.setattr(jit._OneMemoPerScope, "deepcopy", counted)
    assert [compiled(x) for x in (0.5, 1.5, 3.0)] == [caller(x) for x in (0.5, 1.5, 3.0)]
    assert len(copied) >= len(blocks)  # the inlining copied the callee's blocks so
    assert inline_closurecall.copy is copy  # numba's own copy once the inlining is done


_CORE_PROBE = textwrap.dedent(
    """
    import linecache, sys
    from tradeloom.kernels.jit import LazyKernel
    from tradeloom.core import accounting, exits, orders, portfolio, risk, rows
    assert "numba" not in sys.modules, "importing the core's kernels imported numba"
    modules = [m for name, m in sys.modules.items() if name.startswith("tradeloom.core.")]
    lazy = [v for m in modules for v in vars(m).values() if isinstance(v, LazyKernel)]
    from tradeloom.kernels import jit
    jit._numba()
    from numba.core import inline_closurecall
    # a run that loads its kernels from the cache inlines nothing: numba's source unread
    assert inline_closurecall.__file__ not in linecache.cache
    print(len(lazy))
    """
)


def test_the_cores_kernels_are_lazy_and_numbas_inliner_is_read_only_to_inline(
    tmp_path: Path,
) -> None:
    """A run makes numba's dispatchers of the kernels it calls only, and reads numba's
    source (to check the inliner it wraps) only when it compiles."""
    assert int(_probe(_CORE_PROBE, tmp_path)) > 50


_BLAS_PROBE = textwrap.dedent(
    """
    import sys
    import numpy as np
    from tradeloom.kernels import jit
    numba = jit._numba()
    from numba.np import arraymath
    assert arraymath._HAVE_BLAS, "numba decided there is no BLAS"
    assert "scipy.linalg" not in sys.modules, "numba's BLAS check imported scipy.linalg"
    assert "scipy.linalg.cython_blas" not in sys.modules
    dot = numba.njit(lambda a, b: np.dot(a, b))  # BLAS at its first call
    print(dot(np.arange(3.0), np.arange(1.0, 4.0)))
    import scipy.linalg
    assert scipy.linalg.cython_blas.__name__ == "scipy.linalg.cython_blas"
    print(scipy.linalg.blas.ddot(np.arange(3.0), np.arange(1.0, 4.0)))
    """
)


def test_numba_finds_blas_without_scipy_linalg_which_imports_in_full_later(
    tmp_path: Path,
) -> None:
    if not jit._scipy_checked():
        pytest.skip("another scipy release: numba imports scipy.linalg whole (next test)")
    assert _probe(_BLAS_PROBE, tmp_path).split() == ["8.0", "8.0"]


def test_a_scipy_release_not_checked_keeps_numbas_whole_import(tmp_path: Path) -> None:
    probe = """
    import sys
    from tradeloom.kernels import jit
    jit._SCIPY_CHECKED = ()
    jit._numba()
    from numba.np import arraymath
    print(arraymath._HAVE_BLAS, "scipy.linalg" in sys.modules)
    """
    assert _probe(textwrap.dedent(probe), tmp_path).split() == ["True", "True"]
