"""The plugin manager: discovery order, sources, and strict registration.

Plugin modules for the error cases are written to a temporary folder by the test
that uses them, so each plugin stands beside the message it must produce.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import structlog

from tradeloom.cli.main import main
from tradeloom.errors import UserError
from tradeloom.plugins import manager
from tradeloom.plugins.manager import (
    BUILTIN_PLUGINS,
    ENTRY_POINT_GROUP,
    PluginImportError,
    load_plugins,
)
from tradeloom.plugins.registry import RegistrationError

HOOKS = (
    "tradeloom_components, tradeloom_exchange_error, tradeloom_fill, tradeloom_halt, "
    "tradeloom_health_action, tradeloom_health_changed, tradeloom_live_event, "
    "tradeloom_model_trained, tradeloom_order, tradeloom_refusal, tradeloom_risk_rejection, "
    "tradeloom_run_finished, tradeloom_run_started, tradeloom_signal"
)

_HEADER = """\
from tradeloom.plugin import Component, Params, hookimpl


class CoinParams(Params):
    bias: float = 0.5


def build(params, ctx):
    return None

"""

PluginWriter = Callable[[str, str], str]


@pytest.fixture
def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginWriter]:
    """Write importable plugin modules; each starts with `_HEADER`'s imports and helpers."""
    written: list[str] = []
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(name: str, body: str, *, header: bool = True) -> str:
        source = (_HEADER if header else "") + textwrap.dedent(body)
        (tmp_path / f"{name}.py").write_text(source, encoding="utf-8")
        written.append(name)
        return name

    yield write
    for name in written:
        sys.modules.pop(name, None)


def _coin_plugin(layer: str = "signal", kind: str = "coin_flip") -> str:
    return f"""
        @hookimpl
        def tradeloom_components():
            return [Component("{layer}", "{kind}", CoinParams, build, "heads or tails")]
        """


# -- discovery and sources ------------------------------------------------------------------


def test_builtins_are_registered_first_and_marked_built_in() -> None:
    plugins = load_plugins(entry_points=False)

    infos = plugins.registry.plugins
    assert [p.name for p in infos] == list(BUILTIN_PLUGINS)
    assert {p.source for p in infos} == {"built-in"}
    assert plugins.registry.get("risk", "drawdown_halt") is not None


def test_plugins_modules_are_registered_after_the_builtins_in_order_with_their_source(
    plugin_module: PluginWriter,
) -> None:
    first = plugin_module("coin_plugin", _coin_plugin())
    second = plugin_module("empty_plugin", "")

    plugins = load_plugins([first, second], entry_points=False)

    infos = plugins.registry.plugins
    assert [(p.name, p.source) for p in infos[-2:]] == [
        ("coin_plugin", "module coin_plugin"),
        ("empty_plugin", "module empty_plugin"),
    ]
    assert [p.name for p in infos[:-2]] == list(BUILTIN_PLUGINS)
    assert [c.kind for c in infos[-2].components] == ["coin_flip"]
    assert infos[-1].components == ()
    registered = plugins.registry.get("signal", "coin_flip")
    assert registered is not None and registered.plugin is infos[-2]


def test_a_module_listed_twice_is_registered_once(plugin_module: PluginWriter) -> None:
    module = plugin_module("coin_plugin", _coin_plugin())

    plugins = load_plugins([module, module], entry_points=False)

    names = [p.name for p in plugins.registry.plugins]
    assert names.count("coin_plugin") == 1


class _FakeEntryPoint:
    """What load_plugins uses of an `importlib.metadata.EntryPoint`."""

    def __init__(self, name: str, module: str, dist: tuple[str, str] | None) -> None:
        self.name = name
        self.module = module
        self.dist = (
            None if dist is None else SimpleNamespace(metadata={"name": dist[0]}, version=dist[1])
        )

    def load(self) -> object:
        __import__(self.module)
        return sys.modules[self.module]


def _entry_points(
    monkeypatch: pytest.MonkeyPatch, *points: _FakeEntryPoint
) -> list[tuple[str, str]]:
    asked: list[tuple[str, str]] = []

    def entry_points(*, group: str) -> list[_FakeEntryPoint]:
        asked.append(("group", group))
        return list(points) if group == ENTRY_POINT_GROUP else []

    from importlib import metadata  # (imported by the manager only where it looks)

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    monkeypatch.setattr(manager, "_group_declared", lambda: True)  # as an installed one's
    return asked


def test_entry_point_plugins_are_named_by_entry_point_with_distribution_and_version(
    monkeypatch: pytest.MonkeyPatch, plugin_module: PluginWriter
) -> None:
    module = plugin_module("acme_coin", _coin_plugin())
    asked = _entry_points(monkeypatch, _FakeEntryPoint("acme", module, ("tradeloom-acme", "1.2.3")))

    plugins = load_plugins()

    assert asked == [("group", "tradeloom")]
    info = plugins.registry.plugins[len(BUILTIN_PLUGINS)]
    assert info.name == "acme"
    assert info.source == "distribution tradeloom-acme 1.2.3 (entry point acme)"
    registered = plugins.registry.get("signal", "coin_flip")
    assert registered is not None and registered.plugin.name == "acme"


def test_entry_points_are_not_loaded_when_disabled(
    monkeypatch: pytest.MonkeyPatch, plugin_module: PluginWriter
) -> None:
    module = plugin_module("acme_coin", _coin_plugin())
    asked = _entry_points(monkeypatch, _FakeEntryPoint("acme", module, ("tradeloom-acme", "1")))

    plugins = load_plugins(entry_points=False)

    assert asked == []
    assert plugins.registry.get("signal", "coin_flip") is None


def test_an_entry_point_that_fails_to_load_names_its_distribution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _entry_points(
        monkeypatch,
        _FakeEntryPoint("broken", "tradeloom_no_such_module", ("tradeloom-broken", "0.3")),
    )

    with pytest.raises(UserError) as caught:
        load_plugins()

    assert str(caught.value) == (
        "plugin entry point 'broken' (distribution tradeloom-broken 0.3) failed to load: "
        "ModuleNotFoundError: No module named 'tradeloom_no_such_module'"
    )


def test_a_module_both_installed_and_listed_under_plugins_is_registered_once(
    monkeypatch: pytest.MonkeyPatch, plugin_module: PluginWriter
) -> None:
    # A strategy may list `plugins: [acme_coin]` for users who have not installed the
    # package; with the package installed too, the same module must not be refused.
    module = plugin_module("acme_coin", _coin_plugin())
    _entry_points(monkeypatch, _FakeEntryPoint("acme", module, ("tradeloom-acme", "1.2.3")))

    plugins = load_plugins([module])

    assert [p.name for p in plugins.registry.plugins].count("acme") == 1
    assert plugins.registry.get("signal", "coin_flip") is not None


@pytest.mark.parametrize("section", ["[tradeloom]", "  [tradeloom]  ", "[[tradeloom]]"])
def test_a_distribution_on_the_path_declaring_the_group_is_loaded_by_its_entry_point(
    section: str, tmp_path: Path, plugin_module: PluginWriter
) -> None:
    """The real look-up (no fake): a distribution's metadata folder on ``sys.path``
    whose entry_points.txt has the group's section, however ``importlib.metadata``
    reads a section's line, is found; the same file under another group is not."""
    module = plugin_module("acme_coin", _coin_plugin())
    info = tmp_path / "tradeloom_acme-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tradeloom-acme\nVersion: 1.2.3\n")
    entry_points = info / "entry_points.txt"
    entry_points.write_text(f"[console_scripts]\nacme = acme:main\n\n{section}\nacme = {module}\n")

    plugins = load_plugins()

    found = [p for p in plugins.registry.plugins if p.name == "acme"]
    assert [p.source for p in found] == ["distribution tradeloom-acme 1.2.3 (entry point acme)"]
    entry_points.write_text(f"[tradeloom.other]\nacme = {module}\n")
    manager._FOUND.clear()  # found once a process for a path: looked for again
    assert not [p for p in load_plugins().registry.plugins if p.name == "acme"]


# -- strict registration --------------------------------------------------------------------


def test_the_same_layer_and_kind_from_two_plugins_is_kept_and_named_by_plugin(
    plugin_module: PluginWriter,
) -> None:
    # Two installed packages that happen to share a kind must not lock out every
    # command: both are kept, the bare kind is ambiguous, PLUGIN:KIND picks one.
    first = plugin_module("coin_a", _coin_plugin())
    second = plugin_module("coin_b", _coin_plugin())

    registry = load_plugins([first, second], entry_points=False).registry

    assert [e.plugin.name for e in registry.matches("signal", "coin_flip")] == ["coin_a", "coin_b"]
    assert registry.get("signal", "coin_flip") is None
    chosen = registry.get("signal", "coin_b:coin_flip")
    assert chosen is not None and chosen.plugin.name == "coin_b"
    assert [[e.plugin.name for e in clash] for clash in registry.clashes()] == [
        ["coin_a", "coin_b"]
    ]
    assert registry.kinds("signal").count("coin_flip") == 1
    assert registry.ambiguous_kind_message("signal", "coin_flip") == (
        "signal kind 'coin_flip' is provided by 2 plugins, 'coin_a' (module coin_a) and "
        "'coin_b' (module coin_b); name one: kind: coin_a:coin_flip or kind: coin_b:coin_flip"
    )
    assert registry.unknown_kind_message("signal", "coin_c:coin_flip") == (
        "unknown signal kind 'coin_c:coin_flip': no plugin 'coin_c' provides 'coin_flip' (did "
        "you mean 'coin_b'?); it is provided by coin_a:coin_flip and coin_b:coin_flip"
    )


def test_a_plugin_may_provide_a_builtin_kind_and_both_stay_reachable(
    plugin_module: PluginWriter,
) -> None:
    module = plugin_module("my_drawdown", _coin_plugin("risk", "drawdown_halt"))

    registry = load_plugins([module], entry_points=False).registry

    assert registry.get("risk", "drawdown_halt") is None
    assert registry.ambiguous_kind_message("risk", "drawdown_halt") == (
        "risk kind 'drawdown_halt' is provided by 2 plugins, 'tradeloom.plugins.risk' "
        "(built-in) and 'my_drawdown' (module my_drawdown); name one: kind: "
        "tradeloom.plugins.risk:drawdown_halt or kind: my_drawdown:drawdown_halt"
    )
    builtin = registry.get("risk", "tradeloom.plugins.risk:drawdown_halt")
    assert builtin is not None and builtin.plugin.source == "built-in"


def test_the_same_kind_in_two_layers_is_allowed(plugin_module: PluginWriter) -> None:
    module = plugin_module("two_layers", _coin_plugin("risk", "coin_flip"))
    other = plugin_module("one_more", _coin_plugin("signal", "coin_flip"))

    registry = load_plugins([module, other], entry_points=False).registry

    assert registry.get("risk", "coin_flip") is not None
    assert registry.get("signal", "coin_flip") is not None


def test_a_misspelt_hook_fails_at_start_up_with_did_you_mean(plugin_module: PluginWriter) -> None:
    module = plugin_module(
        "typo_plugin",
        """
        @hookimpl
        def tradeloom_signall(run, signal):
            pass
        """,
    )

    with pytest.raises(UserError) as caught:
        load_plugins([module], entry_points=False)

    assert str(caught.value) == (
        "plugin 'typo_plugin' implements unknown hook 'tradeloom_signall' "
        f"(did you mean 'tradeloom_signal'?); hooks: {HOOKS}"
    )


def test_tradeloom_components_without_hookimpl_fails_at_start_up(
    plugin_module: PluginWriter,
) -> None:
    module = plugin_module(
        "unmarked_plugin",
        """
        def tradeloom_components():
            return [Component("signal", "coin_flip", CoinParams, build)]
        """,
    )

    with pytest.raises(UserError) as caught:
        load_plugins([module], entry_points=False)

    assert str(caught.value) == (
        "plugin 'unmarked_plugin' defines 'tradeloom_components' without @hookimpl "
        "(from tradeloom.plugin import hookimpl)"
    )


def test_a_plugins_module_that_does_not_exist_raises_plugin_import_error(
    plugin_module: PluginWriter,
) -> None:
    module = plugin_module("coin_plugin", _coin_plugin())

    with pytest.raises(PluginImportError) as caught:
        load_plugins([module, "acme.no_such_plugin"], entry_points=False)

    error = caught.value
    assert str(error) == (
        "cannot import plugin module 'acme.no_such_plugin': "
        "ModuleNotFoundError: No module named 'acme'"
    )
    assert (error.index, error.module) == (1, "acme.no_such_plugin")
    assert isinstance(error, UserError)


def test_a_plugins_module_that_fails_while_importing_raises_plugin_import_error(
    plugin_module: PluginWriter,
) -> None:
    module = plugin_module("exploding_plugin", "raise RuntimeError('no API key configured')\n")

    with pytest.raises(PluginImportError) as caught:
        load_plugins([module], entry_points=False)

    assert str(caught.value) == (
        "cannot import plugin module 'exploding_plugin': RuntimeError: no API key configured"
    )
    assert caught.value.index == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            _coin_plugin("strategy", "coin_flip"),
            "plugin 'malformed' registered kind 'coin_flip' for unknown layer 'strategy'; "
            "layers: data, features, model, signal, allocation, sizing, risk, execution, "
            "monitoring, llm_client, text_feed, events, chat",
            id="unknown-layer",
        ),
        pytest.param(
            """
            @hookimpl
            def tradeloom_components():
                return [Component("signal", "coin_flip", {"bias": float}, build)]
            """,
            "plugin 'malformed' signal kind 'coin_flip': params must be a pydantic model class",
            id="params-not-a-model",
        ),
        pytest.param(
            """
            @hookimpl
            def tradeloom_components():
                return [Component("signal", "coin_flip", CoinParams(), build)]
            """,
            "plugin 'malformed' signal kind 'coin_flip': params must be a pydantic model class",
            id="params-an-instance",
        ),
        pytest.param(
            """
            class KindParams(Params):
                kind: str = "coin_flip"


            @hookimpl
            def tradeloom_components():
                return [Component("signal", "coin_flip", KindParams, build)]
            """,
            "plugin 'malformed' signal kind 'coin_flip': params must not declare 'kind' "
            "(it selects the component)",
            id="params-declare-kind",
        ),
        pytest.param(
            """
            @hookimpl
            def tradeloom_components():
                return [("signal", "coin_flip", CoinParams, build)]
            """,
            "plugin 'malformed' returned tuple from tradeloom_components; "
            "expected tradeloom.plugin.Component",
            id="not-a-component",
        ),
    ],
)
def test_malformed_components_are_refused(
    plugin_module: PluginWriter, body: str, message: str
) -> None:
    module = plugin_module("malformed", body)

    with pytest.raises(RegistrationError) as caught:
        load_plugins([module], entry_points=False)

    assert str(caught.value) == message


# -- the command line -----------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Undo the CLI's structlog set-up, which binds the (captured) stderr of this test."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def test_cli_plugins_lists_each_plugin_with_its_source_and_components(
    plugin_module: PluginWriter, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    module = plugin_module("coin_plugin", _coin_plugin())

    assert main(["plugins", "-m", module]) == 0

    out = capsys.readouterr().out.splitlines()
    assert "tradeloom.plugins.risk  [built-in]" in out
    assert "coin_plugin  [module coin_plugin]" in out
    at = out.index("coin_plugin  [module coin_plugin]")
    assert out[at + 1].split() == ["signal", "coin_flip", "heads", "or", "tails"]


def test_cli_plugins_reports_an_unimportable_module_in_one_line_and_exits_2(
    capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    assert main(["plugins", "-m", "acme.no_such_plugin"]) == 2

    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "cannot import plugin module 'acme.no_such_plugin': "
        "ModuleNotFoundError: No module named 'acme'"
    ]
    assert "Traceback" not in captured.err
