"""The commands tests start, forked from a process that has imported tradeloom already.

A test that runs ``python -m tradeloom.cli.main ...`` (or a script beside the tests, such
as ``live/live_child.py``, or a benchmark script) as a new interpreter pays for its imports (numba,
pandas, scikit-learn, ccxt, pydantic, scipy) before the command does anything; the suite
starts about 150. Measured on the 2-core VM (load ~5, CPU seconds, 3 runs each): a
``validate`` 0.41 s as a new interpreter, 0.06 s forked; a backtest of the sweep tests'
small strategy 1.88 against 0.46 s; its paper run of 3 bars 2.96 against 0.77 s. The
whole suite forked 149 commands: 106 s of CPU in them, 8 s in the three servers' imports.
Here one server process per test process imports every
module of tradeloom once, and forks a child per command: the child applies the
test's working folder, environment, ``sys.path``, arguments and standard streams,
runs the command as ``python`` would (``runpy``, as ``-m`` or as a script), and ends
as the ``tradeloom`` command ends. The test holds a `Popen` with the child's real pid:
``kill -9``, SIGTERM and ``/proc`` work on it as on a subprocess; the server reaps the
child and sends its exit code (``-N`` for a signal, as `subprocess` says).

`run` and `Popen` take `subprocess`'s arguments; a command that is neither of those
two forms runs as a subprocess, and so does every command when the environment says
``TRADELOOM_TESTS_EXEC_CHILDREN=1``.

A child is what a new interpreter would be only where the server's imports are what
that interpreter would import. So the child replaces itself with the real command
(``execve``: same pid, same streams) when its environment differs from the server's
in a variable read at import time (`_READ_AT_IMPORT`: numba's, the native thread
pools', Python's own, the kernel cache's location), when its ``sys.path`` would import
another ``tradeloom`` (a test that runs the installed package from a worktree), or when
a folder first on it holds a module the server has imported (a test's stand-in for a
library).

Fork-safety: the server imports modules only, it runs nothing of them (no kernel
compiled, no log configured, no thread, no socket but its own); it checks that it
holds one thread after its imports. The child sets the signals a new interpreter has,
drops the server's descriptors, makes new standard streams and reseeds numpy's global
generator.
"""

from __future__ import annotations

import contextlib
import io
import json
import locale
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

__all__ = ["EXEC_ENV", "Popen", "Process", "popen", "run", "snapshot_environment", "tradeloom"]

EXEC_ENV = "TRADELOOM_TESTS_EXEC_CHILDREN"
"""Set to ``1``: every command runs as a new interpreter (a plain subprocess)."""

HERE = Path(__file__).resolve().parent
SCRIPT_FOLDERS = (HERE, HERE.parent / "benchmarks")
"""Where the scripts the server runs live: the tests' and the benchmarks'."""

_AVAILABLE = hasattr(os, "pidfd_open") and hasattr(socket, "send_fds")
"""Linux (a child's end is watched by its pidfd): elsewhere commands run as subprocesses."""

_MODULE = "tradeloom.cli.main"

_READ_AT_IMPORT_PREFIXES = ("NUMBA_", "PYTHON", "OMP_", "OPENBLAS_", "MKL_", "LD_", "LC_")
_READ_AT_IMPORT = frozenset(
    {"TRADELOOM_KERNEL_CACHE", "XDG_CACHE_HOME", "HOME", "LANG", "TZ", "ARROW_DEFAULT_MEMORY_POOL"}
)
"""Variables a module reads when it is imported (numba's configuration, OpenBLAS's
threads, the kernels' cache folder, chosen as each kernel is defined): where a
command's value differs from the server's, the child runs as a new interpreter.
Except `_NOT_READ_AT_IMPORT`."""

_LOG_ENV = "TRADELOOM_TESTS_FORKSERVER_LOG"
"""A file: each child appends one line, forked or the reason it ran as a new interpreter."""


_NOT_READ_AT_IMPORT = frozenset({"PYTHONPATH", "PYTHONHASHSEED"})
"""``PYTHONPATH``: the child sets ``sys.path`` from it. ``PYTHONHASHSEED``: dask's local
scheduler sets it in the test process for good (for its pool's processes), after which
every command would run as a new interpreter; a child hashes strings with the server's
random seed instead, and no command's result depends on the seed."""


def _is_read_at_import(name: str) -> bool:
    if name in _NOT_READ_AT_IMPORT:
        return False
    return name in _READ_AT_IMPORT or name.startswith(_READ_AT_IMPORT_PREFIXES)


# --- the test's side ----------------------------------------------------------------------


def _forkable(args: Sequence[Any]) -> tuple[str, str, list[str]] | None:
    """Return ``(kind, target, argv rest)`` of a command the server runs, or None."""
    argv = [os.fspath(a) for a in args]
    # not the real path: a venv's python is a link to the same binary, with other packages
    if len(argv) < 2 or os.path.abspath(argv[0]) != os.path.abspath(sys.executable):
        return None
    if argv[1:3] == ["-m", _MODULE]:
        return "module", _MODULE, argv[3:]
    script = Path(argv[1])
    if script.suffix == ".py" and any(script.resolve().is_relative_to(f) for f in SCRIPT_FOLDERS):
        return "script", str(script.resolve()), argv[2:]
    return None


class _Server:
    """The server of this test process: started at its first command, ended with it."""

    def __init__(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="tl-fork-")
        self.path = os.path.join(self.folder, "s")
        self.owner = os.getpid()
        env = dict(_BASE_ENV)
        env.pop(EXEC_ENV, None)
        self.process = subprocess.Popen(
            [sys.executable, __file__, self.path],
            stdin=subprocess.PIPE,  # the server ends when this process does
            stdout=subprocess.PIPE,
            env=env,
            cwd=HERE,
            close_fds=True,
        )
        assert self.process.stdout is not None
        ready = self.process.stdout.readline()
        if ready != b"ready\n":
            self.process.kill()
            raise RuntimeError(f"the fork server did not start: {ready!r}")

    def connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self.path)
        return sock

    def close(self) -> None:
        if self.process.poll() is None and self.process.stdin is not None:
            self.process.stdin.close()  # the server kills what it still runs and exits
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)
            if self.process.poll() is None:
                self.process.kill()
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        with contextlib.suppress(OSError):
            os.rmdir(self.folder)


_BASE_ENV: dict[str, str] = dict(os.environ)
_server: _Server | None = None
_server_lock = threading.Lock()


def snapshot_environment() -> None:
    """Take this process's environment as the server's (call it once the suite has set
    what every process inherits, before any test changes it)."""
    global _BASE_ENV
    _BASE_ENV = dict(os.environ)


def _the_server() -> _Server:
    global _server
    with _server_lock:
        if _server is None or _server.owner != os.getpid() or _server.process.poll() is not None:
            _server = _Server()
            import atexit

            atexit.register(_server.close)
        return _server


def _std_fd(spec: Any, default: int, stdout_fd: int | None) -> tuple[int, int | None, bool]:
    """Return (the child's fd, this side's pipe end or None, whether to close the fd)."""
    if spec is None:
        return default, None, False
    if spec == subprocess.PIPE:
        read, write = os.pipe()
        return (read, write, True) if default == 0 else (write, read, True)
    if spec == subprocess.DEVNULL:
        return os.open(os.devnull, os.O_RDWR), None, True
    if spec == subprocess.STDOUT:
        assert stdout_fd is not None
        return stdout_fd, None, False
    if isinstance(spec, int):
        return spec, None, False
    return spec.fileno(), None, False


class Popen:
    """A command forked by the server (`subprocess.Popen`'s interface, the parts tests use).

    Args:
        args: ``[sys.executable, "-m", "tradeloom.cli.main", ...]`` or
            ``[sys.executable, SCRIPT, ...]`` with ``SCRIPT`` beside the tests (any other
            command: use `subprocess`, or `popen`, which chooses).
        stdin, stdout, stderr: As `subprocess.Popen`'s (None, PIPE, DEVNULL, STDOUT, a
            file, a descriptor).
        cwd: The child's working folder (default: this process's).
        env: The child's whole environment (default: this process's).
        text: Decode the pipes as text (the locale's encoding, universal newlines).
    """

    def __init__(
        self,
        args: Sequence[Any],
        *,
        stdin: Any = None,
        stdout: Any = None,
        stderr: Any = None,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        text: bool = False,
    ) -> None:
        command = _forkable(args)
        if command is None:
            raise ValueError(f"not a command the fork server runs: {args!r}")
        self.args = list(args)
        self.returncode: int | None = None
        self.text = text
        kind, target, rest = command
        fds: list[int] = []
        mine: list[int | None] = []
        to_close: list[int] = []
        for spec, default in ((stdin, 0), (stdout, 1), (stderr, 2)):
            fd, end, close = _std_fd(spec, default, fds[1] if len(fds) > 1 else None)
            fds.append(fd)
            mine.append(end)
            if close:
                to_close.append(fd)
        request = {
            "kind": kind,
            "target": target,
            "argv": [os.fspath(a) for a in args],
            "rest": rest,
            "cwd": os.path.abspath(os.fspath(cwd)) if cwd is not None else os.getcwd(),
            "env": dict(os.environ if env is None else env),
        }
        payload = json.dumps(request).encode()
        self._sock = _the_server().connect()
        try:
            socket.send_fds(self._sock, [struct.pack("!Q", len(payload)) + payload], fds)
        finally:
            for fd in to_close:
                os.close(fd)
        self._buffer = b""
        self.pid = int(self._line(None))
        self.stdin = self._stream(mine[0], "wb")
        self.stdout = self._stream(mine[1], "rb")
        self.stderr = self._stream(mine[2], "rb")

    def _stream(self, fd: int | None, mode: str) -> IO[Any] | None:
        if fd is None:
            return None
        raw = open(fd, mode)  # noqa: SIM115 (closed with this object)
        if not self.text:
            return raw
        return io.TextIOWrapper(raw, write_through=True)  # type: ignore[arg-type]

    def _line(self, timeout: float | None) -> str:
        """The next line the server sends; TimeoutExpired when none came in ``timeout``."""
        import select

        while b"\n" not in self._buffer:
            ready, _, _ = select.select([self._sock], [], [], timeout)
            if not ready:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            data = self._sock.recv(64)
            if not data:
                raise RuntimeError(f"the fork server ended before the command: {self.args}")
            self._buffer += data
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def poll(self) -> int | None:
        """Return the exit code, or None while the child runs."""
        if self.returncode is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.returncode = int(self._line(0))
                self._sock.close()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the child's end; return its exit code."""
        if self.returncode is None:
            self.returncode = int(self._line(timeout))
            self._sock.close()
        return self.returncode

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to the child, if it has not ended."""
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        """SIGTERM the child."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the child."""
        self.send_signal(signal.SIGKILL)

    def communicate(
        self, input: str | bytes | None = None, timeout: float | None = None
    ) -> tuple[Any, Any]:
        """Send ``input``, read stdout and stderr to their end, wait; return what they had.

        Raises:
            subprocess.TimeoutExpired: Not done in ``timeout`` s (call it again to go on).
        """
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        if not hasattr(self, "_chunks"):
            self._chunks: dict[int, list[bytes]] = {1: [], 2: []}
            self._pending = b""
            if self.stdin is not None:
                if input:
                    data = input.encode() if isinstance(input, str) else input
                    self._pending = data
                else:
                    self.stdin.close()
        with selectors.DefaultSelector() as selector:
            if self.stdin is not None and not self.stdin.closed:
                self.stdin.flush()
                selector.register(self.stdin.fileno(), selectors.EVENT_WRITE, 0)
            for key, stream in ((1, self.stdout), (2, self.stderr)):
                if stream is not None and not stream.closed:
                    selector.register(stream.fileno(), selectors.EVENT_READ, key)
            while selector.get_map():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise subprocess.TimeoutExpired(self.args, timeout or 0)
                for key, _ in selector.select(left):
                    if key.data == 0:
                        assert self.stdin is not None
                        try:
                            sent = os.write(key.fd, self._pending[:65536])
                        except BrokenPipeError:
                            sent = len(self._pending)
                        self._pending = self._pending[sent:]
                        if not self._pending:
                            selector.unregister(key.fd)
                            self.stdin.close()
                        continue
                    chunk = os.read(key.fd, 65536)
                    if chunk:
                        self._chunks[key.data].append(chunk)
                    else:
                        selector.unregister(key.fd)
                        (self.stdout if key.data == 1 else self.stderr).close()  # type: ignore[union-attr]
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        self.wait(left)
        out = b"".join(self._chunks[1]) if self.stdout is not None else None
        err = b"".join(self._chunks[2]) if self.stderr is not None else None
        return self._decoded(out), self._decoded(err)

    def _decoded(self, data: bytes | None) -> Any:
        if data is None or not self.text:
            return data
        text = data.decode(_ENCODING)
        return text.replace("\r\n", "\n").replace("\r", "\n")

    def __enter__(self) -> Popen:
        return self

    def __exit__(self, *exc: object) -> None:
        for stream in (self.stdin, self.stdout, self.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self.wait()


_ENCODING = locale.getpreferredencoding(False)


Process = Popen | subprocess.Popen[Any]
"""What `popen` returns: a forked command or a subprocess."""


def popen(args: Sequence[Any], **kwargs: Any) -> Process:
    """`Popen` for a command the server runs, else (or with ``EXEC_ENV`` set) `subprocess.Popen`."""
    if os.environ.get(EXEC_ENV) or not _AVAILABLE or _forkable(args) is None:
        return subprocess.Popen(args, **kwargs)
    return Popen(args, **kwargs)


def run(
    args: Sequence[Any],
    *,
    input: str | bytes | None = None,
    capture_output: bool = False,
    timeout: float | None = None,
    check: bool = False,
    **kwargs: Any,
) -> subprocess.CompletedProcess[Any]:
    """`subprocess.run` with the command forked by the server where it can be (`popen`)."""
    if os.environ.get(EXEC_ENV) or not _AVAILABLE or _forkable(args) is None:
        return subprocess.run(
            args, input=input, capture_output=capture_output, timeout=timeout, check=check,
            **kwargs,
        )  # fmt: skip
    if capture_output:
        kwargs["stdout"] = kwargs["stderr"] = subprocess.PIPE
    if input is not None:
        kwargs["stdin"] = subprocess.PIPE
    with Popen(args, **kwargs) as process:
        try:
            out, err = process.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
    done = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    if check:
        done.check_returncode()
    return done


def tradeloom(
    *args: str | os.PathLike[str],
    cwd: str | os.PathLike[str],
    pythonpath: str | os.PathLike[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m tradeloom.cli.main ARGS`` in ``cwd`` (`run`), its output captured
    as text: the installed package, as a user has it, or with ``pythonpath`` first on the
    path (this checkout's package from a worktree, a test's plugin modules)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return run(
        [sys.executable, "-m", _MODULE, *map(str, args)],
        cwd=cwd, capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip


# --- the server ---------------------------------------------------------------------------


_ESTIMATOR_MODULES = ("sklearn.ensemble", "sklearn.linear_model")
"""The modules of the estimators the suite's strategies name, which tradeloom imports
only when a run builds its model: a forked run finds them imported (a small backtest
spent 0.26 of its 1.14 s under cProfile importing scikit-learn; the 27 forked commands of
three crash-test modules 44.5 -> 31.9 s of CPU)."""


def _preload() -> None:
    """Import every module of tradeloom that imports here (and so what they import) and
    the estimators' modules (`_ESTIMATOR_MODULES`), running nothing."""
    import importlib
    import pkgutil

    import tradeloom

    for module in pkgutil.walk_packages(tradeloom.__path__, "tradeloom."):
        try:
            importlib.import_module(module.name)
        except ImportError:  # an extra not installed (.ci/lowest has no console's): a
            continue  # child importing the module fails as a new interpreter would
    for name in _ESTIMATOR_MODULES:
        importlib.import_module(name)


def _serve(path: str) -> None:
    base_env = dict(os.environ)
    server_python_path = {
        os.path.abspath(p) for p in base_env.get("PYTHONPATH", "").split(os.pathsep) if p
    }
    _preload()
    base_path = [p for p in sys.path[1:] if os.path.abspath(p) not in server_python_path]
    if threading.active_count() != 1:
        raise RuntimeError(f"threads after the imports: {threading.enumerate()}")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, ("accept", 0))
    selector.register(sys.stdin.fileno(), selectors.EVENT_READ, ("parent", 0))
    running: dict[int, tuple[socket.socket, int]] = {}  # pid: (its test's socket, pidfd)
    os.write(1, b"ready\n")
    while True:
        for key, _ in selector.select():
            what, pid = key.data
            if what == "parent":  # the test process has ended: so does all it started
                for child in running:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(child, signal.SIGKILL)
                spent = os.times()
                cpu = spent.user + spent.system + spent.children_user + spent.children_system
                _log(base_env, f"server cpu {cpu:.2f} s: pid {os.getpid()}")
                with contextlib.suppress(OSError):  # a test process may end without its atexit
                    os.unlink(path)
                    os.rmdir(os.path.dirname(path))
                return
            if what == "accept":
                conn, _ = listener.accept()
                try:
                    request, fds = _receive(conn)
                except (OSError, ValueError):
                    conn.close()
                    continue
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    try:
                        for fd in (listener.fileno(), selector._selector.fileno()):  # type: ignore[attr-defined]
                            os.close(fd)
                        for sock, pidfd in running.values():
                            sock.close()
                            os.close(pidfd)
                        conn.close()
                        _child(request, fds, base_env, base_path)
                    finally:
                        os._exit(70)
                for fd in fds:
                    os.close(fd)
                pidfd = os.pidfd_open(pid)
                running[pid] = (conn, pidfd)
                with contextlib.suppress(OSError):
                    conn.sendall(b"%d\n" % pid)
                selector.register(pidfd, selectors.EVENT_READ, ("ended", pid))
                selector.register(conn, selectors.EVENT_READ, ("gone", pid))
            elif what == "ended":
                _, status, usage = os.wait4(pid, 0)
                _log(base_env, f"cpu {usage.ru_utime + usage.ru_stime:.2f} s: pid {pid}")
                conn, pidfd = running.pop(pid)
                selector.unregister(pidfd)
                os.close(pidfd)
                with contextlib.suppress(KeyError):
                    selector.unregister(conn)
                with contextlib.suppress(OSError):
                    conn.sendall(b"%d\n" % os.waitstatus_to_exitcode(status))
                conn.close()
            elif what == "gone":  # the test closed its end early: its child goes too
                conn = running[pid][0]
                with contextlib.suppress(OSError):
                    if conn.recv(1) == b"":
                        selector.unregister(conn)
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    data, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
    if len(fds) != 3 or len(data) < 8:
        for fd in fds:
            os.close(fd)
        raise ValueError("a request without its 3 streams")
    (size,) = struct.unpack("!Q", data[:8])
    body = data[8:]
    while len(body) < size:
        more = conn.recv(size - len(body))
        if not more:
            raise ValueError("a request cut short")
        body += more
    return json.loads(body), fds


def _log(env: Mapping[str, str], line: str) -> None:
    name = env.get(_LOG_ENV)
    if name:
        with open(name, "a") as log:
            log.write(line + "\n")


def _exec_reason(
    request: dict[str, Any], base_env: Mapping[str, str], path: list[str], base_path: list[str]
) -> str | None:
    """Why this command must run as a new interpreter, or None: the server's imports fit."""
    env = request["env"]
    for name in sorted(set(env) | set(base_env)):
        if _is_read_at_import(name) and env.get(name) != base_env.get(name):
            return f"{name} differs"
    import importlib.machinery

    import tradeloom

    spec = importlib.machinery.PathFinder.find_spec("tradeloom", path)
    if spec is None or spec.origin != tradeloom.__file__:
        return f"tradeloom from {spec.origin if spec else None}"
    for folder in path[: len(path) - len(base_path)]:
        # a folder before the server's path that holds a module the server imported (a
        # test's stand-in for a library): the command would import that one
        with contextlib.suppress(OSError):
            for entry in os.listdir(folder):
                name = entry.partition(".")[0]
                loaded = sys.modules.get(name)
                if name != "tradeloom" and loaded is not None and name.isidentifier():
                    origin = getattr(loaded, "__file__", None) or ""
                    if not os.path.abspath(origin).startswith(os.path.join(folder, "")):
                        return f"{os.path.join(folder, entry)} shadows {name}"
    return None


def _child(
    request: dict[str, Any], fds: list[int], base_env: Mapping[str, str], base_path: list[str]
) -> None:
    """Become the command (never returns)."""
    for number, fd in enumerate(fds):
        os.dup2(fd, number)  # inheritable, as the command's streams are
    for fd in set(fds) - {0, 1, 2}:
        os.close(fd)
    for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as Python starts
    os.chdir(request["cwd"])
    env = request["env"]
    os.environ.clear()
    os.environ.update(env)
    # sys.path[0]: ``-m`` puts the working folder there, a script its own folder
    first = request["cwd"] if request["kind"] == "module" else os.path.dirname(request["target"])
    python_path = [os.path.abspath(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    path = [first, *python_path, *base_path]
    reason = _exec_reason(request, base_env, path, base_path)
    _log(env, f"{'exec: ' + reason if reason else 'fork'}: {' '.join(request['argv'][1:])}")
    if reason is not None:
        os.execve(sys.executable, request["argv"], env)
    sys.path[:] = path
    import importlib

    importlib.invalidate_caches()
    _new_stdio(env)
    import numpy

    numpy.random.seed()  # a new interpreter's global generator is seeded from the OS
    import runpy

    code = 0
    try:
        if request["kind"] == "module":
            sys.argv = ["-m", *request["rest"]]  # runpy puts the module's file first
            sys.modules.pop(request["target"], None)  # run as ``-m`` runs it: a new copy
            sys.modules["__main__"] = type(sys)("__main__")
            runpy._run_module_as_main(request["target"])  # type: ignore[attr-defined]
        else:
            sys.argv = [request["target"], *request["rest"]]
            runpy.run_path(request["target"], run_name="__main__")
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    from tradeloom.cli.leave import leave

    leave(code)  # what Python's exit does, less its teardown


def _new_stdio(env: Mapping[str, str]) -> None:
    """Standard streams over descriptors 0-2, made as Python makes them at start-up."""
    unbuffered = bool(env.get("PYTHONUNBUFFERED"))
    streams = []
    for fd, mode, errors in (
        (0, "rb", "strict"),
        (1, "wb", "strict"),
        (2, "wb", "backslashreplace"),
    ):
        try:
            os.fstat(fd)
        except OSError:
            streams.append(None)
            continue
        interactive = os.isatty(fd)
        raw: Any = io.FileIO(fd, mode, closefd=False)
        binary = (
            raw
            if unbuffered and fd
            else io.BufferedReader(raw)
            if fd == 0
            else io.BufferedWriter(raw)
        )
        streams.append(
            io.TextIOWrapper(
                binary,
                encoding=_ENCODING,
                errors=errors,
                line_buffering=fd == 2 or (fd == 1 and interactive),
                write_through=unbuffered and fd != 0,
            )
        )
    sys.stdin, sys.stdout, sys.stderr = streams  # type: ignore[assignment]
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = streams  # type: ignore[misc]


if __name__ == "__main__":
    _serve(sys.argv[1])
