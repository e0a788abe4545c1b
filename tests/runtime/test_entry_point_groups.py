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
