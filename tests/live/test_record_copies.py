"""`RecordCopies` hands over the records so far at the cost of the new ones: a view
handed over never changes as the list grows, and a list that is not the one copied (a
new engine's) is copied whole."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tradeloom.live.outputs.record_copies import RecordCopies


@given(st.lists(st.integers(0, 5), max_size=12), st.integers(-20, 20), st.integers(-20, 20))
def test_views_are_the_records_then_and_stay_so(grows: list[int], a: int, b: int) -> None:
    copies, records, views = RecordCopies(), [], []
    for k, grow in enumerate(grows):
        records.extend(object() for _ in range(grow))
        views.append((copies.view("fills", records), list(records)))
        assert len(views[-1][0]) == len(records), k
    for view, then in views:
        assert list(view) == then and len(view) == len(then)
        assert view[a:b] == then[a:b] and view[::-1] == then[::-1]
        if then:
            assert view[-1] is then[-1] and view[0] is then[0]


def test_another_list_is_copied_whole() -> None:
    copies = RecordCopies()
    first = [object(), object()]
    kept = copies.view("trades", first)
    second = [object()]  # shorter: another engine's
    assert list(copies.view("trades", second)) == second
    third = [object(), object()]  # as long as the copy, another last record
    assert list(copies.view("trades", third)) == third
    assert list(kept) == first
