"""`kept_warning_filters`: the process's warning filters put back after work whose library
threads replaced them (scikit-learn's worker threads, racing, can leave them emptied)."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator

import pytest

from tradeloom.runtime.warning_filters import kept_warning_filters


@pytest.fixture(autouse=True)
def own_filters() -> Iterator[None]:
    with warnings.catch_warnings():  # the test's own list, whatever it does to it
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message="planted")
        yield


def test_a_replaced_or_emptied_list_is_put_back_whole() -> None:
    before, items = warnings.filters, list(warnings.filters)
    with kept_warning_filters():
        before.insert(0, ("always", None, Warning, None, 0))  # changed in place
        warnings.filters = []  # as two racing worker threads can leave it
    assert warnings.filters is before and warnings.filters == items
    with warnings.catch_warnings(record=True) as caught:
        warnings.warn("planted", UserWarning, stacklevel=1)  # the filters act again
    assert caught == []


def test_a_block_that_changes_nothing_leaves_the_list_alone() -> None:
    before, items = warnings.filters, list(warnings.filters)
    with kept_warning_filters():
        pass
    assert warnings.filters is before and warnings.filters == items


def test_overlapping_blocks_put_back_the_filters_from_before_the_first() -> None:
    """Fold threads, a sweep's tasks: a block beginning while another's work has damaged
    the filters does not take the damage for the process's filters."""
    before, items = warnings.filters, list(warnings.filters)
    inside, release = threading.Event(), threading.Event()

    def second() -> None:
        with kept_warning_filters():
            inside.set()
            release.wait(10)
            warnings.filters = []  # damaged again by the second's work

    with kept_warning_filters():
        warnings.filters = []  # damaged while the first runs
        thread = threading.Thread(target=second)
        thread.start()
        inside.wait(10)
    assert warnings.filters is before and warnings.filters == items  # as the first ends
    release.set()
    thread.join(10)
    assert warnings.filters is before and warnings.filters == items  # and the second
