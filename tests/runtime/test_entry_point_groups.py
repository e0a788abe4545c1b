"""The entry-point groups found in one pass, and pydantic's plugin look skipped only where
no installed distribution declares a pydantic plugin."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic.plugin import _loader

from tradeloom.runtime import entry_point_groups
from tradeloom.runtime.entry_point_groups import declared, skip_pydantic_plugin_scan


def _distribution(folder: Path, name: str, entry_points: str) -> None:
    info = folder / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)


@pytest.fixture
def path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on ``sys.path`` (its distributions found), pydantic's plugins not looked
    for yet, and restored after."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(_loader, "_plugins", None)
    monkeypatch.delenv("PYDANTIC_DISABLE_PLUGINS", raising=False)
    return tmp_path


def test_the_groups_hold_every_group_importlib_metadata_reads(path: Path) -> None:
    from importlib import metadata

    _distribution(path, "acme", "[console_scripts]\nacme = acme:main\n\n  [acme.hooks]  \nx = y\n")
    groups = declared()
    assert {"console_scripts", "acme.hooks"} <= groups
    # every group with an entry point is among them (a section left empty is too)
    assert {ep.group for dist in metadata.distributions() for ep in dist.entry_points} <= groups


def test_pydantic_does_not_look_for_plugins_no_distribution_declares(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    skip_pydantic_plugin_scan()

    def looked(**_: Any) -> Any:
        raise AssertionError("pydantic parsed every entry point")

    monkeypatch.setattr(_loader, "entry_points", looked)
    assert list(_loader.get_plugins()) == []

    class Model(BaseModel):  # built with no plugin look
        x: int = 1

    assert Model(x=2).x == 2


def test_a_distribution_declaring_a_pydantic_plugin_is_looked_for_and_loaded(
    path: Path,
) -> None:
    (path / "acme_pydantic_plugin.py").write_text(
        "class Plugin:\n"
        "    def new_schema_validator(self, *args, **kwargs):\n"
        "        return None, None, None\n"
        "plugin = Plugin()\n"
    )
    _distribution(path, "acme-pydantic", "[pydantic]\nacme = acme_pydantic_plugin:plugin\n")
    skip_pydantic_plugin_scan()
    assert _loader._plugins is None  # left for pydantic to look
    try:
        plugins = list(_loader.get_plugins())
        assert [type(p).__name__ for p in plugins] == ["Plugin"]
    finally:
        sys.modules.pop("acme_pydantic_plugin", None)


def test_disabled_plugins_are_left_to_pydantic(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYDANTIC_DISABLE_PLUGINS", "__all__")
    skip_pydantic_plugin_scan()
    assert _loader._plugins is None


def test_a_new_path_is_looked_at_again(
    path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    before = declared()
    other = tmp_path_factory.mktemp("more")
    _distribution(other, "more", "[more.group]\nm = m:m\n")
    sys.path.insert(0, str(other))
    try:
        assert "more.group" in declared() - before
    finally:
        sys.path.remove(str(other))
    assert entry_point_groups.declared() == before


def test_an_import_hook_is_not_a_reason_to_look_again(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = declared()
    _distribution(path, "acme", "[acme.hooks]\nx = y\n")  # (seen by a new look only)

    class Importer:  # finds modules, not distributions (as tradeloom.engine.logs' hook)
        def find_spec(self, *args: object) -> None:
            return None

    monkeypatch.setattr(sys, "meta_path", [Importer(), *sys.meta_path])
    assert declared() == before  # the groups found are kept: the folders not read again

    class Finder(Importer):
        def find_distributions(self, *args: object) -> list[object]:
            return []

    monkeypatch.setattr(sys, "meta_path", [Finder(), *sys.meta_path])
    assert "acme.hooks" in declared()  # a new finder of distributions: looked for again


def test_the_folders_read_give_importlib_metadatas_groups(path: Path) -> None:
    from importlib import metadata

    _distribution(path, "acme", "[acme.hooks]\nx = y\n")
    (path / "Old.EGG-INFO").mkdir()  # importlib.metadata compares the ending in lower case
    (path / "Old.EGG-INFO" / "entry_points.txt").write_text("[old.group]\na = b\n")
    (path / "flat.egg-info").write_text("Metadata-Version: 1.0\n")  # a file: no entry points
    egg = path / "legacy-2.0-py3.11.egg"  # an egg on the path: its EGG-INFO
    (egg / "EGG-INFO").mkdir(parents=True)
    (egg / "EGG-INFO" / "PKG-INFO").write_text("Metadata-Version: 1.0\nName: legacy\n")
    (egg / "EGG-INFO" / "entry_points.txt").write_text("[legacy.group]\nl = l:l\n")
    # the folders alone, as importlib.metadata's own finder reads them (whatever finders
    # a test before this one in the worker left on sys.meta_path)
    for folders in ([str(path), str(egg)], [*sys.path, str(egg)]):
        expected: set[str] = set()
        for dist in metadata.MetadataPathFinder.find_distributions(
            metadata.DistributionFinder.Context(path=folders)
        ):
            entry_point_groups._add_sections(dist.read_text("entry_points.txt") or "", expected)
        assert entry_point_groups._read_groups(folders) == expected
    assert {"acme.hooks", "old.group", "legacy.group"} <= expected


def test_a_zip_file_on_the_path_is_read_by_importlib_metadata(path: Path) -> None:
    import zipfile

    archive = path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("zipped-1.0.dist-info/METADATA", "Name: zipped\nVersion: 1.0\n")
        bundle.writestr("zipped-1.0.dist-info/entry_points.txt", "[zipped.group]\nz = z:z\n")
    sys.path.insert(0, str(archive))
    try:
        assert entry_point_groups._read_groups(sys.path) is None
        assert "zipped.group" in declared()
    finally:
        sys.path.remove(str(archive))


_FRESH = """
import json, sys
from tradeloom.runtime.entry_point_groups import skip_pydantic_plugin_scan
skip_pydantic_plugin_scan()
from pydantic import BaseModel
class Model(BaseModel):
    x: int = 1
from pydantic.plugin._loader import get_plugins
print(json.dumps({
    "x": Model(x=2).x,
    "metadata": "importlib.metadata" in sys.modules,
    "plugins": [type(p).__name__ for p in get_plugins()],
}))
"""


def _fresh(path: Path) -> dict[str, Any]:
    import json
    import os
    import subprocess

    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    env["PYTHONPATH"] = os.pathsep.join([str(path), str(root)])
    done = subprocess.run(
        [sys.executable, "-c", _FRESH], capture_output=True, text=True, env=env, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_a_command_builds_models_without_importing_importlib_metadata(path: Path) -> None:
    # a fresh interpreter, as the command starts: pydantic's loader is a stand-in
    assert _fresh(path) == {"x": 2, "metadata": False, "plugins": []}


def test_a_fresh_interpreter_with_a_pydantic_plugin_loads_it(path: Path) -> None:
    (path / "acme_pydantic_plugin.py").write_text(
        "class Plugin:\n"
        "    def new_schema_validator(self, *args, **kwargs):\n"
        "        return None, None, None\n"
        "plugin = Plugin()\n"
    )
    _distribution(path, "acme-pydantic", "[pydantic]\nacme = acme_pydantic_plugin:plugin\n")
    assert _fresh(path) == {"x": 2, "metadata": True, "plugins": ["Plugin"]}


def test_the_stand_in_hands_any_other_name_to_pydantics_own_loader() -> None:
    stand_in = entry_point_groups._NoPlugins("pydantic.plugin._loader")
    saved = sys.modules.get("pydantic.plugin._loader")
    sys.modules["pydantic.plugin._loader"] = stand_in
    try:
        assert stand_in.get_plugins() == ()
        assert not hasattr(stand_in, "__path__")  # the import system's look: no swap
        assert stand_in.PYDANTIC_ENTRY_POINT_GROUP == "pydantic"  # pydantic's own, now
        real = sys.modules["pydantic.plugin._loader"]
        assert real is not stand_in and real._plugins == {}
    finally:
        if saved is not None:
            sys.modules["pydantic.plugin._loader"] = saved
