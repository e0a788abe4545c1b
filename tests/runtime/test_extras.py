"""A surface whose extra is not installed is one line naming the extra, exit 2.

The libraries are made unimportable in this process (``sys.modules[name] = None``: an
import of it then raises ImportError, as when it is not installed) and the CLI's `main`
runs in process: no install, no subprocess, nothing compiled.
"""

from __future__ import annotations

import ast
import importlib.abc
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tradeloom.cli.main import main
from tradeloom.runtime.extras import EXTRAS, MissingExtra, require

ROOT = Path(__file__).resolve().parents[2]

STRATEGY = ROOT / "strategies" / "btc_rf.yaml"


def _missing(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)
    # a module that imported the library at its top must be imported anew to find it missing
    for module in ("tradeloom.journal.postgres", "tradeloom.live.outputs.metrics"):
        monkeypatch.delitem(sys.modules, module, raising=False)


def _cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_sweep_with_optuna_missing_names_the_sweep_extra(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _missing(monkeypatch, "optuna")
    out = tmp_path / "sweep"
    code, stdout, err = _cli(
        capsys, "sweep", STRATEGY, "--search", "optuna", "--trials", "2",
        "--grid", "signal.threshold=0.1,0.2", "--out", out,
    )  # fmt: skip
    assert (code, stdout) == (2, "")
    assert err == ("tradeloom sweep --search optuna needs optuna: pip install 'tradeloom[sweep]'\n")
    assert not out.exists()


def test_a_sweep_on_a_cluster_with_distributed_missing_names_the_dask_extra(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _missing(monkeypatch, "distributed")
    out = tmp_path / "sweep"
    code, stdout, err = _cli(
        capsys, "sweep", STRATEGY, "--grid", "signal.threshold=0.1,0.2",
        "--scheduler", "tcp://127.0.0.1:1", "--out", out,
    )  # fmt: skip
    assert (code, stdout) == (2, "")
    assert err == "tradeloom sweep --scheduler needs distributed: pip install 'tradeloom[dask]'\n"
    assert not out.exists()


def test_a_postgresql_journal_with_psycopg_missing_names_the_postgres_extra(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _missing(monkeypatch, "psycopg")
    monkeypatch.setenv("SOME_JOURNAL", "postgresql://postgres@127.0.0.1:1/test")
    path = tmp_path / "s.yaml"
    path.write_text(STRATEGY.read_text() + "journal:\n  url: ${SOME_JOURNAL}\n")
    out = tmp_path / "run"
    code, stdout, err = _cli(capsys, "run", path, "--out", out)
    assert (code, stdout) == (2, "")
    assert err == "a journal in PostgreSQL needs psycopg: pip install 'tradeloom[postgres]'\n"


def test_live_metrics_with_prometheus_client_missing_names_the_metrics_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _missing(monkeypatch, "prometheus_client")
    with pytest.raises(MissingExtra) as caught:
        import tradeloom.live.outputs.metrics  # noqa: F401
    assert caught.value.lines() == [
        "live.metrics (a run's Prometheus endpoint) needs prometheus_client: "
        "pip install 'tradeloom[metrics]'"
    ]


def test_a_library_that_cannot_import_its_own_dependency_is_named_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(name: str) -> None:
        raise ModuleNotFoundError("No module named 'sqlalchemy'", name="sqlalchemy")

    monkeypatch.setattr("importlib.import_module", broken)
    with pytest.raises(MissingExtra, match=r"^x needs optuna \(it cannot import sqlalchemy\): "):
        require("optuna", "x")


def test_every_extra_is_declared_in_pyproject() -> None:
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = declared["optional-dependencies"]
    for extra in set(EXTRAS.values()):
        assert extra in extras, (
            f"tradeloom/runtime/extras.py names [{extra}], pyproject.toml has none"
        )
    core = " ".join(declared["dependencies"]).lower()
    for module in EXTRAS:
        assert module.replace("_", "-") not in core.replace("_", "-"), f"{module} is in the core"
    assert "tradeloom[all]" in extras["test"], "the README's test command installs every extra"


def _distribution(requirement: str) -> str:
    name = re.match(r"[A-Za-z0-9_.\-]+", requirement)
    assert name is not None, requirement
    return re.sub(r"[-_.]+", "-", name.group(0)).lower()


def test_every_library_tradeloom_imports_is_a_declared_dependency() -> None:
    # a library that arrives only through another's requirements (orjson came with the
    # newest ccxt, not with the lowest pyproject.toml allows) is missing from an
    # install that resolves differently
    import tomllib
    from importlib.metadata import packages_distributions

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"].values()
    declared = {
        _distribution(r) for r in [*project["dependencies"], *(r for e in extras for r in e)]
    }
    providers = packages_distributions()
    undeclared = []
    for path in sorted((ROOT / "tradeloom").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top in ("tradeloom", "__future__"):
                    continue
                # (a module not installed here, an extra's: declared by its own name)
                names = providers.get(top, [top])
                if not {_distribution(d) for d in names} & declared:
                    undeclared.append(f"{path.relative_to(ROOT)}: {top}")
    assert undeclared == []


# each extra's module is not installed: its import fails as a missing module's does (a
# ``None`` in sys.modules would also hide it from libraries that only look for it there, as
# scipy's array API does for torch)
_CORE_ONLY = """
import sys
class _Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {modules!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, _Absent())
import tradeloom.backtest.run, tradeloom.live.tick.runner, tradeloom.live.outputs.observers
import tradeloom.sweep.command, tradeloom.cli.main
print("imported")
"""


def test_the_backtest_live_and_sweep_modules_import_without_any_extra() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _CORE_ONLY.format(modules=sorted(EXTRAS))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert (done.returncode, done.stdout) == (0, "imported\n"), done.stderr


@pytest.mark.parametrize(
    ("module", "kind"), [("nats", "nats"), ("redis", "redis_streams")], ids=["nats", "redis"]
)
def test_an_events_broker_with_its_client_missing_names_the_broker_extra(
    monkeypatch: pytest.MonkeyPatch, module: str, kind: str
) -> None:
    from tradeloom.plugins.component import BuildContext
    from tradeloom.plugins.manager import load_plugins

    _missing(monkeypatch, module)
    component = load_plugins(entry_points=False).registry.matches("events", kind)[0].component
    with pytest.raises(MissingExtra) as caught:
        component.factory(component.params(), BuildContext("s", Path("."), 0))
    assert caught.value.lines() == [
        f"live.events kind {kind} needs {module}: pip install 'tradeloom[broker]'"
    ]


class _TorchUninstalled(importlib.abc.MetaPathFinder):
    """Import ``torch`` as if it were not installed (it is, in the test venv)."""

    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name.split(".")[0] == "torch":
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)


_NEEDS_TORCH = (
    "needs torch: pip install 'tradeloom[torch]' (without a GPU, first: "
    "pip install torch --index-url https://download.pytorch.org/whl/cpu)"
)


def _without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "torch", raising=False)  # find_spec reads it first
    monkeypatch.setattr(sys, "meta_path", [_TorchUninstalled(), *sys.meta_path])


def test_validate_tells_a_torch_model_without_torch_as_run_does_and_run_leaves_no_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _without_torch(monkeypatch)
    strategy = ROOT / "examples" / "deep_lstm.yaml"
    expected = f"model kind torch {_NEEDS_TORCH}\n"
    assert _cli(capsys, "validate", strategy) == (2, "", expected)
    out = tmp_path / "run"
    assert _cli(capsys, "run", strategy, "--out", out) == (2, "", expected)
    assert not out.exists()


def test_validate_tells_a_torch_estimator_without_torch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADELOOM_CACHE", str(tmp_path / "cache"))  # no remembered verdict
    _without_torch(monkeypatch)
    path = tmp_path / "s.yaml"
    estimator = "tradeloom.plugins.model.torch_estimator.TorchClassifier"
    model = (
        "  estimator: sklearn.ensemble.RandomForestClassifier\n  params:\n"
        "    n_estimators: 100\n    max_depth: 5\n    min_samples_leaf: 20\n    n_jobs: -1\n"
    )
    text = STRATEGY.read_text()
    assert model in text
    path.write_text(text.replace(model, f"  estimator: {estimator}\n"))
    code, stdout, err = _cli(capsys, "validate", path)
    assert (code, stdout, err) == (2, "", f"model estimator {estimator} {_NEEDS_TORCH}\n")
