"""Health rules acting on a backtest: retrain at a bar on past data only, halt, and drivers.

A test monitor (tests/fixtures/plugins/scripted_monitor.py) reports ``level`` 1 at the
bars a test lists, so a rule ``scripted.level above 0.5`` fires exactly where the test
says. A ``retrain`` at bar t trains a fold at t's close on the rows whose labels are
known then, which predicts t+1 up to the next scheduled fold; the journal says why,
the scheduled folds stay as they were, and changing the bars after t+1 changes nothing
of the retrained fold. A ``halt`` closes the position and rejects every later signal,
as a risk halt does. Both need the per-bar driver.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import structlog
import yaml
from sklearn.linear_model import LogisticRegression

from tests.builders import OMIT, strategy
from tradeloom.backtest.retraining import Retrainer
from tradeloom.backtest.run import RunOutcome, run_strategy
from tradeloom.domain import ModelTraining, Retraining
from tradeloom.engine.wiring import build_pipeline
from tradeloom.journal import RUN_KINDS, open_journal, read_events, read_rows
from tradeloom.plugins.model.anomaly import anomaly_scores
from tradeloom.schemas import load_strategy

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "plugins"
START = pd.Timestamp("2024-01-01T00:00:00Z")
HORIZON, EMBARGO = 3, 2


@pytest.fixture(autouse=True)
def fixture_plugins_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make scripted_monitor importable (the strategies list it under plugins:)."""
    monkeypatch.syspath_prepend(str(FIXTURES))


@pytest.fixture
def cli_logging() -> Iterator[None]:
    """Put back the logging configuration an in-process ``main`` call changes globally."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def _bars(n: int, seed: int, p_up: float | np.ndarray = 0.5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.r_[close[0], close[:-1]]
    return pd.DataFrame(
        {
            "timestamp": [(START + pd.Timedelta(hours=i)).isoformat() for i in range(n)],
            "open": open_,
            "high": np.maximum(open_, close) * 1.002,
            "low": np.minimum(open_, close) * 0.998,
            "close": close,
            "volume": 1000.0,
            "p_up": p_up,
        }
    )


def _strategy(
    folder: Path,
    *,
    high_at: list[int],
    rules: list[dict[str, Any]],
    model: dict[str, Any] | None = None,
    frame: pd.DataFrame | None = None,
    busy: bool = False,
) -> Path:
    frame = _bars(400, 1) if frame is None else frame
    frame.to_csv(folder / "bars.csv", index=False, float_format="%.17g")
    doc = strategy(
        name="health",
        seed=OMIT,
        plugins=["scripted_monitor"],
        data={"kind": "csv", "path": "bars.csv", "timeframe": "1h"},
        features=[
            {"kind": "log_return", "period": 1},
            {"kind": "lags", "of": ["log_return_1"], "lags": 2},
        ],
        model=model
        or {
            "kind": "sklearn",
            "estimator": "sklearn.linear_model.LogisticRegression",
            "label": {"horizon": HORIZON},
            "walk_forward": {"train_window": 120, "retrain_every": 100, "embargo": EMBARGO},
        },
        signal={"min_interval": OMIT},
        execution={"kind": "simulated", "allow_short": True},
        monitoring=[{"kind": "scripted", "high_at": high_at}],
        health=rules,
    )
    if busy:  # positions closed after 5 bars, orders filled in parts over several bars
        doc["risk"]["max_holding_bars"] = 5
        doc["execution"]["max_volume_fraction"] = 0.1
    path = folder / "strategy.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def _run(path: Path, out: Path, driver: str = "auto") -> RunOutcome:
    config, plugins = load_strategy(path, [])
    return run_strategy(build_pipeline(config), plugins, out=out, driver=driver)  # type: ignore[arg-type]


def _rows(outcome: RunOutcome, kind: str) -> list[tuple[int, dict[str, Any]]]:
    return [(r.bar, r.values) for r in read_rows(outcome.run_dir / "journal.sqlite", [kind])]


RETRAIN = [{"metric": "scripted.level", "above": 0.5, "action": "retrain"}]
REASON = "health.0: scripted.level 1 > 0.5"


# --- retrain ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RunOutcome]:
    """The same strategy without rules, with a retrain at 250 and 300, and on other futures."""
    outcomes = {}
    for name, high_at, rules, frame in (
        ("plain", [], [], _bars(400, 1)),
        ("retrained", [250, 251, 252, 300], RETRAIN, _bars(400, 1)),
        # bars after 251 replaced by another random walk
        ("other_future", [250, 251, 252, 300], RETRAIN, _other_future(_bars(400, 1), 251)),
    ):
        folder = tmp_path_factory.mktemp(name)
        with pytest.MonkeyPatch.context() as patch:
            patch.syspath_prepend(str(FIXTURES))
            outcomes[name] = _run(
                _strategy(folder, high_at=high_at, rules=rules, frame=frame), folder / "run"
            )
    return outcomes


def _other_future(frame: pd.DataFrame, last: int) -> pd.DataFrame:
    other = _bars(len(frame), 99)
    scale = frame.loc[last, "close"] / other.loc[last, "close"]
    for column in ("open", "high", "low", "close"):
        frame.loc[last + 1 :, column] = other.loc[last + 1 :, column] * scale
    return frame


def test_retrain_fires_at_the_bar_its_condition_becomes_true_and_again_after_false(
    runs: dict[str, RunOutcome],
) -> None:
    journal = runs["retrained"].run_dir / "journal.sqlite"
    fired = list(read_events(journal, ["health_action"]))
    assert [(e.bar, e.rule, e.action, e.reason) for e in fired] == [  # type: ignore[attr-defined]
        (250, 0, "retrain", REASON),  # 251 and 252 stay true: no second firing
        (300, 0, "retrain", REASON),
    ]
    # the reason is derived from the fields (HealthAction.reason), not stored
    actions = _rows(runs["retrained"], "health_action")
    assert actions[0][1] == {
        "rule": 0,
        "metric": "scripted.level",
        "condition": "above",
        "threshold": 0.5,
        "value": 1.0,
        "action": "retrain",
    }


def test_retrain_trains_on_labels_known_at_its_bar_and_predicts_to_the_next_fold(
    runs: dict[str, RunOutcome],
) -> None:
    trainings = _rows(runs["retrained"], "model_trained")
    retrained = [(bar, t) for bar, t in trainings if t["reason"] != "scheduled"]
    scheduled_starts = [t["predict_start"] for _, t in trainings if t["reason"] == "scheduled"]
    assert scheduled_starts == [128, 228, 328]
    assert [bar for bar, _ in retrained] == [251, 301]  # journaled at the first bar predicted
    for (_, t), fired in zip(retrained, (250, 300), strict=True):
        assert t["reason"] == REASON
        assert (t["predict_start"], t["predict_end"]) == (fired + 1, 327)
        assert t["train_end"] + t["horizon"] + t["embargo"] < t["predict_start"]
        # the latest row allowed is used: its label is known exactly at the bar
        assert t["train_end"] + HORIZON + EMBARGO == fired
        assert t["rows"] == 120 and t["train_end"] - t["train_start"] == 119
        assert t["fold"] == 1  # the scheduled fold whose bars it takes over


def test_the_retrained_fold_is_the_model_fitted_on_those_rows(runs: dict[str, RunOutcome]) -> None:
    outcome = runs["retrained"]
    result = outcome.result
    bar, t = next((b, t) for b, t in _rows(outcome, "model_trained") if t["reason"] != "scheduled")
    close = result.bars.frame["close"].to_numpy()
    x = result.features.to_numpy()
    rows = np.arange(t["train_start"], t["train_end"] + 1)
    y = (close[rows + HORIZON] > close[rows]).astype(int)
    model = LogisticRegression(random_state=0).fit(x[rows], y)
    # from 301 on, the second retrain's fold predicts
    expected = model.predict_proba(x[bar:301])[:, 1]
    np.testing.assert_allclose(result.probability.to_numpy()[bar:301], expected, rtol=1e-9)
    # and the signals of those bars were made from them
    signals = [(b, s["probability"]) for b, s in _rows(outcome, "signal") if bar <= b <= 300]
    assert len(signals) > 10
    assert all(p == result.probability.iloc[b] for b, p in signals)


def test_retraining_keeps_the_scheduled_folds_and_their_predictions(
    runs: dict[str, RunOutcome],
) -> None:
    plain, retrained = runs["plain"], runs["retrained"]
    scheduled = [t for _, t in _rows(retrained, "model_trained") if t["reason"] == "scheduled"]
    assert scheduled == [t for _, t in _rows(plain, "model_trained")]
    before = plain.result.probability.to_numpy()
    after = retrained.result.probability.to_numpy()
    outside = np.r_[0:251, 328:400]
    np.testing.assert_array_equal(after[outside], before[outside])
    assert not np.allclose(after[251:328], before[251:328])  # what the retrains replaced
    model = retrained.result  # the fitted folds: scheduled ones, then the retrains
    metrics = json.loads((retrained.run_dir / "metrics.json").read_text())
    assert metrics["retrains"] == [
        {"bar": 250, "timestamp": model.bars.frame.index[250].isoformat(), "reason": REASON},
        {"bar": 300, "timestamp": model.bars.frame.index[300].isoformat(), "reason": REASON},
    ]
    assert metrics["health_actions"] == [
        {
            "rule": 0,
            "metric": "scripted.level",
            "condition": "above",
            "threshold": 0.5,
            "action": "retrain",
            "fired": 2,
        }
    ]
    assert metrics["model_trainings"] == 5


def test_the_bars_after_the_first_prediction_do_not_move_the_retrained_fold(
    runs: dict[str, RunOutcome],
) -> None:
    first, other = runs["retrained"], runs["other_future"]
    mine = [t for b, t in _rows(first, "model_trained") if b == 251]
    theirs = [t for b, t in _rows(other, "model_trained") if b == 251]
    assert mine == theirs and len(mine) == 1
    assert first.result.probability.iloc[251] == other.result.probability.iloc[251]
    assert first.result.probability.iloc[252] != other.result.probability.iloc[252]


def test_the_model_keeps_the_retrained_folds_with_their_data_hash(
    tmp_path: Path,
) -> None:
    path = _strategy(tmp_path, high_at=[250], rules=RETRAIN)
    config, plugins = load_strategy(path, [])
    pipeline = build_pipeline(config)
    run_strategy(pipeline, plugins, out=tmp_path / "run", driver="auto")
    trained = pipeline.model.trained  # type: ignore[attr-defined]
    assert [f.training.reason for f in trained] == ["scheduled"] * 3 + [REASON]
    retrain = trained[-1]
    assert (retrain.training.predict_start, retrain.training.predict_end) == (251, 327)
    assert retrain.training.reference is not None
    assert pipeline.model.fitted is trained[2].fitted  # type: ignore[attr-defined]


def test_the_retrained_folds_detector_gates_the_bars_it_takes_over(tmp_path: Path) -> None:
    model = {
        "kind": "sklearn",
        "estimator": "sklearn.linear_model.LogisticRegression",
        "label": {"horizon": HORIZON},
        "walk_forward": {"train_window": 120, "retrain_every": 100, "embargo": EMBARGO},
        "anomaly": {"contamination": 0.3, "n_estimators": 20},
    }
    path = _strategy(tmp_path, high_at=[250], rules=RETRAIN, model=model, busy=True)
    config, plugins = load_strategy(path, [])
    pipeline = build_pipeline(config)
    outcome = run_strategy(pipeline, plugins, out=tmp_path / "run", driver="auto")
    scheduled, retrained = pipeline.model.trained[1], pipeline.model.trained[-1]  # type: ignore[attr-defined]
    assert retrained.training.reason == REASON and scheduled.training.predict_start == 228
    x = outcome.result.features.to_numpy()[251:328]
    new, old = anomaly_scores(retrained.detector, x), anomaly_scores(scheduled.detector, x)
    assert ((new < 0) != (old < 0)).any()  # the two detectors disagree on some bars
    rejected = {
        b: r["values"]["anomaly_score"]
        for b, r in _rows(outcome, "rejection")
        if r["code"] == "ANOMALY" and 251 <= b <= 327
    }
    assert rejected and all(new[b - 251] < 0 and s == new[b - 251] for b, s in rejected.items())
    accepted = [
        b
        for b, r in _rows(outcome, "risk_decision")
        if r["outcome"] == "accepted" and 251 <= b <= 327
    ]
    assert all(new[b - 251] >= 0 for b in accepted)


def test_a_retrain_with_nothing_to_predict_is_noted(tmp_path: Path) -> None:
    # a scheduled fold starts at 228: a retrain at 227 would predict no bar
    outcome = _run(_strategy(tmp_path, high_at=[227], rules=RETRAIN), tmp_path / "run")
    assert [b for b, t in _rows(outcome, "model_trained") if t["reason"] != "scheduled"] == []
    assert [(b, r["reason"]) for b, r in _rows(outcome, "retrain_skipped")] == [(227, REASON)]


# --- halt ------------------------------------------------------------------------------------


def test_halt_closes_the_position_and_rejects_every_later_signal(tmp_path: Path) -> None:
    frame = _bars(80, 3, p_up=0.9)  # always long
    model = {"kind": "precomputed", "column": "p_up"}
    rules = [{"metric": "scripted.level", "above": 0.5, "action": "halt"}]
    path = _strategy(tmp_path, high_at=[40, 41], rules=rules, model=model, frame=frame)
    outcome = _run(path, tmp_path / "run")
    halts = _rows(outcome, "halt")
    assert [(b, h["code"], h["message"]) for b, h in halts] == [
        (40, "HEALTH_HALT", "health.0: scripted.level 1 > 0.5")
    ]
    orders = outcome.result.recorder.orders
    assert [(o.bar, o.reason) for o in orders] == [(0, "ENTRY"), (40, "EXIT_HALT")]
    rejected = [(b, r["code"], r["message"]) for b, r in _rows(outcome, "rejection")]
    # 40's signal, in the side held, sends nothing: ignored while the halt's exit closes
    # the position; from 41 on, flat, every signal would enter and is refused
    assert rejected and {b for b, *_ in rejected} == set(range(41, 80))
    decided = {b: (r["outcome"], r["reason"]) for b, r in _rows(outcome, "risk_decision")}
    assert decided[40] == ("ignored", "position is being closed (EXIT_HALT)")
    assert {(c, m) for _, c, m in rejected} == {("HALTED", "trading is halted (HEALTH_HALT)")}
    assert outcome.result.portfolio.position == 0.0
    metrics = json.loads((outcome.run_dir / "metrics.json").read_text())
    assert metrics["halt"] == "HEALTH_HALT at 2024-01-02 16:00"


# --- drivers ---------------------------------------------------------------------------------


def test_acting_rules_run_under_every_driver_with_the_same_journal(tmp_path: Path) -> None:
    # the bar is written once: a retrain or a halt needs no particular driver
    path = _strategy(tmp_path, high_at=[250], rules=RETRAIN)
    runs = {d: _run(path, tmp_path / d, d) for d in ("batch", "auto", "per_bar")}
    assert _journal(runs["batch"]) == _journal(runs["auto"]) == _journal(runs["per_bar"])
    assert [b for b, _ in _rows(runs["batch"], "health_action")] == [250]


def test_warn_rules_journal_their_actions_under_the_batch_driver(tmp_path: Path) -> None:
    warn = [{"metric": "scripted.level", "above": 0.5, "action": "warn"}]
    model = {"kind": "precomputed", "column": "p_up"}
    frame = _bars(60, 4, p_up=np.random.default_rng(4).random(60))
    outcome = _run(
        _strategy(tmp_path, high_at=[10, 30], rules=warn, model=model, frame=frame),
        tmp_path / "run",
        "batch",
    )
    assert [b for b, _ in _rows(outcome, "health_action")] == [10, 30]


# --- what monitors see -----------------------------------------------------------------------


def test_both_drivers_show_monitors_the_same_inputs(tmp_path: Path) -> None:
    import scripted_monitor

    warn = [{"metric": "scripted.level", "above": 0.5, "action": "warn"}]
    path = _strategy(tmp_path, high_at=[200], rules=warn, frame=_bars(400, 5), busy=True)
    seen = {}
    for driver in ("auto", "per_bar"):
        outcome = _run(path, tmp_path / driver, driver)
        seen[driver] = list(scripted_monitor.SEEN["scripted"])
    batch, per_bar = seen["auto"], seen["per_bar"]
    assert len(batch) == len(per_bar) == 400
    for a, b in zip(batch, per_bar, strict=True):
        # repr: an order's stop_price is NaN, which equals nothing
        assert repr((a.bar, a.orders, a.fills, a.cancellations, a.training)) == repr(
            (b.bar, b.orders, b.fills, b.cancellations, b.training)
        )
        assert repr((a.probability, a.resolved_probability, a.resolved_up)) == repr(
            (b.probability, b.resolved_probability, b.resolved_up)
        )
        assert repr(dict(a.features)) == repr(dict(b.features))
    fills = [f for data in batch for f in data.fills]
    assert fills == outcome.result.recorder.fills[: len(fills)] and len(fills) > 10
    orders = [o.id for data in batch for o in data.orders]
    assert len(orders) < len(fills)  # orders filled in parts
    assert any(data.cancellations for data in batch)
    # the fold in effect: none before the first, then each scheduled fold over its bars
    trainings = [data.training for data in batch]
    assert trainings[127] is None and trainings[128].predict_start == 128
    assert trainings[228].predict_start == 228 and trainings[399].predict_start == 328
    assert trainings[300].reference is not None


def _journal(outcome: RunOutcome) -> list[tuple[Any, ...]]:
    return [
        (r.bar, r.timestamp, r.kind, r.correlation_id, r.values)
        for r in read_rows(outcome.run_dir / "journal.sqlite")
        if r.kind not in RUN_KINDS
    ]


def _position_of(path: Path, text: str) -> tuple[int, int]:
    lines = path.read_text().splitlines()
    line = next(i for i, line in enumerate(lines, 1) if line.endswith(f": {text}"))
    return line, lines[line - 1].index(text) + 1


def _silent_recorder(folder: Path) -> Any:
    import pluggy

    from tradeloom.domain import RunInfo
    from tradeloom.engine.events import Recorder
    from tradeloom.journal import RunIdentity
    from tradeloom.plugins import hookspecs

    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    run = RunInfo("r", "health", "backtest", str(folder))
    journal = open_journal(folder / "j.sqlite", RunIdentity("health", "r", "backtest"))
    return Recorder(journal, manager.hook, run)


# --- no look-ahead through a retrain ---------------------------------------------------------


def test_check_lookahead_finds_nothing_in_a_strategy_that_retrains(tmp_path: Path) -> None:
    from tradeloom.diagnostics.lookahead import check_lookahead

    # retrains inside fold 0, fold 1 and the last fold; cut points fall around them
    path = _strategy(tmp_path, high_at=[160, 250, 300, 350], rules=RETRAIN, busy=True)
    config, _ = load_strategy(path, [])
    report = check_lookahead(config, points=5, seed=3)
    assert report.finding is None, report.summary


class _LeakyModel:
    """Retrains on a row whose label is not known yet."""

    horizon = 3

    def retrain(self, bar: int, reason: str) -> Retraining:
        training = ModelTraining(
            fold=9,
            train_start=0,
            train_end=bar - 2,
            predict_start=bar + 1,
            predict_end=bar + 5,
            rows=bar - 1,
            positives=3,
            horizon=3,
            estimator="Leaky",
            reason=reason,
        )
        return Retraining(training, np.full(5, 0.5))


def test_a_retrain_that_would_leak_is_refused(tmp_path: Path) -> None:
    index = pd.date_range("2024-01-01", periods=30, freq="h", tz="UTC")
    retrainer = Retrainer(_LeakyModel(), np.full(30, 0.4), {}, _silent_recorder(tmp_path), index)
    with pytest.raises(
        RuntimeError,
        match=r"^model\.retrain at bar 10 trained on rows up to 8, whose labels reach bar "
        r"11: not known at bar 10$",
    ):
        retrainer(10, "health.0: test")
    assert (retrainer.probability == 0.4).all() and not retrainer.retrained
