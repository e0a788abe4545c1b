"""A first run in seconds: a small run whose kernels are not cached runs their Python form.

Compiling the kernels a strategy uses takes tens of seconds of CPU, once per checkout
(then `tradeloom.kernels.cache` serves them). A small run does not need them compiled:
run as Python, the README's strategy takes seconds more than compiled. So
``tradeloom run`` (a backtest) decides once its bars are loaded (`sized`), with
``TRADELOOM_FIRST_RUN`` (`ENV`):

- ``auto`` (the default): a run so small that its kernels cost less as Python than
  importing numba and loading them compiled would (`python_is_cheaper`: a measured cost per
  bar x symbol against numba's measured start) runs every kernel as its Python form,
  cached or not, and never imports numba. A larger run of at most `SMALL_RUN` bars x
  symbols calls each kernel that the cache does not hold as its Python form (the jit
  module's `interpret`), and starts one process in the background
  (`tradeloom.cli.background_compile`: detached, ``nice 19``, one at a time on the machine
  by a lock in the cache folder) that runs ``tradeloom warm`` on the same command, so that
  the next run loads them compiled. A larger run compiles in process, as interpreted it
  would be far slower.
- ``compile``: every kernel compiles in process at its first call (the suite's mode).
- ``python``: every kernel runs as Python, whatever the cache holds.

A paper or live run (``tradeloom run --mode paper|live``, and the agent's paper runs, which
are that command) begins the same plan, ``lasting`` (`begin`): its bars have no end, so it
is never cheaper as Python and a kernel the cache does not hold starts the background
compile, of ``tradeloom warm FILE --driver per-bar`` (the per-bar driver steps the kernels a
tick steps, with the same signatures: a paper run after that warm compiled none). It
reaches its first bar without compiling, and does not stay on the Python form: at each
bar boundary (`boundary`, the run's first stage, `tradeloom.live.lifecycle.kernel_forms`),
once the compile has ended, each kernel the cache now holds runs compiled from the next
bar on; one that it still does not hold stays Python (after a compile started by an
earlier run, of its own command, its next call starts this run's own, once). stderr says
both.

The Python API's backtest (`tradeloom.api.Strategy.backtest`) chooses by the same rule
(`chosen_forms`), a notebook's first call as fast as the command's first run; a strategy
whose bars the command could not read again (a DataFrame, a mapping's temporary file)
writes them for the background compile into a folder of the kernel cache's root that the
compile removes when it ends (`INPUTS`).

Both forms give the same numbers, bit for bit (tests/kernels/test_first_run.py runs strategies
both ways and compares every file; tests/kernels/test_first_run_live.py a paper run as Python,
and one that switches at a bar, against the compiled run). A run that compiles, or compiles
in the background, says so on stderr; a run cheaper as Python is an ordinary run and says
nothing.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tradeloom.errors import UserError

__all__ = [
    "ENV",
    "INPUTS",
    "LOCK",
    "MODES",
    "NUMBA_START_SECONDS",
    "PYTHON_CELL_SECONDS",
    "PYTHON_FEATURE_SECONDS",
    "RECORD",
    "SMALL_RUN",
    "Rerun",
    "begin",
    "boundary",
    "chosen_forms",
    "end",
    "mode",
    "python_is_cheaper",
    "sized",
]

ENV = "TRADELOOM_FIRST_RUN"
MODES = ("auto", "compile", "python")

SMALL_RUN = 200_000
"""The most bars x symbols a run may have to use the kernels' Python form in ``auto``.
The README's strategy (20,000 bars) took 5 to 8 s more CPU as Python than compiled and
warm (docs/performance.md, "A first run in seconds"); ten times its bars would cost
about what the compile it spares does (50 to 135 s of CPU, as loaded as the machine)."""

NUMBA_START_SECONDS = 0.57
"""CPU seconds a small run's kernels cost compiled: importing numba (with the llvmlite and
scipy parts it imports), loading from the cache the 15 kernels a CSV strategy with a
precomputed model calls, and their few milliseconds of work at 10,000 bars. Measured by
``python benchmarks/bench_python_forms.py`` (0.573 s, the median of 5 runs at load 10 to
11, 2026-11-28; an earlier run of it, 0.685 s; docs/performance.md, "A small run without
numba")."""

PYTHON_CELL_SECONDS = 28e-6
"""CPU seconds one bar x symbol costs as the kernels' Python forms, the features' aside:
the bar's stages, the metrics' passes, the journal's digests, the tables' lines. Measured
by the same script (28.2 us), whose strategy trades as often as the README's (one
position in about 35 bars)."""

PYTHON_FEATURE_SECONDS = 11e-6
"""CPU seconds each feature adds to a bar x symbol as Python (the script's one
``log_return``, its stepped window: 11.1 us)."""


def python_is_cheaper(cells: int, features: int = 1) -> bool:
    """Return whether a run of ``cells`` bars x symbols and ``features`` features costs
    less with its kernels as Python than compiled (`NUMBA_START_SECONDS`): ``cells`` times
    `PYTHON_CELL_SECONDS` and ``features`` times `PYTHON_FEATURE_SECONDS` (one feature: even
    at about 14,600 bars of one market)."""
    return _python_seconds(cells, features) < NUMBA_START_SECONDS


def _python_seconds(cells: int, features: int) -> float:
    return cells * (PYTHON_CELL_SECONDS + features * PYTHON_FEATURE_SECONDS)


LOCK = "compiling.lock"
"""The file in the kernel cache's root whose lock the background compile holds while it
runs (its pid written in it): one at a time on the machine."""

INPUTS = "TRADELOOM_COMPILE_INPUTS"
"""The environment variable naming the folder of a background compile's inputs (its
strategy file, its bars), which it removes when it ends."""

Rerun = Sequence[str] | Callable[[Path], Sequence[str]]
"""The ``tradeloom warm`` arguments that compile what a run uses; or, for a run whose
inputs the command cannot read again, a function that writes them into the folder it is
given and returns the arguments that read them there (called only when a background
compile starts)."""

RECORD = "background-compile.json"
"""The file in the kernel cache's root where the last background compile says what it
compiled and how long that took (`tradeloom.cli.background_compile`)."""


def mode() -> str:
    """Return ``TRADELOOM_FIRST_RUN`` (default ``auto``).

    Raises:
        UserError: Another value.
    """
    value = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if value not in MODES:
        raise UserError(f"{ENV}={os.environ[ENV]!r}: expected one of {', '.join(MODES)}")
    return value


@dataclass
class _Plan:
    """One run's choice between the forms."""

    mode: str
    rerun: Rerun
    """The ``tradeloom warm`` arguments that compile what this run uses (`Rerun`)."""
    lasting: bool = False
    """A paper or live run: never cheaper as Python (its bars have no end), and its kernels
    switch to their compiled form at a bar boundary once the cache holds them (`boundary`)."""
    size: int | None = None
    held: dict[Callable[..., Any], bool] = field(default_factory=dict)
    cheaper: bool = False
    """The run is so small that every kernel runs as Python (`python_is_cheaper`)."""
    python_seconds: float = 0.0
    """The estimated cost as Python of every universe the run loaded (a portfolio file's
    strategies each load one): the run is cheaper as Python while the sum is."""
    interpreted: bool = False
    started: bool = False
    compiling: bool = False
    """A background compile was running when the run began: what it has cached so far
    may be a part of a kernel's signatures, so the run uses none of it."""
    pid: int | None = None
    """The background compile this run waits for (its own, or an earlier run's)."""
    own: bool = False
    """That compile was started by this run (for its command)."""
    waiting: bool = False
    """A lasting run runs a kernel as Python and waits for a background compile to end."""

    def python_form(self, func: Callable[..., Any]) -> bool:
        if self.cheaper or self.mode == "python":
            return True
        if self.compiling and (self.size is None or self.size <= SMALL_RUN):
            self.interpreted = True
            self.held[func] = False  # asked again once the compile has ended
            if self.size is not None:
                self.start()
            return True
        if self.size is not None and self.size > SMALL_RUN:
            return False
        held = self.held.get(func)
        if held is None:
            held = self.held[func] = _cache_holds(func)
        if not held:
            self.interpreted = True
            if self.size is not None:
                self.start()
        return not held

    def start(self) -> None:
        if self.started:
            return
        self.started = True
        try:
            pid, earlier = _launch(self.rerun)
        except OSError as exc:
            print(f"kernels not compiled in the background ({exc}); this run uses their "
                  "Python form", file=sys.stderr)  # fmt: skip
            return
        self.pid, self.own, self.waiting = pid, not earlier, self.lasting
        by = ", started by an earlier run" if earlier else ""
        until = ", and their compiled form from the first bar after" if self.lasting else ""
        print(f"kernels compiling in the background (pid {pid}{by}); this run uses their "
              f"Python form{until}", file=sys.stderr, flush=True)  # fmt: skip

    def boundary(self) -> None:
        if _compiling():
            return
        self.compiling = self.waiting = False  # what the cache holds now is whole
        python = [func for func, held in list(self.held.items()) if not held]
        now = [func for func in python if _cache_holds(func)]
        for func in python:
            # cached: its compiled form, loaded from the cache, from the next call on; not:
            # asked again if it is called again (a kernel inlined into one now compiled,
            # which holds no entry of its own, is not)
            self.held.pop(func)
        for func in now:
            self.held[func] = True
        if not self.own:
            # an earlier run's compile, of its own command: a kernel this run calls that it
            # did not cache starts this run's own (`start`), once
            self.started = False
        if now:
            print(f"kernels compiled in the background: this run uses {len(now)} of them "
                  "compiled from its next bar", file=sys.stderr, flush=True)  # fmt: skip
        elif self.own:
            from tradeloom.kernels.cache_root import kernel_cache_root

            log = kernel_cache_root() / "background-compile.log"
            print(f"the background compile (pid {self.pid}) cached none of the kernels this "
                  f"run uses as Python (see {log}); they keep their Python form",
                  file=sys.stderr, flush=True)  # fmt: skip


_plan: _Plan | None = None


def begin(rerun: Rerun, *, lasting: bool = False) -> None:
    """Choose the kernels' forms for the run about to start (`mode`).

    Args:
        rerun: The arguments of ``tradeloom warm`` that compile what the run uses (its
            file, ``--driver``, every ``--set``), for the background compile (`Rerun`).
        lasting: A paper or live run: never cheaper as Python, and each kernel switches
            to its compiled form at a bar boundary once the background compile has
            cached it (`boundary`).
    """
    global _plan
    from tradeloom.kernels import jit

    chosen = mode()
    if chosen == "compile":
        _plan = None
        jit.interpret(None)
        return
    rerun = rerun if callable(rerun) else tuple(rerun)
    _plan = _Plan(chosen, rerun, lasting, compiling=chosen == "auto" and _compiling())
    jit.interpret(jit.every_kernel if chosen == "python" else _plan.python_form)


def sized(cells: int, features: int = 1) -> None:
    """Tell the run's plan its size (bars x symbols) and its features, once its bars are
    loaded: a run cheaper as Python (`python_is_cheaper`, every universe it loaded counted)
    runs every kernel as Python; a large run compiles from now on; a small one that ran a
    kernel as Python starts the background compile."""
    plan = _plan
    if plan is None or plan.mode != "auto":
        return
    plan.size = cells
    plan.python_seconds += _python_seconds(cells, features)
    plan.cheaper = not plan.lasting and plan.python_seconds < NUMBA_START_SECONDS
    from tradeloom.kernels import jit

    if cells > SMALL_RUN:
        jit.interpret(None)
        return
    if jit.interpreting() in (plan.python_form, jit.every_kernel):  # not compiling already
        # cheaper as Python: every kernel is, without asking the plan at each call
        jit.interpret(jit.every_kernel if plan.cheaper else plan.python_form)
    if plan.interpreted and not plan.cheaper:
        plan.start()


def boundary() -> None:
    """At a paper or live run's bar boundary: once the background compile has ended, run
    each kernel the cache now holds compiled from here on, and say so on stderr (one line).

    Both forms give the same numbers bit for bit over the same state, which lives in the
    run's arrays, not in a kernel: switching between two bars changes no number
    (tests/kernels/test_first_run_live.py switches in the middle of a paper run). A kernel
    the cache still does not hold keeps its Python form; after a compile started by an
    earlier run, of its own command, its next call starts this run's own. Costs nothing
    when no kernel runs as Python (a warm cache) and one lock probe a bar while a compile
    runs.
    """
    plan = _plan
    if plan is not None and plan.waiting:
        plan.boundary()


def end() -> None:
    """Every kernel compiles again from now on (the run is over)."""
    global _plan
    from tradeloom.kernels import jit

    _plan = None
    jit.interpret(None)


@contextmanager
def chosen_forms(rerun: Rerun) -> Iterator[None]:
    """Run the block (a backtest) with its kernels' forms chosen (`begin`), and compile
    every kernel again after it (`end`)."""
    begin(rerun)
    try:
        yield
    finally:
        end()


def _cache_holds(func: Callable[..., Any]) -> bool:
    from tradeloom.kernels import jit
    from tradeloom.kernels.cache import holds

    # the package whose kernels are cached (jit's use_cache), not the kernels/ room
    return holds(func, stamp=jit.package_stamp(), package=Path(jit.__file__).resolve().parents[1])


def _compiling() -> bool:
    """Return whether a background compile holds the kernel cache's lock now."""
    from tradeloom.kernels.cache_root import kernel_cache_root

    try:
        fd = os.open(kernel_cache_root() / LOCK, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # a lock taken here goes with it
    return False


def _launch(rerun: Rerun) -> tuple[int, bool]:
    """Start the background compile of ``tradeloom warm RERUN`` unless one runs; return
    its pid and whether it was already running.

    The lock is taken here and handed to the child (its copy of the descriptor): there is
    no moment when the compile runs unlocked, and it is released when the child ends.
    A `Rerun` function writes its inputs once the lock is held, into a new folder of
    the cache's root that the child removes (`INPUTS`).
    """
    from tradeloom.kernels.cache_root import kernel_cache_root

    root = kernel_cache_root()
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return int(os.pread(fd, 32, 0).split()[0] or 0), True
        env = {**os.environ, ENV: "compile", "TRADELOOM_COMPILE_LOCK_FD": str(fd)}
        inputs: Path | None = None
        try:
            if callable(rerun):
                inputs = Path(tempfile.mkdtemp(prefix="inputs-", dir=root))
                env[INPUTS] = str(inputs)
                words = tuple(rerun(inputs))
            else:
                words = tuple(rerun)
            with open(root / "background-compile.log", "ab") as log:
                child = subprocess.Popen(
                    [sys.executable, "-m", "tradeloom.cli.background_compile", *words],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    env=env,
                    pass_fds=(fd,),
                    start_new_session=True,  # not ended by the terminal's Ctrl-C
                )
        except BaseException:
            if inputs is not None:
                shutil.rmtree(inputs, ignore_errors=True)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{child.pid}\n".encode(), 0)
        return child.pid, False
    finally:
        os.close(fd)  # the child's copy keeps the lock
