"""The restricted unpickler: exploits of the security review refused, real models loaded.

The refused pickles are the reviewer's: one that deletes a file when built (scipy's ODR
with ``overwrite=True``), one that calls a scipy test runner (pytest on a file of the
attacker's), one that creates a folder (joblib's Memory). Each passed the first
allow-list, which admitted any class of numpy, scipy and scikit-learn.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tradeloom.plugins.model.safe_pickle import (
    HELPER_GLOBALS,
    RefusedGlobalError,
    restricted_loads,
    trusted_package_problem,
)


def _text(value: str) -> bytes:  # BINUNICODE
    raw = value.encode()
    return b"X" + len(raw).to_bytes(4, "little") + raw


def odr_deleting(victim: Path) -> bytes:
    """Return a pickle that builds ``scipy.odr.ODR(..., rptfile=victim, overwrite=True)``.

    ODR's ``__init__`` removes ``rptfile`` when ``overwrite`` is set: loading it with
    plain pickle deletes ``victim`` (the build then fails, after the damage).
    """
    one = b"]G?\xf0\x00\x00\x00\x00\x00\x00a"  # [1.0]
    return (
        b"\x80\x02cscipy.odr._odrpack\nODR\n("
        + b"cscipy.odr._odrpack\nData\n(" + one + one + b"tR"
        + b"cscipy.odr._odrpack\nModel\n(cbuiltins\nfloat\ntR"
        + one
        + b"N" * 6
        + _text(str(victim))
        + b"N" * 11
        + b"\x88tR."
    )  # fmt: skip


def pytest_running(marker: Path, test_file: Path) -> bytes:
    """Return a pickle that calls a ``scipy._lib._testutils.PytestTester`` instance.

    The instance runs ``pytest.main`` on ``test_file`` (attacker code) and writes a JUnit
    report to ``marker``.
    """
    return (
        b"\x80\x02cscipy._lib._testutils\nPytestTester\n(" + _text("scipy") + b"tR"
        + b"(" + _text("full") + b"K\x00]("
        + _text("-p") + _text("no:cacheprovider") + _text("-q")
        + _text(f"--junitxml={marker}")
        + b"e\x89\x89]" + _text(str(test_file)) + b"atR."
    )  # fmt: skip


class _Reduce:
    """Pickles as ``func(*args)``."""

    def __init__(self, func: Any, args: tuple[Any, ...]) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.func, self.args)


def _refused(data: bytes, message: str, **kwargs: Any) -> None:
    with pytest.raises(RefusedGlobalError) as caught:
        restricted_loads(data, **kwargs)
    assert str(caught.value) == message


# --- the review's exploits -------------------------------------------------------------------


def test_the_odr_pickle_deletes_a_file_when_loaded_plainly(tmp_path: Path) -> None:
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    with pytest.raises(TypeError), pytest.warns(DeprecationWarning):  # after the deletion
        pickle.loads(odr_deleting(victim))
    assert not victim.exists()


def test_the_odr_file_deletion_is_refused_and_the_file_kept(tmp_path: Path) -> None:
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    _refused(
        odr_deleting(victim),
        "refused global scipy.odr._odrpack.ODR (no supported estimator's pickle names scipy)",
    )
    assert victim.read_text() == "keep me"


def test_the_pytest_runner_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker, ran = tmp_path / "junit.xml", tmp_path / "ran"
    payload = tmp_path / "test_payload.py"
    payload.write_text(f"import pathlib\npathlib.Path({str(ran)!r}).write_text('pwned')\n")
    _refused(
        pytest_running(marker, payload),
        "refused global scipy._lib._testutils.PytestTester "
        "(no supported estimator's pickle names scipy)",
    )
    assert not marker.exists() and not ran.exists()


def test_a_folder_creating_joblib_memory_is_refused(tmp_path: Path) -> None:
    from joblib.memory import Memory

    folder = tmp_path / "created"
    _refused(
        pickle.dumps(_Reduce(Memory, (str(folder),)), protocol=5),
        "refused global joblib.memory.Memory "
        "(not from scikit-learn or a package the strategy file trusts)",
    )
    assert not folder.exists()


# --- what the rules admit --------------------------------------------------------------------


_OUTSIDE = "not from scikit-learn or a package the strategy file trusts"
_NUMPY = "not one of the numpy helpers a model needs"
_SCIPY = "no supported estimator's pickle names scipy"
_SKLEARN_TOOLS = "scikit-learn test helpers, datasets or tools"
_NOT_ESTIMATOR = "not a scikit-learn estimator class"


@pytest.mark.parametrize(
    ("module", "name", "why"),
    [
        ("io", "open", _OUTSIDE),
        ("builtins", "eval", _OUTSIDE),
        ("copyreg", "_reconstructor", _OUTSIDE),
        ("numpy", "memmap", _NUMPY),
        ("numpy", "load", _NUMPY),
        ("numpy.lib._npyio_impl", "DataSource", _NUMPY),
        ("scipy.sparse", "csr_matrix", _SCIPY),
        ("sklearn.utils._mocking", "CheckingClassifier", _SKLEARN_TOOLS),
        ("sklearn.datasets._base", "load_iris", _SKLEARN_TOOLS),
        ("sklearn.utils._bunch", "Bunch", _NOT_ESTIMATOR),
        ("sklearn.utils.validation", "check_array", _NOT_ESTIMATOR),
        ("sklearn.ensemble", "RandomForestClassifier", "defined in sklearn.ensemble._forest"),
        ("sklearn.base", "no_such_name", "no such name"),
        ("sklearn.no_such_module", "X", "no such name"),
    ],
)
def test_globals_outside_the_rules_are_refused(module: str, name: str, why: str) -> None:
    data = b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"."
    _refused(data, f"refused global {module}.{name} ({why})")


def test_a_dotted_name_is_refused() -> None:
    data = b"\x80\x04" + _text("sklearn.base") + _text("BaseEstimator.__init__") + b"\x93."
    _refused(
        data, "refused global sklearn.base.BaseEstimator.__init__ (not a plain module and name)"
    )


def test_scikit_learn_estimator_classes_and_the_helpers_load() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.tree._tree import Tree

    for cls in (HistGradientBoostingClassifier, Pipeline):
        assert restricted_loads(pickle.dumps(cls, protocol=5)) is cls
    assert restricted_loads(pickle.dumps(Tree, protocol=5)) is Tree
    assert ("sklearn.tree._tree", "Tree") in HELPER_GLOBALS
    assert not any(module.split(".")[0] == "scipy" for module, _ in HELPER_GLOBALS)
    state = np.random.RandomState(3)
    loaded = restricted_loads(pickle.dumps(state, protocol=5))
    assert loaded.randint(1_000_000) == np.random.RandomState(3).randint(1_000_000)


def test_a_trusted_package_admits_its_classes_only() -> None:
    import yaml

    node = pickle.dumps(_Reduce(yaml.nodes.ScalarNode, ("tag", "value")), protocol=5)
    _refused(
        node,
        "refused global yaml.nodes.ScalarNode "
        "(not from scikit-learn or a package the strategy file trusts)",
    )
    loaded = restricted_loads(node, trusted_packages=["yaml"])
    assert (loaded.tag, loaded.value) == ("tag", "value")
    _refused(
        pickle.dumps(_Reduce(yaml.safe_load, ("a: 1",)), protocol=5),
        "refused global yaml.safe_load (not a class; only classes of yaml are trusted)",
        trusted_packages=["yaml"],
    )
    _refused(
        pickle.dumps(_Reduce(yaml.nodes.ScalarNode, ("t", "v")), protocol=5),
        "refused global yaml.nodes.ScalarNode "
        "(not from scikit-learn or a package the strategy file trusts (lightgbm))",
        trusted_packages=["lightgbm"],
    )


_STDLIB = "part of Python's standard library, which a model never needs"


@pytest.mark.parametrize(
    ("package", "problem"),
    [
        ("os", _STDLIB),
        ("builtins", _STDLIB),
        ("lightgbm.sklearn", "expected a top-level package name such as lightgbm"),
        (
            "scipy",
            "covered by the built-in allow-list (scikit-learn's estimators and the numpy "
            "helpers they need); list only a third-party estimator's package",
        ),
    ],
)
def test_the_standard_library_and_the_core_packages_are_never_trusted(
    package: str, problem: str
) -> None:
    assert trusted_package_problem(package) == problem
    with pytest.raises(ValueError, match=r"^cannot trust package ") as caught:
        restricted_loads(pickle.dumps(1), trusted_packages=[package])
    assert str(caught.value) == f"cannot trust package '{package}': {problem}"
    assert trusted_package_problem("lightgbm") is None
