"""A running live run takes another model between two bars (issue 70, the swap).

On the exchange emulator, on its clock, in process: the model comes from another run's
saved folds (the registry); the run swaps it in without a restart and then decides what a
fresh run of that model decides on the same bars; a model trained on other features is
refused in one line (the command exits 2; a request that reaches the run is journaled as
refused) and the run trades on; a kill -9 right after the swap was journaled restarts
with the swapped model, from the copy the run directory keeps (the registry gone), and
sends no client order id twice; and an edit of the strategy file's model section to a
saved model swaps it by a hot reload, which a restart keeps.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from tests.live.live_emulated import (
    STRATEGY,
    EmulatedRun,
    crash,
    emulated_run,
    rows,
    tick_bars,
    tick_until,
    trained_registry,
)
from tradeloom.cli.main import main
from tradeloom.engine.control import ControlInbox, ControlRequest, request_swap
from tradeloom.engine.run_dir import RUN_OWNED
from tradeloom.journal.tail import tail_path
from tradeloom.live.lifecycle.model_swap import SWAPPED_DIR, model_problems, precheck
from tradeloom.live.tick.runner import LiveRunner

SWAP_AT = 108
"""The emulator's bar at which the swap is asked (the run started at bar 100, before its
own model's first fold: it has decided nothing yet, so what it decides after the swap
is the new model's alone)."""

LAST = 150
"""The last bar the runs trade."""

OTHER_FEATURES = (
    "was trained on other features: features.2 (rsi) window is 10 here, 14 in the model"
)
"""Why a model of the registry does not fit the run whose rsi has another window."""

_MODEL = STRATEGY[STRATEGY.index("model:\n") : STRATEGY.index("signal:")]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A backtest's run directory whose folds were saved (the model registry)."""
    return trained_registry(tmp_path_factory.mktemp("registry"))


@pytest.fixture
def cli_logging() -> Iterator[None]:
    """Put back the logging configuration an in-process ``main`` call changes globally."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def _decisions(journal: Path) -> dict[str, list[Any]]:
    """What the run decided, bar by bar, without client order ids (they name the run):
    each bar's probability, the signals, the risk decisions, the orders, the fills."""
    return {
        "probabilities": [(r["bar"], r["probability"]) for r in rows(journal, "live_bar")],
        "signals": [(r["bar"], r["direction"], r["confidence"]) for r in rows(journal, "signal")],
        "decisions": [(r["bar"], r["outcome"]) for r in rows(journal, "risk_decision")],
        "orders": [
            (r["bar"], r["side"], r["reason"], r["quantity"]) for r in rows(journal, "order")
        ],
        "fills": [(r["bar"], r["side"], r["quantity"], r["price"]) for r in rows(journal, "fill")],
    }


def _after(decided: dict[str, list[Any]], bar: int) -> dict[str, list[Any]]:
    return {key: [d for d in values if d[0] > bar] for key, values in decided.items()}


def _fresh(registry: Path, tmp: Path) -> dict[str, list[Any]]:
    """The decisions of a fresh run of the registry's model alone on the same bars: started
    where the swap happens (its history the bars the swapped run had closed then)."""
    text = STRATEGY.replace(_MODEL, f"model: {{from_run: {registry}}}\n")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.chdir(tmp)
        with emulated_run(tmp, monkeypatch, text=text, history=SWAP_AT) as run:
            runner = run.runner(tmp / "fresh")
            runner.start()
            try:
                tick_until(run, runner, LAST)
            finally:
                runner.stop("done")
    return _decisions(tmp / "fresh" / "journal.sqlite")


@pytest.fixture(scope="module")
def fresh(registry: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Any]]:
    return _fresh(registry, tmp_path_factory.mktemp("fresh"))


def _started(run: EmulatedRun, run_dir: Path) -> LiveRunner:
    runner = run.runner(run_dir)
    runner.inbox.install_signal_handlers()
    runner.start()
    return runner


def _latest(registry: Path) -> tuple[Path, str]:
    """The registry's latest fold: its file and SHA-256."""
    index = json.loads((registry / "models" / "index.json").read_text())
    (latest,) = [f for f in index["folds"] if f["model"]["file"] == index["latest"]]
    return registry / "models" / index["latest"], str(latest["model"]["sha256"])


def test_a_live_run_swaps_in_a_registry_model_and_decides_as_a_fresh_run_of_it(
    registry: Path,
    fresh: dict[str, list[Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with emulated_run(tmp_path, monkeypatch) as run:
        runner = _started(run, run_dir)
        try:
            tick_until(run, runner, SWAP_AT)
            swap_bar = len(runner.session_or_fail.history) - 1
            delivery = request_swap(run_dir, registry, None, "the challenger is better")
            assert delivery.signalled  # this process holds the run directory
            assert runner.inbox.wake.wait(5)
            assert runner.tick() == 0  # no bar closed: swapped at the boundary
            tick_until(run, runner, LAST)  # the same process: no restart
            runner.stop("test over")
        finally:
            runner.inbox.restore_signal_handlers()
        assert run.emulator.errors == []
    (swapped,) = rows(journal, "model_swapped")
    file, sha = _latest(registry)
    assert swapped["bar"] == swap_bar == SWAP_AT - 1
    assert (swapped["by"], swapped["reason"]) == ("cli", "the challenger is better")
    assert swapped["request"] == delivery.path.name  # type: ignore[union-attr]
    assert (swapped["sha256"], swapped["previous_sha256"]) == (sha, "")
    assert swapped["previous"] == "SklearnModel trained in this run"
    assert swapped["file"] == f"{SWAPPED_DIR}/{sha}.pkl"
    kept = run_dir / swapped["file"]
    assert kept.read_bytes() == file.read_bytes()
    assert kept.with_suffix(".json").is_file()
    assert rows(journal, "model_swap_refused") == []

    mine = _decisions(journal)
    # before the swap its own model had no fold yet: nothing decided
    assert all(p is None for bar, p in mine["probabilities"] if bar <= swap_bar)  # NaN
    after = _after(mine, swap_bar)
    assert after == _after(fresh, swap_bar)
    assert after["orders"], "the swapped model never traded: the comparison proves little"
    # parity replays each bar with the probability the run journaled, whichever model
    assert main(["parity", str(run_dir), "--out", str(tmp_path / "parity")]) == 0
    # what a swapped run wrote is a run's (a folder whose journal is gone is still told apart)
    written = {p.name for p in run_dir.iterdir()} - {tail_path(journal).name}
    assert written <= RUN_OWNED, sorted(written - RUN_OWNED)


def test_a_model_of_other_features_is_refused_and_the_run_trades_on(
    registry: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cli_logging: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    text = STRATEGY.replace("{kind: rsi, window: 14}", "{kind: rsi, window: 10}")
    with emulated_run(tmp_path, monkeypatch, text=text) as run:
        runner = _started(run, run_dir)
        try:
            tick_until(run, runner, SWAP_AT)
            capsys.readouterr()
            # the command checks first: one line, exit 2, nothing asked
            assert main(["swap", str(run_dir), "--model", str(registry)]) == 2
            said = [line for line in capsys.readouterr().err.splitlines() if "swap" in line]
            (err,) = said  # one line (any other is a log's)
            assert err.startswith(f"{run_dir}: model swap refused: ")
            assert OTHER_FEATURES in err
            assert not list(run_dir.glob("control/*.json"))  # nothing asked

            # a request that reaches the run (the API's, or written by hand) is checked
            # there again: refused, journaled, and the run trades on with its model
            request_swap(run_dir, registry, None, "try it anyway", by="api")
            assert runner.inbox.wake.wait(5)
            before = runner.session_or_fail.p.model
            runner.tick()
            assert runner.session_or_fail.p.model is before
            tick_bars(run, runner, 3)
            runner.stop("test over")
        finally:
            runner.inbox.restore_signal_handlers()
    (refused,) = rows(journal, "model_swap_refused")
    assert (refused["by"], refused["reason"]) == ("api", "try it anyway")
    (error,) = refused["errors"]
    assert OTHER_FEATURES in error
    assert rows(journal, "model_swapped") == []
    assert not (run_dir / SWAPPED_DIR).exists()
    assert max(r["bar"] for r in rows(journal, "live_bar")) > refused["bar"] + 2  # trades on


class _Killed(BaseException):
    """The process dies (kill -9) where this is raised."""


def test_a_kill_after_the_swap_was_journaled_restarts_with_the_swapped_model(
    registry: Path,
    fresh: dict[str, list[Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    moved = tmp_path / "registry-copy"
    shutil.copytree(registry, moved)
    with emulated_run(tmp_path, monkeypatch) as run:
        runner = _started(run, run_dir)
        try:
            tick_until(run, runner, SWAP_AT)
            swap_bar = len(runner.session_or_fail.history) - 1
            request_swap(run_dir, moved, None, "promote")

            def dies(inbox: ControlInbox, request: ControlRequest) -> None:
                raise _Killed  # journaled and committed, its request file not yet done

            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(ControlInbox, "done", dies)
                with pytest.raises(_Killed):
                    runner.tick()
            crash(runner)
        finally:
            runner.inbox.restore_signal_handlers()
        shutil.rmtree(moved)  # the registry is gone: the restart needs the kept copy only
        assert len(rows(journal, "model_swapped")) == 1

        again = _started(run, run_dir)
        try:
            model = again.session_or_fail.p.model
            (swapped,) = rows(journal, "model_swapped")
            assert model.loaded_from == {  # type: ignore[attr-defined]
                "source": str(run_dir / swapped["file"]),
                "sha256": swapped["sha256"],
            }
            tick_until(run, again, LAST)
            again.stop("test over")
        finally:
            again.inbox.restore_signal_handlers()
        ids = [o.client_order_id for o in run.emulator.exchange.orders()]
        assert run.emulator.errors == []
    assert len(rows(journal, "model_swapped")) == 1  # its request, found again, answered
    assert rows(journal, "model_swap_refused") == []
    assert not list((run_dir / "control").glob("*.json"))  # done at the restart
    assert len(ids) == len(set(ids)) and ids
    assert _after(_decisions(journal), swap_bar) == _after(fresh, swap_bar)


def test_a_hot_reload_of_the_model_section_swaps_it_and_a_restart_keeps_it(
    registry: Path,
    fresh: dict[str, list[Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with emulated_run(tmp_path, monkeypatch) as run:
        runner = run.runner(run_dir, watch_file=True)
        runner.start()
        tick_until(run, runner, SWAP_AT)
        swap_bar = len(runner.session_or_fail.history) - 1
        edited = STRATEGY.replace(_MODEL, f"model: {{from_run: {registry}}}\n")
        run.strategy.write_text(edited, encoding="utf-8")
        assert runner.tick() == 0  # swapped with the reload, at the boundary
        tick_bars(run, runner, 5)
        crash(runner)  # kill -9: the file names the registry, the journal the kept copy
        again = run.runner(run_dir, watch_file=True)
        again.start()  # the replay does not build the journaled documents' model again
        _, sha = _latest(registry)
        assert again.session_or_fail.p.model.loaded_from["sha256"] == sha  # type: ignore[attr-defined]
        tick_until(run, again, LAST)
        again.stop("test over")
        ids = [o.client_order_id for o in run.emulator.exchange.orders()]
        assert run.emulator.errors == []
    (reloaded,) = rows(journal, "config_reloaded")
    assert reloaded["changed"] == ["model"]
    (swapped,) = rows(journal, "model_swapped")
    assert (swapped["bar"], swapped["by"], swapped["request"]) == (swap_bar, "reload", "")
    assert swapped["sha256"] == sha
    assert len(ids) == len(set(ids)) and ids
    assert _after(_decisions(journal), swap_bar) == _after(fresh, swap_bar)


def _reloaded_from_a_run_gone(
    run: EmulatedRun, registry: Path, run_dir: Path, moved: Path
) -> LiveRunner:
    """Swap a copy of ``registry`` in by a hot reload, trade 3 bars, stop cleanly and
    delete the copy; return the runner stopped (the file still names the copy)."""
    shutil.copytree(registry, moved)
    runner = run.runner(run_dir, watch_file=True)
    runner.start()
    tick_until(run, runner, SWAP_AT)
    run.strategy.write_text(STRATEGY.replace(_MODEL, f"model: {{from_run: {moved}}}\n"))
    runner.tick()
    tick_bars(run, runner, 3)
    runner.stop("maintenance")
    shutil.rmtree(moved)
    return runner


def test_a_restart_after_a_hot_reload_swap_needs_not_the_run_the_model_came_from(
    registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with emulated_run(tmp_path, monkeypatch) as run:
        moved = tmp_path / "copy"
        _reloaded_from_a_run_gone(run, registry, run_dir, moved)
        text = run.strategy.read_text()
        _, sha = _latest(registry)
        kept = run_dir / SWAPPED_DIR / f"{sha}.pkl"
        again = run.runner(run_dir, watch_file=True)
        again.start()  # the file names the run gone: the kept copy is built instead
        assert again.session_or_fail.p.model.loaded_from == {  # type: ignore[attr-defined]
            "source": str(kept),
            "sha256": sha,
        }
        tick_bars(run, again, 1)
        assert run.strategy.read_text() == text  # the user's file is not rewritten
        # an edit of the file that still names the run gone reloads, the model kept
        edited = text.replace("threshold: 0.04", "threshold: 0.05")
        run.strategy.write_text(edited)
        again.tick()
        tick_bars(run, again, 1)
        again.stop("maintenance")
        # a file that names the kept copy itself is the model in force: no change
        section = f"model: {{path: {kept}, sha256: {sha}}}\n"
        run.strategy.write_text(edited.replace(f"model: {{from_run: {moved}}}\n", section))
        third = run.runner(run_dir, watch_file=True)
        third.start()
        assert third.session_or_fail.p.model.loaded_from["sha256"] == sha  # type: ignore[attr-defined]
        tick_bars(run, third, 2)
        third.stop("test over")
        assert run.emulator.errors == []
    assert len(rows(journal, "restarted")) == 2
    assert len(rows(journal, "model_swapped")) == 1
    assert rows(journal, "config_reload_refused") == []
    changed = [r["changed"] for r in rows(journal, "config_reloaded")]
    assert changed == [["model"], ["signal"]]  # the restarts saw no other edit


def test_a_swap_after_a_reload_from_a_run_gone_is_checked_against_the_kept_copy(
    registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    with emulated_run(tmp_path, monkeypatch) as run:
        _reloaded_from_a_run_gone(run, registry, run_dir, tmp_path / "copy")
    # compared with the kept copy of the model in force (the same label): another fold
    # passes; the fold in force is refused as the process refuses it (issue 81), naming
    # the journal's row its hash lives in
    assert precheck(run_dir, registry, 0) == []
    [swapped] = rows(run_dir / "journal.sqlite", "model_swapped")
    assert precheck(run_dir, registry, None) == [
        f"model: it is the model in force already (sha256 {swapped['sha256']}, the journal's "
        f"model_swapped row of bar {swapped['bar']}, by reload)"
    ]


_FRACTION = "sizing: {kind: fixed_fraction, fraction: 0.5}"
_KELLY = "sizing: {kind: kelly, fraction: 0.25, avg_win: 0.02, avg_loss: 0.01}"


def _swapped(registry: Path) -> str:
    """The strategy with its model read from ``registry``'s latest fold."""
    return STRATEGY.replace(_MODEL, f"model: {{from_run: {registry}}}\n")


def _sizer_after_a_swap(run: EmulatedRun, runner: LiveRunner, registry: Path) -> Any:
    """Reload the strategy to the registry's model at `SWAP_AT`, trade a bar on it;
    return the sizer the run sizes with then."""
    tick_until(run, runner, SWAP_AT)
    run.strategy.write_text(_swapped(registry))
    runner.tick()
    tick_bars(run, runner, 1)
    return runner.session_or_fail.p.sizer


def _edit_to_kelly(run: EmulatedRun, runner: LiveRunner, swapped: str) -> None:
    """Edit ``swapped``'s fixed-fraction sizing to Kelly's and let the runner read it
    (refused while the model in force is not calibrated)."""
    run.strategy.write_text(swapped.replace(_FRACTION, _KELLY))
    runner.tick()


def test_a_reload_to_kelly_sizing_is_refused_while_an_uncalibrated_model_is_in_force(
    registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with emulated_run(tmp_path, monkeypatch) as run:
        runner = run.runner(run_dir, watch_file=True)
        runner.start()
        sizer = _sizer_after_a_swap(run, runner, registry)
        swapped = _swapped(registry)
        _edit_to_kelly(run, runner, swapped)
        (refused,) = rows(journal, "config_reload_refused")
        (line,) = refused["errors"]
        assert "risk.sizing: reads the probability as a probability" in line
        assert "the model in force is not calibrated" in line
        assert runner.session_or_fail.p.sizer is sizer  # the run sizes on as it did
        # a journal of an older tradeloom that took it: a restart still puts its model back
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("tradeloom.live.lifecycle.reload_stage.uncalibrated", lambda *_: False)
            run.strategy.write_text(swapped.replace(_FRACTION, _KELLY.replace("0.25", "0.2")))
            runner.tick()
        assert len(rows(journal, "config_reloaded")) == 2  # kelly in force
        tick_bars(run, runner, 1)
        crash(runner)
        again = run.runner(run_dir, watch_file=True)
        again.start()  # no acceptance check again: its file's hash and features only
        _, sha = _latest(registry)
        assert again.session_or_fail.p.model.loaded_from["sha256"] == sha  # type: ignore[attr-defined]
        again.stop("test over")
        assert run.emulator.errors == []


def test_an_edit_after_a_refused_sizing_is_compared_with_the_sizing_running(
    registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The calibration check refuses a reload as the other checks do: the watcher goes
    back to the strategy running, so the next edit's changes are against it, not against
    the version refused."""
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    with emulated_run(tmp_path, monkeypatch) as run:
        runner = run.runner(run_dir, watch_file=True)
        runner.start()
        _sizer_after_a_swap(run, runner, registry)
        swapped = _swapped(registry)
        _edit_to_kelly(run, runner, swapped)
        assert len(rows(journal, "config_reload_refused")) == 1
        tick_bars(run, runner, 1)
        # the sizing put back as it runs, and the threshold edited: only that changed
        run.strategy.write_text(swapped.replace("threshold: 0.04", "threshold: 0.05"))
        runner.tick()
        runner.stop("test over")
        assert run.emulator.errors == []
    first, second = rows(journal, "config_reloaded")
    assert first["changed"] == ["model"]
    assert (second["changed"], second["changes"]) == (
        ["signal"],
        ["signal.threshold: 0.04 -> 0.05"],
    )


def test_a_reload_naming_the_model_in_force_journals_no_swap(
    registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file whose model section names the fold in force (here by its file, after a
    swap from the registry) is reloaded without a ``model_swapped`` row, as a mailbox
    swap of it is refused as in force already; a restart keeps that model."""
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    journal = run_dir / "journal.sqlite"
    fold, sha = _latest(registry)
    swapped = _swapped(registry)
    with emulated_run(tmp_path, monkeypatch) as run:
        runner = run.runner(run_dir, watch_file=True)
        runner.start()
        tick_until(run, runner, SWAP_AT)
        run.strategy.write_text(swapped)
        runner.tick()
        tick_bars(run, runner, 1)
        model = runner.session_or_fail.p.model
        named = STRATEGY.replace(_MODEL, f"model: {{path: {fold}, sha256: {sha}}}\n")
        run.strategy.write_text(named)
        runner.tick()
        assert runner.session_or_fail.p.model is model  # nothing swapped
        tick_bars(run, runner, 1)
        crash(runner)
        again = run.runner(run_dir, watch_file=True)
        again.start()
        assert again.session_or_fail.p.model.loaded_from["sha256"] == sha  # type: ignore[attr-defined]
        tick_bars(run, again, 1)
        again.stop("test over")
        assert run.emulator.errors == []
    assert [r["changed"] for r in rows(journal, "config_reloaded")] == [["model"], ["model"]]
    (swap,) = rows(journal, "model_swapped")
    assert (swap["sha256"], swap["by"]) == (sha, "reload")
    assert rows(journal, "config_reload_refused") == []


class _Model:
    """A model as a swap sees it: its label, its calibration, one bar predicted; saved
    (from a file) or not."""

    def __init__(self, horizon: int = 3, *, calibrated: bool = False, saved: bool = True) -> None:
        self.label = {"kind": "direction", "horizon": horizon}
        self.calibrated = calibrated
        if saved:
            self.loaded_from = {"source": "fold-0001.pkl", "sha256": "ab" * 32}

    def predict_row(self, values: Any) -> float:
        return 0.5

    def label_record(self) -> dict[str, Any]:
        return dict(self.label)


class _Kelly:
    needs_calibration = True


class _Fraction:
    pass


@pytest.mark.parametrize(
    ("sizer", "new", "problem"),
    [
        (_Fraction(), _Model(), None),
        (_Fraction(), _Model(saved=False),
         "model: a running run swaps in a saved model only (from_run: a run directory, or "
         "path: with sha256) that predicts one bar; a model that trains on the run's bars "
         "needs a new run"),
        (_Fraction(), _Model(horizon=5),
         "model: trained with label {horizon: 5, kind: direction}, the running model with "
         "{horizon: 3, kind: direction}; swap in a model trained with the running model's "
         "label"),
        (_Kelly(), _Model(),
         "model: risk.sizing reads the probability as a probability (it needs a calibrated "
         "model) and the model is not calibrated; swap in one trained with "
         "model.calibration"),
        (_Kelly(), _Model(calibrated=True), None),
    ],
)  # fmt: skip
def test_a_swap_needs_a_saved_model_of_the_running_label_calibrated_for_kelly(
    sizer: object, new: _Model, problem: str | None
) -> None:
    problems = model_problems(_Model(saved=False), sizer, new)
    assert problems == ([] if problem is None else [problem])
