"""Name each grouped test ``nodeid@group`` in a worker of ``--dist loadgroup``, as
pytest-xdist means to, so that its scheduler keeps a group's tests on one worker.

xdist (3.8) names them by assigning ``item._nodeid``, which pytest 9.2 no longer reads (a
node's id is the structured ``item._id``; pytest-dev/pytest-xdist#1386, open): no test
was grouped, and what a group shares (a module's trained run, the example plugin's venv,
the warm cache the kernel cache damage tests copy, vectorbt's compile) was built by each
worker that ran one of its tests: the suite's log showed such set-ups twice or three
times in 13 modules. Where xdist's own name took, this does nothing. tests/conftest.py
registers the hook; tests/test_xdist_groups.py runs it in a session of its own.
"""

from __future__ import annotations

import os

import pytest

__all__ = ["pytest_collection_modifyitems_named_groups"]


@pytest.hookimpl(trylast=True, specname="pytest_collection_modifyitems")
def pytest_collection_modifyitems_named_groups(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    """In a worker of ``--dist loadgroup``, suffix each grouped test's id with its group
    (after xdist's own hook, which may have failed to)."""
    if not getattr(config.option, "loadgroup", False) or "PYTEST_XDIST_WORKER" not in os.environ:
        return
    try:  # the structured ids came with pytest 9.2; before it xdist's own name takes
        from _pytest.nodeid import NodeId
    except ImportError:
        return
    for item in items:
        names = sorted(
            {
                str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                for mark in item.iter_markers("xdist_group")
            }
        )
        suffix = f"@{'_'.join(names)}"
        if names and not item.nodeid.endswith(suffix) and hasattr(item, "_id"):
            item._id = NodeId.parse(item.nodeid + suffix)
