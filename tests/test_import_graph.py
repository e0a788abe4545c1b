"""The package's imports run one way: no circles, and each layer imports only the layers below it.

Every module under ``tradeloom/`` is parsed (nothing is imported or executed) and each
import statement becomes an edge of a graph, wherever it stands: an import inside a
function, written to dodge a circle at import time, is still a dependency and counts.
Imports under ``if TYPE_CHECKING:`` count too: a circle that only type checkers see is
still two modules that cannot be understood one without the other.

An import of ``a.b.c`` is an edge to the module ``a.b.c`` only, not to the packages
``a`` and ``a.b`` that Python initialises on the way: a package whose ``__init__``
registers its own submodules is not a circle.
"""

from __future__ import annotations

import ast
import functools
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.xdist_group("import_graph")
"""One worker parses the package once (`_import_statements`, `package_edges`) for all the
checks: spread over three, each parsed it (4.5 to 6 s each in the suite's log)."""

LAYERS = {
    "tradeloom.engine": 1,
    "tradeloom.backtest": 2,
    "tradeloom.live": 2,
    "tradeloom.sweep": 3,
    "tradeloom.diagnostics": 3,
    "tradeloom.console": 4,
    "tradeloom.api": 4,
    "tradeloom.agent": 5,
    "tradeloom.cli": 6,
}
"""The drivers' packages by layer; every other package (the plugin API, schemas, plugins,
core, journal, reporting) is layer 0. A module imports its own package or a lower layer:
the backtest and the live runtime share the engine and never import each other; the
web console and the Python API are two faces over the same layers, neither imports the
other; the agent's door (MCP) stands on the Python API; the command line starts the
console and the door."""

FACE = "tradeloom"
"""The package itself re-exports the Python API, above every layer: no module imports it
(the version is `tradeloom.version`'s)."""


def layer(module: str) -> tuple[str | None, int]:
    """Return the driver package ``module`` belongs to (None: layer 0) and its layer."""
    if module == FACE:
        return FACE, max(LAYERS.values()) + 1
    for package, level in LAYERS.items():
        if module == package or module.startswith(f"{package}."):
            return package, level
    return None, 0


@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target`` at ``line`` of ``path``."""

    source: str
    target: str
    path: Path
    line: int

    def where(self, root: Path) -> str:
        return f"{self.path.relative_to(root)}:{self.line}"


def modules(root: Path, package: str) -> dict[str, Path]:
    """Return every module of ``package`` under ``root`` by dotted name."""
    found: dict[str, Path] = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imported(node: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """Yield the dotted names an import statement may refer to, most precise first."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            origin = ".".join([*base, *([node.module] if node.module else [])])
        else:
            origin = node.module or ""
        for alias in node.names:
            yield f"{origin}.{alias.name}"  # a submodule, or a name defined in origin
        yield origin


@functools.cache
def _import_statements(source: str, filename: str) -> tuple[ast.Import | ast.ImportFrom, ...]:
    """Return the import statements of ``source``, wherever they stand, in `ast.walk`'s
    order: parsed once per source text and file name in a process (the graphs with planted
    modules, and each worker's checks, read the package's unchanged modules again)."""
    tree = ast.parse(source, filename=filename)
    return tuple(n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom))


def import_graph(root: Path, package: str, planted: dict[str, str] | None = None) -> list[Edge]:
    """Return the import edges between the modules of ``package``, type-only ones too.

    ``planted`` adds modules by dotted name and source, parsed as if they were files of the
    package (a test's violation, planted in the real graph without touching the tree).
    """
    known = modules(root, package)
    sources = {module: path.read_text(encoding="utf-8") for module, path in known.items()}
    for module, source in (planted or {}).items():
        known[module] = root / Path(*module.split(".")).with_suffix(".py")
        sources[module] = textwrap.dedent(source)

    def resolve(name: str) -> str | None:
        # a module of the package that is not there (``tradeloom._version``, written by a
        # build, absent from a bare checkout) is no edge, not one to the package itself
        wanted = name
        while name and name not in known:
            name = name.rpartition(".")[0]
        return None if name == package and wanted != package else name or None

    edges: list[Edge] = []
    for module, path in known.items():
        for node in _import_statements(sources[module], str(path)):
            names = list(_imported(node, module, path.name == "__init__.py"))
            if isinstance(node, ast.ImportFrom):
                # `from a import b`: the module a.b if there is one, else a itself
                origin = names[-1]
                targets = {n if n in known else origin for n in names[:-1]}
            else:
                targets = set(names)
            for name in targets:
                if not (name == package or name.startswith(f"{package}.")):
                    continue
                target = resolve(name)
                if target is not None and target != module:
                    edges.append(Edge(module, target, path, node.lineno))
    return edges


def cycles(edges: list[Edge]) -> list[list[Edge]]:
    """Return one circle through each strongly connected group of modules (Tarjan)."""
    graph: dict[str, list[Edge]] = {}
    for edge in edges:
        graph.setdefault(edge.source, []).append(edge)
        graph.setdefault(edge.target, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for edge in graph[node]:
            if edge.target not in index:
                visit(edge.target)
                low[node] = min(low[node], low[edge.target])
            elif edge.target in on_stack:
                low[node] = min(low[node], index[edge.target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_circle(graph, group) for group in groups]


def _circle(graph: dict[str, list[Edge]], group: set[str]) -> list[Edge]:
    # breadth-first from the group's first module back to itself, inside the group
    start = min(group)
    paths: dict[str, list[Edge]] = {start: []}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for edge in sorted(graph[node], key=lambda e: e.target):
            if edge.target not in group:
                continue
            if edge.target == start:
                return [*paths[node], edge]
            if edge.target not in paths:
                paths[edge.target] = [*paths[node], edge]
                queue.append(edge.target)
    raise AssertionError(f"no circle through {start}")  # a strongly connected group has one


def describe(circle: list[Edge], root: Path) -> str:
    steps = " -> ".join(f"{e.source} ({e.where(root)})" for e in circle)
    return f"{steps} -> {circle[0].source}"


CONTRACT = (
    "tradeloom.plugins",
    "tradeloom.plugins.protocols",
    "tradeloom.plugins.hookspecs",
    "tradeloom.plugins.registry",
    "tradeloom.plugins.manager",
    "tradeloom.plugins.component",
)
"""The plugin contract: the protocols (``protocols*``), the hook specs, the registry and its
manager, and what a plugin registers (a component, its params, its build context). Every
other module under ``tradeloom.plugins`` is a built-in plugin."""

ABOVE_THE_PLUGINS = ("tradeloom.core", "tradeloom.schemas", "tradeloom.engine", "tradeloom.live")
"""The packages that reach the built-in plugins only through the plugin manager, as they
reach a third-party plugin: they import the contract, never a built-in plugin's module."""

BOTTOM = ("tradeloom.core", "tradeloom.journal")
"""The bottom layer: the bar and the journal, below the schemas, the plugins and every
driver."""

FOUNDATION = (
    "tradeloom.kernels",
    "tradeloom.runtime",
    "tradeloom.files",
    "tradeloom.tables",
    "tradeloom.time",
)
"""The rooms under everything: they import one another, `ERRORS_AND_BOUNDS` and nothing
else of the package."""

ERRORS_AND_BOUNDS = ("tradeloom.errors", "tradeloom.bounds", "tradeloom.suggestions")
"""The errors a user can meet, the bounds of a file's numbers and the one rule of their
"did you mean": below everything, importing nothing of the package."""

BELOW_THE_BOTTOM = (*FOUNDATION, *ERRORS_AND_BOUNDS, "tradeloom.domain", "tradeloom.version")
"""What the bottom layer may import besides itself: the foundation, the errors and bounds,
the value objects and the version."""


SCHEMAS_OVER_PLUGINS = ("tradeloom.schemas", "tradeloom.plugins")
"""Inside layer 0, the schemas sit above the plugins: a strategy's models validate each
section by the params model its component registered, through the plugin contract; no
plugin (the contract, a built-in one) imports the schemas, not even for a type."""


LIVE = ("tradeloom.live",)
ORDER_LAYER = ("tradeloom.live.orders",)
"""The ccxt order layer: it imports nothing else of the live runtime (an order's way to the
exchange never asks the tick, the account or the restart)."""

TICK = ("tradeloom.live.tick",)
OUTPUTS = ("tradeloom.live.outputs",)
"""What a run tells outside (its files, metrics, alerts): of the live runtime it imports only
the tick, and only the tick imports it."""


def within(module: str, packages: tuple[str, ...]) -> bool:
    """Return whether ``module`` is one of ``packages`` or inside one."""
    return any(module == p or module.startswith(f"{p}.") for p in packages)


def is_contract(module: str) -> bool:
    """Return whether ``module`` is the plugin contract (``protocols*`` included)."""
    return module in CONTRACT or module.startswith("tradeloom.plugins.protocols")


def built_in_plugin_imports(edges: list[Edge]) -> list[Edge]:
    """Return the imports of a built-in plugin's module by core, schemas, engine or live."""
    return [
        e
        for e in edges
        if within(e.source, ABOVE_THE_PLUGINS)
        and within(e.target, ("tradeloom.plugins",))
        and not is_contract(e.target)
    ]


def bottom_imports_up(edges: list[Edge]) -> list[Edge]:
    """Return the imports by the bottom layer (core, journal) of anything above it."""
    return [
        e
        for e in edges
        if within(e.source, BOTTOM) and not within(e.target, (*BOTTOM, *BELOW_THE_BOTTOM))
    ]


def plugins_import_schemas(edges: list[Edge]) -> list[Edge]:
    """Return the imports by the plugins (contract and built-ins) of the schemas above them."""
    upper, lower = SCHEMAS_OVER_PLUGINS
    return [e for e in edges if within(e.source, (lower,)) and within(e.target, (upper,))]


def foundation_imports_out(edges: list[Edge]) -> list[Edge]:
    """Return the imports by a foundation room of anything but the rooms, errors and bounds."""
    return [
        e
        for e in edges
        if within(e.source, FOUNDATION) and not within(e.target, (*FOUNDATION, *ERRORS_AND_BOUNDS))
    ]


def live_room_crossings(edges: list[Edge]) -> list[Edge]:
    """Return the imports that break the live rooms' rules (docs/concepts/layout.md): the
    order layer's of the rest of live, the outputs' of live beyond the tick, any but the
    tick's of the outputs."""

    def crosses(e: Edge) -> bool:
        if within(e.source, ORDER_LAYER):
            return within(e.target, LIVE) and not within(e.target, ORDER_LAYER)
        if within(e.source, OUTPUTS):
            return within(e.target, LIVE) and not within(e.target, (*OUTPUTS, *TICK))
        return within(e.target, OUTPUTS) and not within(e.source, TICK)

    return [e for e in edges if crosses(e)]


def upward(edges: list[Edge]) -> list[Edge]:
    """Return the imports of a package in the same or a higher layer than the importer's."""
    found = []
    for edge in edges:
        (source, low), (target, high) = layer(edge.source), layer(edge.target)
        if target is not None and target != source and high >= low:
            found.append(edge)
    return found


# --- the package -----------------------------------------------------------------------------


@functools.cache
def _edges() -> tuple[Edge, ...]:
    return tuple(import_graph(ROOT, "tradeloom"))


def package_edges() -> list[Edge]:
    """Return the package's import edges, parsed once per process (every check reads them)."""
    return list(_edges())


def test_tradeloom_has_no_import_circle() -> None:
    found = cycles(package_edges())

    assert [describe(c, ROOT) for c in found] == []


def test_each_layer_imports_only_the_layers_below() -> None:
    found = upward(package_edges())

    assert [f"{e.where(ROOT)} {e.source} imports {e.target}" for e in found] == []


def test_only_the_command_line_imports_the_live_runner() -> None:
    # the live runtime's helpers take the runner's services (tradeloom.live.tick.services), never it
    found = [
        f"{e.where(ROOT)} {e.source}"
        for e in package_edges()
        if e.target == "tradeloom.live.tick.runner" and not e.source.startswith("tradeloom.cli.")
    ]

    assert found == []


def test_core_schemas_engine_and_live_import_no_built_in_plugin() -> None:
    found = [
        f"{e.where(ROOT)} {e.source} imports {e.target}"
        for e in built_in_plugin_imports(package_edges())
    ]

    assert found == []


def test_the_bottom_layer_imports_nothing_above_it() -> None:
    found = bottom_imports_up(package_edges())

    assert [f"{e.where(ROOT)} {e.source} imports {e.target}" for e in found] == []


def test_the_plugins_import_nothing_of_the_schemas_above_them() -> None:
    found = plugins_import_schemas(package_edges())

    assert [f"{e.where(ROOT)} {e.source} imports {e.target}" for e in found] == []


def test_the_foundation_imports_only_itself_errors_and_bounds() -> None:
    found = foundation_imports_out(package_edges())

    assert [f"{e.where(ROOT)} {e.source} imports {e.target}" for e in found] == []


def test_the_live_rooms_import_by_their_rules() -> None:
    found = live_room_crossings(package_edges())

    assert [f"{e.where(ROOT)} {e.source} imports {e.target}" for e in found] == []


def test_a_crossing_planted_between_the_live_rooms_is_found() -> None:
    planted = {
        "tradeloom.live.orders.planted": (
            "from tradeloom.live.orders.ccxt_venue import CcxtVenue\n"
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n"
            "    from tradeloom.live.tick.session import LiveSession\n"
        ),
        "tradeloom.live.outputs.planted": (
            "from tradeloom.live.tick.services import RunFiles\n"
            "def f():\n    import tradeloom.live.recovery.restart\n"
        ),
        "tradeloom.live.accounts.planted": "from tradeloom.live.outputs.metrics import x\n",
        "tradeloom.live.tick.planted": "from tradeloom.live.outputs.alerts import x\n",
    }

    edges = import_graph(ROOT, "tradeloom", planted)

    assert sorted(
        f"{e.source} -> {e.target}"
        for e in live_room_crossings(edges)
        if e.source.endswith(".planted")
    ) == [
        "tradeloom.live.accounts.planted -> tradeloom.live.outputs.metrics",
        "tradeloom.live.orders.planted -> tradeloom.live.tick.session",
        "tradeloom.live.outputs.planted -> tradeloom.live.recovery.restart",
    ]


def test_a_violation_planted_in_the_package_is_found() -> None:
    # the checks above, run on the real graph with modules that break each rule
    planted = {
        "tradeloom.live.planted": "from tradeloom.plugins.execution.simulated import x\n",
        "tradeloom.schemas.planted": "from tradeloom.plugins.protocols import Model\n",
        "tradeloom.core.planted": "def f():\n    from tradeloom.schemas import strategy\n",
        "tradeloom.files.planted": "from tradeloom.journal import reader\n",
        "tradeloom.engine.planted": "import tradeloom.live.tick.runner\n",
        "tradeloom.plugins.data.planted": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n"
            "    from tradeloom.schemas.config import StrategyConfig\n"
        ),
        "tradeloom.plugins.planted": "def f():\n    import tradeloom.schemas.loader\n",
    }

    edges = import_graph(ROOT, "tradeloom", planted)

    def mine(found: list[Edge]) -> list[str]:
        return [f"{e.source} -> {e.target}" for e in found if e.source.endswith(".planted")]

    assert mine(built_in_plugin_imports(edges)) == [
        "tradeloom.live.planted -> tradeloom.plugins.execution.simulated"
    ]
    assert mine(bottom_imports_up(edges)) == [
        "tradeloom.core.planted -> tradeloom.schemas.strategy"
    ]
    assert mine(foundation_imports_out(edges)) == [
        "tradeloom.files.planted -> tradeloom.journal.reader"
    ]
    assert mine(upward(edges)) == ["tradeloom.engine.planted -> tradeloom.live.tick.runner"]
    assert mine(plugins_import_schemas(edges)) == [
        "tradeloom.plugins.data.planted -> tradeloom.schemas.config",
        "tradeloom.plugins.planted -> tradeloom.schemas.loader",
    ]


def test_the_graph_sees_the_package() -> None:
    # a guard against a graph that finds nothing and so passes everything
    edges = {(e.source, e.target) for e in package_edges()}
    assert ("tradeloom.schemas.loader", "tradeloom.plugins.manager") in edges
    assert (
        "tradeloom.live.tick.runner",
        "tradeloom.live.recovery.restart",
    ) in edges  # inside a function
    assert ("tradeloom.cli.run_command", "tradeloom.engine.wiring") in edges  # in a function


# --- the checks themselves, on a package made for them ----------------------------------------


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A package ``pkg`` in tmp_path: write modules with ``write(name, source)``."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    return tmp_path


def write(root: Path, name: str, source: str) -> None:
    path = root / Path(*name.split(".")).with_suffix(".py")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.parent != root and not (path.parent / "__init__.py").exists():
        (path.parent / "__init__.py").write_text("")
    path.write_text(textwrap.dedent(source))


def test_a_circle_through_a_function_level_import_is_found(package: Path) -> None:
    write(package, "pkg.a", "from pkg.b import thing\n")
    write(package, "pkg.b", "thing = 1\n\ndef later():\n    from pkg import a\n    return a\n")

    found = cycles(import_graph(package, "pkg"))

    assert [describe(c, package) for c in found] == [
        "pkg.a (pkg/a.py:1) -> pkg.b (pkg/b.py:4) -> pkg.a"
    ]


def test_relative_imports_and_three_module_circles_are_found(package: Path) -> None:
    write(package, "pkg.live.runner", "from . import restore\n")
    write(package, "pkg.live.restore", "from .venues import open_venue\n")
    write(package, "pkg.live.venues", "def open_venue():\n    import pkg.live.runner\n")

    found = cycles(import_graph(package, "pkg"))

    assert [describe(c, package) for c in found] == [
        "pkg.live.restore (pkg/live/restore.py:1) -> pkg.live.venues (pkg/live/venues.py:2) "
        "-> pkg.live.runner (pkg/live/runner.py:1) -> pkg.live.restore"
    ]


def test_a_circle_through_a_type_only_import_is_found(package: Path) -> None:
    write(package, "pkg.a", "from pkg.b import B\n")
    write(
        package,
        "pkg.b",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import A\nB = 1\n",
    )

    found = cycles(import_graph(package, "pkg"))

    assert [describe(c, package) for c in found] == [
        "pkg.a (pkg/a.py:1) -> pkg.b (pkg/b.py:3) -> pkg.a"
    ]


def test_an_import_of_a_module_not_there_is_no_edge(package: Path) -> None:
    # the version a build writes (pkg._version) is absent from a bare checkout
    write(package, "pkg.__init__", "from pkg.version import V\n")
    write(
        package,
        "pkg.version",
        "try:\n    from pkg._version import V\nexcept ImportError:\n    V = 0\n",
    )

    edges = import_graph(package, "pkg")

    assert [(e.source, e.target) for e in edges] == [("pkg", "pkg.version")]
    assert cycles(edges) == []


def test_package_initialisation_is_not_a_circle(package: Path) -> None:
    write(package, "pkg.sub.__init__", "from pkg.sub.part import x\n")
    write(package, "pkg.sub.part", "from pkg.sub.other import y\nx = y\n")
    write(package, "pkg.sub.other", "y = 2\n")

    assert cycles(import_graph(package, "pkg")) == []


def test_an_upward_import_is_found_in_a_package_made_later(tmp_path: Path) -> None:
    # a layer is checked as soon as it exists; the backtest and live never import each other
    write(tmp_path, "tradeloom.__init__", "")
    write(tmp_path, "tradeloom.engine.driver", "STEP = 1\n")
    write(tmp_path, "tradeloom.core.bar", "def f():\n    from tradeloom.engine import driver\n")
    write(tmp_path, "tradeloom.live.tick.loop", "from tradeloom.backtest import run\n")
    write(tmp_path, "tradeloom.backtest.run", "from tradeloom.engine.driver import STEP\n")
    write(tmp_path, "tradeloom.journal.events", "import tradeloom.engine.driver\n")
    write(tmp_path, "tradeloom.reporting.metrics", "from tradeloom.engine.driver import STEP\n")

    found = upward(import_graph(tmp_path, "tradeloom"))

    assert sorted(f"{e.where(tmp_path)} {e.target}" for e in found) == [
        "tradeloom/core/bar.py:2 tradeloom.engine.driver",
        "tradeloom/journal/events.py:1 tradeloom.engine.driver",
        "tradeloom/live/tick/loop.py:1 tradeloom.backtest.run",
        "tradeloom/reporting/metrics.py:1 tradeloom.engine.driver",
    ]


def test_a_built_in_plugin_import_is_found_and_the_contract_is_not(tmp_path: Path) -> None:
    write(tmp_path, "tradeloom.__init__", "")
    write(tmp_path, "tradeloom.plugins.__init__", "")
    for name in ("protocols", "protocols_live", "hookspecs", "registry", "manager", "component"):
        write(tmp_path, f"tradeloom.plugins.{name}", "X = 1\n")
    write(tmp_path, "tradeloom.plugins.model.forest", "X = 1\n")
    write(tmp_path, "tradeloom.plugins.features.rsi", "X = 1\n")
    write(
        tmp_path,
        "tradeloom.engine.wiring",
        "from tradeloom.plugins import protocols, protocols_live, hookspecs, component\n"
        "from tradeloom.plugins.registry import X\n"
        "from tradeloom.plugins.manager import X\n",
    )
    write(
        tmp_path,
        "tradeloom.live.tick.session",
        "def f():\n    from tradeloom.plugins.model import forest\n",
    )
    write(tmp_path, "tradeloom.core.bar", "from tradeloom.plugins.features.rsi import X\n")
    write(tmp_path, "tradeloom.schemas.loader", "import tradeloom.plugins.features.rsi\n")
    write(tmp_path, "tradeloom.backtest.run", "from tradeloom.plugins.model.forest import X\n")

    found = built_in_plugin_imports(import_graph(tmp_path, "tradeloom"))

    assert sorted(f"{e.where(tmp_path)} {e.target}" for e in found) == [
        "tradeloom/core/bar.py:1 tradeloom.plugins.features.rsi",
        "tradeloom/live/tick/session.py:2 tradeloom.plugins.model.forest",
        "tradeloom/schemas/loader.py:1 tradeloom.plugins.features.rsi",
    ]


def test_the_foundation_and_the_bottom_are_checked(tmp_path: Path) -> None:
    write(tmp_path, "tradeloom.__init__", "")
    write(tmp_path, "tradeloom.errors", "X = 1\n")
    write(tmp_path, "tradeloom.bounds", "X = 1\n")
    write(tmp_path, "tradeloom.domain", "X = 1\n")
    write(tmp_path, "tradeloom.stats", "X = 1\n")
    write(tmp_path, "tradeloom.time.calendars", "from tradeloom.errors import X\n")
    write(tmp_path, "tradeloom.files.reads", "from tradeloom.time import calendars\n")
    write(tmp_path, "tradeloom.runtime.threads", "from tradeloom.domain import X\n")
    write(tmp_path, "tradeloom.kernels.jit", "from tradeloom.core import bar\n")
    write(
        tmp_path,
        "tradeloom.core.bar",
        "from tradeloom.kernels import jit\nfrom tradeloom import domain\n",
    )
    write(tmp_path, "tradeloom.journal.store", "from tradeloom.stats import X\n")

    edges = import_graph(tmp_path, "tradeloom")

    assert sorted(f"{e.source} {e.target}" for e in foundation_imports_out(edges)) == [
        "tradeloom.kernels.jit tradeloom.core.bar",
        "tradeloom.runtime.threads tradeloom.domain",
    ]
    assert [f"{e.source} {e.target}" for e in bottom_imports_up(edges)] == [
        "tradeloom.journal.store tradeloom.stats"
    ]
