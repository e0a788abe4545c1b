"""``tradeloom parity`` trusts only a sound run folder (issue 81): the journal verified as
``tradeloom journal verify`` verifies it, the run's files read by the safe reader, the
tolerances finite, the output folder handled as the other commands handle theirs (its
own earlier replay replaced), and the replay reading its bars with the strategy's
calendar (a daily stock strategy on XNYS). Each refusal is one line, exit 2."""

from __future__ import annotations

import itertools
import json
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.builders import OMIT, strategy_text
from tests.diagnostics.test_lookahead import write_stock_days
from tests.journal_damage import cut_below_tail, delete_row
from tests.ram_tmp import RamFolders
from tradeloom.cli.main import main
from tradeloom.journal import read_rows
from tradeloom.journal.schema import schema_of

PAPER = ["--mode", "paper", "--clock", "simulated", "--speed", "max", "-q"]


def _parity(capsys: pytest.CaptureFixture[str], *words: str | Path) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["-q", "parity", *map(str, words)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def paper_run(ram_tmp_factory: RamFolders) -> Iterator[Path]:
    """A paper run of the builders' small forest: 30 bars on the simulated clock, filled
    at least twice."""
    with ram_tmp_factory.folder("parity-trust") as folder:
        # features.parquet: the replay's probabilities, compared with the run's
        (folder / "s.yaml").write_text(strategy_text(outputs={"features": True}))
        assert main(["run", str(folder / "s.yaml"), *PAPER, "--max-bars", "30", "--out",
                     str(folder / "paper")]) == 0  # fmt: skip
        assert len(list(read_rows(folder / "paper" / "journal.sqlite", ["fill"]))) >= 2
        yield folder / "paper"


def _copy(run: Path, to: Path) -> Path:
    shutil.copytree(run, to, ignore=shutil.ignore_patterns("parity"))
    return to


def _edit_first_fill_price(journal: Path) -> int:
    """Raise the first fill's price by 1%, as a user with the sqlite3 shell would (the
    append-only trigger dropped); return its sequence number."""
    table = schema_of("fill").table
    with sqlite3.connect(journal) as db:
        db.execute(f'DROP TRIGGER IF EXISTS "{table}_no_update"')
        seq = int(db.execute(f'SELECT min(seq) FROM "{table}"').fetchone()[0])
        db.execute(f'UPDATE "{table}" SET price = price * 1.01 WHERE seq = ?', (seq,))
    return seq


@pytest.mark.slow  # a paper run (the module's) and replays
def test_a_journal_verify_refuses_is_refused_in_its_line(
    paper_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = sum(1 for _ in read_rows(paper_run / "journal.sqlite"))

    def refused(name: str, damage: Callable[[Path], object]) -> str:
        run = _copy(paper_run, tmp_path / name)
        damage(run / "journal.sqlite")
        code, out, err = _parity(capsys, run)
        assert (code, out) == (2, "")
        assert not (run / "parity").exists()  # refused before anything was written
        assert main(["journal", "verify", str(run)]) == 2
        assert capsys.readouterr().err == err  # the same line
        return err

    # the tail record gone (rows may have been cut with it)
    err = refused("no-tail", lambda j: (j.parent / "journal.sqlite.tail").unlink())
    assert err == (
        f"{tmp_path / 'no-tail' / 'journal.sqlite'}: its tail record journal.sqlite.tail is "
        f"missing (the journal was written with one; it holds {rows} rows): rows may have "
        "been cut with it; put the run's own record back\n"
    )
    # the journal's tail cut below its record
    err = refused("cut", lambda j: cut_below_tail(j, 4))
    assert err == (
        f"{tmp_path / 'cut' / 'journal.sqlite'}: its tail was cut: it holds {rows - 4} rows, "
        f"its tail record says {rows} were committed (4 rows lost)\n"
    )
    # a fill's price edited: the chain breaks at its row (it was replayed as the truth)
    seq = _edit_first_fill_price(_copy(paper_run, tmp_path / "probe") / "journal.sqlite")
    err = refused("edited", _edit_first_fill_price)
    assert err == (
        f"{tmp_path / 'edited' / 'journal.sqlite'}: the hash chain breaks at sequence {seq}: "
        "the row does not match its hash (edited, inserted or damaged after it was written)\n"
    )
    # a live bar deleted from the middle (it was replayed as a gap in a temporary file)
    seq = delete_row(_copy(paper_run, tmp_path / "probe2") / "journal.sqlite", "live_bar", 10)
    err = refused("deleted", lambda j: delete_row(j, "live_bar", 10))
    assert err == (
        f"{tmp_path / 'deleted' / 'journal.sqlite'}: the hash chain breaks at sequence {seq}: "
        f"the row of sequence {seq} is missing (deleted)\n"
    )


BOMB = "\n".join(
    ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(9)]
)
"""A "billion laughs": ten levels of nine aliases, 9**10 values once expanded."""


@pytest.mark.slow  # a paper run (the module's) and replays
def test_the_run_files_are_read_by_the_safe_reader(
    paper_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _copy(paper_run, tmp_path / "bomb")
    (run / "strategy.yaml").write_text(BOMB + "\n")
    code, _, err = _parity(capsys, run)
    line = (
        f"{run / 'strategy.yaml'}: more than 100,000 values once its aliases are expanded; "
        "a run's strategy file never has so many: damaged, or another file\n"
    )
    assert (code, err) == (2, line)  # it hung, expanding the aliases
    assert main(["status", str(run)]) == 2  # as status reads it
    assert capsys.readouterr().err == line

    run = _copy(paper_run, tmp_path / "equity")
    (run / "equity.csv").write_text("timestamp,equity\n2024-01-09T08:00:00Z,hello\n")
    code, _, err = _parity(capsys, run)
    assert (code, err) == (
        2,
        f"{run / 'equity.csv'}:2: column equity: expected a number, was 'hello'; damaged, or "
        "not a run's table\n",
    )


@pytest.mark.parametrize(
    ("word", "line"),
    [
        (
            "relative=1e309",
            "--tolerance relative=1e309: expected a finite number >= 0, was '1e309'",
        ),
        ("absolute=inf", "--tolerance absolute=inf: expected a finite number >= 0, was 'inf'"),
        ("slippage=nan", "--tolerance slippage=nan: expected a finite number >= 0, was 'nan'"),
        ("late=-1", "--tolerance late=-1: expected a finite number >= 0, was '-1'"),
        (
            "relative=1",
            "--tolerance relative=1: expected a share below 1 (1 passes any two numbers of one "
            "sign), was '1'",
        ),
    ],
)
def test_a_tolerance_that_passes_anything_is_refused(
    word: str, line: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _parity(capsys, tmp_path, "--tolerance", word)
    assert (code, out, err) == (2, "", line + "\n")


@pytest.mark.slow  # a paper run (the module's) and replays
def test_an_output_folder_is_handled_as_the_other_commands(
    paper_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _copy(paper_run, tmp_path / "run")
    code, _, err = _parity(capsys, run, "--out", "/proc/x")
    assert (code, err) == (2, "--out /proc/x: cannot be made: No such file or directory\n")
    (tmp_path / "file").write_text("mine")
    code, _, err = _parity(capsys, run, "--out", tmp_path / "file")
    assert (code, err) == (
        2,
        f"--out {tmp_path / 'file'}: is a file, not a folder; give a folder\n",
    )

    # twice into the default folder (RUN_DIR/parity): the second replaces the first's replay
    assert _parity(capsys, run)[0] == 0
    first = json.loads((run / "parity" / "parity.json").read_text())
    (run / "parity" / "reference" / "left.txt").write_text("from the first")
    code, out, err = _parity(capsys, run)
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == (
        f"written: {run / 'parity' / 'parity.json'}, {run / 'parity' / 'parity.html'}"
    )
    assert not (run / "parity" / "reference" / "left.txt").exists()
    second = json.loads((run / "parity" / "parity.json").read_text())
    assert second == first and second["differences"] == 0

    # a folder of the user's where the replay goes: never replaced
    out_dir = tmp_path / "mine"
    (out_dir / "reference").mkdir(parents=True)
    (out_dir / "reference" / "notes.txt").write_text("mine")
    code, _, err = _parity(capsys, run, "--out", out_dir)
    assert (code, err) == (
        2,
        f"{out_dir / 'reference'}: is a folder tradeloom did not write there; refusing to "
        "replace it: move it away or give another --out\n",
    )
    assert (out_dir / "reference" / "notes.txt").read_text() == "mine"


@pytest.mark.slow  # a paper run and its replay
def test_a_daily_stock_paper_run_on_xnys_is_replayed(
    ram_tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its replay read its bars without the calendar: each weekend a gap, refused naming
    a temporary file."""
    pytest.importorskip("exchange_calendars")
    monkeypatch.chdir(ram_tmp_path)
    write_stock_days(ram_tmp_path, 420)
    text = strategy_text(
        name="stock_days",
        data={"kind": "csv", "path": "spy.csv", "timeframe": "1d", "calendar": "XNYS"},
        model={"estimator": "sklearn.linear_model.LogisticRegression", "params": OMIT},
        signal={"threshold": 0.01},
        outputs={"features": True},  # the replay's probabilities, compared with the run's
    )
    (ram_tmp_path / "s.yaml").write_text(text)
    assert main(["run", "s.yaml", *PAPER, "--max-bars", "25", "--out", "paper"]) == 0
    journal = ram_tmp_path / "paper" / "journal.sqlite"
    live = [pd.Timestamp(r.timestamp) for r in read_rows(journal, ["live_bar"])]
    assert len(live) == 25 and max(b - a for a, b in itertools.pairwise(live)).days >= 3

    code, out, err = _parity(capsys, "paper")
    assert (code, err) == (0, ""), err
    assert "no difference: every bar's probability, signal, order, fill and equity agree" in out
    replay = json.loads(Path("paper/parity/reference/metrics.json").read_text())
    # the warm-up's 210 days played first (no order), then the 25 the run played
    assert replay["calendar"] == "XNYS" and replay["bars"] == 235
    report = json.loads(Path("paper/parity/parity.json").read_text())
    assert report["warm_up"] == {"bars": 210, "note": ""}
    assert list(read_rows(Path("paper/journal.sqlite"), ["fill"]))  # it traded, as its replay
