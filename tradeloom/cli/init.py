"""``tradeloom init DIR``: a starter project, as freqtrade's ``create-userdir``.

It writes, into a new or empty folder:

- ``strategy.yaml``: the seed strategy (``strategies/btc_rf.yaml``), which runs offline on
  the built-in synthetic market, with the line that gives editors the schema;
- ``strategy.schema.json``: the JSON Schema of strategy files with the plugins installed
  now (``tradeloom schema``), which that line names;
- ``README.md``: what to run first;
- ``plugin/``: a plugin package to grow (its own pyproject.toml and entry point, one
  feature), as ``examples/tradeloom-example-plugin`` is a complete one.

The strategies and examples ship inside a built wheel (hatch_build.py adds them
as ``tradeloom/_starter/``); a clone or an editable install reads them where they are.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from tradeloom.errors import UserError

__all__ = ["SCHEMA_FILE", "SEED", "STRATEGY_FILE", "first_command", "init_project", "shipped"]

_PACKAGE = Path(__file__).resolve().parents[1]

STRATEGY_FILE = "strategy.yaml"
SCHEMA_FILE = "strategy.schema.json"
SEED = "strategies/btc_rf.yaml"
"""The strategy a new user runs first (the README's command, `tradeloom warm`'s default)."""


def shipped(relative: str) -> Path:
    """Return a file of the repository's ``strategies/`` or ``examples/`` as installed.

    Args:
        relative: Its path in the repository (``strategies/btc_rf.yaml``).

    Raises:
        FileNotFoundError: Neither the package (a wheel) nor the clone holds it.
    """
    for base in (_PACKAGE / "_starter", _PACKAGE.parent):
        path = base / relative
        if path.is_file():
            return path
    raise FileNotFoundError(f"{relative} is not installed with tradeloom ({_PACKAGE})")


def first_command(folder: Path) -> str:
    """Return the shell command that runs the new project's strategy, to paste as it is.

    The folder is quoted for a POSIX shell (`shlex.quote`: spaces, quotes, ``$``...), and
    a relative one that starts with ``-`` is written ``./-...`` so that ``cd`` does not
    read it as an option (``cd -`` goes back to the previous folder).
    """
    where = str(folder)
    if where.startswith("-"):
        where = f"./{where}"
    return f"cd {shlex.quote(where)} && tradeloom run {STRATEGY_FILE}"


def init_project(folder: Path) -> list[Path]:
    """Write a starter project into ``folder`` (new or empty); return the files written.

    Raises:
        UserError: ``folder`` is a file, or a folder that holds anything.
    """
    if folder.is_file() or (folder.is_symlink() and not folder.is_dir()):
        raise UserError(f"{folder}: is a file; tradeloom init writes a new project folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise UserError(
            f"{folder}: not empty; tradeloom init writes into a new or empty folder only "
            "(nothing was written)"
        )
    files = {
        STRATEGY_FILE: _strategy(),
        SCHEMA_FILE: _schema(),
        "README.md": _README.format(folder=folder.name),
        "plugin/pyproject.toml": _PLUGIN_PYPROJECT,
        "plugin/README.md": _PLUGIN_README,
        "plugin/my_tradeloom_plugin/__init__.py": _PLUGIN_INIT,
        "plugin/my_tradeloom_plugin/plugin.py": _PLUGIN_MODULE,
        "plugin/my_tradeloom_plugin/bar_range.py": _PLUGIN_FEATURE,
        "plugin/my_tradeloom_plugin/py.typed": "",
    }
    written = []
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def _strategy() -> str:
    lines = shipped(SEED).read_text(encoding="utf-8").splitlines(keepends=True)
    body = "".join(lines[next(i for i, x in enumerate(lines) if not x.startswith("#")) :])
    return (
        f"# yaml-language-server: $schema={SCHEMA_FILE}\n"
        "# A random forest on BTC/USDT hourly bars of the built-in synthetic market (offline).\n"
        f"# Run it: tradeloom run {STRATEGY_FILE}   Check it: tradeloom validate {STRATEGY_FILE}\n"
        + body
    )


def _schema() -> str:
    # draft 7, as `tradeloom schema` prints it: the version yaml-language-server implements
    from tradeloom.plugins.manager import load_plugins
    from tradeloom.schemas.json_schema import strategy_json_schema, to_draft7

    schema = to_draft7(strategy_json_schema(load_plugins().registry))
    return json.dumps(schema, indent=2) + "\n"


_README = """\
# {folder}

A tradeloom project. Run the strategy offline on the built-in synthetic market:

    tradeloom run strategy.yaml

Then `tradeloom report runs/<run>` looks at it again, `tradeloom validate strategy.yaml`
checks an edit (each mistake one line with file:line:column), and
`tradeloom run strategy.yaml --mode paper --clock simulated` trades it on paper against the
built-in exchange emulator. Editors that speak yaml-language-server complete and check keys
with `strategy.schema.json` (written by `tradeloom schema > strategy.schema.json`: write it
again after installing a plugin).

`plugin/` is a plugin package with one feature, `bar_range`: `pip install -e plugin/`, then
add `- {{kind: bar_range, window: 24}}` to `features:` (`tradeloom plugins` lists it).
"""

_PLUGIN_PYPROJECT = """\
[build-system]
requires = ["hatchling>=1.26"]
build-backend = "hatchling.build"

[project]
name = "my-tradeloom-plugin"
version = "0.1.0"
description = "My tradeloom components."
requires-python = ">=3.11"
dependencies = ["tradeloom", "pandas", "pydantic"]

# The line that makes this a tradeloom plugin: tradeloom imports this module at start-up
# and registers it under the entry point's name (`tradeloom plugins` lists it).
[project.entry-points.tradeloom]
my_plugin = "my_tradeloom_plugin.plugin"

[tool.hatch.build.targets.wheel]
packages = ["my_tradeloom_plugin"]
"""

_PLUGIN_README = """\
# my-tradeloom-plugin

`pip install -e .` here; `tradeloom plugins` then lists `my_plugin` and its feature
`bar_range`. Add components to `my_tradeloom_plugin/plugin.py`; import only
`tradeloom.plugin`, the public API. The docs' "Writing a plugin" guide has the rest.
"""

_PLUGIN_INIT = '''\
"""My tradeloom components, registered through the entry point in pyproject.toml."""
'''

_PLUGIN_MODULE = '''\
"""The plugin module: tradeloom registers it through the entry point ``my_plugin``.

Every function named ``tradeloom_*`` carries ``@hookimpl`` and is one of tradeloom's hooks
(a misspelt one fails at start-up).
"""

from __future__ import annotations

from tradeloom.plugin import Component, hookimpl

from my_tradeloom_plugin import bar_range


@hookimpl
def tradeloom_components() -> list[Component]:
    """Return this package's components."""
    return [
        Component(
            "features",
            "bar_range",
            bar_range.BarRangeParams,
            bar_range.build,
            "the mean of (high - low) / close over the last window bars",
        ),
    ]
'''

_PLUGIN_FEATURE = '''\
"""Feature ``bar_range``: the mean of (high - low) / close over the last ``window`` bars.

The window ends at bar t, so the value at t uses bars <= t only (no look-ahead).
"""

from __future__ import annotations

import pandas as pd
from pydantic import Field
from tradeloom.plugin import Bars, BuildContext, Params


class BarRangeParams(Params):
    """Keys of a ``features`` entry with ``kind: bar_range``."""

    window: int = Field(ge=1, le=100_000, description="Bars averaged, this one included.")


class BarRange:
    """Compute the rolling mean of the bars' relative range."""

    def __init__(self, params: BarRangeParams) -> None:
        self.window = params.window
        self.column = f"bar_range_{params.window}"

    def columns(self) -> list[str]:
        """Return the one column this feature adds."""
        return [self.column]

    def compute(self, bars: Bars, features: pd.DataFrame) -> pd.DataFrame:
        """Return the column, indexed like ``bars.frame``; row t uses rows <= t only."""
        frame = bars.frame
        value = ((frame["high"] - frame["low"]) / frame["close"]).rolling(self.window).mean()
        return pd.DataFrame({self.column: value.astype("float64")}, index=frame.index)


def build(params: BarRangeParams, ctx: BuildContext) -> BarRange:
    """Build the feature."""
    return BarRange(params)
'''
