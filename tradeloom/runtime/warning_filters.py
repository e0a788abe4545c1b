"""The process's warning filters, put back after work whose library threads replace them.

scikit-learn runs each task of its ``Parallel`` (a forest's trees with ``n_jobs`` other
than 1, a calibration's folds, tradeloom's fold threads) inside
``warnings.catch_warnings()`` and ``warnings.resetwarnings()``, to give the worker
thread the caller's filters. Before Python 3.14 ``catch_warnings`` swaps the module's one
list of filters, and two worker threads doing so at once can leave the process with a
list that another thread emptied: from then on every ``Parallel`` call of the process
captures no filters and every task warns "``sklearn.utils.parallel.delayed`` should be
used with ``sklearn.utils.parallel.Parallel``", hundreds of lines a run (a forest's
probabilities checked against its compiled form: one per tree and fold), and a
``DeprecationWarning`` Python hides shows. It happens under load, at random (a thread
switch between one worker's reset and its filters added back).

`kept_warning_filters` puts the list, and what it held, back where fitting ends. It
filters nothing: a warning a fit gives is shown as before. Work that overlaps (fold
threads, a sweep's tasks) shares one keeper: the filters as they were when the first
began are put back as each ends (a block that begins while another's threads have
damaged them does not take the damage for the process's filters).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

__all__ = ["kept_warning_filters"]

_lock = threading.Lock()
_active = 0
_kept: tuple[list[Any], list[Any]] | None = None
"""The filters list of the process before the first running work began, and its items."""


@contextmanager
def kept_warning_filters() -> Iterator[None]:
    """Run the block; then put back the process's warning filters (the list object and
    its items) as they were when the first of the blocks running now began."""
    global _active, _kept
    with _lock:
        if _active == 0:
            filters = cast("list[Any]", warnings.filters)  # a list, typed as a Sequence
            _kept = (filters, list(filters))
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _kept is not None:
                kept, items = _kept
                if warnings.filters is not kept or kept != items:
                    kept[:] = items
                    warnings.filters = kept
                    warnings._filters_mutated()  # type: ignore[attr-defined]
            if _active == 0:
                _kept = None
