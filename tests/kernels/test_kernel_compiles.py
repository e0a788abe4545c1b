"""What compiling cost a process (`tradeloom.kernels.compiles`), its log line, and ``warm``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tradeloom.cli import main as cli
from tradeloom.kernels import cache as kernel_cache
from tradeloom.kernels import compiles as kernel_compiles
from tradeloom.kernels.jit import kernel

SMALL = Path(__file__).parents[1] / "sweep" / "small_strategy.yaml"


def test_a_compilation_counts_once_with_the_kernels_it_compiles_inside_it() -> None:
    # defined here, outside the package: never cached, so each compiles at its first call
    @kernel
    def _inner(x: float) -> float:
        return x * 3.0

    @kernel
    def _outer(x: float) -> float:
        return _inner(x) + 1.0

    before = kernel_compiles.compiled()
    assert _outer(2.0) == 7.0
    after = kernel_compiles.compiled()
    assert after.kernels == before.kernels + 1  # _inner compiled inside _outer's
    assert after.seconds > before.seconds
    assert _outer(3.0) == 10.0  # compiled: nothing more
    assert kernel_compiles.compiled() == after


def test_a_kernel_of_no_module_is_counted_too() -> None:
    """A function made by ``exec`` in a bare namespace has no module (``__module__`` None):
    its compile is counted as any other, not an error of the listener."""
    kernel_compiles.watch()
    namespace: dict[str, object] = {}
    exec("def _bare(x):\n    return x * 2.0 + 1.0\n", namespace)
    bare = kernel(namespace["_bare"])  # type: ignore[arg-type]
    before = kernel_compiles.compiled()
    assert bare(2.0) == 5.0
    assert kernel_compiles.compiled().kernels == before.kernels + 1


def test_the_command_logs_what_compiling_cost_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(kernel_compiles, "_totals", [0, 0.0, 0.0])
    log = tmp_path / "log.jsonl"
    assert cli.main(["--log-level", "info", "--log-file", str(log), "schema"]) == 0
    assert "kernels_compiled" not in log.read_text()  # it compiled nothing

    monkeypatch.setattr(kernel_compiles, "_totals", [3, 12.345, 10.0])
    assert cli.main(["--log-level", "info", "--log-file", str(log), "schema"]) == 0
    lines = [json.loads(x) for x in log.read_text().splitlines() if "kernels_compiled" in x]
    assert [(x["kernels"], x["seconds"], x["cpu_seconds"]) for x in lines] == [(3, 12.35, 10.0)]


def test_warm_runs_the_strategy_and_then_finds_its_kernels_cached(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # a run folder, had one been left, would be here
    assert cli.main(["-q", "warm", str(SMALL)]) == 0
    first, where = capsys.readouterr().out.splitlines()
    # compiled here, or by the suite's warm-up before
    assert re.fullmatch(
        rf"{re.escape(str(SMALL))}: (compiled \d+ kernels in \d+\.\d s|"
        "every kernel it needs was cached)",
        first,
    ), first
    assert where == f"kernel cache: {kernel_cache.kernel_cache_root()}"
    assert list(tmp_path.iterdir()) == []  # no run folder kept

    monkeypatch.setattr(kernel_cache, "unwritable", lambda: True)
    assert cli.main(["-q", "warm", str(SMALL)]) == 1  # its warming would be lost
    assert capsys.readouterr().out.splitlines() == [
        f"{SMALL}: every kernel it needs was cached",
        f"the kernel cache in {kernel_cache.kernel_cache_root()} cannot be written: "
        "nothing was kept",
    ]


def test_warm_refuses_an_invalid_file_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SMALL.read_text().replace("threshold: 0.05", "threshold: -1"))
    assert cli.main(["-q", "warm", str(bad)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"{bad}:"), err
