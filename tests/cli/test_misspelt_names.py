"""A misspelt name, wherever it is written, is one line with the one "did you mean".

Through the real command line: a component's ``kind`` misspelt in any section (the
entry's key named, not "kind: required key is missing"), and the command line's own
commands, choices and flags (one line each, no usage block), all exit 2.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tradeloom.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def _exit(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's usage errors
        return int(exc.code or 0)


def _written(tmp_path: Path, source: str, old: str, new: str) -> Path:
    text = (ROOT / source).read_text(encoding="utf-8")
    assert old in text, f"{source} no longer has {old!r}"
    path = tmp_path / Path(source).name
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def _line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


@pytest.mark.parametrize(
    ("source", "old", "new", "key"),
    [
        ("strategies/btc_rf.yaml", "  - kind: rsi", "  - knd: rsi", "features.2.knd"),
        ("strategies/btc_rf.yaml", "  kind: sklearn", "  kidn: sklearn", "model.kidn"),
        ("strategies/btc_rf.yaml", "  kind: threshold", "  Kind: threshold", "signal.Kind"),
        ("strategies/btc_rf.yaml", "  kind: synthetic", "  knd: synthetic", "data.knd"),
        ("strategies/btc_rf.yaml", "    kind: kelly", "    knd: kelly", "risk.sizing.knd"),
        (
            "strategies/btc_rf.yaml",
            "    - kind: drawdown_halt",
            "    - knid: drawdown_halt",
            "risk.rules.0.knid",
        ),
        ("strategies/btc_rf.yaml", "  kind: simulated", "  kin: simulated", "execution.kin"),
        (
            "strategies/btc_rf.yaml",
            "  - kind: rolling_auc",
            "  - kindd: rolling_auc",
            "monitoring.0.kindd",
        ),
        (
            "examples/router_two_venues.yaml",
            "      kind: simulated",
            "      knd: simulated",
            "execution.venues.0.knd",
        ),
        (
            "strategies/universe_risk_parity.yaml",
            "  kind: risk_parity",
            "  kinf: risk_parity",
            "allocation.kinf",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) and "." in value else None,
)
def test_a_misspelt_kind_is_named_with_the_key_it_misspells(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str, old: str, new: str, key: str
) -> None:
    path = _written(tmp_path, source, old, new)
    assert _exit(["validate", str(path)]) == 2
    line, column = _line_of(path, new), len(new) - len(new.lstrip(" -")) + 1
    assert capsys.readouterr().err.splitlines() == [
        f"{path}:{line}:{column} {key}: unknown key (did you mean 'kind'?)"
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["valdate", "x.yaml"],
            "tradeloom: error: argument COMMAND: invalid choice: 'valdate' (did you mean "
            "'validate'?); choose from run, validate, plugins, init, check-lookahead, report, "
            "compare, parity, schema, kill, resume, swap, promote, rollback, console, chat, warm, "
            "status, journal, sweep, models, mcp, data, completion",
        ),
        (
            ["run", "x.yaml", "--mode", "Paper"],
            "tradeloom run: error: argument --mode: invalid choice: 'Paper' (did you mean "
            "'paper'?); choose from backtest, paper, live",
        ),
        (
            ["--log-level", "WARN", "validate", "x.yaml"],
            "tradeloom: error: argument --log-level: invalid choice: 'WARN' (did you mean "
            "'warning'?); choose from debug, info, warning, error",
        ),
        (
            ["data", "fecth"],
            "tradeloom data: error: argument ACTION: invalid choice: 'fecth' (did you mean "
            "'fetch'?); choose from fetch, list, import, record-book",
        ),
        (
            ["run", "x.yaml", "--mdoe", "paper"],
            "tradeloom run: error: unrecognized arguments: --mdoe paper (did you mean '--mode'?)",
        ),
        (
            ["validate", "x.yaml", "--bogus"],
            "tradeloom validate: error: unrecognized arguments: --bogus",
        ),
        (["run"], "tradeloom run: error: the following arguments are required: file"),
    ],
    ids=" ".join,
)
def test_a_command_line_mistake_is_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert _exit(argv) == 2
    assert capsys.readouterr().err.splitlines() == [message]


def test_a_key_near_kind_but_not_its_value_leaves_kind_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 'window' is as near 'kind' as 'knd' by difflib's ratio; its 14 is no kind
    path = _written(tmp_path, "strategies/btc_rf.yaml", "  - kind: rsi\n    window", "  - window")
    assert _exit(["validate", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{path}:{_line_of(path, '  - window: 14')}:5 features.2.kind: required key is missing"
    ]


def test_help_still_shows_the_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit(["run", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: tradeloom run")


def _copied(tmp_path: Path, folder: str, name: str, old: str, new: str) -> Path:
    """Copy ``folder/name`` (and the folder of the same stem: a portfolio's strategies)."""
    if name.endswith(".sweep.yaml"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    else:
        (tmp_path / folder).mkdir(parents=True)
        shutil.copy(ROOT / folder / name, tmp_path / folder / name)
        stem = name.removesuffix(".yaml")
        shutil.copytree(ROOT / folder / stem, tmp_path / folder / stem)
    path = tmp_path / folder / name
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{folder}/{name} no longer has {old!r}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("argv", "folder", "name", "old", "new", "message"),
    [
        (
            ["sweep"],
            "examples/sweep_files",
            "composite.sweep.yaml",
            "strategy:",
            "strategyy:",
            "{path}:{line}:1 strategyy: unknown key (did you mean 'strategy'?)",
        ),
        (
            # validate takes a sweep file, and names its misspelt key as sweep does
            ["validate"],
            "examples/sweep_files",
            "composite.sweep.yaml",
            "strategy:",
            "strategyy:",
            "{path}:{line}:1 strategyy: unknown key (did you mean 'strategy'?)",
        ),
        (
            ["run"],
            "examples/sweep_files",
            "composite.sweep.yaml",
            "strategy:",
            "strategyy:",
            "{path}: a sweep file, not a strategy file; run it with tradeloom sweep {path}",
        ),
        (
            ["validate"],
            "examples",
            "two_strategies.yaml",
            "strategies:",
            "strategie:",
            "{path}:{line}:1 strategie: unknown key (did you mean 'strategies'?)",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) and value.endswith(":") else None,
)
def test_a_sweep_or_portfolio_file_is_told_as_one(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    folder: str,
    name: str,
    old: str,
    new: str,
    message: str,
) -> None:
    path = _copied(tmp_path, folder, name, old, new)
    assert _exit([*argv, str(path)]) == 2
    line = _line_of(path, new)
    assert capsys.readouterr().err.splitlines() == [message.format(path=path, line=line)]
