"""``--json`` on every command that reads or reports: each prints one object in the one
envelope (``schema: tradeloom.<output>/<version>`` first), valid under the JSON Schema the
package ships for it (`tradeloom.reporting.json_output`), which the docs page shows.

Each test runs the real command (`tradeloom.cli.main.main`) on a real run: a short paper
run of btc_rf on the simulated clock (status, journal verify, parity, compare) and a
backtest beside it, a two-variant sweep, the shipped files for validate.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.builders import FAST
from tradeloom.cli.main import _parser, main
from tradeloom.engine.status_values import RunStatus
from tradeloom.reporting.json_output import OUTPUTS, envelope, output_schema

pytestmark = pytest.mark.slow  # a paper run, a backtest and a sweep for the module

ROOT = Path(__file__).resolve().parents[2]


def _json(capsys: pytest.CaptureFixture[str], *words: str | Path, code: int = 0) -> Any:
    """Run ``tradeloom WORDS --json``; return its object, checked against its schema."""
    capsys.readouterr()
    done = main(["-q", *(str(w) for w in words), "--json"])
    out, err = capsys.readouterr()
    assert done == code, err
    value = json.loads(out)  # one object, nothing else on stdout
    output = value["schema"].removeprefix("tradeloom.").split("/")[0]
    assert output.replace("-", " ") in " ".join(str(w) for w in words).replace("-", " ")
    assert value["schema"] == f"tradeloom.{output}/{OUTPUTS[output][0]}"
    assert next(iter(value)) == "schema"
    errors = list(jsonschema.Draft202012Validator(output_schema(output)).iter_errors(value))
    assert [f"{e.json_path}: {e.message}" for e in errors] == []
    return value


def _edit(text: str, *changes: tuple[str, str]) -> str:
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new)
    return text


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A paper run of btc_rf (760 bars, 120 played) and a short backtest of it."""
    folder = tmp_path_factory.mktemp("json")
    text = _edit(
        (ROOT / "strategies" / "btc_rf.yaml").read_text(),
        ("bars: 20000", "bars: 760"),
        ("train_window: 3000", "train_window: 300"),
        ("retrain_every: 500", "retrain_every: 100"),
        ("n_estimators: 100", "n_estimators: 20"),
        ("n_jobs: -1", "n_jobs: 1"),
        ("window: 500\n    min_samples: 100", "window: 60\n    min_samples: 20"),
    )
    strategy = folder / "btc_rf.yaml"
    strategy.write_text(text)
    paper = ["run", str(strategy), "--mode", "paper", "--clock", "simulated", "--speed", "max"]
    assert main(["-q", *paper, "--max-bars", "120", "--out", str(folder / "paper")]) == 0
    backtest = ["run", str(ROOT / "strategies" / "btc_rf.yaml"), *FAST]
    assert main(["-q", *backtest, "--out", str(folder / "backtest")]) == 0
    return folder / "paper", folder / "backtest"


def test_every_output_has_a_valid_schema_and_every_json_option_is_listed() -> None:
    for output, (version, command) in OUTPUTS.items():
        schema = output_schema(output)
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$id"] == f"tradeloom.{output}/{version}"
        assert schema["properties"]["schema"] == {
            "const": f"tradeloom.{output}/{version}",
            "description": "This object's schema and its version.",
        }
        assert schema["title"] == command
    with_json = {" ".join(words) for words, parser in _commands(_parser(), ()) if _has_json(parser)}
    assert with_json == {
        "status", "validate", "journal verify", "plugins", "compare", "parity", "sweep",
        "check-lookahead", "data list",
    }  # fmt: skip
    assert {o.replace("-", " ") for o in OUTPUTS} == {w.replace("-", " ") for w in with_json}


def _commands(parser: Any, words: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any]]:
    found = []
    for action in parser._actions:
        for name, sub in getattr(action, "choices", None).items() if _is_sub(action) else ():
            found.append(((*words, name), sub))
            found.extend(_commands(sub, (*words, name)))
    return found


def _is_sub(action: Any) -> bool:
    return type(action).__name__ == "_SubParsersAction"


def _has_json(parser: Any) -> bool:
    return any("--json" in action.option_strings for action in parser._actions)


def test_the_envelope_is_plain_json() -> None:
    import numpy as np
    import pandas as pd

    value = envelope(
        "status",
        {"a": np.float32(0.5), "b": float("nan"), "c": pd.Timestamp("2026-01-02T03:04Z"),
         "d": (np.int64(3), Path("x/y")), "e": pd.NaT, "f": np.array([1.0, np.inf])},
    )  # fmt: skip
    assert value == {
        "schema": "tradeloom.status/1",
        "a": 0.5, "b": None, "c": "2026-01-02T03:04:00+00:00", "d": [3, "x/y"], "e": None,
        "f": [1.0, None],
    }  # fmt: skip


def test_the_status_schema_names_every_field_of_the_status() -> None:
    schema = output_schema("status")
    fields = [f.name for f in dataclasses.fields(RunStatus)]
    assert list(schema["properties"]) == ["schema", *fields, "events"]  # the publishers' lag


def test_status_and_journal_verify(
    runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    paper, _ = runs
    status = _json(capsys, "status", paper)
    assert (status["mode"], status["bars"], status["strategy"]) == ("paper", 120, "btc_rf")
    verified = _json(capsys, "journal", "verify", paper)
    assert verified["journal"] == str(paper / "journal.sqlite")
    assert verified["rows"] > 120 and len(verified["head"]) == 16


def test_parity_and_compare(runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    paper, backtest = runs
    parity = _json(capsys, "parity", paper)
    assert parity["passed"] is True and parity["differences"] == 0
    written = json.loads((paper / "parity" / "parity.json").read_text())
    assert {k: v for k, v in parity.items() if k in written} == written
    compared = _json(capsys, "compare", paper, backtest, "--out", paper.parent / "c.html")
    assert [r["run_dir"] for r in compared["runs"]] == [str(paper), str(backtest)]
    assert compared["runs"][1]["metrics"]["bars"] == 1500
    assert {"key": "data.bars", "values": ["760", "1500"]} in compared["settings_that_differ"]
    assert compared["page"] == str(paper.parent / "c.html")


def test_plugins(capsys: pytest.CaptureFixture[str]) -> None:
    listed = _json(capsys, "plugins")
    names = [p["name"] for p in listed["plugins"]]
    assert names[0] == "tradeloom.plugins.data" and listed["clashes"] == []
    risk = next(p for p in listed["plugins"] if p["name"] == "tradeloom.plugins.risk")
    assert {"layer": "sizing", "kind": "kelly"} in [
        {k: c[k] for k in ("layer", "kind")} for c in risk["components"]
    ]


def test_validate_every_kind_and_a_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kinds = {
        "strategies/btc_rf.yaml": ("strategy", "btc_rf"),
        "examples/two_strategies.yaml": ("portfolio", "two_strategies"),
        "examples/sweep_files/composite.sweep.yaml": ("sweep", "small_lr"),
    }
    for file, (kind, name) in kinds.items():
        valid = _json(capsys, "validate", ROOT / file)
        assert (valid["valid"], valid["kind"], valid["name"], valid["problems"]) == (
            True, kind, name, []
        )  # fmt: skip
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "strategies" / "btc_rf.yaml").read_text().replace("seed: 42", "sed: 4"))
    refused = _json(capsys, "validate", bad, code=2)
    assert refused["valid"] is False
    assert [p["path"] for p in refused["problems"]] == ["sed"]
    assert refused["problems"][0]["location"].startswith(f"{bad}:")


def test_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sweep"
    small = ROOT / "tests" / "sweep" / "small_strategy.yaml"
    swept = _json(capsys, "sweep", small, "--grid", "signal.threshold=0.1,0.2", "--out", out)
    assert (swept["out"], swept["variants"], swept["objective"]) == (str(out), 2, "sharpe")
    assert [row["rank"] for row in swept["rows"]] == [1, 2]
    assert {row["param.signal.threshold"] for row in swept["rows"]} == {0.1, 0.2}
    assert swept["overfitting"] == json.loads((out / "overfitting.json").read_text())


def test_check_lookahead(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    strategy = ROOT / "strategies" / "btc_rf.yaml"
    out = tmp_path / "lookahead"
    checked = _json(capsys, "check-lookahead", strategy, *FAST, "--points", "1", "--out", out)
    assert (checked["found"], checked["finding"], checked["out"]) == (False, None, str(out))
    assert len(checked["cuts"]) == 1 and checked["summary"].startswith("no look-ahead found")
    assert (out / "findings.txt").read_text().splitlines() == [
        *checked["checks"],
        checked["summary"],
    ]
