"""The background compile (`tradeloom.cli.background_compile`) removes the inputs the API
wrote for it (`tradeloom.kernels.first_run.INPUTS`) when it ends, failed or not."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from tradeloom.cli import background_compile
from tradeloom.kernels.first_run import INPUTS


@pytest.mark.parametrize("fails", [False, True])
def test_the_inputs_written_for_a_compile_go_when_it_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fails: bool
) -> None:
    inputs = tmp_path / "inputs-1"
    inputs.mkdir()
    (inputs / "bars.parquet").write_bytes(b"PAR1")
    monkeypatch.setenv(INPUTS, str(inputs))
    seen: list[tuple[list[str], bool]] = []

    def compile_(argv: Sequence[str]) -> int:
        seen.append((list(argv), (inputs / "bars.parquet").exists()))
        if fails:
            raise RuntimeError("the warm run failed")
        return 0

    monkeypatch.setattr(background_compile, "_compile", compile_)
    if fails:
        with pytest.raises(RuntimeError, match=r"^the warm run failed$"):
            background_compile.main(["strategy.yaml"])
    else:
        assert background_compile.main(["strategy.yaml"]) == 0

    assert seen == [(["strategy.yaml"], True)]  # read while it compiled
    assert not inputs.exists()
    assert tmp_path.exists()
