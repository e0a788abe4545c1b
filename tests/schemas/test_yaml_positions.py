"""YAML loading: safe_load semantics, positions of every key and value, strictness."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.errors import ConfigError, UserError
from tradeloom.schemas.yaml_loader import Position, SourceMap, load_yaml, parse_yaml


def _lines(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_yaml(textwrap.dedent(text), "s.yaml")
    return caught.value.lines()


def test_positions_of_values_and_keys() -> None:
    doc = parse_yaml(
        textwrap.dedent(
            """\
            # a comment
            name: demo
            features:
              - kind: rsi
                window: 14
              - {kind: ema, span: 3}
            """
        ),
        "s.yaml",
    )
    assert doc.data == {
        "name": "demo",
        "features": [{"kind": "rsi", "window": 14}, {"kind": "ema", "span": 3}],
    }
    values = doc.source_map.values
    assert values["name"] == Position(2, 7)
    assert values["features"] == Position(4, 3)
    assert values["features.0"] == Position(4, 5)
    assert values["features.0.window"] == Position(5, 13)
    assert values["features.1"] == Position(6, 5)
    assert values["features.1.span"] == Position(6, 23)
    keys = doc.source_map.keys
    assert keys["features.0.window"] == Position(5, 5)
    assert keys["features.1.span"] == Position(6, 17)
    assert "features.0" not in keys  # list items have no key


def test_locate_falls_back_to_the_nearest_ancestor() -> None:
    source_map = parse_yaml("data:\n  kind: csv\n", "s.yaml").source_map
    assert source_map.locate("data.kind") == "s.yaml:2:9"
    assert source_map.locate("data.path") == "s.yaml:2:3"
    assert source_map.locate("data.path.deeper") == "s.yaml:2:3"
    assert source_map.locate("missing") == "s.yaml:1:1"
    assert source_map.locate_key("data.kind") == "s.yaml:2:3"
    assert source_map.locate_key("data.path") == "s.yaml:2:3"


def test_overridden_paths_and_below_are_located_at_set() -> None:
    source_map = parse_yaml("risk:\n  sizing:\n    fraction: 1\n", "s.yaml").source_map
    source_map = source_map.with_override("risk.sizing")
    assert source_map.locate("risk.sizing") == "--set"
    assert source_map.locate("risk.sizing.fraction") == "--set"
    assert source_map.locate_key("risk.sizing.fraction") == "--set"
    assert source_map.locate("risk") == "s.yaml:2:3"
    assert source_map.locate("risk.sizing_other") == "s.yaml:2:3"


def test_duplicate_keys_name_both_lines() -> None:
    assert _lines(
        """\
        data:
          kind: synthetic
          bars: 10
          bars: 20
        seed: 1
        seed: 2
        """
    ) == [
        "s.yaml:4:3 data.bars: duplicate key: defined at lines 3 and 4",
        "s.yaml:6:1 seed: duplicate key: defined at lines 5 and 6",
    ]


def test_merge_keys_are_not_duplicates() -> None:
    doc = parse_yaml(
        "base: &b {bars: 1, kind: x}\ndata:\n  <<: *b\n  bars: 2\n",
        "s.yaml",
    )
    assert doc.data["data"] == {"bars": 2, "kind": "x"}
    assert doc.source_map.values["data.bars"] == Position(4, 9)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (
            "a: [1, 2\n",
            "s.yaml:2:1: invalid YAML: expected ',' or ']', but got the end of the file",
        ),
        (
            "data:\n  kind: synthetic\n ? bad\n",
            "s.yaml:3:2: invalid YAML: this line is indented differently from the lines above it "
            "(found a key); keys of one mapping, and items of one list, start in the same column",
        ),
        (
            "data:\n  bars: 10\n  - a\n",
            "s.yaml:3:3: invalid YAML: this line is indented differently from the lines above it "
            "(found a list item ('-')); keys of one mapping, and items of one list, start in the "
            "same column",
        ),
        (
            "a: 1\n b: 2\n",
            "s.yaml:2:3: invalid YAML: mapping values are not allowed here; usually a missing "
            "space after a colon (write key: value) or an unquoted colon in a value "
            "(quote it: 'a: b')",
        ),
        (
            "a: 1\n\tb: 2\n",
            "s.yaml:2:1: invalid YAML: found character '\\t' that cannot start any token; "
            "indent with spaces: YAML does not allow tabs there",
        ),
        (
            "a: 1\n---\nb: 2\n",
            "s.yaml:2:1: invalid YAML: expected a single document in the stream "
            "but found another document",
        ),
    ],
)
def test_invalid_yaml_syntax(text: str, line: str) -> None:
    assert _lines(text) == [line]


def test_python_tags_are_refused() -> None:
    assert _lines("a: !!python/object/apply:os.system [echo hi]\n") == [
        "s.yaml:1:4 a: invalid YAML: the tag !!python/object/apply:os.system is not allowed "
        "in a strategy file; use plain values (!!str, !!int, !!float, !!bool, !!null, "
        "!!seq, !!map)"
    ]


def test_a_value_that_does_not_fit_its_tag() -> None:
    assert _lines("a: !!int many\n") == ["s.yaml:1:4 a: invalid YAML: cannot read 'many' as !!int"]


def test_a_recursive_alias_is_refused() -> None:
    assert _lines("a: &x [1, *x]\n") == [
        "s.yaml:1:4 a.1: invalid YAML: an alias refers to a value that contains it"
    ]


def test_alias_bombs_are_refused() -> None:
    text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 7):
        text += f"{'abcdefg'[i]}: &{'abcdefg'[i]} [" + ", ".join([f"*{'abcdefg'[i - 1]}"] * 10)
        text += "]\n"
    lines = _lines(text)
    assert len(lines) == 1
    assert re.fullmatch(
        r"s\.yaml:\d+:\d+ [a-g.0-9]+: invalid YAML: more than 100000 values once aliases "
        r"are expanded",
        lines[0],
    )


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (
            "- kind: rsi\n",
            "s.yaml:1:1: the top level must be a mapping of keys to values, was a list",
        ),
        (
            "just text\n",
            "s.yaml:1:1: the top level must be a mapping of keys to values, was 'just text'",
        ),
        ("", "s.yaml:1:1: the top level must be a mapping of keys to values, was empty"),
        (
            "# only a comment\n",
            "s.yaml:1:1: the top level must be a mapping of keys to values, was empty",
        ),
    ],
)
def test_top_level_must_be_a_mapping(text: str, line: str) -> None:
    assert _lines(text) == [line]


def test_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=r"^nowhere/s\.yaml: no such file$") as caught:
        load_yaml("nowhere/s.yaml")
    assert caught.value.lines() == ["nowhere/s.yaml: no such file"]


def test_a_directory_is_not_a_strategy_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"^.+: is a directory, not a strategy file$"):
        load_yaml(tmp_path)


def test_load_yaml_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("\ufeffname: x\n", encoding="utf-8")
    doc = load_yaml(path)
    assert doc.data == {"name": "x"}
    assert doc.source_map.locate("name") == f"{path}:1:7"


def test_source_map_of_an_unknown_root() -> None:
    assert SourceMap("s.yaml", {}).locate("a.b") == "s.yaml"


# --- properties -------------------------------------------------------------------------

# Words YAML 1.1 reads as booleans or null; a generated string must not be one of them.
_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}
_KEYS = st.from_regex(r"[a-z][a-z_]{0,7}", fullmatch=True).filter(lambda k: k not in _RESERVED)
_SCALARS = st.one_of(
    st.integers(-(10**6), 10**6),
    st.from_regex(r"[a-z][a-z0-9_]{0,9}", fullmatch=True).filter(lambda s: s not in _RESERVED),
    st.booleans(),
)
_TREES = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=4),
        st.dictionaries(_KEYS, children, min_size=1, max_size=4),
    ),
    max_leaves=25,
)
_DOCUMENTS = st.dictionaries(_KEYS, _TREES, min_size=1, max_size=5)


def _leaves(value: object, path: str) -> list[tuple[str, object]]:
    if isinstance(value, dict):
        return [
            leaf
            for key, item in value.items()
            for leaf in _leaves(item, f"{path}.{key}" if path else key)
        ]
    if isinstance(value, list):
        return [leaf for i, item in enumerate(value) for leaf in _leaves(item, f"{path}.{i}")]
    return [(path, value)]


def _keys(value: object, path: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else key
            found.append((child, key))
            found.extend(_keys(item, child))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found.extend(_keys(item, f"{path}.{i}"))
    return found


@settings(max_examples=examples(60), deadline=None)
@given(document=_DOCUMENTS, flow=st.sampled_from([False, None]))
def test_every_position_points_at_its_value_and_key(document: dict, flow: bool | None) -> None:
    text = yaml.safe_dump(document, default_flow_style=flow, sort_keys=False)
    lines = text.splitlines()
    doc = parse_yaml(text, "gen.yaml")
    assert doc.data == yaml.safe_load(text) == document

    def at(position: Position) -> str:
        return lines[position.line - 1][position.column - 1 :]

    for path, value in _leaves(document, ""):
        written = {True: "true", False: "false"}[value] if isinstance(value, bool) else str(value)
        assert at(doc.source_map.values[path]).startswith(written), (path, text)
    for path, key in _keys(document, ""):
        assert at(doc.source_map.keys[path]).startswith(f"{key}:"), (path, text)


@settings(max_examples=50, deadline=None)
@given(document=_DOCUMENTS, data=st.data())
def test_duplicate_key_is_found_wherever_it_is(document: dict, data: st.DataObject) -> None:
    text = yaml.safe_dump(document, default_flow_style=False, sort_keys=False)
    lines = text.splitlines()
    top_keys = [i for i, line in enumerate(lines) if re.match(r"^[a-z]", line)]
    index = data.draw(st.sampled_from(top_keys))
    key = lines[index].split(":")[0]
    lines.append(f"{key}: 1")
    with pytest.raises(ConfigError) as caught:
        parse_yaml("\n".join(lines) + "\n", "gen.yaml")
    assert caught.value.lines() == [
        f"gen.yaml:{len(lines)}:1 {key}: duplicate key: defined at lines {index + 1} and "
        f"{len(lines)}"
    ]
