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
