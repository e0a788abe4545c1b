"""The docs site builds with ``mkdocs build --strict``, and its generated reference holds
every key of every built-in component and every hook.

``.ci/run`` builds the site as a step of its own and hands it to these tests in
``TRADELOOM_DOCS_SITE``; a plain ``pytest`` builds it here.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tradeloom.plugins import hookspecs
from tradeloom.plugins.manager import BUILTIN_PLUGINS, load_plugins
from tradeloom.plugins.registry import RegisteredComponent

ROOT = Path(__file__).resolve().parents[1]
LAYER_PAGES = {
    "data": "data",
    "features": "features",
    "model": "model",
    "signal": "signal",
    "allocation": "allocation",
    "sizing": "risk",
    "risk": "risk",
    "execution": "execution",
    "monitoring": "monitoring",
    "events": "events",
    "chat": "chat",
}
"""The reference page that lists each layer's built-in components."""

BUILTINS = [
    rc
    for layer in LAYER_PAGES
    for rc in load_plugins(entry_points=False).registry.components(layer)
    if rc.plugin.name in BUILTIN_PLUGINS
]


SITE_VARIABLE = "TRADELOOM_DOCS_SITE"
"""A site ``.ci/run`` built with ``mkdocs build --strict`` as a step of its own."""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built docs site: the one CI built in its docs step, else built here (strict)."""
    built = os.environ.get(SITE_VARIABLE)
    if built:
        assert (Path(built) / "index.html").is_file(), f"{SITE_VARIABLE}={built} holds no site"
        return Path(built)
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return out


def page_text(site: Path, page: str) -> str:
    return html.unescape((site / page / "index.html").read_text(encoding="utf-8"))


def keys(model: type) -> list[str]:
    names = []
    for key, field in model.model_fields.items():
        names.append(key)
        nested = field.annotation
        if isinstance(nested, type) and hasattr(nested, "model_fields"):
            names.extend(f"{key}.{sub}" for sub in nested.model_fields)
    return names


@pytest.mark.parametrize("rc", BUILTINS, ids=lambda rc: f"{rc.component.layer}.{rc.component.kind}")
def test_every_key_of_every_builtin_component_is_in_the_reference(
    site: Path, rc: RegisteredComponent
) -> None:
    text = page_text(site, f"reference/{LAYER_PAGES[rc.component.layer]}")
    assert f"<code>{rc.component.kind}</code>" in text
    section = text.split(f"<code>{rc.component.kind}</code>", 1)[1]
    for key in keys(rc.component.params):
        assert f"<code>{key}</code>" in section, f"{rc.component.kind}: {key}"


def test_every_hook_is_on_the_hooks_page(site: Path) -> None:
    text = page_text(site, "plugins/hooks")
    hooks = [n for n in dir(hookspecs) if n.startswith(f"{hookspecs.PROJECT}_")]
    assert len(hooks) > 5
    for hook in hooks:
        assert f"<code>{hook}</code>" in text, hook
        first_line = (getattr(hookspecs, hook).__doc__ or "").strip().splitlines()[0]
        assert first_line in text


def test_every_command_is_in_the_cli_reference(site: Path) -> None:
    text = page_text(site, "reference/cli")
    commands = ("run", "validate", "report", "compare", "parity", "check-lookahead", "data fetch")
    for command in (*commands, "data record-book", "data list", "data import"):
        assert f"<code>tradeloom {command}</code>" in text
    assert "--quiet" in text


def test_the_site_publishes_every_file_kinds_schema_and_every_json_output(site: Path) -> None:
    from tradeloom.reporting.json_output import OUTPUTS

    for kind in ("strategy", "portfolio", "sweep"):
        name = f"{kind}.schema.json"
        assert (site / "schemas" / name).read_bytes() == (ROOT / "docs/schemas" / name).read_bytes()
    outputs = page_text(site, "reference/json")
    for output, (version, command) in OUTPUTS.items():
        assert f"tradeloom.{output}/{version}" in outputs and command in outputs, output


def test_the_readme_is_short_and_links_to_the_docs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme) < 8_000
    for page in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / page).is_file(), page


def test_the_reference_pages_hold_their_generated_tables() -> None:
    """A page read outside the site (GitHub, an editor) shows the tables, not a marker."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec is not None and spec.loader is not None
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    stale = []
    for page in sorted((ROOT / "docs").rglob("*.md")):
        text = page.read_text(encoding="utf-8")
        if "<!-- reference: " in text and hooks.on_page_markdown(text) != text:
            stale.append(str(page.relative_to(ROOT)))
    assert stale == [], f"stale generated tables in {stale}: run python docs/hooks.py"
    features = (ROOT / "docs" / "reference" / "features.md").read_text(encoding="utf-8")
    assert "| `window` | int | `14` |" in features  # a table, not a placeholder


def test_the_event_rows_page_holds_every_record_of_the_core() -> None:
    """Each kind of row the compiled core writes has its line and its section of fields."""
    from tradeloom.core.records import FILL, FILL_POSITION, RECORDS

    text = (ROOT / "docs" / "reference" / "event-rows.md").read_text(encoding="utf-8")
    for rec in RECORDS:
        assert f"| {rec.code} | [`{rec.name}`](#{rec.name}) |" in text, rec.name
        section = text.split(f"\n### {rec.name}\n", 1)[1].split("\n### ", 1)[0]
        for f in rec.fields:
            assert f"| `{f.name}` | {f.type} |" in section, (rec.name, f.name)
    assert f"| {FILL_POSITION} | `position` | float | - |" in text
    assert f"| {FILL.column('seq')} | `seq` | int | `order_id` |" in text
