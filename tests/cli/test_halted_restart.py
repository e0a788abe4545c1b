"""A restart of a run the kill switch holds says so, and how to trade again, once.

An operator who starts a killed paper or live run again sees only HALTED on every bar
unless the start says why; the line names `tradeloom resume` with the run's folder.
A run that is not halted says nothing of it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tradeloom.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
PAPER = ["--mode", "paper", "--clock", "simulated", "--speed", "max", "-q"]


def test_a_restart_of_a_killed_run_says_it_is_halted_and_how_to_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    text = (ROOT / "examples" / "two_strategies" / "reversion_eth.yaml").read_text()
    text = text.replace("bars: 1500", "bars: 700").replace("train_window: 500", "train_window: 300")
    (tmp_path / "s.yaml").write_text(text)
    run = ["run", "s.yaml", *PAPER, "--out", "paper"]
    assert main([*run, "--max-bars", "2"]) == 0
    assert "kill switch" not in capsys.readouterr().err
    assert main(["kill", "paper", "--reason", "test"]) == 0  # latched at the next start
    assert main([*run, "--max-bars", "1"]) == 0
    capsys.readouterr()
    assert main([*run, "--max-bars", "1"]) == 0
    captured = capsys.readouterr()
    halted = [line for line in captured.err.splitlines() if "kill switch holds" in line]
    run_dir = (tmp_path / "paper").resolve()
    assert halted == [
        f"{run_dir}: the kill switch holds this run halted (journaled before this start); "
        f"it trades nothing until `tradeloom resume {run_dir}`"
    ]
    assert "state HALTED" in captured.out
    assert main(["resume", "paper", "--reason", "test"]) == 0
    assert main([*run, "--max-bars", "1"]) == 0
    assert "kill switch holds" not in capsys.readouterr().err
