"""The operator's web console and HTTP API: every run in a browser, in its own process.

``tradeloom console RUNS_DIR...`` serves the runs below those folders (`serve`): a
runs page, a run page that follows its run as it trades, compare, and the kill
switch's actions, with the same data as JSON under ``/api/v1``. It reads run folders
through tradeloom's readers and asks a run to act through the mailbox ``tradeloom
kill`` uses; it never runs inside a trading process. Needs the ``console`` extra
(Starlette and uvicorn).
"""

from __future__ import annotations

__all__ = ["serve"]

from tradeloom.console.serve import serve
