"""``tradeloom completion bash|zsh|fish``: each script is generated from the command's
parser, and each shell that is installed takes it and completes the commands, their
options and their choices from it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tradeloom.cli.completion_command import SHELLS
from tradeloom.cli.main import _parser, main

COMMANDS = sorted(
    name
    for action in _parser()._actions
    if type(action).__name__ == "_SubParsersAction"
    for name in action.choices
)


def _script(capsys: pytest.CaptureFixture[str], shell: str) -> str:
    capsys.readouterr()
    assert main(["completion", shell]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return out


def _shell(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed")
    return found


def _bash_complete(script: Path, line: str) -> list[str]:
    """What bash offers for ``line`` (a Tab at its end) through the script's function."""
    words = line.split(" ")
    program = f"""
source {script}
complete -p tradeloom
COMP_WORDS=({" ".join(repr(w) for w in words)})
COMP_CWORD={len(words) - 1}
COMP_LINE={line!r}
COMP_POINT=${{#COMP_LINE}}
_shtab_tradeloom tradeloom {words[-1]!r} {words[-2]!r}
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    done = subprocess.run(
        [_shell("bash"), "-c", program], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    first, *offered = done.stdout.splitlines()
    assert first == "complete -o bashdefault -F _shtab_tradeloom tradeloom"  # registered
    return offered


def test_every_shell_has_a_script_that_knows_every_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert SHELLS == ("bash", "zsh", "fish")
    assert "completion" in COMMANDS and "validate" in COMMANDS
    for shell in SHELLS:
        script = _script(capsys, shell)
        for command in COMMANDS:
            assert command in script, (shell, command)
    assert _script(capsys, "zsh").startswith("#compdef tradeloom\n")


def test_an_unknown_shell_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["completion", "tcsh"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "invalid choice: 'tcsh'" in err[0], err


def test_bash_registers_it_and_completes_commands_options_and_choices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "tradeloom.bash"
    script.write_text(_script(capsys, "bash"))
    assert sorted(_bash_complete(script, "tradeloom ")) == COMMANDS
    assert _bash_complete(script, "tradeloom va") == ["validate"]
    assert _bash_complete(script, "tradeloom journal ") == ["verify"]
    assert "--json" in _bash_complete(script, "tradeloom status --")
    assert _bash_complete(script, "tradeloom schema --kind ") == ["strategy", "portfolio", "sweep"]
    assert _bash_complete(script, "tradeloom completion ") == ["bash", "zsh", "fish"]


def test_fish_completes_from_its_script(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "tradeloom.fish"
    script.write_text(_script(capsys, "fish"))

    def offered(line: str) -> list[str]:
        done = subprocess.run(
            [_shell("fish"), "--no-config", "-c", f"source {script}; complete -C '{line}'"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return [row.split("\t")[0] for row in done.stdout.splitlines()]

    assert offered("tradeloom va") == ["validate"]
    assert sorted(offered("tradeloom ")) == COMMANDS
    assert "--json" in offered("tradeloom plugins --")
    assert offered("tradeloom schema --kind ") == ["strategy", "portfolio", "sweep"]


def test_zsh_loads_its_script(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "functions"
    folder.mkdir()
    (folder / "_tradeloom").write_text(_script(capsys, "zsh"))
    # as a user installs it: a file of $fpath that compinit binds to the command
    program = (
        f"fpath=({folder} $fpath); autoload -Uz compinit && compinit -u -d {tmp_path}/dump; "
        "print -r -- ${_comps[tradeloom]}; autoload +X _tradeloom; whence -w _tradeloom"
    )
    done = subprocess.run(
        [_shell("zsh"), "-f", "-c", program], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["_tradeloom", "_tradeloom: function"]
    checked = subprocess.run(
        [_shell("zsh"), "-n", str(folder / "_tradeloom")], capture_output=True, text=True
    )
    assert (checked.returncode, checked.stderr) == (0, "")
