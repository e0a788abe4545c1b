"""The value budget counted on the node graph refuses a bomb where building it would."""

from __future__ import annotations

import pytest

from tradeloom.errors import ConfigError
from tradeloom.schemas import yaml_budget, yaml_loader


def _alias_bomb(levels: int, fan: int) -> str:
    text = "a0: &a0 [" + ", ".join(["lol"] * fan) + "]\n"
    for i in range(1, levels):
        text += f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fan) + "]\n"
    return text


def _merge_bomb(levels: int) -> str:
    text = "m0: &m0 {k0: 1, k1: 2}\n"
    for i in range(1, levels):
        text += f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], k{i + 2}: 1}}\n"
    return text


BOMBS = {
    "billion laughs": _alias_bomb(10, 10),
    "aliases": _alias_bomb(7, 9),
    "after bad keys": "x: {!!int no: 1, [a]: 2, .inf: 3, ok: 4}\n" + _alias_bomb(7, 9),
    "in a mapping": "a: &a {"
    + ", ".join(f"k{i}: [x, x, x, x]" for i in range(10))
    + "}\n"
    + "b: &b ["
    + ", ".join(["*a"] * 50)
    + "]\n"
    + "c: ["
    + ", ".join(["*b"] * 50)
    + "]\n",
    "merge keys": _merge_bomb(16),
    "merged past the length the loader flattens": _merge_bomb(40),
    "merged after a plain bomb": _alias_bomb(6, 9) + _merge_bomb(30),
}


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        yaml_loader.parse_yaml(text, "s.yaml")
    return caught.value.lines()


@pytest.mark.parametrize("text", BOMBS.values(), ids=BOMBS.keys())
def test_a_bomb_is_refused_at_the_value_the_builder_refuses(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    counted = []
    monkeypatch.setattr(
        yaml_loader,
        "over_budget",
        lambda *args: counted.append(yaml_budget.over_budget(*args)) or counted[-1],
    )
    fast = _problems(text)
    assert counted[0] is not None, "the count left this bomb to the builder"
    monkeypatch.setattr(yaml_loader, "over_budget", lambda *args: None)
    built = _problems(text)
    assert fast == built
    assert len(fast) == 1 and fast[0].endswith(
        ": invalid YAML: more than 100000 values once aliases are expanded"
    ), fast


@pytest.mark.parametrize(
    "text",
    [
        "loop: &l [*l, " + ", ".join(["x"] * 10) + "]\n" + _alias_bomb(7, 9),
        "m: &m {<<: [1], k: 1}\n" + _alias_bomb(7, 9),
        "=: 1\n" + _alias_bomb(7, 9),
        "d0: &d0 [x]\n"
        + "".join(f"d{i}: &d{i} [*d{i - 1}]\n" for i in range(1, 70))
        + _alias_bomb(7, 9),
    ],
    ids=["a cycle", "a merge the loader refuses", "a '=' key", "deeper than MAX_DEPTH"],
)
def test_a_graph_the_count_does_not_follow_is_left_to_the_builder(text: str) -> None:
    constructor = yaml_loader.SafeConstructor()
    loader = yaml_loader._Loader(text)
    root = loader.get_single_node()
    loader.dispose()
    assert root is not None
    key_of = lambda node: yaml_loader._key_or_problem(constructor, node)[0]  # noqa: E731
    assert yaml_budget.over_budget(root, 100_000, 64, key_of, yaml_loader._INVALID) is None


def test_a_document_within_the_budget_is_built_as_before() -> None:
    text = _alias_bomb(5, 9) + "m: &m {a: 1}\nn: {<<: *m, b: 2}\n"
    doc = yaml_loader.parse_yaml(text, "s.yaml")
    assert doc.data["n"] == {"a": 1, "b": 2}
    assert len(doc.data["a4"]) == 9 and doc.source_map.locate("a4.8.8.8.8") == "s.yaml:1:5"


def test_merge_keys_follow_one_rule_on_every_pyyaml() -> None:
    # PyYAML 6.0.4's own flatten_mapping drops a merged entry whose key string is an object
    # merged before: a one-letter key (a cached str) then kept the first mapping's value and
    # a longer one the last's. The loader's own flattening keeps 6.0.3's rule for both.
    text = "a: &a {k: 1, long_key: 1}\nb: &b {k: 2, long_key: 2}\nc: {<<: [*a, *b], own: 3}\n"
    doc = yaml_loader.parse_yaml(text, "s.yaml")
    assert doc.data["c"] == {"k": 2, "long_key": 2, "own": 3}
    assert doc.source_map.locate("c.k") == "s.yaml:2:11"
