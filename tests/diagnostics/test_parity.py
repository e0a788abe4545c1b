"""``tradeloom parity RUN_DIR``: a run's bars replayed as a backtest, every difference
explained (issue 69), through the real command line.

- a paper run of strategies/btc_rf.yaml (shortened as tests/live/test_paper_parity.py
  shortens it) on the simulated clock from a flat start: no difference, exit 0;
- a live run against the exchange emulator charging twice the file's fee (and taking a
  buy's fee from the bought quantity, as Binance does): every difference is the fee or
  follows from it, and the P&L by cause sums to the equity gap;
- each bad input: one line, exit 2.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.live.live_emulated import STRATEGY, EmulatedRun, emulated_run, tick_until
from tests.reporting.browser import chromium
from tests.reporting.page_checks import assert_titled, open_page
from tradeloom.api import open_run
from tradeloom.cli.main import main
from tradeloom.engine.control import request
from tradeloom.journal import read_rows
from tradeloom.live.tick.runner import LiveRunner, Mode
from tradeloom.testing import PartialFill, Reject

pytestmark = pytest.mark.slow  # a paper or live run and its replay a case

ROOT = Path(__file__).resolve().parents[2]


def _parity(capsys: pytest.CaptureFixture[str], *words: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["-q", "parity", *words])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _edit(text: str, *changes: tuple[str, str]) -> str:
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new)
    return text


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A paper run of btc_rf (760 bars, folds of 100) playing bars 380..499 from flat."""
    folder = tmp_path_factory.mktemp("paper")
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
    words = ["run", str(strategy), "--mode", "paper", "--clock", "simulated", "--speed", "max"]
    assert main(["-q", *words, "--max-bars", "120", "--out", str(folder / "paper")]) == 0
    return folder / "paper"


POST = "POST /api/v3/order"


def _live(
    folder: Path,
    fault: Any = None,
    *,
    mode: Mode = "live",
    at: int = 250,
    then: Callable[[EmulatedRun, LiveRunner], None] | None = None,
    **emulator: Any,
) -> Path:
    """A run of tests/live/live_emulated.py's strategy against the emulator (bars
    100..249), ``fault`` on the first order it sends, ``then`` done at bar ``at``."""
    folder.mkdir(exist_ok=True)
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.chdir(folder)
    try:
        with emulated_run(folder, monkeypatch, **emulator) as run:
            runner = run.runner(folder / "live", mode=mode, watch_file=then is not None)
            runner.inbox.install_signal_handlers()
            runner.start()
            try:
                if fault is not None:
                    run.emulator.faults.next(POST, fault)
                tick_until(run, runner, at)
                if then is not None:
                    then(run, runner)
                tick_until(run, runner, 250)
            finally:
                runner.stop("test over")
            assert run.emulator.errors == []
    finally:
        monkeypatch.undo()
    return folder / "live"


@pytest.fixture(scope="module")
def live_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A live run against the emulator, whose taker fee is 0.2% where the file says 10 bps."""
    return _live(tmp_path_factory.mktemp("live"), taker_fee=Decimal("0.002"))


def _fills(run_dir: Path) -> list[dict[str, Any]]:
    return [r.values for r in read_rows(run_dir / "journal.sqlite", ["fill"])]


def test_a_paper_run_from_flat_has_no_difference(
    paper_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _parity(capsys, str(paper_run), "--out", str(tmp_path / "p"))
    assert code == 0, err
    assert "no difference: every bar's probability, signal, order, fill and equity agree" in out
    report = json.loads((tmp_path / "p" / "parity.json").read_text())
    report.pop("differences_by_bar")
    assert report["differences"] == 0 and report["equity_gap"] == 0.0 and report["passed"]
    assert report["bars"] == 120 and report["first_bar"] == 380
    # the replay traded: the two agree on something, fill for fill
    mine, theirs = _fills(paper_run), _fills(tmp_path / "p" / "reference")
    assert len(mine) >= 2
    key = ("side", "quantity", "price", "fee")
    assert [[f[k] for k in key] for f in mine] == [[f[k] for k in key] for f in theirs]

    # from Python: the same comparison, as frames
    result = open_run(paper_run).parity(tmp_path / "api")
    assert result.passed and result.differences.empty and result.causes.empty
    assert len(result.bars) == 120 and (result.bars["gap"] == 0.0).all()
    assert result.summary | {"reference": ""} == report | {"reference": ""}


def test_a_run_that_wrote_no_features_table_is_replayed_with_its_probabilities(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the run's file says outputs.features: false; the replay writes its table anyway, for
    # the probabilities parity compares (it read a missing file: FileNotFoundError)
    words = ["run", str(ROOT / "strategies" / "btc_mtf.yaml"), "--mode", "paper"]
    words += ["--clock", "simulated", "--speed", "max", "--max-bars", "5"]
    words += ["--set", "outputs.features=false", "--set", "outputs.report=false"]
    assert main(["-q", *words, "--out", str(tmp_path / "paper")]) == 0
    assert not (tmp_path / "paper" / "features.parquet").exists()
    code, out, err = _parity(capsys, str(tmp_path / "paper"), "--out", str(tmp_path / "p"))
    assert (code, err) == (0, "")
    assert "no difference: every bar's probability, signal, order, fill and equity agree" in out
    assert (tmp_path / "p" / "reference" / "features.parquet").exists()


def test_a_live_run_charged_another_fee_is_explained_by_the_fee(
    live_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _parity(capsys, str(live_run), "--out", str(tmp_path / "p"))
    assert code == 0, err
    report = json.loads((tmp_path / "p" / "parity.json").read_text())
    causes = report["causes"]
    assert set(causes) == {"fee", "knock_on"}, causes
    first = report["first_divergence"]
    assert (first["field"], first["cause"]) == ("fill.fee", "fee")
    entry = next(r for r in read_rows(live_run / "journal.sqlite", ["fill"]))
    assert first["bar"] == entry.bar  # the first fill is where the two part
    gap = report["run_equity"] - report["reference_equity"]
    assert math.isclose(gap, report["equity_gap"], abs_tol=1e-9)
    total = math.fsum(c["pnl"] for c in causes.values())
    assert abs(total + report["unexplained_pnl"] - gap) <= 1e-9
    assert abs(report["unexplained_pnl"]) <= 1e-9
    # the fee: twice the file's on every fill, so about what the file's fees come to,
    # measured from the run's fills alone (within 5%: a buy's fee is taken in BTC, whose
    # value moves with the price, and the smaller positions that follow are knock-ons)
    mine = _fills(live_run)
    file_fees = math.fsum(0.001 * f["quantity"] * f["price"] for f in mine)
    assert causes["fee"]["pnl"] < 0
    assert math.isclose(-causes["fee"]["pnl"], file_fees, rel_tol=0.05)
    assert math.isclose(-gap, file_fees, rel_tol=0.05)
    assert abs(causes["knock_on"]["pnl"]) < 0.1 * abs(causes["fee"]["pnl"])
    fee_rows = [d for d in report["differences_by_bar"] if d["field"] == "fill.fee"]
    assert len(fee_rows) == len(mine) and {d["cause"] for d in fee_rows} == {"fee"}
    bought = [d for d in report["differences_by_bar"] if d["code"] == "paid in the base currency"]
    assert len(bought) == sum(f["side"] == 1 for f in mine)
    assert "fee" in out and "first divergence: bar" in out

    # a limit on the fee's P&L under what it cost: exit 1, the cause named
    code, out, _ = _parity(
        capsys, str(live_run), "--out", str(tmp_path / "q"), "--tolerance", "fee=10"
    )
    assert code == 1
    assert out.splitlines()[-2] == "parity: FAILED (fee)"

    # the page, as a browser shows it: both equity curves, the gap and each cause
    if chromium() is None:
        pytest.skip("Chromium is not installed: parity.html was not opened in a browser")
    seen = open_page(tmp_path / "p" / "parity.html", "parity.png")
    assert seen.errors == []
    assert_titled(seen.result)
    titles = [c["title"] for c in seen.result]
    assert titles == ["Equity: the run and its replay", "The equity gap (run - replay) by cause"]
    assert [c["lines"] for c in seen.result] == [2, 1 + 3]  # the gap, fee, knock_on, rest


def test_bad_input_is_one_line_and_exit_2(
    live_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _parity(capsys, str(empty))
    assert (code, err) == (2, f"{empty}: no journal (journal.sqlite); give the folder a paper "
                              "or live run wrote\n")  # fmt: skip

    changed = tmp_path / "changed"
    shutil.copytree(live_run, changed)
    strategy = changed / "strategy.yaml"
    strategy.write_text(strategy.read_text().replace("threshold: 0.04", "threshold: 0.05"))
    code, _, err = _parity(capsys, str(changed))
    assert (code, err) == (
        2,
        f"{strategy}: changed since the run: signal.threshold is 0.05, the run traded 0.04; "
        "restore the file the run wrote\n",
    )

    other = tmp_path / "other"
    shutil.copytree(live_run, other)
    for extra in other.glob("journal.sqlite*"):
        extra.unlink()
    (other / "journal.sqlite").write_bytes(b"not a journal at all, not SQLite either" * 30)
    code, _, err = _parity(capsys, str(other))
    assert code == 2 and err.count("\n") == 1 and err.startswith(str(other / "journal.sqlite"))

    code, _, err = _parity(capsys, str(strategy))
    assert (code, err) == (2, f"{strategy}: not a directory; give a paper or live run's folder\n")

    # the replay itself is a backtest's folder: not a run to replay
    assert _parity(capsys, str(live_run), "--out", str(tmp_path / "p"))[0] == 0
    backtest = tmp_path / "p" / "reference"
    code, _, err = _parity(capsys, str(backtest))
    assert (code, err) == (
        2,
        f"{backtest / 'journal.sqlite'}: a backtest run's journal; parity replays a paper or "
        "live run\n",
    )

    code, _, err = _parity(capsys, str(live_run), "--tolerance", "slipage=3")
    assert (code, err.split(";")[0]) == (2, "--tolerance slipage=3: no key 'slipage'")


def _report(run_dir: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, _, err = _parity(capsys, str(run_dir), "--out", str(out))
    assert code == 0, err
    report: dict[str, Any] = json.loads((out / "parity.json").read_text())
    total = math.fsum(c["pnl"] for c in report["causes"].values())
    assert abs(total + report["unexplained_pnl"] - report["equity_gap"]) <= 1e-9
    # what the causes leave: the venue's rounding, within the default tolerance (1e-6
    # plus 1e-9 of the equity), not a cause
    assert abs(report["unexplained_pnl"]) <= 1e-6 + 1e-9 * report["reference_equity"]
    assert abs(report["equity_gap"]) > 1.0  # the runs are apart: the causes explain a gap
    return report


def test_a_venue_rejection_is_found_with_its_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    insufficient = "Account has insufficient balance for requested action."
    run_dir = _live(tmp_path / "run", Reject(-2010, insufficient))
    report = _report(run_dir, tmp_path / "p", capsys)
    rows = report["differences_by_bar"]
    first = rows[0]
    # the replay's entry filled; the run's was refused: the whole fill, the rejection's
    assert (first["field"], first["run"], first["cause"]) == ("fill", "", "rejection")
    assert first["code"] == f"VENUE_REJECTED: InsufficientFunds -2010: {insufficient}"
    entry = next(r for r in read_rows(run_dir / "journal.sqlite", ["order_cancelled"]))
    assert first["bar"] == entry.bar
    # the entry the run made at its next signal closes the gap the rejection opened
    assert [r["cause"] for r in rows if r["field"] == "fill"] == ["rejection", "rejection"]
    assert set(report["causes"]) == {"rejection", "fee", "knock_on"}  # the fee in BTC


def test_a_partial_fill_is_found(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = _live(tmp_path / "run", PartialFill(0.5))
    report = _report(run_dir, tmp_path / "p", capsys)
    parted = [r for r in report["differences_by_bar"] if r["cause"] == "partial_fill"]
    # the order's rest, filled a bar later at the market's price then
    assert parted and {r["code"] for r in parted} == {"filled in parts"}
    fills = [r for r in read_rows(run_dir / "journal.sqlite", ["fill"])]
    first_order = fills[0].values["order_id"]
    parts = [f for f in fills if f.values["order_id"] == first_order]
    assert len(parts) >= 2 and len({f.values["price"] for f in parts}) >= 2
    assert report["causes"]["partial_fill"]["pnl"] != 0.0
    assert "unexplained" not in report["causes"]


def _causes_by_field(report: dict[str, Any]) -> list[tuple[int, str, str]]:
    return [(r["bar"], r["field"], r["cause"]) for r in report["differences_by_bar"]]


def test_a_flatten_is_the_kills(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def flatten(run: EmulatedRun, runner: LiveRunner) -> None:
        request(tmp_path / "run" / "live", "flatten", "operator: flatten")
        assert runner.inbox.wake.wait(5)
        runner.tick()

    run_dir = _live(tmp_path / "run", at=140, then=flatten)
    report = _report(run_dir, tmp_path / "p", capsys)
    (asked,) = [r for r in read_rows(run_dir / "journal.sqlite", ["control_request"])]
    after = [c for bar, _, c in _causes_by_field(report) if bar >= asked.bar]
    assert after and set(after) == {"kill"}  # the flatten's exit, the entries it refused
    assert ("fill", "kill") in {(f, c) for _, f, c in _causes_by_field(report)}
    assert set(report["causes"]) == {"fee", "kill"}  # before it, a buy's fee in BTC


def test_a_hot_reload_is_found(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def edit(run: EmulatedRun, runner: LiveRunner) -> None:
        run.strategy.write_text(STRATEGY.replace("fraction: 0.5", "fraction: 0.3"))

    # on paper: the simulated venue agrees with the replay up to the reload
    run_dir = _live(tmp_path / "run", mode="paper", at=170, then=edit)
    report = _report(run_dir, tmp_path / "p", capsys)
    (reload,) = [r for r in read_rows(run_dir / "journal.sqlite", ["config_reloaded"])]
    assert report["first_divergence"]["bar"] > reload.bar
    assert set(report["causes"]) == {"hot_reload"}
    assert math.isclose(report["causes"]["hot_reload"]["pnl"], report["equity_gap"], abs_tol=1e-6)


def test_bars_played_late_after_an_outage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def down(run: EmulatedRun, runner: LiveRunner) -> None:
        for _ in range(4):
            run.emulator.advance()  # the runner is down: the bars close without it

    # live: the entry decided at a bar played late is sent then, at the price then
    run_dir = _live(tmp_path / "run", at=136, then=down)
    report = _report(run_dir, tmp_path / "p", capsys)
    late = [r for r in report["differences_by_bar"] if r["cause"] == "late_bars"]
    assert [(r["field"], r["code"]) for r in late] == [("fill.price", "sent at a late bar's price")]
    assert late[0]["pnl"] == report["causes"]["late_bars"]["pnl"] != 0.0

    # on paper, the simulated venue fills from the bars: the outage changes nothing
    paper = _live(tmp_path / "paper", mode="paper", at=136, then=down)
    code, out, _ = _parity(capsys, str(paper), "--out", str(tmp_path / "q"))
    assert code == 0 and "no difference" in out
