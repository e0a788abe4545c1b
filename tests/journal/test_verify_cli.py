"""``tradeloom journal verify RUN_DIR``: exit 0 with the row count, or 2 with one line."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from tradeloom.cli.main import main
from tradeloom.journal import RunIdentity, SignalEvent, open_journal

TS = pd.Timestamp("2024-01-01", tz="UTC")


def _run_dir(folder: Path, rows: int = 5) -> Path:
    folder.mkdir()
    journal = open_journal(folder / "journal.sqlite", RunIdentity("s", folder.name, "backtest"))
    for i in range(rows):
        journal.append(
            SignalEvent(bar=i, timestamp=TS, direction=1, confidence=0.5, probability=0.5)
        )
    journal.close()
    return folder


def test_an_intact_journal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _run_dir(tmp_path / "run")
    assert main(["journal", "verify", str(run)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.startswith(f"{run / 'journal.sqlite'}: 5 rows, hash chain intact (head ")


def test_an_edited_row_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _run_dir(tmp_path / "run")
    path = run / "journal.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("DROP TRIGGER signal_no_update")
        db.execute("UPDATE signal SET direction = -1 WHERE seq = 3")
    assert main(["journal", "verify", str(run)]) == 2
    assert capsys.readouterr() == (
        "",
        f"{path}: the hash chain breaks at sequence 3: the row does not match its hash "
        "(edited, inserted or damaged after it was written)\n",
    )


@pytest.mark.parametrize(
    ("damage", "line"),
    [
        ("missing", "no such journal"),
        ("empty", "an empty file, not a journal"),
        ("random", "not a SQLite database (damaged, or another kind of file)"),
    ],
)
def test_a_damaged_file_exits_2_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str, line: str
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    path = run / "journal.sqlite"
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "random":
        path.write_bytes(bytes(range(256)) * 8)
    assert main(["journal", "verify", str(run)]) == 2
    assert capsys.readouterr() == ("", f"{path}: {line}\n")
