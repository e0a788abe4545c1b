"""What a sweep ranks by: objective expressions, constraints, the daily ratios, Pareto fronts.

Every sweep file shipped in ``examples/sweep_files/`` runs through the real command, and
its ranking is recomputed here from the variants' metrics in ``results.parquet``: the
objective from its expression, the rejections from the bounds, the fronts by comparing
every pair of variants.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import forkserver
from tradeloom.cli.main import main
from tradeloom.errors import UserError
from tradeloom.reporting.metrics import daily_ratios
from tradeloom.sweep import overfitting as of
from tradeloom.sweep.leaderboard import leaderboard_table, pareto_fronts, rank
from tradeloom.sweep.objective import MAX_DEPTH, parse_constraints, parse_objective

ROOT = Path(__file__).resolve().parents[2]
SWEEP_FILES = sorted((ROOT / "examples" / "sweep_files").glob("*.sweep.yaml"))


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sharpe": [1.0, 2.0, math.nan, 0.5, 3.0],
            "max_drawdown": [0.1, 0.5, 0.2, 0.0, 0.3],
            "trades": [30, 10, 50, 25, 40],
        }
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sharpe", lambda f: f.sharpe),
        ("sharpe - 0.5 * max_drawdown", lambda f: f.sharpe - 0.5 * f.max_drawdown),
        ("-(sharpe + 1) / max_drawdown", lambda f: -(f.sharpe + 1) / f.max_drawdown),
        ("2 * -sharpe * 1e-1 + trades / 10", lambda f: 2 * -f.sharpe * 0.1 + f.trades / 10),
        ("(sharpe)", lambda f: f.sharpe),
    ],
)
def test_an_objective_is_computed_as_written(text: str, expected: object) -> None:
    frame = _frame()
    with np.errstate(all="ignore"):
        want = np.asarray(expected(frame), np.float64)  # type: ignore[operator]
    got = parse_objective(text).values(frame)
    np.testing.assert_array_equal(got, want)
    for row in range(len(frame)):
        one = parse_objective(text).value_of(frame.iloc[row].to_dict())
        assert one == want[row] or (math.isnan(one) and math.isnan(want[row]))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sharp - 1", "--objective: unknown metric 'sharp' in 'sharp - 1' (did you mean 'sharpe'?"),
        ("sharpe +", "--objective: 'sharpe +' ends early (expected a number, a metric or '(')"),
        ("sharpe ** 2", "--objective: unexpected '*' at column 9 of 'sharpe ** 2' (expected"),
        ("(sharpe", "--objective: a '(' is not closed in '(sharpe'"),
        ("", "--objective: empty objective; name a metric, e.g. sharpe"),
        ("__import__('os')", "--objective: unexpected ''' at column 12 of '__import__('os')'"),
        ("os.system", "--objective: unexpected '.' at column 3 of 'os.system'"),
        ("sharpe; 1", "--objective: unexpected ';' at column 7 of 'sharpe; 1' (an objective is"),
    ],
)
def test_a_bad_objective_is_one_line(text: str, message: str) -> None:
    with pytest.raises(UserError) as raised:
        parse_objective(text)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


DEEPER = (
    f"nests deeper than {MAX_DEPTH} levels (parentheses, signs and operators each count one); "
    "write it shorter"
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("(" * MAX_DEPTH + "sharpe" + ")" * MAX_DEPTH, 2.0),
        ("-" * MAX_DEPTH + "sharpe", 2.0),
        ("+".join(["sharpe"] * (MAX_DEPTH + 1)), 2.0 * (MAX_DEPTH + 1)),
        ("-(" * (MAX_DEPTH // 2) + "sharpe" + ")" * (MAX_DEPTH // 2), 2.0),
    ],
)
def test_an_objective_nested_to_the_limit_is_computed(text: str, value: float) -> None:
    assert parse_objective(text).value_of({"sharpe": 2.0}) == value


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("(" * (MAX_DEPTH + 1) + "sharpe" + ")" * (MAX_DEPTH + 1), "(" * 57 + "..."),
        ("(" * 5000 + "sharpe" + ")" * 5000, "(" * 57 + "..."),
        ("-" * 20_000 + "sharpe", "-" * 57 + "..."),
        ("+".join(["sharpe"] * (MAX_DEPTH + 2)), ("sharpe+" * 9)[:57] + "..."),
        ("sharpe" + "*2" * 5000, "sharpe" + "*2" * 25 + "*..."),
    ],
)
def test_an_objective_nested_past_the_limit_is_one_line(text: str, shown: str) -> None:
    with pytest.raises(
        UserError, match=rf"^--objective: '{re.escape(shown)}' {re.escape(DEEPER)}$"
    ):
        parse_objective(text)


def test_a_deep_objective_on_the_command_line_exits_2_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = "(" * 10_000 + "sharpe" + ")" * 10_000
    strategy = ROOT / "examples" / "sweep_files" / "small_lr.yaml"
    code = main(["sweep", str(strategy), "--grid", "signal.threshold=0.1,0.2",
                 "--objective", deep, "--out", str(tmp_path / "s")])  # fmt: skip
    out, err = capsys.readouterr()
    assert (code, out, err) == (2, "", f"--objective: '{'(' * 57}...' {DEEPER}\n")


def test_the_leaderboard_of_several_objectives_says_it_ranks_by_their_front() -> None:
    from rich.console import Console

    frame = _frame().assign(total_return=0.1, variant=range(5), **{"param.x": list("abcde")})
    goals = tuple(parse_objective(t) for t in ("sharpe", "-max_drawdown"))
    ranked = rank(frame, "sharpe", "maximize", objectives=goals)
    console = Console(width=160, record=True)
    objectives = ("sharpe", "-max_drawdown")
    console.print(leaderboard_table(ranked, ["param.x"], "sharpe", objectives=objectives))
    lines = console.export_text().splitlines()

    assert lines[0].strip() == "best 5 of 5 by Pareto front of sharpe, -max_drawdown, then sharpe"
    cells = [[c.strip() for c in re.split("[│┃]", line)[1:6]] for line in lines[2:-1]]
    # front 1: sharpe 3 (drawdown 0.3), 1 (0.1), 0.5 (0); 2 (0.5) is beaten by 3; NaN: none
    assert [row for row in cells if row] == [
        ["#", "row", "front", "x", "sharpe"],
        ["1", "4", "1", "e", "3"],
        ["2", "0", "1", "a", "1"],
        ["3", "3", "1", "d", "0.5"],
        ["4", "1", "2", "b", "2"],
        ["5", "2", "-", "c", "nan"],
    ]
    console = Console(width=160, record=True)
    console.print(leaderboard_table(ranked, ["param.x"], "sharpe"))
    assert console.export_text().splitlines()[0].strip() == "best 5 of 5 by sharpe"


def test_constraints_bound_metrics_and_reject_nan() -> None:
    bounds = parse_constraints({"min_trades": 20, "max_drawdown": 0.3, "min_sharpe": 0.6})
    assert [str(c) for c in bounds] == ["trades >= 20", "max_drawdown <= 0.3", "sharpe >= 0.6"]
    ranked = rank(_frame(), "sharpe", "maximize", bounds)
    reasons = ranked.sort_index()["rejected"].tolist()
    assert reasons == [
        "",
        "trades 10 misses trades >= 20",
        "sharpe NaN misses sharpe >= 0.6",
        "sharpe 0.5 misses sharpe >= 0.6",
        "",
    ]
    # those that meet every bound first, by the objective; the rejected after them
    assert ranked.index.tolist() == [4, 0, 1, 3, 2]
    with pytest.raises(UserError, match=r"^constraints.min_trade: not a bound \(did you mean"):
        parse_constraints({"min_trade": 3})
    with pytest.raises(UserError, match=r"^constraints.min_trades: expected a number, was 'x'$"):
        parse_constraints({"min_trades": "x"})


def _naive_fronts(points: np.ndarray) -> np.ndarray:
    front = np.zeros(len(points))
    left = set(range(len(points)))
    level = 0
    while left:
        level += 1
        top = [
            i
            for i in left
            if not any(
                all(points[j] >= points[i]) and any(points[j] > points[i]) for j in left if j != i
            )
        ]
        for i in top:
            front[i] = level
        left -= set(top)
    return front


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-3, 3), st.integers(-3, 3), st.integers(-2, 2)),
        min_size=1,
        max_size=40,
    ),
    st.integers(1, 7),
)
def test_pareto_fronts_are_non_dominated_sorting(rows: list[tuple[int, ...]], chunk: int) -> None:
    points = np.array(rows, np.float64)
    np.testing.assert_array_equal(pareto_fronts(points, chunk=chunk), _naive_fronts(points))


def test_daily_ratios_are_those_of_the_last_equity_of_each_day() -> None:
    rng = np.random.default_rng(3)
    index = pd.date_range("2024-01-01 05:00", periods=24 * 40, freq="1h", tz="UTC")
    equity = 1000.0 * np.exp(np.cumsum(rng.normal(0.0002, 0.01, len(index))))
    years = len(index) / (24 * 365)
    sharpe, sortino = daily_ratios(equity, index, 1000.0, years)
    closes = pd.Series(equity, index=index).resample("1D").last().dropna()
    daily = closes / closes.shift(1, fill_value=1000.0) - 1.0
    per_year = len(closes) / years
    assert sharpe == pytest.approx(daily.mean() / daily.std(ddof=1) * math.sqrt(per_year))
    downside = math.sqrt(float((np.minimum(daily, 0.0) ** 2).mean()))
    assert sortino == pytest.approx(daily.mean() / downside * math.sqrt(per_year))
    assert per_year == pytest.approx(365.0, rel=0.03)


@pytest.mark.parametrize("nan_columns", [(), (3,), (0, 7)])
def test_the_statistics_read_in_chunks_are_those_of_the_whole_matrix(
    monkeypatch: pytest.MonkeyPatch, nan_columns: tuple[int, ...]
) -> None:
    rng = np.random.default_rng(11)
    returns = rng.normal(0.0002, 0.01, (400, 11)).astype(np.float32)
    for column in nan_columns:
        returns[5, column] = np.nan
    whole = of.overfitting_statistics(returns, n_partitions=4)
    monkeypatch.setattr(of, "_CHUNK_VALUES", 800)  # 2 columns a chunk, the last 3
    assert of._column_chunks(11, 400) == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 11)]
    chunked = of.overfitting_statistics(returns, n_partitions=4)
    assert whole.deflated == chunked.deflated
    np.testing.assert_array_equal(whole.variant_dsr, chunked.variant_dsr)
    assert whole.pbo is not None and chunked.pbo is not None
    for name in ("probability", "n_variants", "excluded", "rows_used", "rows_dropped"):
        assert getattr(whole.pbo, name) == getattr(chunked.pbo, name)
    for name in ("logits", "chosen", "in_sample", "out_of_sample"):
        np.testing.assert_array_equal(getattr(whole.pbo, name), getattr(chunked.pbo, name))
    direct = of.probability_of_backtest_overfitting(returns, n_partitions=4)
    np.testing.assert_array_equal(direct.logits, whole.pbo.logits)


def _recomputed(frame: pd.DataFrame, spec: dict[str, object]) -> pd.DataFrame:
    """The ranking of ``spec`` (a sweep file) recomputed from ``frame``'s metrics."""
    texts = spec.get("objectives") or [spec.get("objective", "sharpe")]
    assert isinstance(texts, list)
    names = {n for n in re.findall(r"[A-Za-z_]\w*", " ".join(texts))}
    env = {n: pd.to_numeric(frame[n], errors="coerce").to_numpy(np.float64) for n in names}
    values = [
        np.asarray(eval(t, {}, env), np.float64) for t in texts
    ]  # the test's own oracle: Python reads the grammar the same
    refused = np.zeros(len(frame), bool)
    for key, bound in dict(spec.get("constraints") or {}).items():  # type: ignore[call-overload]
        metric = key[4:] if key[4:] in frame else key
        column = pd.to_numeric(frame[metric], errors="coerce").to_numpy(np.float64)
        lower = key.startswith("min_")
        with np.errstate(invalid="ignore"):
            refused |= ~(column >= bound if lower else column <= bound)
    front = np.zeros(len(frame))
    if len(values) > 1:
        points = np.column_stack(values)
        usable = ~refused & ~np.isnan(points).any(axis=1)
        front = np.full(len(frame), np.inf)
        front[usable] = _naive_fronts(points[usable])
    first = values[0] if spec.get("direction", "maximize") == "maximize" else -values[0]
    keys = sorted(
        range(len(frame)),
        key=lambda i: (
            refused[i],
            front[i],
            math.isnan(first[i]),
            -np.nan_to_num(first[i], nan=0),
            i,
        ),
    )
    out = frame.iloc[keys].copy()
    out["want_value"] = values[0][keys]
    out["want_rejected"] = refused[keys]
    out["want_front"] = np.where(np.isinf(front), np.nan, front)[keys]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("path", SWEEP_FILES, ids=[p.name for p in SWEEP_FILES])
def test_every_shipped_sweep_file_runs_and_ranks_by_its_metrics(path: Path, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    done = forkserver.tradeloom("sweep", path, "--out", out, cwd=ROOT, pythonpath=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    frame = pd.read_parquet(out / "results.parquet").sort_values("variant")
    want = _recomputed(frame.drop(columns=["rank"]).reset_index(drop=True), spec)
    ranked = frame.sort_values("rank")
    assert ranked["variant"].tolist() == want["variant"].tolist()
    np.testing.assert_array_equal(ranked["objective_value"], want["want_value"])
    if spec.get("constraints"):
        assert (ranked["rejected"] != "").tolist() == want["want_rejected"].tolist()
        refused = int(want["want_rejected"].sum())
        assert f"; rejected: {refused} (ranked last)" in done.stdout
        assert 0 < refused < len(frame)  # the example shows a rejection and a choice
    if spec.get("objectives"):
        np.testing.assert_array_equal(ranked["pareto_front"], want["want_front"])
        front = int((want["want_front"] == 1).sum())
        assert f"each maximized): {front} of {len(frame)} variants" in done.stdout
        page = (out / "pareto.html").read_text(encoding="utf-8")
        assert "Pareto front" in page and page.count("<tr>") == front + 1
        assert "NSGA-II over 2 objectives" in done.stdout


@pytest.mark.slow
def test_a_constraint_no_variant_meets_is_one_line(tmp_path: Path) -> None:
    path = ROOT / "examples" / "sweep_files" / "composite.sweep.yaml"
    done = forkserver.tradeloom(
        "sweep",
        path,
        "--out",
        tmp_path / "s",
        "--constraint",
        "min_trades=100000",
        cwd=ROOT,
        pythonpath=ROOT,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert re.match(
        r"^constraints: no variant of 24 meets them \(trades >= 100000 rejects 24 \(largest "
        r"trades \d+\); max_drawdown <= 0\.15 rejects \d+ \(smallest max_drawdown [\d.e-]+\)\); "
        r"the variants' results are kept in .*: loosen a bound and run the same command again$",
        lines[0],
    ), lines[0]


def test_bad_objectives_in_a_sweep_file_are_located(tmp_path: Path) -> None:
    strategy = ROOT / "examples" / "sweep_files" / "small_lr.yaml"
    (tmp_path / "s.yaml").write_text(strategy.read_text(encoding="utf-8"), encoding="utf-8")
    sweep = tmp_path / "bad.sweep.yaml"
    sweep.write_text(
        "strategy: s.yaml\n"
        "grid:\n"
        "  signal.threshold: [0.1, 0.2]\n"
        "objective: sharp - max_drawdown\n"
        "constraints:\n"
        "  min_trade: 3\n",
        encoding="utf-8",
    )
    done = forkserver.tradeloom(
        "sweep", sweep, "--out", tmp_path / "o", cwd=tmp_path, pythonpath=ROOT
    )
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 2, done.stderr
    assert lines[0].startswith(
        f"{sweep}:4:12 objective: unknown metric 'sharp' in 'sharp - max_drawdown' "
        "(did you mean 'sharpe'?"
    )
    assert lines[1].startswith(
        f"{sweep}:6:3 constraints.min_trade: not a bound (did you mean 'min_trades'?)"
    )
