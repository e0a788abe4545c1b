"""The suite's background compile (`tests.kernel_warming`): waited for, its failure said."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from tests import kernel_warming


def _script(folder: Path, body: str) -> Path:
    path = folder / "compile.py"
    path.write_text(body, encoding="utf-8")
    return path


def test_the_wait_returns_once_the_compile_has_ended(tmp_path: Path) -> None:
    done = tmp_path / "done"
    kernel_warming.start(
        _script(tmp_path, f"import time; time.sleep(0.3); open({str(done)!r}, 'w')")
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a compile that ends with 0 says nothing
        kernel_warming.wait()
    assert done.is_file()


def test_a_failed_compile_is_one_warning_naming_its_exit_code(tmp_path: Path) -> None:
    kernel_warming.start(_script(tmp_path, "raise SystemExit(3)"))
    with pytest.warns(
        UserWarning, match=r"kernel cache is cold \(tests/warm_kernels.py exit code 3\)"
    ):
        kernel_warming.wait()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kernel_warming.wait()  # waited for already: nothing more to say
