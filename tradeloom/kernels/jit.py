"""The one decorator for compiled kernels: numba ``njit`` with an on-disk cache that is never stale.

numba caches a compiled function keyed on its own source file. A kernel that calls
kernels of other modules has them inlined, so editing a callee would leave the
caller's cached machine code stale. tradeloom's kernels are therefore keyed on a
stamp of every kernel module's source instead: any change to one recompiles every
kernel once, and a second run of an unchanged install starts without compiling.

The cache is shared by every checkout and install of the same kernel sources for one
user: ``~/.cache/tradeloom/kernels/<stamp>/`` (``$XDG_CACHE_HOME`` if set, or the
directory ``TRADELOOM_KERNEL_CACHE`` names), so a fresh clone, a reinstall, a sweep's
workers and a Dask worker on the same machine load what any of them compiled instead
of compiling it again (numba keys its own cache on each file's path and modification
time, which a new clone changes). ``NUMBA_CACHE_DIR``, when set and writable, is used
instead (a fresh one forces a cold compile). `tradeloom.kernels.cache` checks every
cache file before numba reads it: a damaged cache costs a compile and one warning,
never a run; where no cache folder is usable, kernels are compiled uncached (never
into ``__pycache__`` beside the package's sources).

No ``fastmath``: kernels keep IEEE semantics so that the batch and per-bar drivers
give bit-identical numbers and NaN means "no value". Division follows numpy's error
model (x / 0 is inf or NaN, as IEEE says) rather than raising ZeroDivisionError,
which also lets loops with a division vectorise.

numba itself is imported when the first kernel is compiled, not when a module defining
kernels is imported: every decorator here returns a `LazyKernel` while numba is not
loaded yet, so that ``tradeloom validate`` (which imports the plugins' modules for their
parameter models) answers without numba's half second, and a run makes fewer of numba's
dispatchers that it never calls (~0.3 ms of CPU each: a precomputed model's backtest made
68 instead of 146, and calls 15; `tradeloom.core.prefetch` declares its intrinsic through
`with_numba`, when numba is imported). A lazy kernel becomes numba's dispatcher at its
first call, or when a compiled caller asks numba for its type (or inlines it).

Every kernel has a second form, its Python function as written: `interpret` sets the one
switch that chooses it (`tradeloom.kernels.first_run` sets it for a small first run, whose
kernels are not cached yet). While a kernel is not compiled in this process and the
switch picks its Python form, calling it calls the function itself, and the kernels it
calls are called through their own `LazyKernel`, so the whole tree runs as Python (a
callee already compiled runs compiled: both forms give the same numbers, tested). For
that every decorator here returns a `LazyKernel`, even once numba is imported.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib
import re
import sys
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar, cast

__all__ = [
    "LazyKernel",
    "core_kernel",
    "core_loop",
    "core_stage",
    "every_kernel",
    "interpret",
    "interpreting",
    "kernel",
    "package_stamp",
    "python_form",
    "released_kernel",
    "sources_digest",
    "with_numba",
]

F = TypeVar("F", bound=Callable[..., Any])

_PACKAGE = Path(__file__).resolve().parents[1]


@cache
def package_stamp() -> str:
    """Return a hash of every module that defines kernels (the cache key of every kernel).

    A kernel can only call kernels (and numba's own functions), and every module that
    defines one imports this module; the rest of the package does not matter. numba's
    version and the cache files' format are part of it: either new starts a folder of
    its own.
    """
    from tradeloom.kernels.cache import FORMAT

    head = _numba().__version__.encode() + FORMAT
    return hashlib.sha256(head + sources_digest().encode()).hexdigest()


@cache
def sources_digest(package: Path = _PACKAGE) -> str:
    """Return a hash of the sources of every module of ``package`` that defines kernels.

    Needs no numba: a wheel's build (hatch_build.py) checks with it that the kernels it
    ships were compiled from its sources. The files a wheel ships as data
    (``_starter/``, the examples) are not the package's kernels.
    """
    sources = {
        path.relative_to(package): path.read_bytes()
        for path in package.rglob("*.py")
        if path.relative_to(package).parts[0] != "_starter"
    }
    digest = hashlib.sha256()
    for relative in sorted(_kernel_modules(sources)):
        digest.update(str(relative).encode())
        digest.update(sources[relative])
    return digest.hexdigest()


_IMPORTED = re.compile(
    rb"^\s*(?:from|import)\s+tradeloom((?:\.\w+)*)(?:\s+import\s+([\w, ()]+))?", re.M
)


def _kernel_modules(sources: dict[Path, bytes]) -> set[Path]:
    """Return the modules that define kernels and every package module they import.

    numba freezes a kernel's globals (a layout's column, a reason code) into its machine
    code: a module a kernel module imports changes the kernels too, though it defines
    none (``core/layout.py``, ``core/records.py``, ``core/codes.py``).
    """

    def resolve(dotted: str) -> list[Path]:
        parts = [part for part in dotted.split(".") if part]
        candidates = [Path(*parts, "__init__.py")]
        if parts:
            candidates.append(Path(*parts[:-1], parts[-1] + ".py"))
        return [path for path in candidates if path in sources]

    todo = [path for path, source in sources.items() if b"tradeloom.kernels.jit" in source]
    found: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in found:
            continue
        found.add(path)
        for match in _IMPORTED.finditer(sources[path]):
            dotted = match.group(1).decode()
            todo += resolve(dotted)
            names = match.group(2)
            if names:  # from tradeloom.core import codes, layout
                for name in names.decode().strip("() ").split(","):
                    todo += resolve(f"{dotted}.{name.split(' as ')[0].strip()}")
    return found


@cache
def _numba() -> ModuleType:
    """Import numba (once per process), count its compilations (`tradeloom.kernels.compiles`)
    and run what `with_numba` was given."""
    import numba

    from tradeloom.kernels.compiles import watch

    watch()
    _copy_inlined_scope_once()
    _check_blas_without_scipy_linalg()
    with _with_numba_lock:
        if not _numba_ready:
            for setup in _with_numba:
                setup()
            _with_numba.clear()
            _numba_ready.append(True)
    return numba


_numba_ready: list[bool] = []
_with_numba: list[Callable[[], None]] = []
_with_numba_lock = threading.Lock()


def with_numba(setup: Callable[[], None]) -> None:
    """Call ``setup`` once numba is imported for a kernel (now, if it already is).

    For what numba must know before it compiles a kernel, and which needs numba itself to
    declare (an intrinsic, an ``overload``): declared when a kernel first needs numba, so
    that importing the module which defines it costs no numba (a small run's kernels run
    as Python, `tradeloom.kernels.first_run`, and never import it).
    """
    with _with_numba_lock:
        if not _numba_ready:
            _with_numba.append(setup)
            return
    setup()


def _check_blas_without_scipy_linalg() -> None:
    """Let numba see that BLAS is there without importing the whole of ``scipy.linalg``.

    At its CPU target's set-up (before the first kernel loads), ``numba.np.arraymath``
    asks whether BLAS exists by importing ``scipy.linalg.cython_blas``, which runs
    ``scipy.linalg``'s ``__init__`` first: 0.18 s of CPU that a run whose model needs
    no scipy pays for nothing (numba 0.68.1, scipy 1.17.1). The extension alone loads
    in 2 ms: it is loaded on its own, under its own name, only while arraymath is
    imported, so numba decides what it always decides (BLAS is there; the same machine
    code), and a later ``import scipy.linalg`` (scikit-learn, a kernel's first BLAS
    call) runs in full and gets the same module object (a Cython extension hands its
    module, once made, to every later import). Where scipy.linalg or numba's arraymath
    is already imported, nothing is done.
    """
    if "numba.np.arraymath" in sys.modules or "scipy.linalg" in sys.modules:
        return
    if not _scipy_checked():
        return  # another scipy: numba's own import, whole
    import importlib.machinery
    import importlib.util

    scipy_spec = importlib.util.find_spec("scipy")
    if scipy_spec is None or not scipy_spec.submodule_search_locations:
        return  # no scipy: numba finds no BLAS either way
    name = "scipy.linalg.cython_blas"
    folder = Path(next(iter(scipy_spec.submodule_search_locations)), "linalg")
    loaders = (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES)
    spec = importlib.machinery.FileFinder(str(folder), loaders).find_spec(name)
    if spec is None or spec.loader is None:
        return
    import scipy  # noqa: F401  (the package the extension's module belongs to)

    try:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except ImportError:
        return  # numba's own import then says what is missing, as before
    sys.modules[name] = module
    try:
        importlib.import_module("numba.np.arraymath")
    finally:
        del sys.modules[name]


_SCIPY_CHECKED = ((1, 17),)
"""The scipy releases (major, minor) whose ``cython_blas`` was checked to load alone and
then be the module a later ``import scipy.linalg`` finds (tests/kernels/test_jit.py): a Cython
module that refused a second import would break scikit-learn's, so another release
keeps numba's whole import."""


def _scipy_checked() -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = tuple(int(part) for part in version("scipy").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return False
    return release in _SCIPY_CHECKED


# numba's InlineWorker.inline_ir copies the function it inlines block by block, each
# block with a deep copy of its own: every copy takes the function's whole scope (every
# variable it defines) again. A stage inlined into `tradeloom.core.bar.run_bars` has
# hundreds of blocks and thousands of variables: copying it cost more than typing the
# step (numba 0.68.1). Copied with one memo, the blocks share one copy of the scope, as
# the function's own blocks share one scope; the copy holds the same statements and the
# same names, and inline_ir renames every variable into its caller's scope anyway.
# Applied only where numba's source is the one this was written against.
_INLINE_COPY = "new_block = copy.deepcopy(the_ir.blocks[block_label])"


class _OneMemoPerScope:
    """``copy`` as inline_ir's ``copy_ir`` sees it: one memo for the blocks of one scope."""

    def __init__(self) -> None:
        self._memos: dict[int, dict[int, Any]] = {}

    def deepcopy(self, block: Any) -> Any:
        return copy.deepcopy(block, self._memos.setdefault(id(block.scope), {}))


def _copy_inlined_scope_once() -> None:
    """Wrap numba's inliner so that it copies a scope once, where its source is the one this
    was written against: looked at the first time it inlines (reading numba's source cost
    ~30 ms of CPU, which a run that loads its kernels from the cache never needs)."""
    from numba.core import inline_closurecall

    worker = inline_closurecall.InlineWorker
    inline_ir = worker.inline_ir
    known: list[bool] = []  # whether numba's inliner is the one written against, once

    @functools.wraps(inline_ir)
    def inline_once(*args: Any, **kwargs: Any) -> Any:
        if not known:  # numba compiles under its global lock
            known.append(_copies_each_block(inline_closurecall, inline_ir))
        if not known[0]:
            return inline_ir(*args, **kwargs)  # another numba: its inliner as it is
        previous = inline_closurecall.copy
        inline_closurecall.copy = _OneMemoPerScope()  # type: ignore[assignment]
        try:
            return inline_ir(*args, **kwargs)
        finally:
            inline_closurecall.copy = previous

    worker.inline_ir = inline_once  # type: ignore[method-assign]


def _copies_each_block(module: ModuleType, inline_ir: Callable[..., Any]) -> bool:
    import inspect

    uses = re.findall(r"(?<![\w.])copy\.", inspect.getsource(module))
    return len(uses) == 1 and _INLINE_COPY in inspect.getsource(inline_ir)


def _compile_kernel(func: Callable[..., Any], *, nogil: bool = False) -> Any:
    return _cached(_numba().njit(error_model="numpy", nogil=nogil)(func))


def _cached(dispatcher: Any) -> Any:
    """Return ``dispatcher`` with tradeloom's checked on-disk cache (`tradeloom.kernels.cache`)."""
    from tradeloom.kernels.cache import use_cache

    use_cache(dispatcher, stamp=package_stamp(), package=_PACKAGE)
    return dispatcher


class LazyKernel:
    """A `kernel` defined before numba was imported: numba's dispatcher at first use.

    Calling it, or reading any attribute numba's dispatcher has (numba reads
    ``_numba_type_`` when a compiled function calls this one, or when it is passed to
    one), imports numba and compiles as `kernel` would; its module's global then
    becomes the dispatcher itself. Pickles by name, as a function does.
    """

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        nogil: bool = False,
        compiler: Callable[[Callable[..., Any]], Any] | None = None,
    ) -> None:
        functools.update_wrapper(self, func)
        self._func = func
        self._python = func
        self._compiler = compiler or functools.partial(_compile_kernel, nogil=nogil)
        self._dispatcher: Any = None

    def dispatcher(self) -> Any:
        """Return numba's dispatcher of this kernel (importing numba the first time)."""
        if self._dispatcher is None:
            _resolve_lazy_modules(self._func)
            self._dispatcher = self._compiler(self._func)
            module = sys.modules.get(self._func.__module__)
            if module is not None and getattr(module, self._func.__name__, None) is self:
                setattr(module, self._func.__name__, self._dispatcher)
        return self._dispatcher

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        dispatcher = self._dispatcher
        if dispatcher is not None:  # compiled: numba's dispatcher at once (a tick's commit)
            return dispatcher(*args, **kwargs)
        choose = _python_form
        if choose is not None and (choose is every_kernel or choose(self._func)):
            if _depth.python:  # called by a kernel's Python form: no error model to set
                return self._python(*args, **kwargs)
            return _as_python(self._python, args, kwargs)
        return self.dispatcher()(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_func", "_python", "_compiler", "_dispatcher"):
            raise AttributeError(name)
        return getattr(self.dispatcher(), name)

    def __reduce__(self) -> tuple[Any, ...]:
        return _kernel_by_name, (self._func.__module__, self._func.__qualname__)

    def __repr__(self) -> str:
        return f"<kernel {self._func.__module__}.{self._func.__qualname__} (not compiled yet)>"


def _resolve_lazy_modules(func: Callable[..., Any]) -> None:
    """Replace the lazy modules among ``func``'s globals (``from tradeloom.runtime.lazy
    import numpy as np``) with the modules themselves before numba compiles it: numba
    types a global by its value, so the kernel is typed against numpy itself, as it was
    written and tested, not against a module object of tradeloom's that reads from it."""
    from tradeloom.runtime.lazy import LazyModule

    names = func.__globals__
    for name, value in list(names.items()):
        if isinstance(value, LazyModule):
            names[name] = importlib.import_module(value.__name__)


def _kernel_by_name(module: str, qualname: str) -> Any:
    value: Any = importlib.import_module(module)
    for part in qualname.split("."):
        value = getattr(value, part)
    return value


def kernel(func: F) -> F:
    """Compile ``func`` in nopython mode, cached on disk, on its first call.

    Return a `LazyKernel`: numba is imported, and the kernel compiled, at its first
    compiled use.
    """
    return _kernel(func, nogil=False)


def released_kernel(func: F) -> F:
    """A `kernel` that releases the GIL while it runs (numba's ``nogil``).

    For kernels over arrays of their own that run while another thread of the run
    works: the run folder's text tables (`tradeloom.reporting.csv_table`), written
    while the report is drawn; the metrics' passes over every bar (rolling figures,
    drawdowns, the AUC), computed by two threads at once. Such a kernel touches no
    Python object, so the other threads run Python meanwhile.
    """
    return _kernel(func, nogil=True)


def _kernel(func: F, *, nogil: bool) -> F:
    return _until_numba(func, functools.partial(_compile_kernel, nogil=nogil))


def _until_numba(func: F, compiler: Callable[[Callable[..., Any]], Any]) -> F:
    """Return a `LazyKernel` of ``func``: numba's dispatcher at its first compiled use
    (a kernel never called compiled makes none), its Python form when `interpret` says so."""
    return cast(F, LazyKernel(func, compiler=compiler))


_python_form: Callable[[Callable[..., Any]], bool] | None = None


class _Depth(threading.local):
    python = 0


_depth = _Depth()


def _as_python(func: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    """Call a kernel's Python form under numba's error model: the outermost call of a
    thread silences numpy's warnings (an unsigned hash wrapping round, x / 0.0 in a numpy
    float), which compiled code never gives; the numbers are the same either way."""
    if _depth.python:
        return func(*args, **kwargs)
    import numpy as np

    _depth.python += 1
    try:
        with np.errstate(all="ignore"):
            return func(*args, **kwargs)
    finally:
        _depth.python -= 1


def python_form(of: Callable[..., Any]) -> Callable[[F], F]:
    """Declare the decorated function the Python form of the kernel ``of``, in place of
    ``of``'s own function: for a kernel whose loops would be slow as Python (a forest's
    rows, each walking a hundred trees), the same numbers by whole-array numpy steps.
    Tested bit for bit against the compiled kernel."""

    def register(func: F) -> F:
        cast(LazyKernel, of)._python = func
        return func

    return register


def every_kernel(func: Callable[..., Any]) -> bool:
    """The `interpret` switch that runs every kernel as Python (known as such by a
    kernel's call, which then asks nothing: a small run's core calls a kernel per bar)."""
    return True


def interpreting() -> Callable[[Callable[..., Any]], bool] | None:
    """Return the switch `interpret` set last."""
    return _python_form


def interpret(choose: Callable[[Callable[..., Any]], bool] | None) -> None:
    """Set the switch between each kernel's forms for the calls from now on.

    Args:
        choose: Called with a kernel's function when the kernel is called and
            not compiled in this process yet: True runs that call as Python. None (the
            default): every kernel compiles (or loads from the cache) at its first call.
    """
    global _python_form
    _python_form = choose


def core_kernel(func: F) -> F:
    """A `kernel` for the bar's state machine: compiled without numba's reference counting.

    numba counts references to arrays: every call that passes an array takes and
    releases a count, two atomic operations per array, and a step that calls a
    helper with five arrays at every bar spends far more on them than on its work
    (measured: 25 ns per bar for marking one position, 0.9 ns without). The core's
    kernels never allocate (their arrays are passed in), so they need no counting;
    numba refuses to compile one that allocates, which keeps it that way.

    They are inlined into their callers (numba's ``inline="always"``): the bar's step
    is one function, so values stay in registers across the stages' helpers and no
    call passes its arrays field by field (callgrind, the bench_core workload: a
    third fewer instructions at a bar with a signal).
    """
    return _until_numba(func, _compile_core_kernel)


def _compile_core_kernel(func: Callable[..., Any]) -> Any:
    compile_ = _numba().njit(error_model="numpy", _nrt=False, inline="always")
    return _cached(compile_(func))


def core_loop(func: F) -> F:
    """A `core_kernel` compiled as a function of its own rather than inlined into its caller.

    For a kernel whose loop runs many iterations per call (`tradeloom.core.quiet`):
    inlined into the bar's state machine, its loop shares the registers with every
    stage and reloads its state from the stack at every iteration; called, it keeps
    its state in registers.

    And for the bar step itself (`tradeloom.core.bar.run_bars`), which several entry
    points call once per many bars (`tradeloom.core.state.CoreState.run`, the sweep's
    `tradeloom.sweep.batch_kernel.run_variants`'s kernel): compiled once and called, not a copy
    inlined into each. Inlined, the sweep's first run compiled the whole step a second
    time: 86 s of CPU and a 3.7 GB peak on an empty cache, against 32 s and 0.9 GB
    called (the same results; measured with ``/usr/bin/time`` on the suite's small
    strategy's sweep, 2026-11-24).
    """
    return _until_numba(func, _compile_core_loop)


def _compile_core_loop(func: Callable[..., Any]) -> Any:
    compile_ = _numba().njit(error_model="numpy", _nrt=False)
    return _cached(compile_(func))


def core_stage(func: F) -> F:
    """A `core_loop` for a stage only some strategies use: called, never inlined.

    The portfolio's ranking, partial take-profits and adds, a perpetual's funding, the
    daily-loss clock, the stops that follow a position: each runs only where a strategy
    asks for it, yet inlined, each would be typed and optimised again inside the bar's
    step (`tradeloom.core.bar.run_bars`), which every strategy's first run compiles.
    Called, the step is smaller: compiling it and what it calls took 45 s of CPU instead
    of 57 s on an empty cache (the step of benchmarks/bench_core.py, 2026-11-25), and its
    1M bars ran as fast (9.7 ms against 10.4 ms, the best of 9; the stages it calls were
    not in use there). A strategy that uses one pays a call per bar, a few nanoseconds.
    """
    return core_loop(func)
