"""The live runtime's helpers take the runner's services, never a view of the runner.

`LiveRunner` owns a run's services (`tradeloom.live.tick.services`: `RunFiles`, `JournalLink`,
`Markets`, `Ticking`) and hands each helper the two or three it uses; observers register
through `LiveRunner.observe`. A `typing.Protocol` whose members are the runner's (its
file, journal, session, a call-back into it...) would be the runner handed out again
under another name: the package is parsed (nothing imported) and every such Protocol,
every parameter typed with one or with `LiveRunner`, and every helper parameter named
``runner`` is refused. A Protocol of what the runner asks of others (the Market protocol
of `tradeloom.live.accounts.market`: ``min_notional``, ``recover``, ``reconcile``) is not the
runner's and stays.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

import tradeloom
from tradeloom.live.tick.services import JournalLink

PACKAGE = Path(tradeloom.__file__).parent
RUNNER = PACKAGE / "live" / "tick" / "runner.py"
SERVICES = PACKAGE / "live" / "tick" / "services.py"
SHARED = 3
"""A Protocol sharing this many members with the runner describes it."""


def runner_members(source: str, classes: frozenset[str] = frozenset({"LiveRunner"})) -> set[str]:
    """Return the public names ``classes`` define in ``source``: their methods, properties,
    declared fields and the ``self.`` names they set."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and node.name in classes:
            names |= _members(node)
            names |= {
                item.attr
                for item in ast.walk(node)
                if isinstance(item, ast.Attribute)
                and isinstance(item.value, ast.Name)
                and item.value.id == "self"
                and isinstance(item.ctx, ast.Store)
            }
    return {n for n in names if not n.startswith("_")}


def the_runs_members() -> set[str]:
    """Return the runner's members and its services' (what a view of the run would list)."""
    services = frozenset({"RunFiles", "JournalLink", "Markets", "Ticking"})
    return runner_members(RUNNER.read_text(encoding="utf-8")) | runner_members(
        SERVICES.read_text(encoding="utf-8"), services
    )


def _members(node: ast.ClassDef) -> set[str]:
    found: set[str] = set()
    for item in node.body:
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
            found.add(item.name)
        elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            found.add(item.target.id)
    return found


def _base_names(node: ast.ClassDef) -> set[str]:
    names = set()
    for base in node.bases:
        if isinstance(base, ast.Name):
            names.add(base.id)
        elif isinstance(base, ast.Attribute):
            names.add(base.attr)
    return names


def runner_views(modules: dict[str, str], members: set[str]) -> list[str]:
    """Return ``module:Protocol (shared members)`` for each Protocol that declares `SHARED`
    or more of the run's ``members``, or extends one that does."""
    views: list[str] = []
    flagged: set[str] = set()
    for name, source in sorted(modules.items()):
        for node in ast.walk(ast.parse(source)):
            bases = _base_names(node) if isinstance(node, ast.ClassDef) else set()
            if not isinstance(node, ast.ClassDef) or "Protocol" not in bases:
                continue
            shared = _members(node) & members
            if len(shared) >= SHARED or bases & flagged:
                flagged.add(node.name)
                views.append(f"{name}:{node.name} ({', '.join(sorted(shared))})")
    return views


def handed_the_runner(modules: dict[str, str], views: set[str]) -> list[str]:
    """Return ``module:line function(parameter)`` for each parameter typed as the runner
    or one of ``views``, and each parameter named ``runner`` outside the runner's module."""
    typed = views | {"LiveRunner"}
    found = []
    for name, source in sorted(modules.items()):
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            arguments = node.args
            for arg in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]:
                annotation = "" if arg.annotation is None else ast.unparse(arg.annotation)
                plain = annotation
                for mark in "|.'\"[],":
                    plain = plain.replace(mark, " ")
                words = set(plain.split())
                named = arg.arg == "runner" and name != "tradeloom.live.tick.runner"
                if words & typed or named:
                    found.append(f"{name}:{node.lineno} {node.name}({arg.arg}: {annotation})")
    return found


def package_modules() -> dict[str, str]:
    return {
        ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts): path.read_text(
            encoding="utf-8"
        )
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def test_no_protocol_describes_the_runner() -> None:
    members = the_runs_members()

    assert runner_views(package_modules(), members) == []


def test_no_helper_is_handed_the_runner() -> None:
    modules = package_modules()
    members = the_runs_members()
    views = {v.split(":")[1].split(" ")[0] for v in runner_views(modules, members)}

    assert handed_the_runner(modules, views) == []


def test_the_runs_members_are_read() -> None:
    # a guard against a parse that finds nothing and so passes everything
    members = the_runs_members()

    assert {"files", "link", "markets", "session", "tick", "observe", "journal"} <= members
    assert {"config", "run_dir", "now", "recorder", "sent_mark", "cut", "p", "plugins"} <= members


def test_the_market_protocol_is_not_the_runner() -> None:
    members = the_runs_members()
    market = {
        "tradeloom.live.accounts.market": (PACKAGE / "live" / "accounts" / "market.py").read_text(
            "utf-8"
        )
    }

    assert runner_views(market, members) == []


# --- the checks themselves, on modules made for them --------------------------------------

RUNNER_VIEW = textwrap.dedent(
    """
    from typing import Protocol

    class RunView(Protocol):
        config: object
        run_dir: object
        now: object
        symbol: object

    class StartingRun(RunView, Protocol):
        def build_session(self) -> None: ...

    def start(run: StartingRun, universe: object) -> None: ...
    def restart(run: "RunView | None") -> None: ...
    def loop(runner: object) -> None: ...
    def launch(it: tradeloom.live.tick.runner.LiveRunner) -> None: ...
    """
)


@pytest.fixture
def members() -> set[str]:
    return runner_members(
        textwrap.dedent(
            """
            class LiveRunner:
                def __init__(self):
                    self.config = 1
                    self.run_dir = 2
                    self.now = 3
                    self._ticks = 4

                def build_session(self): ...
            """
        )
    )


def test_the_check_finds_a_view_of_the_runner(members: set[str]) -> None:
    views = runner_views({"pkg.context": RUNNER_VIEW}, members)

    assert views == [
        "pkg.context:RunView (config, now, run_dir)",
        "pkg.context:StartingRun (build_session)",
    ]


def test_the_check_finds_a_helper_handed_a_view_or_the_runner(members: set[str]) -> None:
    found = handed_the_runner({"pkg.start": RUNNER_VIEW}, {"RunView", "StartingRun"})

    assert found == [
        "pkg.start:13 start(run: StartingRun)",
        "pkg.start:14 restart(run: 'RunView | None')",
        "pkg.start:15 loop(runner: object)",
        "pkg.start:16 launch(it: tradeloom.live.tick.runner.LiveRunner)",
    ]


def test_a_protocol_of_other_members_passes(members: set[str]) -> None:
    source = textwrap.dedent(
        """
        from typing import Protocol

        class Market(Protocol):
            config: object  # one or two names in common: a component's own
            def recover(self): ...
        """
    )

    assert runner_views({"pkg.market": source}, members) == []


# --- the services themselves ----------------------------------------------------------------


def test_journal_link_refuses_before_the_start() -> None:
    link = JournalLink()

    with pytest.raises(RuntimeError, match=r"^the runner has not started$"):
        link.recorder_or_fail  # noqa: B018
    with pytest.raises(RuntimeError, match=r"^the run's journal is not open$"):
        link.journal_or_fail  # noqa: B018
