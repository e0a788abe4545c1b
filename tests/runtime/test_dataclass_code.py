"""The dataclasses' methods compiled once per machine: the same code, one command later none
compiled, a damaged file ignored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tradeloom.runtime import dataclass_code

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import dataclasses, json, sys
from pathlib import Path
from tradeloom.runtime import dataclass_code
if sys.argv[2] == "install":
    dataclass_code.install(Path(sys.argv[1]))

@dataclasses.dataclass(frozen=True, order=True)
class Point:
    x: int
    label: "list[str]" = dataclasses.field(default_factory=list)

point = Point(1, ["a"])
compiled, known = dataclass_code._state["compiled"], len(dataclass_code._known)
dataclass_code.save()
print(json.dumps({
    "compiled": compiled,
    "known": known,
    "code": {name: getattr(Point, name).__code__.co_code.hex()
             for name in ("__init__", "__repr__", "__eq__", "__lt__", "__hash__", "__setattr__")},
    "annotations": {k: str(v) for k, v in Point.__init__.__annotations__.items()},
    "repr": repr(point), "equal": point == Point(1, ["a"]), "less": Point(0) < point,
}))
"""


def _probe(path: Path, how: str) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path), how],
        capture_output=True, text=True, check=True, env=env, cwd=ROOT,
    )  # fmt: skip
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_a_second_process_compiles_nothing_and_gets_the_same_methods(tmp_path: Path) -> None:
    path = tmp_path / "code" / "dataclasses.marshal"
    plain = _probe(path, "plain")
    assert not path.exists()
    first = _probe(path, "install")
    assert path.is_file()
    second = _probe(path, "install")
    assert first["compiled"] > 0 and first["known"] == 0
    assert second["compiled"] == 0 and second["known"] > 0
    for probe in (first, second):
        # the very code exec would compile, and no __future__ flag of tradeloom's: the
        # annotations are the classes', not strings
        assert probe["code"] == plain["code"]
        assert (
            probe["annotations"]
            == plain["annotations"]
            == {
                "x": "<class 'int'>",
                "label": "list[str]",
                "return": "None",
            }
        )
        assert (probe["repr"], probe["equal"], probe["less"]) == (
            "Point(x=1, label=['a'])",
            True,
            True,
        )


def test_a_damaged_file_is_ignored_and_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "dataclasses.marshal"
    path.write_bytes(dataclass_code._HEADER + b"\x00garbage")
    damaged = _probe(path, "install")
    assert damaged["known"] == 0 and damaged["compiled"] > 0
    assert _probe(path, "install")["compiled"] == 0  # written whole again


def test_the_file_holds_texts_and_their_code_only(tmp_path: Path) -> None:
    import marshal

    path = tmp_path / "dataclasses.marshal"
    path.write_bytes(dataclass_code._HEADER + marshal.dumps({"def f(): pass": 1}))
    assert dataclass_code._read(path) == {}
    code = compile("def f(): pass", "<string>", "exec")  # format 1's: code, not its bytes
    path.write_bytes(b"tradeloom dataclass code 1\n" + marshal.dumps({"def f(): pass": code}))
    assert dataclass_code._read(path) == {}
    path.write_bytes(marshal.dumps({}))  # no header: another file
    assert dataclass_code._read(path) == {}


def test_the_command_writes_the_file_and_its_next_run_reads_it(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "tradeloom.cli", "validate", "strategies/btc_rf.yaml"]
    subprocess.run(argv, cwd=ROOT, env=env, check=True, capture_output=True)
    [written] = (tmp_path / "tradeloom" / "code").iterdir()
    assert written.name == dataclass_code.code_file().name
    assert len(dataclass_code._read(written)) > 10


def test_a_text_whose_bytes_are_not_code_is_compiled_and_the_rest_taken(tmp_path: Path) -> None:
    import marshal

    path = tmp_path / "dataclasses.marshal"
    _probe(path, "install")
    table = marshal.loads(path.read_bytes()[len(dataclass_code._HEADER) :])
    damaged = next(text for text in table if "__repr__" in text)
    table[damaged] = marshal.dumps(["not", "code"])
    table["def unused(): pass"] = b"\x00 never unmarshalled: no class runs it"
    path.write_bytes(dataclass_code._HEADER + marshal.dumps(table))
    again = _probe(path, "install")
    assert again["compiled"] == 1  # the damaged text only
    assert again["repr"] == "Point(x=1, label=['a'])"
    assert _probe(path, "install")["compiled"] == 0  # written with its code again
