"""plotly.js shared by the pages of a folder of runs: written once, loaded by each page.

A page (``report.html``, ``sweep.html``, ``compare.html``) either embeds plotly.js (4.7 MB)
or loads ``plotly-<version>.min.js`` (`plotly_file`) by a relative URL; `shared_plotly`
finds or writes that file and returns the URL. No page fetches anything from a network.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from tradeloom.files.addresses import quote_path
from tradeloom.files.writing import OutputFolder, UnsafeOutput
from tradeloom.reporting.charts import plotly_file, plotly_js

__all__ = ["shared_plotly"]


def shared_plotly(
    page_dir: Path, folder: Path, *, option: str, reuse: Sequence[Path] = ()
) -> str | None:
    """Return the URL, from a page in ``page_dir``, of plotly.js shared by the pages.

    Args:
        page_dir: The folder of the page.
        folder: Where the file is written when no ``reuse`` folder holds it.
        option: How the user named ``folder``, for `OutputFolder`'s messages.
        reuse: Folders whose copy, written by other pages (the runs' reports), serves.

    Returns:
        The relative URL, or None: the page embeds plotly.js, because ``folder`` is the
        current folder and does not hold the file yet (the folder a user works in gets no
        4.7 MB file it did not ask for), or the file cannot be written there (read-only,
        a file of that name not written by tradeloom).
    """
    name = plotly_file()
    script = plotly_js()
    # absolute, not resolved: the page's URL goes up its own path, a link is not followed
    for other in reuse:
        path = other.absolute() / name
        if _holds(path, script):
            return _url(path, page_dir)
    target = folder.absolute()
    path = target / name
    if target == Path.cwd().absolute() and not path.is_file():
        return None
    try:
        if not _holds(path, script):
            OutputFolder(target, option=option).write_bytes(name, script)
    except (OSError, UnsafeOutput):
        return None
    return _url(path, page_dir)


def _holds(path: Path, script: bytes) -> bool:
    try:
        return path.is_file() and path.stat().st_size == len(script) and path.read_bytes() == script
    except OSError:
        return False


def _url(path: Path, page_dir: Path) -> str:
    return quote_path(Path(os.path.relpath(path, page_dir.absolute())).as_posix())
