"""Regression tests for the hostile-input pass (issue 17): every case it listed answers
with exit 2 and one line per problem (or exit 1 and one line for an environment fault),
never a traceback. Each of these failed on the code before the fix (7f587ca).

Live-run cases (hot reload, signals, a full disk) are in
``tests/live/test_hostile_live.py``; the seeded mutation corpus is in
``tests/hostile/test_corpus.py``.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import pickle
import shutil
import sqlite3
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradeloom.cli.main import main

SMALL = """\
name: small
seed: 1
data: {kind: synthetic, bars: 400, timeframe: 1h}
features: [{kind: log_return, period: 1}, {kind: rsi, window: 14}]
model:
  kind: sklearn
  estimator: sklearn.linear_model.LogisticRegression
  label: {horizon: 2}
  walk_forward: {train_window: 200, retrain_every: 100}
signal: {kind: threshold, threshold: 0.02}
risk: {sizing: {kind: fixed_fraction, fraction: 0.5}}
execution: {kind: simulated, initial_cash: 10000}
"""

EXCHANGE = """\
name: exch
data: {kind: ccxt, exchange: binance, symbol: BTC/USDT, timeframe: 1h, start: "2024-01-01"}
features: [{kind: log_return, period: 1}]
model:
  kind: sklearn
  estimator: sklearn.linear_model.LogisticRegression
  walk_forward: {train_window: 200, retrain_every: 100}
signal: {kind: threshold, threshold: 0.02}
risk: {sizing: {kind: fixed_fraction, fraction: 0.5}}
execution: {kind: simulated, initial_cash: 10000}
"""


@pytest.fixture
def small(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "s.yaml"
    path.write_text(SMALL)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    """Run the CLI; it must exit 2 with nothing on stdout; return the stderr lines.

    What ``validate`` refuses, ``run`` (a backtest) refuses with the same lines: validate
    is the whole truth about a file (`tests/cli/test_validate_is_the_whole_truth.py`).
    """
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, ""), err
    if argv[0] == "validate":
        # --out: a folder the run would refuse for itself, were the file ever let through
        again, _, said = run(capsys, "run", *argv[1:], "--out", os.devnull)
        assert (again, said) == (2, err), said
    return err.splitlines()


# --- the strategy file: one safe reader ----------------------------------------------


@pytest.mark.parametrize(
    ("char", "name"), [("\x07", "U+0007 (BEL)"), ("\x00", "U+0000 (NUL)"), ("\x7f", "U+007F (DEL)")]
)
def test_a_control_character_is_refused_at_its_line_and_column(
    small: Path, capsys: pytest.CaptureFixture[str], char: str, name: str
) -> None:
    small.write_text(SMALL.replace("seed: 1", f"seed: 1  # a comment{char}"))
    assert refused(capsys, "validate", str(small)) == [
        f"{small}:2:21: invalid YAML: control character {name} is not allowed; remove it"
    ]


def test_a_set_value_with_an_alias_cycle_is_refused(
    small: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert refused(capsys, "validate", str(small), "--set", "data.bars=&a [*a]") == [
        "--set data.bars: invalid YAML value '&a [*a]': an alias refers to a value that contains it"
    ]


def test_an_alias_bomb_in_a_set_value_is_capped(
    small: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    value = (
        "["
        + ", ".join(
            ["&a0 [x, x, x, x, x, x, x, x, x, x]"]
            + [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
        )
        + "]"
    )
    started = time.perf_counter()
    (line,) = refused(capsys, "validate", str(small), "--set", f"data.bars={value}")
    assert time.perf_counter() - started < 10
    assert line.startswith("--set data.bars: invalid YAML value '[&a0 [x, x, x, x, x, x,")
    assert line.endswith(": more than 100000 values once aliases are expanded")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_is_not_a_strategy_file(capsys: pytest.CaptureFixture[str], device: str) -> None:
    assert refused(capsys, "validate", device) == [
        f"{device}: is a character device, not a regular file; give a strategy file"
    ]


def test_a_fifo_is_refused_without_waiting_for_a_writer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "s.yaml"
    os.mkfifo(fifo)
    assert refused(capsys, "run", str(fifo)) == [
        f"{fifo}: is a FIFO (named pipe), not a regular file; give a strategy file"
    ]


def test_a_50_mb_file_is_refused_before_it_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as file:
        file.truncate(50 * 1024 * 1024)  # sparse: nothing to write, nothing to read
    assert refused(capsys, "validate", str(big)) == [
        f"{big}: 52,428,800 bytes is larger than the 262,144-byte limit for a strategy file; "
        "give the right file, or raise TRADELOOM_MAX_STRATEGY_BYTES"
    ]


def test_10000_deep_nesting_is_refused_at_file_line_column(
    small: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small.write_text(SMALL + "extra: " + "[" * 10_000 + "]" * 10_000 + "\n")
    assert refused(capsys, "validate", str(small)) == [
        f"{small}:13:71: invalid YAML: nested more than 64 levels deep"
    ]


# --- bounds on every value -----------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "line"),
    [
        (
            "name=!!binary aGVsbG8=",
            "--set name: invalid YAML value '!!binary aGVsbG8=': the tag !!binary is not "
            "allowed in a strategy file; use plain values (!!str, !!int, !!float, !!bool, "
            "!!null, !!seq, !!map)",
        ),
        (
            "execution.initial_cash=.inf",
            "--set execution.initial_cash: invalid YAML value '.inf': must be a finite "
            "number, was .inf",
        ),
        (
            "data.timeframe=99999999999w",
            "--set data.timeframe: timeframe must be at most 366 days (such as 1d, 1w or "
            "30d); was '99999999999w'",
        ),
        (
            "features.00000000000000000000000000001.period=3",
            "--set features.00000000000000000000000000001: expected a list index (digits "
            "without leading zeros), was '00000000000000000000000000001'",
        ),
        (
            "seed=100000000000000000000000000000000000",
            "--set seed: must be <= 4294967295, was 100000000000000000000000000000000000",
        ),
        (
            "model.params.n_estimators=100000000000000000000",
            "--set model.params.n_estimators: must be <= 10,000 for LogisticRegression "
            "(the ceiling on the work of one fold), was 100,000,000,000,000,000,000",
        ),
        (
            # within every declared bound, yet beyond the C integer the library fits with
            "model.params.min_samples_leaf=100000000000000000000000000000000000",
            "--set model.params.min_samples_leaf: must be a 64-bit integer (at most "
            "9,223,372,036,854,775,807), was 100,000,000,000,000,000,000,000,000,000,000,000",
        ),
        (
            "name=..",
            "--set name: must start with a letter or digit, was '..'",
        ),
        (
            "name=" + "a" * 300,
            "--set name: must be at most 64 characters (it names run directories), was 300",
        ),
    ],
)
def test_values_without_sane_bounds_are_refused(
    small: Path, capsys: pytest.CaptureFixture[str], override: str, line: str
) -> None:
    if "n_estimators" in override or "min_samples_leaf" in override:
        small.write_text(
            SMALL.replace(
                "sklearn.linear_model.LogisticRegression", "sklearn.ensemble.RandomForestClassifier"
            )
        )
        line = line.replace("LogisticRegression", "RandomForestClassifier")
    assert refused(capsys, "validate", str(small), "--set", override) == [line]


def test_a_name_that_validates_can_trade() -> None:
    # every name validation accepts makes a client order id, with the longest run key
    from tradeloom.bounds import MAX_NAME_LENGTH
    from tradeloom.plugins.protocols_orders.client_ids import client_order_id

    for name in ("a", "A.b-c_d", "9" * MAX_NAME_LENGTH, "x" + "." * (MAX_NAME_LENGTH - 1)):
        assert client_order_id(name, "ffffffff", 999_999)


@pytest.mark.parametrize(
    ("timeframe", "bars", "line"),
    [
        (
            "1d",
            10_000_000,
            "1d bars from 2023-01-01T00:00Z would end after the year 9999, past the last "
            "time a bar may have (2262-04-11T23:47Z); give at most 87,394 bars or an earlier "
            "start",
        ),
        (
            "1w",
            15_000,
            "1w bars from 2023-01-01T00:00Z would end in 2310, past the last time a bar may "
            "have (2262-04-11T23:47Z); give at most 12,485 bars or an earlier start",
        ),
    ],
)
def test_bars_past_the_year_2262_are_refused_at_validation(
    small: Path, capsys: pytest.CaptureFixture[str], timeframe: str, bars: int, line: str
) -> None:
    small.write_text(
        SMALL.replace("bars: 400, timeframe: 1h", f"bars: {bars}, timeframe: {timeframe}")
    )
    assert refused(capsys, "validate", str(small)) == [
        f"{small}:3:7 data: {bars:,} {line}, was '2023-01-01T00:00:00Z'"
    ]


# --- data sanity ---------------------------------------------------------------------


def _csv(folder: Path, name: str, edit: dict[str, object] | None = None) -> Path:
    n = 400
    index = pd.date_range("2024-01-01", periods=n, freq="1h")
    close = 100 + np.cumsum(np.random.default_rng(1).normal(0, 1, n))
    frame = pd.DataFrame(
        {
            "timestamp": index.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "open": close,
            "high": close + 1,
            "low": close - 1,
            "close": close,
            "volume": 10.0,
        }
    )
    for column, value in (edit or {}).items():
        frame.loc[200, column] = value  # line 202 of the file
    path = folder / name
    frame.to_csv(path, index=False)
    return path


def _csv_strategy(folder: Path, data: Path, validation: str) -> Path:
    path = folder / "csv.yaml"
    path.write_text(
        SMALL.replace(
            "{kind: synthetic, bars: 400, timeframe: 1h}",
            f"{{kind: csv, path: {data.name}, validation: {validation}}}",
        )
    )
    return path


_TIMESTAMP_HELP = (
    "expected ISO 8601 such as 2024-03-01T04:00:00Z, or epoch seconds or milliseconds, "
    "between 1677-09-21 and 2262-04-11"
)


@pytest.mark.parametrize("validation", ["reject", "repair"])
@pytest.mark.parametrize(
    "cell", ["now", "today", "2300-01-01T00:00:00Z", "9999-01-01T00:00:00Z", "1500-01-01"]
)
def test_a_timestamp_cell_must_be_a_time_pandas_can_hold(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    validation: str,
    cell: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    data = _csv(tmp_path, "bars.csv", {"timestamp": cell})
    strategy = _csv_strategy(tmp_path, data, validation)
    assert refused(capsys, "run", str(strategy), "--out", "out") == [
        f"data: {data}: column 'timestamp' has 1 unparsable timestamp ('{cell}' at line "
        f"202); {_TIMESTAMP_HELP}"
    ]


@pytest.mark.parametrize(
    "edit",
    [
        {"open": 1e300, "high": 1e300, "low": 1e300, "close": 1e300},
        {"open": 1e308, "high": 1e308, "low": 1e308, "close": 1e308, "volume": 1e308},
    ],
)
def test_prices_beyond_the_documented_magnitude_are_rejected_or_dropped(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    edit: dict[str, object],
) -> None:
    monkeypatch.chdir(tmp_path)
    data = _csv(tmp_path, "bars.csv", edit)
    assert refused(capsys, "run", str(_csv_strategy(tmp_path, data, "reject"))) == [
        f"data: {data}: 1 row has a price above 1e+12 or a volume above 1e+18 (at "
        "2024-01-09T08:00Z, line 202); drop it or set data.validation: repair"
    ]
    code, _, _ = run(capsys, "run", str(_csv_strategy(tmp_path, data, "repair")), "--out", "r")
    assert code == 0
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["bars"] == 399
    equity = pd.read_csv(tmp_path / "r" / "equity.csv")
    assert np.isfinite(equity["equity"]).all()


def test_an_infinite_feature_stops_the_run_naming_the_feature_and_bar(
    small: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "inf_feature.py").write_text(
        textwrap.dedent(
            """\
            import numpy as np
            import pandas as pd
            from tradeloom.plugins.component import Component, Params
            from tradeloom.plugins.hookspecs import hookimpl

            class P(Params):
                pass

            class Blowup:
                def columns(self):
                    return ["blowup"]

                def compute(self, bars, features):
                    values = np.zeros(len(bars))
                    values[250] = np.inf
                    return pd.DataFrame({"blowup": values}, index=bars.frame.index)

            @hookimpl
            def tradeloom_components():
                return [Component("features", "blowup", P, lambda p, ctx: Blowup(), "inf")]
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    small.write_text(
        SMALL.replace("seed: 1", "seed: 1\nplugins: [inf_feature]").replace(
            "features: [", "features: [{kind: blowup}, "
        )
    )
    assert refused(capsys, "run", str(small)) == [
        "features.0 (blowup) column blowup: inf at bar 250 (2023-01-11T10:00Z); a feature "
        "must be finite: check the bars there (data.validation) or the feature's parameters"
    ]


# --- the run directory ---------------------------------------------------------------


def test_out_never_overwrites_the_users_files(
    small: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    mine = "# my own file, with comments\n" + SMALL
    (tmp_path / "strategy.yaml").write_text(mine)
    (tmp_path / "metrics.json").write_text('{"mine": true}\n')
    assert refused(capsys, "run", str(small), "--out", ".") == [
        "--out .: holds files this run did not write (metrics.json, s.yaml, strategy.yaml); "
        "a run never overwrites them: give an empty or new folder"
    ]
    assert (tmp_path / "strategy.yaml").read_text() == mine
    assert (tmp_path / "metrics.json").read_text() == '{"mine": true}\n'


def test_an_empty_out_is_refused(small: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", str(small), "--out", ""])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "tradeloom run: error: argument --out: expected a folder, was empty (use . for this folder)"
    )


def test_a_read_only_filesystem_is_one_line_and_exit_1(
    small: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_mkdir = Path.mkdir

    def read_only(self: Path, *args: object, **kwargs: object) -> None:
        if self.name == "ro-run":
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        real_mkdir(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "mkdir", read_only)
    code, out, err = run(capsys, "run", str(small), "--out", "ro-run")
    assert (code, out) == (1, "")
    (line,) = err.splitlines()
    prefix = "run failed: cannot write ro-run: Read-only file system (traceback in "
    assert line.startswith(prefix) and line.endswith(".log)")
    saved = Path(line.removeprefix(prefix).removesuffix(")"))
    assert "Traceback" in saved.read_text()
    saved.unlink()


def test_a_second_process_on_a_run_directory_is_refused_naming_the_first(
    small: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from tradeloom.engine.control import ControlInbox

    (tmp_path / "busy").mkdir()
    first = ControlInbox(tmp_path / "busy")  # the first process's lock (an open file of its own)
    first.claim_pid()
    try:
        (line,) = refused(capsys, "run", str(small), "--out", "busy")
    finally:
        first.release_pid()
    assert line == (
        f"busy is in use by a running process (pid {os.getpid()}): stop it first or use "
        f"another run directory (if no tradeloom process has that pid, delete busy/live.pid)"
    )
    assert list((tmp_path / "busy").iterdir()) == []


# --- model files ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of SMALL, trained once for the module: its tests only damage copies of it."""
    folder = tmp_path_factory.mktemp("trained")
    strategy = folder / "s.yaml"
    strategy.write_text(SMALL)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["run", str(strategy), "--out", str(folder / "trained")])
    assert "Traceback" not in out.getvalue() + err.getvalue()
    assert code == 0, err.getvalue()
    return folder / "trained"


@pytest.fixture
def trained(trained_once: Path, small: Path, tmp_path: Path) -> Path:
    """A copy of the trained run (`trained_once`), for this test to damage: each of the 4
    tests trained the same run again before (~0.5 s of CPU each)."""
    return Path(shutil.copytree(trained_once, tmp_path / "trained", symlinks=True))


def _saved(folder: Path, extra: str = "") -> str:
    return SMALL.replace(
        "model:\n  kind: sklearn\n  estimator: sklearn.linear_model.LogisticRegression\n"
        "  label: {horizon: 2}\n  walk_forward: {train_window: 200, retrain_every: 100}\n",
        f"model:\n  from_run: {folder}\n{extra}",
    )


def test_metadata_nested_100000_deep_is_refused(
    trained: Path, small: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = trained / "models" / "index.json"
    index.write_text("[" * 100_000 + "]" * 100_000)
    small.write_text(_saved(trained))
    assert refused(capsys, "validate", str(small)) == [
        f"{small}:6:13 model.from_run: {index} nests more than 32 levels deep; tradeloom model "
        "index never does: refusing to read it"
    ]


def test_an_index_with_a_huge_number_is_refused(
    trained: Path, small: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = trained / "models" / "index.json"
    index.write_text('{"format": ' + "9" * 5000 + "}")
    small.write_text(_saved(trained))
    (line,) = refused(capsys, "validate", str(small))
    assert line.startswith(f"{small}:6:13 model.from_run: {index} is not valid JSON: ")


def test_a_linked_model_file_is_checked_before_a_byte_is_read(
    trained: Path, small: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    index = json.loads((trained / "models" / "index.json").read_text())
    model = trained / "models" / index["latest"]
    huge = tmp_path / "huge.bin"
    with huge.open("wb") as file:
        file.truncate(6 * 1024**3)  # sparse: 6 GB that reading would take minutes
    size = model.stat().st_size
    model.unlink()
    model.symlink_to(huge)
    small.write_text(_saved(trained))
    started = time.perf_counter()
    assert refused(capsys, "validate", str(small)) == [
        f"{small}:6:13 model.from_run: {model} (a link to {huge}) is 6,442,450,944 bytes, its "
        f"metadata says {size:,}; at most 2,147,483,648 bytes are read; refusing to load it"
    ]
    assert time.perf_counter() - started < 10


def test_tradeloom_cannot_be_a_trusted_package(
    trained: Path, small: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small.write_text(_saved(trained, "  trusted_packages: [tradeloom]\n"))
    assert refused(capsys, "validate", str(small)) == [
        f"{small}:7:22 model.trusted_packages.0: tradeloom itself: its classes open journals, "
        "files and exchange connections, and a model never needs one, was 'tradeloom'"
    ]


# --- secrets -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "path", "name"),
    [
        ("data.config.twofa=JBSWY3DPEHPK3PXP", "data.config.twofa", None),
        (
            "data.config.headers={X-MBX-APIKEY: canary-header-value}",
            "data.config.headers.X-MBX-APIKEY",
            "X_MBX_APIKEY",
        ),
        ("data.options={apiKey: canary-option-key}", "data.options.apiKey", "APIKEY"),
        ("data.options={secret: canary-option-secret}", "data.options.secret", "SECRET"),
        ("data.api_key=1234567890123", "data.api_key", "API_KEY"),
    ],
)
def test_a_credential_written_out_is_refused_without_showing_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    override: str,
    path: str,
    name: str | None,
) -> None:
    monkeypatch.chdir(tmp_path)
    strategy = tmp_path / "s.yaml"
    strategy.write_text(EXCHANGE)
    lines = refused(capsys, "validate", str(strategy), "--set", override)
    if name is None:  # ccxt's client settings: the keys have fields of their own
        assert lines == [
            f"--set {path}: credentials never go in config; use api_key, secret or password "
            "with an ${ENV_VAR} reference"
        ]
    else:
        assert lines == [
            f"--set {path}: a secret must be an environment variable reference such as "
            f"${{{name}}}, never the value itself"
        ]
    value = override.partition("=")[2]
    for secret in ("JBSWY3DPEHPK3PXP", "canary", "1234567890123"):
        if secret in value:
            assert secret not in "\n".join(lines)


def test_a_secret_that_is_not_latin_1_is_refused_naming_its_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TL_KEY", "ключ-0123456789")
    strategy = tmp_path / "s.yaml"
    strategy.write_text(
        EXCHANGE.replace('start: "2024-01-01"', 'start: "2024-01-01", api_key: "${TL_KEY}"')
    )
    assert refused(capsys, "validate", str(strategy)) == [
        f"{strategy}:2:102 data.api_key: environment variable TL_KEY holds a character that "
        "cannot be sent in an HTTP header (only Latin-1 can); check that it holds the right "
        "value"
    ]


def test_a_credential_by_reference_reaches_ccxt_and_never_the_run_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tradeloom.engine.wiring import build_pipeline
    from tradeloom.schemas import load_strategy

    monkeypatch.setenv("TL_HEADER", "canary-header-0123")
    strategy = tmp_path / "s.yaml"
    strategy.write_text(EXCHANGE)
    config, _ = load_strategy(strategy, ['data.config.headers={X-MBX-APIKEY: "${TL_HEADER}"}'])
    assert config.document["data"]["config"] == {"headers": {"X-MBX-APIKEY": "${TL_HEADER}"}}
    source = build_pipeline(config).data
    assert source.client.headers == {"X-MBX-APIKEY": "canary-header-0123"}  # type: ignore[attr-defined]


def _unused() -> None:  # keep imports used by optional cases
    _ = (pickle, sqlite3, threading)


def test_a_binary_file_as_csv_data_is_a_data_line_not_zero_bars(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # its row count (no newline: "0 bars") made the model's window the culprit
    data = tmp_path / "bars.csv"
    data.write_bytes(b"\x00\x01\xff" * 50)
    text = (Path(__file__).resolve().parents[2] / "strategies" / "btc_rf.yaml").read_text()
    text = text.replace("  kind: synthetic\n", f"  kind: csv\n  path: {data}\n")
    text = text.replace("  bars: 20000\n", "").replace('  start: "2023-01-01T00:00:00Z"\n', "")
    path = tmp_path / "s.yaml"
    path.write_text(text)

    assert main(["run", str(path), "--out", str(tmp_path / "runs")]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"data: {data}: cannot read it as CSV: 'utf-8' codec can't decode byte 0xff in "
        "position 2: invalid start byte"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["validate", ""], "tradeloom validate: error: argument file: expected a path, was empty"),
        (["run", " "], "tradeloom run: error: argument file: expected a path, was empty"),
        (["status", ""], "tradeloom status: error: argument RUN_DIR: expected a path, was empty"),
        (["kill", ""], "tradeloom kill: error: argument RUN_DIR: expected a path, was empty"),
        (["sweep", ""], "tradeloom sweep: error: argument file: expected a path, was empty"),
        (
            ["compare", "a", ""],
            "tradeloom compare: error: argument RUN_DIR: expected a path, was empty",
        ),
    ],
    ids=lambda value: " ".join(repr(v) for v in value) if isinstance(value, list) else None,
)
def test_an_empty_path_is_refused_not_read_as_this_folder(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines() == [message]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import structlog

    from tests.builders import strategy_text

    folder = tmp_path_factory.mktemp("small_run")
    text = strategy_text(
        name="small",
        data={"bars": 160},
        model={"walk_forward": {"train_window": 60, "retrain_every": 40}},
        outputs={"report": False, "features": True},  # a reader of a run meets its features
    )
    (folder / "s.yaml").write_text(text)
    saved = structlog.get_config()
    try:
        assert main(["-q", "run", str(folder / "s.yaml"), "--out", str(folder / "run")]) == 0
    finally:
        structlog.configure(**saved)
    return folder / "run"


_EQUITY = (b"garbage\n1\n", "no timestamp column; damaged, or not a run's equity table")
_TRADES = (b"a,b\n1,2\n", "no entry_time column; damaged, or not a run's trades table")
_STRATEGY = (
    b"\x00\x01",
    "not valid YAML (unacceptable character #x0000: special characters are not allowed): "
    "damaged, or not a run's strategy file",
)


@pytest.mark.parametrize(
    ("command", "name", "content", "message"),
    [
        ("status", "equity.csv", *_EQUITY),
        ("report", "equity.csv", *_EQUITY),
        ("report", "trades.csv", *_TRADES),
        ("status", "strategy.yaml", *_STRATEGY),
        ("report", "strategy.yaml", *_STRATEGY),
    ],
    ids=["status equity", "report equity", "report trades", "status strategy", "report strategy"],
)
def test_a_damaged_file_of_a_run_folder_is_one_line(
    small_run: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
    name: str,
    content: bytes,
    message: str,
) -> None:
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    (run / name).write_bytes(content)
    capsys.readouterr()
    assert main([command, str(run)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"{run / name}: {message}"]
