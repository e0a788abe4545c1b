"""A field added to a kind after its format was released (``fill.liquidity``,
``rejection.purpose``).

A journal written before it (its ``fill`` table without the column) reads the field
as '', verifies, and takes new rows when reopened; its old rows keep their hashes.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd

from tradeloom.engine.status_text import error_line
from tradeloom.journal import (
    FillEvent,
    ModelSwapped,
    RejectionEvent,
    RunIdentity,
    open_journal,
    read_events,
    read_frame,
    verify,
)
from tradeloom.journal.events.documents import DocumentUnscored
from tradeloom.journal.schema import schema_of

IDENTITY = RunIdentity("s", "run-1", "live")
T = pd.Timestamp("2024-01-01", tz="UTC")


def _fill(order_id: str, liquidity: str) -> FillEvent:
    return FillEvent(
        order_id=order_id,
        bar=1,
        timestamp=T,
        side=1,
        quantity=2.0,
        price=10.0,
        fee=0.01,
        slippage=0.0,
        liquidity=liquidity,
    )


def _drop_liquidity(path: Path, kind: str = "fill", column: str = "liquidity") -> None:
    """Make the file as tradeloom wrote it before the field: no ``liquidity`` column."""
    table = schema_of(kind).table
    db = sqlite3.connect(path)
    db.executescript(
        f'DROP TRIGGER "{table}_no_update"; DROP TRIGGER "{table}_no_delete";'
        f'ALTER TABLE "{table}" DROP COLUMN "{column}";'
    )
    db.close()


def test_a_journal_without_the_column_reads_verifies_and_appends(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = open_journal(path, IDENTITY)
    journal.append(_fill("old", ""))
    journal.close()
    head = verify(path).head
    _drop_liquidity(path)
    columns = [r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(fill)")]
    assert "liquidity" not in columns

    assert verify(path).head == head  # the old row's hash never covered the field
    (old,) = read_events(path, ["fill"])
    assert isinstance(old, FillEvent) and old.liquidity == ""
    assert list(read_frame(path, "fill")["liquidity"]) == [""]

    journal = open_journal(path, IDENTITY)  # a restart: the table gets the column
    journal.append(_fill("new", "maker"))
    journal.close()
    assert verify(path).rows == 2
    assert [(e.order_id, e.liquidity) for e in read_events(path, ["fill"])] == [
        ("old", ""),
        ("new", "maker"),
    ]


def test_a_filled_liquidity_is_covered_by_the_hash(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = open_journal(path, IDENTITY)
    journal.append(_fill("a", "maker"))
    journal.close()
    plain = tmp_path / "plain.sqlite"
    journal = open_journal(plain, IDENTITY)
    journal.append(_fill("a", ""))
    journal.close()
    assert verify(path).head != verify(plain).head


def _rejection(code: str, purpose: str) -> RejectionEvent:
    return RejectionEvent(bar=1, timestamp=T, code=code, message="m", purpose=purpose)


def test_rejections_without_their_purpose_read_it_as_empty_and_append(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = open_journal(path, IDENTITY)
    journal.append(_rejection("SHORT_NOT_ALLOWED", ""))
    journal.close()
    head = verify(path).head
    _drop_liquidity(path, "rejection", "purpose")
    assert verify(path).head == head
    assert list(read_frame(path, "rejection")["purpose"]) == [""]

    journal = open_journal(path, IDENTITY)
    journal.append(_rejection("ORDER_RATE", "EXIT_STOP_LOSS"))
    journal.close()
    assert [(e.code, e.purpose) for e in read_events(path, ["rejection"])] == [  # type: ignore[attr-defined]
        ("SHORT_NOT_ALLOWED", ""),
        ("ORDER_RATE", "EXIT_STOP_LOSS"),
    ]


def _unscored(document_id: str, strategy: str) -> DocumentUnscored:
    return DocumentUnscored(
        feature="llm", document_id=document_id, visible=T, reason="timeout", strategy=strategy
    )


def test_unscored_documents_without_their_strategy_read_it_as_empty_and_append(
    tmp_path: Path,
) -> None:
    """``document_unscored.strategy``: a portfolio's strategy whose feature it is."""
    path = tmp_path / "journal.sqlite"
    journal = open_journal(path, IDENTITY)
    journal.append(_unscored("d0", ""))
    journal.close()
    head = verify(path).head
    _drop_liquidity(path, "document_unscored", "strategy")
    assert verify(path).head == head
    assert list(read_frame(path, "document_unscored")["strategy"]) == [""]

    journal = open_journal(path, IDENTITY)
    journal.append(_unscored("d0", "news"))
    journal.close()
    assert verify(path).rows == 2
    rows = list(read_events(path, ["document_unscored"]))
    assert [(e.document_id, e.strategy) for e in rows] == [("d0", ""), ("d0", "news")]  # type: ignore[attr-defined]
    lines = [error_line("document_unscored", {**e.__dict__, "bar": e.bar}) for e in rows]
    assert [line["message"] for line in lines] == [
        "llm: document d0 unscored: timeout",
        "news: llm: document d0 unscored: timeout",
    ]


def _swapped(signal: str, sizing: str = "") -> ModelSwapped:
    return ModelSwapped(
        bar=3,
        timestamp=T,
        by="gate",
        reason="passed",
        source="s",
        request="challenger:c",
        previous="p",
        previous_sha256="",
        sha256="ab",
        file="swapped/ab.pkl",
        model={"path": "swapped/ab.pkl", "sha256": "ab"},
        signal=signal,
        sizing=sizing,
    )


def test_swaps_without_their_signal_read_it_as_the_strategys_and_append(tmp_path: Path) -> None:
    """``model_swapped.signal``: the signal section a promotion put in force; a journal
    written before it verifies with its hashes and reads '' (the strategy's rule)."""
    path = tmp_path / "journal.sqlite"
    journal = open_journal(path, IDENTITY)
    journal.append(_swapped(""))
    journal.close()
    head = verify(path).head
    _drop_liquidity(path, "model_swapped", "signal")
    assert verify(path).head == head
    assert list(read_frame(path, "model_swapped")["signal"]) == [""]

    rule = '{"kind": "threshold", "sides": "long", "threshold": 0.1}'
    journal = open_journal(path, IDENTITY)
    journal.append(_swapped(rule))
    journal.close()
    assert verify(path).rows == 2
    assert [e.signal for e in read_events(path, ["model_swapped"])] == ["", rule]  # type: ignore[attr-defined]


def test_swaps_without_their_sizing_read_it_as_the_strategys_and_append(tmp_path: Path) -> None:
    """``model_swapped.sizing``: the sizing section a promotion put in force; a journal
    written before it (without ``signal`` either) verifies with its hashes and reads ''
    (the strategy's ``risk.sizing``)."""
    path = tmp_path / "journal.sqlite"
    journal = open_journal(path, IDENTITY)
    journal.append(_swapped(""))
    journal.close()
    head = verify(path).head
    _drop_liquidity(path, "model_swapped", "sizing")
    assert verify(path).head == head
    db = sqlite3.connect(path)  # and before ``signal`` too (its triggers dropped above)
    db.execute(f'ALTER TABLE "{schema_of("model_swapped").table}" DROP COLUMN "signal"')
    db.commit()
    db.close()
    assert verify(path).head == head
    assert list(read_frame(path, "model_swapped")["sizing"]) == [""]

    sizing = '{"fraction": 0.2, "kind": "fixed_fraction"}'
    journal = open_journal(path, IDENTITY)
    journal.append(_swapped("", sizing))
    journal.close()
    assert verify(path).rows == 2
    assert [e.sizing for e in read_events(path, ["model_swapped"])] == ["", sizing]  # type: ignore[attr-defined]


def test_each_kinds_annotations_read_as_typing_reads_them() -> None:
    """The schemas' annotations, each text evaluated once per module, are what
    `typing.get_type_hints` gives for every kind."""
    import typing

    from tradeloom.journal import KINDS
    from tradeloom.journal import schema as journal_schema

    names = journal_schema._ANNOTATION_NAMES
    for cls in KINDS.values():
        assert journal_schema._type_hints(cls) == typing.get_type_hints(cls, localns=names)
