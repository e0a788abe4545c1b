"""The suite runs in parallel, and installs plugin packages only into throwaway venvs.

``pytest`` alone runs on every core (pytest-xdist, one worker more than the cores,
``--dist loadgroup``), so ``.ci/run`` and the README's ``pytest`` are parallel without a
flag; ``pytest -n 0``
or ``pytest -p no:xdist`` runs serially. Tests that share something built once per
worker (a virtual environment) carry ``@pytest.mark.xdist_group(name)``, so that
one worker builds it.

A test that needs the example plugin package installed, as its users have it, takes
the `example_venv` fixture (`plugin_venv.PluginVenv`): the interpreter running the
tests is never modified.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from hypothesis import HealthCheck, settings

from tests import forkserver, kernel_warming, slow_tests, timing_log
from tests.hunting import examples
from tests.pg_server import PgSchema, pg_schema_of
from tests.plugin_venv import EXAMPLE_PLUGIN, ExampleCommands, PluginVenv, make_plugin_venv
from tests.portable_kernels import build_portable, host_target
from tests.ram_tmp import RamFolders, ram_base
from tests.shipped_runs import ShippedRuns
from tests.xdist_groups import pytest_collection_modifyitems_named_groups  # noqa: F401
from tradeloom.runtime.threads import apply_native_threads, native_threads

# Properties are about values, not speed: on a shared machine an example can take longer
# than hypothesis's default 200 ms deadline, or generate slower than its health check
# allows, which would fail a correct test. A property that declares no example count
# draws hypothesis's default 100 in a hunt and the suite's cap (`tests.hunting`) in the
# suite, as every declared count does: 26 properties drew 100 in the suite.
settings.register_profile(
    "tradeloom",
    max_examples=examples(100),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("tradeloom")


def _workers() -> int:
    """One worker more than the usable cores.

    Many tests wait on a process of their own (a live run polling its venue every 20 ms,
    a venue's order window running out) while their worker idles: on 2 cores, 2 workers
    kept them busy 85% of the time, 3 workers 91% (the suite: 683 s, then 613 s; 4
    workers were slower again).
    """
    return len(os.sched_getaffinity(0)) + 1


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """Default to one worker more than the cores (`_workers`) and ``--dist loadgroup``
    when xdist is loaded.

    Explicit options win: ``-n 0`` runs serially, ``--dist load`` ignores the groups.

    A worker parses the command line again, not the options set here: it names its tests
    by group (``nodeid@group``, what the scheduler keeps together) only if it sees
    ``loadgroup`` itself. So a worker whose command line chose no ``--dist`` follows
    this default too; without it every group was split over the workers, and what a
    group shares (the example plugin's venv, the report runs) was built on each.
    """
    if not config.pluginmanager.hasplugin("xdist"):
        return
    if "PYTEST_XDIST_WORKER" in os.environ:
        if config.known_args_namespace.dist == "no":
            config.option.loadgroup = True
        return
    if config.option.collectonly:
        return
    if config.option.numprocesses is None:
        config.option.numprocesses = _workers()
    if config.option.numprocesses != 0 and config.option.dist == "no":
        config.option.dist = "loadgroup"  # -n 2 alone keeps the groups too


def _cache_bytecode() -> None:
    """Let this process and every process it starts keep compiled bytecode (``__pycache__``,
    ignored by git), even where ``PYTHONDONTWRITEBYTECODE`` is set.

    Without them pytest rewrites every test module's assertions again in every worker
    of every run: collecting the suite took 17 s of CPU, 10 s with the rewritten
    modules kept (`pytest --collect-only -p no:xdist`, run twice).
    """
    sys.dont_write_bytecode = False
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


def pytest_configure(config: pytest.Config) -> None:
    """Keep bytecode (`_cache_bytecode`), put every test process under the runner's
    native thread policy, then, as a parallel run's workers start, compile the kernels
    once (`warm_kernels`, in the background: `kernel_warming`).

    The thread policy (`tradeloom.runtime.threads`: one OpenMP/BLAS thread by default) is what
    ``tradeloom`` sets in each of its processes; tests that fit or predict in the
    test process would otherwise run each worker's native pools on every core, two
    workers' spinning threads on two cores. It is exported before the workers start,
    so that they and the commands tests start inherit it (test_threads.py clears it
    where the policy itself is under test). That environment is also the one the fork
    server (`forkserver`: the commands tests start, forked) imports its modules in.

    Every kernel compiles (`_one_kernel_form`), unless ``TRADELOOM_FIRST_RUN`` was set.

    Only the controlling process of a run on several workers compiles: a serial run
    compiles in one process anyway, and a worker has ``workerinput``.
    """
    _cache_bytecode()
    _one_kernel_form()
    apply_native_threads(native_threads())
    forkserver.snapshot_environment()  # what the commands tests start inherit
    workers = getattr(config.option, "numprocesses", None)
    if hasattr(config, "workerinput") or workers in (None, 0) or config.option.collectonly:
        return
    kernel_warming.start(Path(__file__).resolve().parent / "warm_kernels.py")


@pytest.hookimpl(tryfirst=True)
def pytest_collection() -> None:
    """In the controlling process of a parallel run, wait for the kernels' compile
    (`kernel_warming`) before any test is handed out; its workers have started and
    collect meanwhile. Nothing to wait for in a worker or a serial run."""
    kernel_warming.wait()


def _one_kernel_form() -> None:
    """The suite's runs compile their kernels (``TRADELOOM_FIRST_RUN=compile``,
    `tradeloom.kernels.first_run`), as the warmed cache lets them: a small run on a cold cache
    would otherwise run them as Python and start a background compile from each test
    process. tests/kernels/test_first_run.py sets the other modes where they are under test;
    ``TRADELOOM_FIRST_RUN=python pytest`` runs the whole suite on the Python forms."""
    os.environ.setdefault("TRADELOOM_FIRST_RUN", "compile")


@pytest.hookimpl(tryfirst=True)
def pytest_itemcollected(item: pytest.Item) -> None:
    """Group the tests that share a module-scoped fixture (`_shares_a_module_fixture`)."""
    if item.get_closest_marker("xdist_group") is None and _shares_a_module_fixture(item):
        item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))


def _shares_a_module_fixture(item: pytest.Item) -> bool:
    """Whether ``item`` uses a fixture built once per module (or class) that uses it.

    Under ``--dist loadgroup`` a test with no group is a work unit of its own: a module's
    tests went to whichever worker was free, so a module-scoped fixture (a trained run, a
    backtest, a docs site, a Dask cluster) was built by every worker that ran one of its
    tests, up to three times (tests/cli/test_cli_registry.py on 3 workers: its trained run
    3 times). Grouped by module, it is built once; xdist hands the largest groups out
    first, so the workers still finish together.
    """
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(
        defs[-1].scope in ("module", "class", "package")
        for name in info.names_closure
        if (defs := info.name2fixturedefs.get(name))
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the ``slow`` tests a plain ``pytest`` does not run (`slow_tests`),
    then run the modules with the most ``slow`` tests first, each module's tests in order.

    pytest-xdist hands the workers tests in this order, a few at a time: with the long
    end-to-end modules first, the last tests are short ones and both workers finish
    together, instead of one running a long module alone at the end. The groups go first
    (largest first), then the other tests one by one: consecutive tests of a module may
    run on different workers, so tests that share a module-scoped fixture are grouped
    (`pytest_itemcollected`).
    """
    items[:] = slow_tests.left_in(config, items)
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::", 1)[0], []).append(item)
    slow = {name: sum(i.get_closest_marker("slow") is not None for i in tests)
            for name, tests in modules.items()}  # fmt: skip
    items[:] = [i for name in sorted(modules, key=lambda n: -slow[n]) for i in modules[name]]


def pytest_sessionfinish() -> None:
    """Stop the chromium this process's browser tests shared (`browser.stop_chromium`)."""
    browser = sys.modules.get("tests.reporting.browser")
    if browser is not None:
        browser.stop_chromium()


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """A test that runs `main` configures structlog for the whole process (its log level);
    put the defaults back after every test, so that the next one sees all it logs."""
    yield
    structlog.reset_defaults()


@pytest.fixture(autouse=True)
def _secrets_as_they_were() -> Iterator[None]:
    """Forget after every test the secrets it registered for redaction.

    The registry is the process's (`tradeloom.runtime.redaction`): a test that validates
    a hostile webhook URL (``https://``, tests/hostile/test_state.py) registered it, and
    a later test on the same worker saw every ``https://`` of its log lines redacted.
    """
    from tradeloom.runtime import redaction

    with redaction._lock:
        forms, pattern = set(redaction._forms), redaction._pattern
    yield
    with redaction._lock:
        redaction._forms.clear()
        redaction._forms.update(forms)
        redaction._pattern = pattern


@pytest.fixture(autouse=True)
def _control_signals_as_they_were() -> Iterator[None]:
    """Put back SIGUSR1's and SIGUSR2's handlers after every test.

    A test that drives a `LiveRunner` itself installs its inbox's handlers and may crash
    it on purpose (a simulated kill -9), never restoring them; the handler then outlived
    its run in the worker, and a later test that needs a process without one (a backtest's
    pid, which SIGUSR2 would end) saw it: a failure in every full suite that passed alone.
    """
    held = {s: signal.getsignal(s) for s in (signal.SIGUSR1, signal.SIGUSR2)}
    yield
    for signum, handler in held.items():
        if signal.getsignal(signum) is not handler:
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)


@pytest.fixture(scope="session")
def example_venv(tmp_path_factory: pytest.TempPathFactory) -> PluginVenv:
    """A venv with the example plugin package installed, as a plugin's user has it."""
    folder = tmp_path_factory.mktemp("example-venv")
    built = make_plugin_venv(folder / "venv", [EXAMPLE_PLUGIN])
    assert sys.prefix != str(built.path)
    return built


@pytest.fixture(scope="session")
def example_commands(
    example_venv: PluginVenv, tmp_path_factory: pytest.TempPathFactory
) -> ExampleCommands:
    """The example files' ``validate`` and runs in `example_venv`, each made once
    (`plugin_venv.ExampleCommands`); the tests that read them share its xdist group."""
    return ExampleCommands(example_venv, tmp_path_factory.mktemp("example-runs"))


@pytest.fixture(scope="session")
def shipped_runs(tmp_path_factory: pytest.TempPathFactory) -> ShippedRuns:
    """The shipped strategy files' shortened runs, each made once (`shipped_runs.ShippedRuns`);
    the tests that read them share its xdist group."""
    return ShippedRuns(tmp_path_factory.mktemp("shipped-runs"))


@pytest.fixture(scope="session")
def portable_kernels(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """Return the stamp folder of a kernel cache holding rsi's kernels compiled for this
    machine's portable target (tests/portable_kernels.py), or None where it runs none.

    Built once per worker: the modules that use it share the ``kernel_portable`` group.
    """
    host, target = host_target()
    if target is None:
        return None
    return build_portable(tmp_path_factory.mktemp("portable") / "kernels", target, host[0])


@pytest.fixture(scope="session")
def ram_tmp_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RamFolders]:
    """New folders in memory (`ram_tmp`), for runs that commit their journal bar by bar."""
    fallback = tmp_path_factory.mktemp("ram")
    base = ram_base(fallback)
    folders = RamFolders(base, owned=base != fallback)
    yield folders
    folders.remove()


@pytest.fixture
def ram_tmp_path(ram_tmp_factory: RamFolders, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A new empty folder in memory for this test (`ram_tmp`), removed after it."""
    with ram_tmp_factory.folder(request.node.name) as path:
        yield path


@pytest.fixture
def pg_schema(monkeypatch: pytest.MonkeyPatch) -> Iterator[PgSchema]:
    """A schema of its own on the real PostgreSQL server (`pg_server`), dropped after."""
    yield from pg_schema_of(monkeypatch)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Log each phase's time where ``TRADELOOM_TEST_TIMES`` says (`tests.timing_log`)."""
    timing_log.record(report)
