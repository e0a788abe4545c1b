"""`tradeloom.tables.kept.Kept`: columns read without an object, objects built once, in order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tradeloom.tables.kept import Kept, column, times


@dataclass(frozen=True)
class Row:
    name: str
    value: float
    at: pd.Timestamp


T0 = pd.Timestamp("2024-01-01", tz="UTC")


def test_a_kept_block_is_read_by_its_columns_and_built_once_when_read_as_objects() -> None:
    built: list[int] = []
    stamps = pd.date_range(T0, periods=3, freq="h")

    def build() -> list[Row]:
        built.append(1)
        names, values = ["a", "b", "c"], [1.0, 2.0, 3.0]
        return [Row(n, v, t) for n, v, t in zip(names, values, stamps, strict=True)]

    kept: Kept[Row] = Kept([Row("z", 0.5, T0)])
    kept.add(3, {"name": ["a", "b", "c"], "value": np.array([1.0, 2.0, 3.0]), "at": stamps}, build)
    assert len(kept) == 4 and built == []
    assert column(kept, "value").tolist() == [0.5, 1.0, 2.0, 3.0]
    assert column(kept, "name").tolist() == ["z", "a", "b", "c"]
    assert list(times(kept, "at")) == [T0, *stamps]
    assert built == []
    assert [r.name for r in kept] == ["z", "a", "b", "c"] and kept[2] == Row("b", 2.0, stamps[1])
    kept.append(Row("d", 4.0, T0))
    assert [r.name for r in kept] == ["z", "a", "b", "c", "d"]
    assert built == [1]


def test_plain_objects_read_as_columns_alike() -> None:
    rows = [Row("x", 1.5, T0), Row("y", 2.5, T0)]
    assert column(rows, "value").tolist() == [1.5, 2.5]
    assert column(rows, "name").dtype == object
    assert column([], "value").tolist() == []
