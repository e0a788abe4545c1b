"""The scanner's possible simple keys, looked up linearly: PyYAML's answers, each time."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.files.yaml_scanner import SafeLoader

# what decides simple keys: brackets and braces (flow levels), colons, commas, quotes,
# dashes, line breaks, long runs (the 1,024-character bound), anchors and aliases
_PIECES = st.sampled_from(
    [
        "[",
        "]",
        "{",
        "}",
        ":",
        ": ",
        ",",
        " ",
        "\n",
        "- ",
        "a",
        "bc",
        '"q"',
        "'r'",
        "&x ",
        "*x",
        "? ",
        "#c\n",
        "x" * 600,
        "  ",
    ]
)


def _tokens(loader_class: type, text: str) -> list[object]:
    """Return the tokens (type, where, value) PyYAML's scanner reads, ending with its error."""
    out: list[object] = []
    try:
        loader = loader_class(text)
    except yaml.YAMLError as exc:  # a character the reader refuses
        return [("error", str(exc))]
    try:
        while loader.check_token():
            token = loader.get_token()
            out.append(
                (type(token).__name__, token.start_mark.index, getattr(token, "value", None))
            )
    except yaml.YAMLError as exc:
        out.append(("error", str(exc)))
    finally:
        loader.dispose()
    return out


@settings(max_examples=examples(500), deadline=None)
@given(st.lists(_PIECES, max_size=80).map("".join))
def test_tokens_and_errors_are_pyyamls(text: str) -> None:
    assert _tokens(SafeLoader, text) == _tokens(yaml.SafeLoader, text)


@pytest.mark.parametrize(
    "text",
    [
        # a key gone stale by length on its line: not a key (flow), an error (block)
        "[" + "x" * 1100 + ": 1]",
        "{" + "x" * 1030 + ": 1}",
        "a" * 1030 + ": 1\n",
        # keys pending at several levels at once: the nearest is the first saved
        "[[a, b]: c]",
        "{[a]: [b]}",
        "- [a: b, [c: d]: e]\n",
        "[a, [b: c], {d: e}, f: g]",
        "[a, b\n: c]",
    ],
)
def test_simple_keys_that_go_stale_or_wait_read_as_pyyaml_reads_them(text: str) -> None:
    assert _tokens(SafeLoader, text) == _tokens(yaml.SafeLoader, text)


def test_a_deep_document_reads_as_pyyaml_reads_it() -> None:
    # a key per flow level, the oldest going stale along one long line
    text = "a: " + "[" * 3000 + "1" + "]" * 3000 + "\nb: {c: [d, {e: f}]}\n"
    assert _tokens(SafeLoader, text) == _tokens(yaml.SafeLoader, text)


def test_a_run_folders_yaml_is_read_by_the_linear_scanner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a run folder's strategy.yaml (read by the report, the console, status and the journal's
    # owner check) is scanned as a strategy file is: a damaged one nested thousands of
    # brackets deep is refused without PyYAML's quadratic walk over its pending keys
    from tradeloom.files import yaml_scanner
    from tradeloom.files.reading import UnreadableFile, read_yaml

    looked: list[int] = []
    linear = yaml_scanner.LinearSimpleKeys.stale_possible_simple_keys

    def counted(self: yaml_scanner.LinearSimpleKeys) -> None:
        looked.append(1)
        linear(self)

    monkeypatch.setattr(yaml_scanner.LinearSimpleKeys, "stale_possible_simple_keys", counted)
    path = tmp_path / "strategy.yaml"
    text = "name: s\ndata: {kind: synthetic, bars: [1, 2, {a: b}]}\n"
    path.write_text(text)
    assert read_yaml(path, "a run's strategy file") == yaml.safe_load(text)
    assert looked
    path.write_text("a: " + "[" * 20_000 + "]" * 20_000 + "\n")
    with pytest.raises(UnreadableFile, match=r"strategy\.yaml: not valid YAML"):
        read_yaml(path, "a run's strategy file")
