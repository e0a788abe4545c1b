"""A paper run's folder holds only what `RUN_OWNED` names, so that a folder of a run is
told from a folder of someone's files (`check_live_run_dir`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tradeloom.cli.main import main
from tradeloom.engine.run_dir import RUN_OWNED, check_live_run_dir
from tradeloom.errors import UserError
from tradeloom.journal.tail import tail_path

ROOT = Path(__file__).resolve().parents[2]


def test_every_file_a_paper_run_writes_is_a_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    text = (ROOT / "examples" / "two_strategies" / "reversion_eth.yaml").read_text()
    text = text.replace("bars: 1500", "bars: 700").replace("train_window: 500", "train_window: 300")
    (tmp_path / "s.yaml").write_text(text)
    paper = ["--mode", "paper", "--clock", "simulated", "--speed", "max", "--max-bars", "5"]
    assert main(["run", "s.yaml", *paper, "--out", "paper", "-q"]) == 0
    run_dir = tmp_path / "paper"
    journal = run_dir / "journal.sqlite"
    written = set(os.listdir(run_dir)) - {tail_path(journal).name}  # checked on its own
    assert {"journal.sqlite", "metrics.json", "strategy.yaml"} <= written
    assert written <= RUN_OWNED, f"not in RUN_OWNED: {sorted(written - RUN_OWNED)}"

    # its journal and tail gone, what is left is still a run's folder...
    for name in ("journal.sqlite", "journal.sqlite-wal", "journal.sqlite-shm"):
        (run_dir / name).unlink(missing_ok=True)
    tail_path(journal).unlink()
    check_live_run_dir(run_dir, given=True)
    # ...and a file of someone else's is named
    (run_dir / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"holds files that are not a run's \(notes\.txt\)"):
        check_live_run_dir(run_dir, given=True)
