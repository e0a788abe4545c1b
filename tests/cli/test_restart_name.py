"""A paper or live restart finds its run folder by the name its validation reads.

``tradeloom run FILE --mode paper --set name=other`` trades in ``runs/other-paper``; its
restart must read the swapped model kept there (`restart_document`), not the folder of
the name written in the file, or a restart after a swap would trade the file's model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tradeloom.cli import run_command
from tradeloom.live.lifecycle import model_swap
from tradeloom.schemas.yaml_loader import YamlDocument, load_yaml

STRATEGY = Path(__file__).resolve().parents[2] / "strategies" / "btc_rf.yaml"


@pytest.mark.parametrize(
    ("overrides", "folder"),
    [([], None), (["name=other"], "other-paper"), (["name=first", "name=second"], "second-paper")],
)
def test_the_restart_reads_the_folder_of_the_overridden_name(
    overrides: list[str],
    folder: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    asked: list[Path] = []

    def restart_document(document: YamlDocument, run_dir: Path) -> YamlDocument:
        asked.append(run_dir)
        return document

    monkeypatch.setattr(model_swap, "restart_document", restart_document)
    args = argparse.Namespace(file=STRATEGY, overrides=overrides, out=None, mode="paper")
    run_command._restart_document(args, simulated=False)
    name = load_yaml(STRATEGY).data["name"]
    assert asked == [(tmp_path / "runs" / (folder or f"{name}-paper")).resolve()]
