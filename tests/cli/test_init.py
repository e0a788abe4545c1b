"""``tradeloom init DIR`` writes a starter project that validates, and refuses a used folder."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.cli.test_cli import SIDES_WARNING
from tradeloom.cli.init import SCHEMA_FILE, STRATEGY_FILE, shipped
from tradeloom.cli.main import main
from tradeloom.plugins.manager import load_plugins
from tradeloom.schemas.json_schema import strategy_json_schema, to_draft7

ROOT = Path(__file__).resolve().parents[2]


def _cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_init_writes_a_project_whose_strategy_and_plugin_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = tmp_path / "demo"
    demo.mkdir()  # an empty folder is used as a new one
    code, out, err = _cli(capsys, "init", demo)
    assert (code, err) == (0, "")
    assert out == f"wrote 9 files into {demo}\nnext: cd {demo} && tradeloom run strategy.yaml\n"
    strategy = (demo / STRATEGY_FILE).read_text()
    assert strategy.startswith(f"# yaml-language-server: $schema={SCHEMA_FILE}\n")
    # the seed strategy's keys, unchanged: what the README's first command runs
    seed = shipped("strategies/btc_rf.yaml").read_text()
    assert strategy.endswith(seed[seed.index("\nname: ") :])
    schema = json.loads((demo / SCHEMA_FILE).read_text())
    # `tradeloom schema`'s
    assert schema == to_draft7(strategy_json_schema(load_plugins().registry))

    # the plugin skeleton registers its feature, and a strategy that uses it validates
    monkeypatch.syspath_prepend(str(demo / "plugin"))
    with_plugin = demo / "with_plugin.yaml"
    with_plugin.write_text(
        strategy.replace("features:\n", "features:\n  - {kind: bar_range, window: 24}\n", 1)
        + "plugins: [my_tradeloom_plugin.plugin]\n"
    )
    code, out, err = _cli(capsys, "validate", with_plugin)
    # btc_rf's one warning: its threshold signal may go short on a spot venue
    assert (code, err) == (0, f"{with_plugin}:50:9 {SIDES_WARNING}\n"), err
    assert "13 feature columns" in out  # btc_rf's 12 and bar_range_24


def test_init_refuses_a_folder_that_holds_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    code, out, err = _cli(capsys, "init", tmp_path)
    assert (code, out) == (2, "")
    assert err == (
        f"{tmp_path}: not empty; tradeloom init writes into a new or empty folder only "
        "(nothing was written)\n"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]
    code, out, err = _cli(capsys, "init", tmp_path / "mine.txt")
    assert (code, err) == (
        2,
        f"{tmp_path / 'mine.txt'}: is a file; tradeloom init writes a new project folder\n",
    )


def test_the_shipped_files_are_read_from_the_clone_or_the_package() -> None:
    assert shipped("strategies/btc_rf.yaml") == ROOT / "strategies" / "btc_rf.yaml"  # a clone
    with pytest.raises(FileNotFoundError, match=r"^strategies/nosuch.yaml is not installed"):
        shipped("strategies/nosuch.yaml")


@pytest.mark.parametrize("name", ["my demo", 'it\'s "new" $HOME;`id`\t', "-", "-dash"])
def test_the_next_command_works_pasted_into_a_shell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()  # so that 'cd -' would not fail either
    code, out, err = _cli(capsys, "init", "--", name)
    assert (code, err) == (0, "")
    written, command = out.splitlines()
    assert written == f"wrote 9 files into {name}"
    assert command.startswith("next: cd ") and command.endswith(" && tradeloom run strategy.yaml")
    # what the shell makes of it: cd into the new project, and its strategy is there
    pasted = command.removeprefix("next: ").replace("tradeloom run", "pwd && test -f")
    env = {"HOME": "/nowhere", "OLDPWD": str(tmp_path / "runs")}  # unquoted, cd - goes there
    shell = subprocess.run(
        ["bash", "-c", pasted], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert (shell.returncode, shell.stderr) == (0, "")
    assert shell.stdout == f"{tmp_path / name}\n"
