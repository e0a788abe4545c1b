"""A command line naming ``run`` or ``validate`` is parsed by a parser holding that
command alone (`tradeloom.cli.main._parser_for`): the same arguments, help and errors as
the whole command's parser, which every other line still gets."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import pytest

from tradeloom.cli import main as cli

LINES = [
    ["run", "s.yaml", "-q", "--out", "runs/x"],
    ["-q", "run", "s.yaml"],
    ["--log-level", "debug", "run", "s.yaml"],
    ["--log-level=info", "run", "s.yaml", "--mode", "paper"],
    ["--threads", "2", "run", "s.yaml", "--set", "a=1", "--set", "b=2"],
    ["--log-file", "f.log", "validate", "s.yaml", "--set", "a=b"],
    ["run"],
    ["run", "s.yaml", "--speed", "fast"],
    ["run", "s.yaml", "--mode", "nope"],
    ["run", "s.yaml", "extra"],
    ["run", "s.yaml", "--out"],
    ["run", "--help"],
    ["validate"],
    ["validate", "s.yaml", "--bogus"],
    ["validate", "-h"],
    ["--threads", "0", "run", "s.yaml"],
    ["--log-level", "loud", "run", "s.yaml"],
]


def _parsed(parser: Any, words: list[str]) -> tuple[Any, str, str, dict[str, Any] | None]:
    out, err = io.StringIO(), io.StringIO()
    code, found = None, None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            found = vars(parser.parse_args(words))
        except SystemExit as stop:
            code = stop.code
    if found is not None:
        found.pop("parser")  # the parser itself: the one that parsed
    return code, out.getvalue(), err.getvalue(), found


@pytest.mark.parametrize("words", LINES, ids=" ".join)
def test_a_command_parsed_alone_is_parsed_as_by_the_whole_parser(words: list[str]) -> None:
    alone = cli._parser_for(words)
    assert alone is not cli._parser()  # built with the one command
    assert _parsed(alone, words) == _parsed(cli._parser(), words)


@pytest.mark.parametrize(
    "words",
    [[], ["--help"], ["--version"], ["-q"], ["--log-l", "debug", "run", "s.yaml"], ["status", "x"],
     ["--", "run", "s.yaml"], ["-qh", "run"], ["no-such-command"], ["--log-level"]],
    ids=" ".join,
)  # fmt: skip
def test_any_other_line_gets_the_whole_parser(words: list[str]) -> None:
    assert cli._parser_for(words) is cli._parser()
