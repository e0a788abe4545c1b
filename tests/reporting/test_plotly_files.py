"""plotly.js and its version, read from the installed plotly package's files without
importing plotly: the very bytes and name plotly's own functions give."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tradeloom.reporting import charts

ROOT = Path(__file__).resolve().parents[2]


def test_the_script_and_its_name_are_plotlys_own() -> None:
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    assert charts.plotly_js() == get_plotlyjs().encode("utf-8")
    assert charts.plotly_file() == f"plotly-{get_plotlyjs_version()}.min.js"


def test_a_page_that_embeds_plotly_js_holds_plotlys_text() -> None:
    page = charts.page("t", ["<p>x</p>"], [])
    from plotly.offline import get_plotlyjs

    assert f"<script>{get_plotlyjs()}</script>" in page


def test_reading_them_imports_no_plotly() -> None:
    probe = (
        "import sys\n"
        "from tradeloom.reporting import charts\n"
        "charts.plotly_js(); charts.plotly_file()\n"
        "print(sorted(m for m in sys.modules if m == 'plotly' or m == 'importlib.metadata'))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.strip() == "[]"


def test_a_plotly_whose_files_are_elsewhere_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    charts._plotlyjs_version.cache_clear()
    charts._plotly_folder.cache_clear()
    monkeypatch.setattr(charts, "_plotly_folder", lambda: None)
    try:
        assert charts.plotly_js() == get_plotlyjs().encode("utf-8")
        assert charts._plotlyjs_version() == get_plotlyjs_version()
    finally:
        charts._plotlyjs_version.cache_clear()
