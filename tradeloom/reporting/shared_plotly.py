"""plotly.js shared by the pages of a folder of runs: written once, loaded by each page.

A page (``report.html``, ``sweep.html``, ``compare.html``) either embeds plotly.js (4.7 MB)
or loads ``plotly-<version>.min.js`` (`plotly_file`) by a relative URL; `shared_plotly`
finds or writes that file and returns the URL. No page fetches anything from a network.

A run's report (`report_plotly`) shares the copy of its folder of runs: a folder named
``runs`` (`RUNS`: where ``tradeloom run`` makes run folders, a sweep keeps its runs, a
paper or live run's ``runs/<name>-<mode>``). A run folder anywhere else gets plotly.js
inside its page, unless its parent holds tradeloom's copy already: everything a run
writes is inside its run folder or in that one documented shared file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from tradeloom.files.addresses import quote_path
from tradeloom.files.writing import OutputFolder, UnsafeOutput
from tradeloom.reporting.charts import plotly_file, plotly_js

__all__ = ["RUNS", "report_plotly", "shared_plotly"]

RUNS = "runs"
"""The name of a folder of runs, whose runs' reports share one copy of plotly.js."""


def report_plotly(run_dir: Path) -> str | None:
    """Return the URL, from ``run_dir``'s report, of the plotly.js shared by the runs of
    its folder of runs, written there when missing; or of tradeloom's copy in another
    folder holding ``run_dir``; None: the page embeds plotly.js (nothing is written
    outside the run folder)."""
    parent = run_dir.absolute().parent
    if parent.name == RUNS:
        return shared_plotly(run_dir, parent, option="RUN_DIR's folder")
    return shared_plotly(run_dir, None, option="RUN_DIR's folder", reuse=[parent])


def shared_plotly(
    page_dir: Path, folder: Path | None, *, option: str, reuse: Sequence[Path] = ()
) -> str | None:
    """Return the URL, from a page in ``page_dir``, of plotly.js shared by the pages.

    Args:
        page_dir: The folder of the page.
        folder: Where the file is written when no ``reuse`` folder holds it (None:
            nowhere).
        option: How the user named ``folder``, for `OutputFolder`'s messages.
        reuse: Folders whose copy, written by other pages (the runs' reports), serves.

    Returns:
        The relative URL, or None: the page embeds plotly.js, because ``folder`` is None,
        or the current folder and does not hold the file yet (the folder a user works in
        gets no 4.7 MB file it did not ask for), or the file cannot be written there
        (read-only, a file of that name not written by tradeloom).
    """
    name = plotly_file()
    script = plotly_js()
    # absolute, not resolved: the page's URL goes up its own path, a link is not followed
    for other in reuse:
        path = other.absolute() / name
        if _holds(path, script):
            return _url(path, page_dir)
    if folder is None:
        return None
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
