"""`tradeloom --version`, `--help` and argument errors answer before any heavy library loads;
`validate` imports the plugins' declarations, not their implementations.

Each command runs in a fresh interpreter (as a shell runs it) that prints, after
`main` returns, which of the heavy libraries ended up in ``sys.modules``. Shell
completion, an editor's validate-on-save and `status` in a watch loop all start the
command anew, so what it imports is what they wait for.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests import forkserver
from tests.plugins.model.test_estimator_table import made_for_this_scikit_learn
from tradeloom.version import __version__

pytestmark = pytest.mark.slow  # fresh interpreters, each read for what it imported

ROOT = Path(__file__).resolve().parents[1]

HEAVY = (
    "sklearn",
    "numba",
    "llvmlite",
    "numpy",
    "pandas",
    "pyarrow",
    "plotly",
    "narwhals",
    "PIL",
    "ccxt",
    "dask",
    "distributed",
    "scipy",
    "structlog",
)
"""Libraries a command pays for at start-up (numba: with llvmlite and the scipy it
imports, a third of a small run's CPU; structlog: 80 ms of CPU with the rich and
asyncio it imports; narwhals and PIL come with ``plotly.io``; numpy: a quarter of a warm
validate's time, which reads it through `tradeloom.runtime.lazy`)."""

STRATEGY_RUN_SKIPS = (
    "tradeloom.schemas.portfolio_file",
    "pyarrow.parquet",
    "pyarrow.fs",
    "tradeloom.plugins.data.received",
    "tradeloom.plugins.data.text_source",
    "tradeloom.text.feeds",
)
"""Modules that a strategy file's backtest does not import: the portfolio file's models (a
file is told a portfolio by `tradeloom.schemas.file_kind`); pyarrow's Parquet module with
the filesystems (and ``ssl``) it imports: a run's Parquet tables are written and their
schema read by the Parquet writer and reader themselves (`tradeloom.reporting.exports`);
the reading and feeds of text sources, which a source of bars without one never reads
(`tradeloom.plugins.data.auxiliary`)."""

_PROBE = """
import json, sys
from tradeloom.cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as stop:
    code = stop.code
heavy = sorted({name.split(".")[0] for name in sys.modules} & set(json.loads(HEAVY)))
print("IMPORTED " + json.dumps(heavy), file=sys.stderr)
skipped = [name for name in json.loads(SKIPS) if name not in sys.modules]
print("SKIPPED " + json.dumps(skipped), file=sys.stderr)
raise SystemExit(code)
"""


def _imported(
    *argv: str, env: dict[str, str] | None = None
) -> tuple[list[str], subprocess.CompletedProcess[str]]:
    probe = _PROBE.replace("json.loads(HEAVY)", repr(list(HEAVY)))
    probe = probe.replace("json.loads(SKIPS)", repr(list(STRATEGY_RUN_SKIPS)))
    done = subprocess.run(
        [sys.executable, "-c", probe, *argv],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
        env=env,
    )
    line = next(x for x in done.stderr.splitlines() if x.startswith("IMPORTED "))
    return json.loads(line.removeprefix("IMPORTED ")), done


def _skipped(done: subprocess.CompletedProcess[str]) -> list[str]:
    """Return which of `STRATEGY_RUN_SKIPS` the probed command did not import."""
    line = next(x for x in done.stderr.splitlines() if x.startswith("SKIPPED "))
    return list(json.loads(line.removeprefix("SKIPPED ")))


@pytest.mark.parametrize(
    "argv",
    [
        ("--version",),
        ("--help",),
        ("run", "--help"),
        ("sweep", "--help"),
        ("data", "fetch", "--help"),
        ("run",),  # an argument error: the file is missing
        ("run", "x.yaml", "--speed", "fast"),
        ("no-such-command",),
    ],
    ids=" ".join,
)
def test_the_answer_imports_no_heavy_library(argv: tuple[str, ...]) -> None:
    heavy, done = _imported(*argv)
    assert heavy == [], f"{' '.join(argv)} imported {heavy}"
    assert "Traceback" not in done.stderr


def test_version_and_help_still_say_what_they_said() -> None:
    _, done = _imported("--version")
    assert done.stdout.strip() == f"tradeloom {__version__}"
    _, done = _imported("--help")
    assert done.stdout.startswith("usage: tradeloom")
    for command in ("run", "validate", "sweep", "status", "journal", "data", "report"):
        assert command in done.stdout
    _, done = _imported("run", "x.yaml", "--speed", "fast")
    assert "argument --speed" in done.stderr


VALIDATE_MAY_IMPORT: set[str] = set()
"""What ``validate`` may import of `HEAVY`: nothing. The built-in plugins' modules are
written over pandas frames and numpy arrays, but read both through `tradeloom.runtime.lazy`,
so importing them for their params models, and building their components (which make no
array until they run), imports neither."""


_VALIDATE_EACH = """
import json, sys
from tradeloom.cli.main import main
seen = {}
for path in sys.argv[1:]:
    before = set(sys.modules)
    try:
        code = main(["validate", path])
    except SystemExit as stop:
        code = stop.code
    heavy = sorted({name.split(".")[0] for name in set(sys.modules) - before} & set(HEAVY))
    seen[path] = {"code": code, "heavy": heavy}
print("SEEN " + json.dumps(seen), file=sys.stderr)
"""


def test_validate_imports_no_estimator_kernel_or_exchange_client(tmp_path: Path) -> None:
    """Each shipped strategy validated twice, each pass in one fresh interpreter: the
    first checks the estimators (importing the library of those whose check is not
    declared, `CHECKED_BY_THEIR_LIBRARY`) and remembers the verdicts; the
    second, as an editor's validate-on-save, imports none of `HEAVY`: what a file
    imported is looked at after it and before the next, so a file is named by its own."""
    env = {**os.environ, "TRADELOOM_CACHE": str(tmp_path)}
    files = [f"strategies/{p.name}" for p in sorted((ROOT / "strategies").glob("*.yaml"))]
    probe = _VALIDATE_EACH.replace("set(HEAVY)", repr(set(HEAVY)))
    passes = []
    for _ in ("first", "again"):
        done = subprocess.run(
            [sys.executable, "-c", probe, *files],
            capture_output=True, text=True, timeout=300, check=False, cwd=ROOT, env=env,
        )  # fmt: skip
        line = next(x for x in done.stderr.splitlines() if x.startswith("SEEN "))
        passes.append((json.loads(line.removeprefix("SEEN ")), done))
    (first, first_done), (again, again_done) = passes
    assert first_done.returncode == again_done.returncode == 0, again_done.stderr
    assert {f: s["code"] for f, s in first.items()} == dict.fromkeys(files, 0), first_done.stderr
    # the first check of each estimator finds a verdict, which is remembered
    assert list((tmp_path / "estimator-checks").glob("*.json"))
    assert {f: s["code"] for f, s in again.items()} == dict.fromkeys(files, 0)
    assert again_done.stdout == first_done.stdout
    for path in files:
        heavy = set(again[path]["heavy"])
        assert heavy <= VALIDATE_MAY_IMPORT, f"validate {path} imported {sorted(heavy)}"


CHECKED_BY_THEIR_LIBRARY = ("btc_lgbm.yaml", "btc_xgb.yaml", "btc_stack.yaml")
"""Shipped strategies whose first ``validate`` (nothing remembered) still imports the
estimator's library: a LightGBM, an XGBoost and a declared (nested) estimator. The others
name a plain scikit-learn estimator, whose check is read from its declared params
(`tradeloom.plugins.model.estimator_table`), as is whether a calibrated one compiles (the
table declares which classes have a ``decision_function``: universe_black_litterman.yaml's
calibrated forest): their first validate imports none of `HEAVY`."""


@made_for_this_scikit_learn
def test_a_first_validate_of_a_plain_estimator_imports_no_scikit_learn(tmp_path: Path) -> None:
    files = sorted((ROOT / "strategies").glob("*.yaml"))
    for path in (p for p in files if p.name not in CHECKED_BY_THEIR_LIBRARY):
        env = {**os.environ, "TRADELOOM_CACHE": str(tmp_path / path.stem)}  # a new cache
        heavy, done = _imported("validate", f"strategies/{path.name}", env=env)
        assert done.returncode == 0, done.stderr
        assert heavy == [], f"a first validate of {path.name} imported {heavy}"
        assert list((tmp_path / path.stem / "estimator-checks").glob("*.json"))


def test_validate_still_checks_the_estimator_it_remembered(tmp_path: Path) -> None:
    env = {**os.environ, "TRADELOOM_CACHE": str(tmp_path)}
    _imported("validate", "strategies/btc_rf.yaml", env=env)
    _, done = _imported(
        "validate", "strategies/btc_rf.yaml", "--set", "model.params.n_estimators=0", env=env
    )
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == (
        "--set model.params.n_estimators: must be an int in the range [1, inf), was 0"
    )


READERS_MAY_IMPORT = {
    "status": {"numpy"},
    "journal": {"numpy"},
    "kill": {"numpy"},
}
"""What ``status``, ``journal verify`` and ``kill`` still import. The hash chain is checked
with numpy (`tradeloom.journal.chain_numpy`); the journal's events carry ``pd.Timestamp``
fields, but a verify decodes no time and a kill of a run with no trading state journaled
decodes none either, so neither imports pandas (pyarrow comes with it). Status of a
one-market paper run reads the journal's rows (`tradeloom.engine.status_rows`): numpy only
(a backtest's equity table and a universe's closes are read as frames, with pandas)."""


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short paper run of btc_rf on the simulated clock, finished.

    Forked (`forkserver`): what is under test is what the readers import, in their
    processes; the run's own imports are not (a new interpreter cost it seconds of
    imports before it ran a bar)."""
    out = tmp_path_factory.mktemp("startup") / "run"
    small = ["data.bars=1500", "model.walk_forward.train_window=400", "model.params.n_jobs=1"]
    forkserver.run(
        [sys.executable, "-m", "tradeloom.cli.main", "-q", "run", "strategies/btc_rf.yaml",
         "--mode", "paper", "--clock", "simulated", "--speed", "max", "--max-bars", "10",
         "--out", str(out), *(x for key in small for x in ("--set", key))],
        check=True, capture_output=True, timeout=900, cwd=ROOT,
    )  # fmt: skip
    return out


@pytest.mark.parametrize(
    "argv",
    [
        ("status", "RUN"),
        ("status", "RUN", "--json"),
        ("journal", "verify", "RUN"),
        ("kill", "RUN", "--reason", "test"),
    ],
    ids=" ".join,
)
def test_the_journal_readers_import_no_numba_and_verify_and_kill_no_pandas(
    finished_run: Path, argv: tuple[str, ...]
) -> None:
    heavy, done = _imported(*(str(finished_run) if word == "RUN" else word for word in argv))
    assert "Traceback" not in done.stderr
    assert done.returncode == 0, done.stderr
    may = READERS_MAY_IMPORT[argv[0]]
    assert set(heavy) <= may, f"{' '.join(argv)} imported {heavy}"


PRECOMPUTED = """\
name: no_report
data: {kind: csv, path: bars.csv}
features: [{kind: log_return, period: 1}]
model: {kind: precomputed, column: p_up}
signal: {kind: threshold, threshold: 0.2}
risk: {sizing: {kind: fixed_fraction, fraction: 0.5}}
execution: {kind: simulated}
outputs: {report: REPORT}
"""


@pytest.mark.parametrize("report", [False, True])
def test_a_backtest_draws_its_report_without_importing_plotly(report: bool, tmp_path: Path) -> None:
    times = pd.date_range("2024-01-01", periods=300, freq="h", tz="UTC")
    close = 100.0 * np.exp(np.cumsum(np.random.default_rng(3).normal(0, 0.01, 300)))
    bars = pd.DataFrame(
        {"timestamp": times.strftime("%Y-%m-%dT%H:%M:%SZ"), "open": close, "high": close * 1.01,
         "low": close * 0.99, "close": close, "volume": 1.0, "p_up": np.linspace(0.2, 0.8, 300)}
    )  # fmt: skip
    bars.to_csv(tmp_path / "bars.csv", index=False)
    strategy = tmp_path / "strategy.yaml"
    strategy.write_text(PRECOMPUTED.replace("REPORT", str(report).lower()))

    heavy, done = _imported("-q", "run", str(strategy), "--out", str(tmp_path / "run"))

    assert done.returncode == 0, done.stderr
    # the page's charts are JSON written by tradeloom, plotly.js read from its file: plotly's
    # __init__ (with the importlib.metadata it imports for its version) is not needed
    assert "plotly" not in heavy
    assert (tmp_path / "run" / "report.html").exists() is report
    assert "sklearn" not in heavy  # a precomputed model fits nothing
    assert not {"ccxt", "dask", "distributed"} & set(heavy)  # no exchange, no cluster
    assert not {"narwhals", "PIL"} & set(heavy)  # the report's JSON is written without plotly.io
    assert "structlog" not in heavy  # nothing logged at --log-level warning
    assert _skipped(done) == list(STRATEGY_RUN_SKIPS)  # a strategy file, not a portfolio


SMALL_RUN_SKIPS = {"numba", "llvmlite", "scipy", "sklearn", "ccxt", "dask", "distributed"}
"""What a small backtest of a CSV strategy with a precomputed model does not import: its
kernels cost less as Python than numba's import and cache loads
(`tradeloom.kernels.first_run.python_is_cheaper`), so none is compiled nor loaded."""


def test_a_small_run_runs_its_kernels_as_python_and_imports_no_numba(tmp_path: Path) -> None:
    times = pd.date_range("2024-01-01", periods=300, freq="h", tz="UTC")
    close = 100.0 * np.exp(np.cumsum(np.random.default_rng(5).normal(0, 0.01, 300)))
    bars = pd.DataFrame(
        {"timestamp": times.strftime("%Y-%m-%dT%H:%M:%SZ"), "open": close, "high": close * 1.01,
         "low": close * 0.99, "close": close, "volume": 1.0, "p_up": np.linspace(0.2, 0.8, 300)}
    )  # fmt: skip
    bars.to_csv(tmp_path / "bars.csv", index=False)
    strategy = tmp_path / "strategy.yaml"
    strategy.write_text(PRECOMPUTED.replace("REPORT", "true"))
    cache = tmp_path / "kernels"  # empty: a run that asked it would compile, here or behind
    env = {**os.environ, "TRADELOOM_FIRST_RUN": "auto", "TRADELOOM_KERNEL_CACHE": str(cache)}

    heavy, done = _imported("-q", "run", str(strategy), "--out", str(tmp_path / "run"), env=env)

    assert done.returncode == 0, done.stderr
    assert not SMALL_RUN_SKIPS & set(heavy), sorted(SMALL_RUN_SKIPS & set(heavy))
    assert "compil" not in done.stderr, done.stderr  # nothing compiled, nor in the background
    assert not cache.exists()  # the kernel cache was not even looked into
    assert {"equity.csv", "report.html"} <= {p.name for p in (tmp_path / "run").iterdir()}


def test_validate_of_a_csv_strategy_reads_its_header_without_pandas(tmp_path: Path) -> None:
    """A CSV file's columns are checked from its header line: no pandas, no pyarrow."""
    (tmp_path / "bars.csv").write_text("timestamp,open,high,low,close,volume,p_up\n")
    strategy = tmp_path / "strategy.yaml"
    strategy.write_text(PRECOMPUTED.replace("REPORT", "true"))
    heavy, done = _imported("validate", str(strategy))
    assert done.returncode == 0, done.stderr
    assert heavy == [], f"validate of a CSV strategy imported {heavy}"


def test_a_portfolio_file_is_still_told_from_a_strategy_file(tmp_path: Path) -> None:
    """The check that keeps the portfolio file's models out of a strategy's run still
    tells a portfolio file: validated as one (its missing strategy file named)."""
    portfolio = tmp_path / "portfolio.yaml"
    portfolio.write_text("name: p\nstrategies:\n  - {file: missing.yaml, weight: 1.0}\n")
    _, done = _imported("validate", str(portfolio))
    assert done.returncode == 2, done.stderr
    assert "missing.yaml" in done.stderr
    assert "tradeloom.schemas.portfolio_file" not in _skipped(done)  # its models imported


UNUSED_KINDS = (
    "tradeloom.plugins.data.ccxt_source",
    "tradeloom.plugins.data.synthetic",
    "tradeloom.plugins.features.rsi",
    "tradeloom.plugins.features.cross",
    "tradeloom.plugins.model.sklearn_model",
    "tradeloom.plugins.model.saved_model",
    "tradeloom.plugins.risk.kelly",
    "tradeloom.plugins.execution.ccxt_execution",
    "tradeloom.plugins.execution.router",
    "tradeloom.plugins.monitoring.auc",
)
"""Modules of built-in kinds that `PRECOMPUTED` does not name: the registry holds them by
name (`LazyComponent`), so neither its validate nor its run imports them."""

USED_KINDS = (
    "tradeloom.plugins.data.files",
    "tradeloom.plugins.features.returns",
    "tradeloom.plugins.model.precomputed",
    "tradeloom.plugins.signal.threshold",
    "tradeloom.plugins.risk.fixed_fraction",
    "tradeloom.plugins.execution.simulated",
)

_PLUGIN_MODULES = """
import sys
from tradeloom.cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as stop:
    code = stop.code
print("PLUGINS " + " ".join(sorted(m for m in sys.modules if m.startswith("tradeloom."))),
      file=sys.stderr)
raise SystemExit(code)
"""


@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_command_imports_the_modules_of_the_kinds_its_file_names(
    command: str, tmp_path: Path
) -> None:
    times = pd.date_range("2024-01-01", periods=120, freq="h", tz="UTC")
    close = np.linspace(100.0, 110.0, 120)
    bars = pd.DataFrame(
        {"timestamp": times.strftime("%Y-%m-%dT%H:%M:%SZ"), "open": close, "high": close,
         "low": close, "close": close, "volume": 1.0, "p_up": np.linspace(0.2, 0.8, 120)}
    )  # fmt: skip
    bars.to_csv(tmp_path / "bars.csv", index=False)
    strategy = tmp_path / "strategy.yaml"
    strategy.write_text(PRECOMPUTED.replace("REPORT", "false"))
    out = ["--out", str(tmp_path / "run")] if command == "run" else []
    done = subprocess.run(
        [sys.executable, "-c", _PLUGIN_MODULES, "-q", command, str(strategy), *out],
        capture_output=True, text=True, timeout=300, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stderr.splitlines() if x.startswith("PLUGINS "))
    imported = set(line.removeprefix("PLUGINS ").split())
    assert set(USED_KINDS) <= imported  # the probe sees the kinds the file names
    assert not set(UNUSED_KINDS) & imported, sorted(set(UNUSED_KINDS) & imported)
    if command == "validate":  # no feature on another market's bars: not its module
        assert "tradeloom.engine.informative" not in imported


EVERY_ARRAY_KIND = """\
name: every_array_kind
data: {kind: csv, path: bars.csv}
features:
  - {kind: sma, window: 5}
  - {kind: adx, window: 5}
  - {kind: obv}
  - {kind: donchian, window: 5}
  - {kind: vwap}
  - {kind: time_features}
  - {kind: bollinger, window: 5}
model: {kind: precomputed, column: p_up}
signal: {kind: threshold, threshold: 0.2, regimes: [trending]}
regime: {trend_window: 48}
risk: {sizing: {kind: fixed_fraction, fraction: 0.5}}
execution: {kind: simulated}
"""


def test_validate_of_the_kinds_no_shipped_strategy_names_imports_no_numpy(
    tmp_path: Path,
) -> None:
    """The feature kinds that no shipped strategy names (their modules read numpy through
    `tradeloom.runtime.lazy` as the others do), and a regime filter, validated: no numpy."""
    (tmp_path / "bars.csv").write_text("timestamp,open,high,low,close,volume,p_up\n")
    strategy = tmp_path / "strategy.yaml"
    strategy.write_text(EVERY_ARRAY_KIND)
    heavy, done = _imported("validate", str(strategy))
    assert done.returncode == 0, done.stderr
    assert "15 feature columns" in done.stdout
    assert heavy == [], f"validate of {strategy.name} imported {heavy}"


@pytest.mark.parametrize(
    ("example", "may_import"),
    [
        ("examples/router_two_venues.yaml", set()),
        # the exchange's name is checked against ccxt's list; its bars are not fetched
        ("examples/paper_binance.yaml", {"ccxt"}),
    ],
)
def test_validate_of_an_example_imports_no_pandas(
    example: str, may_import: set[str], tmp_path: Path
) -> None:
    """A router's modelled venues (`tradeloom.plugins.execution.routed_model`) and a ccxt
    source's fetcher (`tradeloom.plugins.data.ccxt_fetch`) are built by validate: they
    read pandas through `tradeloom.runtime.lazy`, and the journal's events they name
    import no pandas either. The second validate (the estimator's verdict remembered) is
    the one looked at."""
    env = {**os.environ, "TRADELOOM_CACHE": str(tmp_path)}
    _imported("validate", example, env=env)
    heavy, done = _imported("validate", example, env=env)
    assert done.returncode == 0, done.stderr
    assert set(heavy) <= may_import, f"validate {example} imported {heavy}"
