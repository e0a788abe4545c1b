"""``journal: {url: ${NAME}}`` through the real CLI, against the real PostgreSQL server:
a backtest journals there, ``status``, ``report`` and ``journal verify`` read it from
there, and every refusal is one line with exit 2 and nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.pg_server import PG_ENV, PgSchema
from tradeloom import __version__
from tradeloom.cli.main import main
from tradeloom.journal import FORMAT_VERSION, journal_digest, journal_path, read_rows

STRATEGY = """\
name: {name}
seed: 1
data: {{kind: synthetic, symbol: BTC/USDT, timeframe: 1h, bars: 900, start: "2023-01-01T00:00:00Z"}}
features:
  - {{kind: log_return, period: 1}}
  - {{kind: rsi, window: 14}}
model:
  kind: sklearn
  estimator: sklearn.ensemble.RandomForestClassifier
  params: {{n_estimators: 10, max_depth: 3, n_jobs: 1}}
  label: {{horizon: 4}}
  walk_forward: {{train_window: 300, retrain_every: 300}}
signal: {{kind: threshold, threshold: 0.1, min_interval: 2}}
risk:
  sizing: {{kind: fixed_fraction, fraction: 0.5}}
execution: {{kind: simulated, fee_bps: 10, initial_cash: 10000}}
"""


def _file(tmp_path: Path, pg: PgSchema | None, name: str = "pg_small") -> Path:
    path = tmp_path / f"{name}-{'pg' if pg else 'sqlite'}.yaml"
    path.write_text(STRATEGY.format(name=name) + (pg.yaml() if pg else ""), encoding="utf-8")
    return path


def _cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_backtest_journals_to_postgresql_and_status_report_and_verify_read_it_there(
    tmp_path: Path, pg_schema: PgSchema, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "runs" / "bt"
    code, out, err = _cli(capsys, "run", _file(tmp_path, pg_schema), "--out", run_dir)
    assert (code, err) == (0, "")
    assert not (run_dir / "journal.sqlite").exists()
    assert json.loads((run_dir / "journal.json").read_text()) == {
        "store": "postgresql",
        "url": f"${{{PG_ENV}}}",
        "schema": pg_schema.name,
        "run_id": "bt",
    }
    # the same strategy journaled to SQLite: the same events
    lite = tmp_path / "runs" / "lite"
    assert _cli(capsys, "run", _file(tmp_path, None), "--out", lite)[0] == 0
    assert journal_digest(journal_path(run_dir)) == journal_digest(lite / "journal.sqlite")
    kinds = [r.kind for r in read_rows(journal_path(run_dir))]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished" and "fill" in kinds

    code, out, err = _cli(capsys, "status", run_dir)
    assert (code, err) == (0, "")
    assert "backtest run of 'pg_small', BTC/USDT 1h" in out
    # what status says of the run is what it says of the same run journaled to SQLite
    # (but the folder and the seconds it took)
    said = [line for line in out.splitlines() if not line.startswith(("run ", "process "))]
    lite_said = _cli(capsys, "status", lite)[1].splitlines()
    assert said == [line for line in lite_said if not line.startswith(("run ", "process "))]
    assert any(line.startswith("equity ") for line in said)

    (run_dir / "report.html").unlink()
    code, out, err = _cli(capsys, "report", run_dir)
    assert (code, err) == (0, "") and (run_dir / "report.html").stat().st_size > 10_000

    code, out, err = _cli(capsys, "journal", "verify", run_dir)
    rows = len(kinds)
    assert (code, err) == (0, "")
    assert out.startswith(f"{run_dir / 'journal.json'}: {rows} rows, hash chain intact (head ")


def test_reading_a_postgresql_run_needs_its_variable(
    tmp_path: Path,
    pg_schema: PgSchema,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_dir = tmp_path / "bt"
    assert _cli(capsys, "run", _file(tmp_path, pg_schema), "--out", run_dir)[0] == 0
    monkeypatch.delenv(PG_ENV)
    code, out, err = _cli(capsys, "status", run_dir)
    assert (code, out) == (2, "")
    assert err == (
        f"{run_dir / 'journal.json'}: the journal is in PostgreSQL at ${{{PG_ENV}}} (schema "
        f"{pg_schema.name}, run bt); set the environment variable {PG_ENV} to read it\n"
    )


def _nothing_in(pg: PgSchema) -> int:
    with pg.connect() as db:
        found = db.execute("SELECT to_regclass(%s)", (f'"{pg.name}".runs',)).fetchone()
        if found is None or found[0] is None:
            return 0
        row = db.execute(f'SELECT count(*) FROM "{pg.name}".runs').fetchone()  # type: ignore[arg-type]
        return 0 if row is None else int(row[0])


def test_a_run_id_owned_by_another_strategy_exits_2_with_nothing_written(
    tmp_path: Path, pg_schema: PgSchema, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        _cli(capsys, "run", _file(tmp_path, pg_schema), "--out", tmp_path / "one" / "same")[0] == 0
    )
    other = tmp_path / "two" / "same"
    code, out, err = _cli(capsys, "run", _file(tmp_path, pg_schema, "other"), "--out", other)
    assert (code, out) == (2, "")
    assert err == (
        f"PostgreSQL ${{{PG_ENV}}} schema {pg_schema.name}: run id 'same' belongs to a backtest "
        "run of 'pg_small'; it cannot be a backtest run of 'other': give another run directory "
        "(--out); nothing was written\n"
    )
    assert not other.exists()
    assert _nothing_in(pg_schema) == 1


def test_a_database_of_another_journal_format_exits_2_with_nothing_written(
    tmp_path: Path, pg_schema: PgSchema, capsys: pytest.CaptureFixture[str]
) -> None:
    with pg_schema.connect() as db:
        db.execute(f'CREATE SCHEMA "{pg_schema.name}"')  # type: ignore[arg-type]
        db.execute(f'CREATE TABLE "{pg_schema.name}".journal_meta (key TEXT, value TEXT)')  # type: ignore[arg-type]
        db.execute(f"INSERT INTO \"{pg_schema.name}\".journal_meta VALUES ('format_version', '1')")  # type: ignore[arg-type]
    run_dir = tmp_path / "bt"
    code, out, err = _cli(capsys, "run", _file(tmp_path, pg_schema), "--out", run_dir)
    assert (code, out) == (2, "")
    assert err == (
        f"PostgreSQL ${{{PG_ENV}}} schema {pg_schema.name}: a journal database of format 1; "
        f"this tradeloom ({__version__}) uses format {FORMAT_VERSION}: give another "
        "journal.schema, or use the tradeloom that wrote it; nothing was written\n"
    )
    assert not run_dir.exists()


def test_a_url_that_cannot_connect_exits_2_with_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UNREACHABLE_JOURNAL", "postgresql://postgres@127.0.0.1:1/test")
    path = tmp_path / "s.yaml"
    path.write_text(STRATEGY.format(name="s") + "journal:\n  url: ${UNREACHABLE_JOURNAL}\n")
    code, out, err = _cli(capsys, "run", path, "--out", tmp_path / "bt")
    assert (code, out) == (2, "")
    assert err == (
        "${UNREACHABLE_JOURNAL}: cannot connect to the PostgreSQL journal (connection to server "
        'at "127.0.0.1", port 1 failed: Connection refused); nothing was written\n'
    )
    assert not (tmp_path / "bt").exists()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            "journal:\n  url: 'postgresql://me:hunter22@db/prod'",
            "journal.url: must be an environment variable reference such as "
            "${TRADELOOM_JOURNAL_URL}: the URL was written out (not shown: it may hold a password)",
        ),
        (
            "journal:\n  url: ${NOT_A_PG_URL}",
            "journal.url: must hold a postgresql:// URL "
            "(postgresql://USER:PASSWORD@HOST:PORT/DATABASE), was ${NOT_A_PG_URL}",
        ),
        (
            "journal:\n  url: ${NOT_SET_JOURNAL_URL}",
            "journal.url: environment variable NOT_SET_JOURNAL_URL is not set",
        ),
        (
            "journal:\n  url: ${NOT_A_PG_URL}\n  schema: Bad-Name",
            "journal.schema: must match ^[a-z_][a-z0-9_]{0,62}$, was 'Bad-Name'",
        ),
    ],
)
def test_a_bad_journal_section_is_refused_at_its_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    section: str,
    message: str,
) -> None:
    monkeypatch.setenv("NOT_A_PG_URL", "mysql://me:hunter22@db/prod")
    monkeypatch.delenv("NOT_SET_JOURNAL_URL", raising=False)
    path = tmp_path / "s.yaml"
    path.write_text(STRATEGY.format(name="s") + section + "\n")
    code, out, err = _cli(capsys, "validate", path)
    assert (code, out) == (2, "")
    assert "hunter22" not in err
    assert err.splitlines()[-1].endswith(message), err
    assert err.startswith(f"{path}:1")


def test_a_portfolio_strategy_with_a_journal_section_is_refused_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    examples = Path(__file__).resolve().parents[2] / "examples" / "two_strategies"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SOME_JOURNAL_URL", "postgresql://postgres@127.0.0.1:5432/test")
    for name in ("trend_btc.yaml", "reversion_eth.yaml"):
        shutil.copy(examples / name, tmp_path / name)
    text = (tmp_path / "trend_btc.yaml").read_text()
    line = len(text.splitlines()) + 1  # journal: there; located at its first key
    (tmp_path / "trend_btc.yaml").write_text(text + "journal:\n  url: ${SOME_JOURNAL_URL}\n")
    (tmp_path / "portfolio.yaml").write_text(
        "name: two\ninitial_cash: 100000\nstrategies:\n"
        "  - {file: trend_btc.yaml, weight: 0.6}\n"
        "  - {file: reversion_eth.yaml, weight: 0.4}\n"
    )
    code, out, err = _cli(capsys, "validate", "portfolio.yaml")
    assert (code, out) == (2, "")
    assert err == (
        f"trend_btc.yaml:{line + 1}:3 journal: a portfolio's run journals to its run directory "
        "(journal.sqlite); a strategy file's journal section is not read there: remove it\n"
    )
