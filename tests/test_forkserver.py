"""The fork server runs a command as a new interpreter would (`forkserver`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from subprocess import PIPE

import pytest

from tests import forkserver
from tests.test_lint import forkserver_probe_prefix

pytestmark = pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="no pidfd: no fork server")

HERE = Path(__file__).resolve().parent
CLI = [sys.executable, "-m", "tradeloom.cli.main"]


def _script(tmp_path: Path, body: str) -> Path:
    """A script beside the tests (the server runs those), removed with the test."""
    path = HERE / f"{forkserver_probe_prefix}{os.getpid()}_{tmp_path.name}.py"
    path.write_text(body)
    return path


@pytest.fixture
def probe(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A script that prints its argv, folder, one variable, sys.path[0], its stdin and
    the handlers of its signals, then exits 3; and the log of the server's choices."""
    script = _script(
        tmp_path,
        "import os, signal, sys\n"
        "print(sys.argv[1:], os.getcwd(), os.environ.get('FS_PROBE'), sys.path[0])\n"
        "print(sys.stdin.read().upper(), file=sys.stderr)\n"
        "print(*map(repr, map(signal.getsignal, (signal.SIGTERM, signal.SIGPIPE))),\n"
        "      signal.getsignal(signal.SIGINT).__name__)\n"
        "print(__name__, os.getppid() != int(os.environ['FS_TEST_PID']))\n"
        "sys.exit(3)\n",
    )
    yield script, tmp_path / "log"
    script.unlink()


def _env(log: Path, **more: str) -> dict[str, str]:
    return {**os.environ, "TRADELOOM_TESTS_FORKSERVER_LOG": str(log), **more}


def test_a_script_runs_in_its_folder_with_its_arguments_environment_and_streams(
    probe: tuple[Path, Path], tmp_path: Path
) -> None:
    script, log = probe
    env = _env(log, FS_PROBE="x y", FS_TEST_PID=str(os.getpid()))
    with forkserver.Popen(
        [sys.executable, script, "a", "b c"], stdin=PIPE, stdout=PIPE, stderr=PIPE, text=True,
        cwd=tmp_path, env=env,
    ) as child:  # fmt: skip
        out, err = child.communicate("hello", timeout=120)
    assert (child.returncode, err) == (3, "HELLO\n")
    assert out == (
        f"['a', 'b c'] {tmp_path} x y {script.parent}\n"
        "<Handlers.SIG_DFL: 0> <Handlers.SIG_IGN: 1> default_int_handler\n"  # as Python starts
        "__main__ True\n"  # forked by the server, not started by this process
    )
    assert log.read_text().splitlines()[0] == f"fork: {script} a b c"


def test_a_variable_read_at_import_makes_the_child_a_new_interpreter(
    probe: tuple[Path, Path], tmp_path: Path
) -> None:
    script, log = probe
    env = _env(log, NUMBA_OPT="2", FS_TEST_PID=str(os.getpid()))
    with forkserver.Popen([sys.executable, script], stdout=PIPE, env=env) as child:
        child.communicate(timeout=120)
    assert child.returncode == 3
    assert log.read_text().splitlines()[0] == f"exec: NUMBA_OPT differs: {script}"


def test_the_command_line_exit_code_and_output(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: [\n")
    done = forkserver.run(
        [*CLI, "validate", "bad.yaml"], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith("bad.yaml:")
    assert "Traceback" not in done.stderr


def test_kill_9_of_the_childs_pid_ends_it_with_minus_9(tmp_path: Path) -> None:
    script = _script(tmp_path, "import sys, time\nprint('up', flush=True)\ntime.sleep(600)\n")
    try:
        child = forkserver.Popen([sys.executable, script], stdout=PIPE)
        assert child.stdout is not None
        assert child.stdout.readline() == b"up\n"
        assert child.poll() is None
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(0.1)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(60) == -signal.SIGKILL
        child.stdout.close()
    finally:
        script.unlink()


def test_another_command_runs_as_a_subprocess(tmp_path: Path) -> None:
    done = forkserver.run([sys.executable, "-c", "print(1)"], capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (0, "1\n")
    other = tmp_path / "python"  # another venv's python: a link to the same binary
    other.symlink_to(sys.executable)
    for command in ([sys.executable, "-c", "print(1)"], [other, "-m", "tradeloom.cli.main"]):
        with pytest.raises(ValueError, match=r"^not a command the fork server runs: "):
            forkserver.Popen(command)
