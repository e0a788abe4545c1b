"""The native thread policy (`tradeloom.runtime.threads`): one count per process, 1 by default."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tradeloom.runtime.threads import ENV, native_threads

_PROBE = """
import json, sys
from tradeloom.cli.main import main
code = main(sys.argv[1:])
from threadpoolctl import threadpool_info
import sklearn.ensemble  # loads scikit-learn's OpenMP runtime
openmp = sorted({i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp"})
blas = sorted({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})
print(json.dumps({"code": code, "openmp": openmp, "blas": blas}))
"""


def _threads_after(*argv: str, env: dict[str, str] | None = None) -> dict[str, object]:
    import os

    environment = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    environment.pop(ENV, None)
    environment.update(env or {})
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv, "status", "/nonexistent-run"],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_option_wins_then_the_environment_then_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    assert native_threads(None) == 1
    monkeypatch.setenv(ENV, "3")
    assert native_threads(None) == 3
    assert native_threads(2) == 2


@pytest.mark.parametrize("text", ["x", "0", "-1", "1.5"])
def test_a_bad_environment_value_is_named(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv(ENV, text)
    with pytest.raises(ValueError, match=r"^TRADELOOM_THREADS: expected an integer >= 1, was "):
        native_threads(None)


def test_a_command_runs_the_native_libraries_on_one_thread_by_default() -> None:
    seen = _threads_after()
    assert seen["code"] == 2  # the run folder does not exist: the command still answered
    assert seen["openmp"] == [1] and set(seen["blas"]) <= {1}


def test_threads_and_the_environment_raise_it() -> None:
    assert _threads_after("--threads", "2")["openmp"] == [2]
    assert _threads_after(env={ENV: "2"})["openmp"] == [2]


_INSIDE = """
import json, os
import numpy  # its BLAS loaded before the block
from threadpoolctl import ThreadpoolController
from tradeloom.runtime import threads

made = []
real = ThreadpoolController

class Counted(real):
    def __init__(self):
        made.append(1)
        super().__init__()

import threadpoolctl
threadpoolctl.ThreadpoolController = Counted
def threads_of(api):  # read with threadpoolctl's own class: not counted
    return sorted({i["num_threads"] for i in real().info() if i["user_api"] == api})

for _ in range(3):
    with threads.native_threads_in(1):
        blas_inside = threads_of("blas")
quiet = len(made)
with threads.native_threads_in(1):
    import sklearn.ensemble  # loads scikit-learn's OpenMP runtime inside the block
openmp, blas = threads_of("openmp"), threads_of("blas")
print(json.dumps({"quiet": quiet, "after": len(made), "inside": blas_inside,
                  "openmp": openmp, "blas": blas, "cores": len(os.sched_getaffinity(0))}))
"""


def test_the_libraries_are_looked_for_again_only_when_one_was_loaded() -> None:
    # threadpoolctl reads /proc/self/maps for them (ms in a notebook's process): three
    # blocks that load nothing make one controller; a block that loads OpenMP (sklearn)
    # makes one more, and the library it loaded runs as it would have loaded outside
    import os

    environment = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    environment.pop(ENV, None)
    done = subprocess.run(
        [sys.executable, "-c", _INSIDE],
        capture_output=True, text=True, timeout=300, env=environment, check=True,
    )  # fmt: skip
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["quiet"] == 1 and seen["after"] == 2
    assert seen["inside"] == [1]
    assert seen["openmp"] == [seen["cores"]]  # no variable: a thread per usable core
    assert seen["blas"] == [seen["cores"]]  # restored as it was before the blocks
