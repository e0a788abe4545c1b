"""``challengers:`` in a strategy file: validated with the file, each mistake one located
line; a valid entry becomes a `Challenger` with its model and its optional signal and
sizing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.live.test_challengers import CHALLENGERS, LOGIT, strategy
from tradeloom.errors import ConfigError
from tradeloom.schemas import load_strategy


def lines(tmp_path: Path, document: dict[str, Any]) -> list[str]:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    with pytest.raises(ConfigError) as caught:
        load_strategy(path)
    return [line.replace(str(path), "s.yaml") for line in caught.value.lines()]


def test_valid_challengers_are_read_with_their_components(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(strategy(challengers=CHALLENGERS), sort_keys=False))
    config, _ = load_strategy(path)
    logit, small = config.challengers
    assert (logit.name, logit.model.path, logit.model.kind) == (
        "logit",
        "challengers.0.model",
        "sklearn",
    )
    assert logit.signal is not None and logit.signal.params.threshold == 0.005
    assert logit.sizing is None
    assert small.sizing is not None and small.sizing.path == "challengers.1.sizing"
    assert small.sizing.params.fraction == 0.2


def test_each_mistake_is_one_located_line(tmp_path: Path) -> None:
    """A misspelt required key is one mistake: its line says what it misspells."""
    other_label = {**LOGIT, "label": {"horizon": 4}}
    document = strategy(
        challengers=[
            {"name": "a", "model": other_label},
            {"name": "b", "model": LOGIT, "sizing": {"kind": "fixed_fraction", "fractio": 0.2}},
            {"name": "c", "modle": LOGIT},
        ]
    )
    assert lines(tmp_path, document) == [
        "s.yaml:44:7 challengers.0.model.label: a challenger is scored on the strategy's "
        "label: horizon must be 3, was 4",
        "s.yaml:57:5 challengers.1.sizing.fractio: unknown key (did you mean 'fraction'?)",
        "s.yaml:59:3 challengers.2.modle: unknown key (did you mean 'model'?)",
    ]


def test_two_challengers_of_one_name_are_refused(tmp_path: Path) -> None:
    document = strategy(challengers=[CHALLENGERS[0], {**CHALLENGERS[1], "name": "logit"}])
    assert lines(tmp_path, document) == [
        "s.yaml:39:1 challengers: challenger names must be unique, 'logit' is twice"
    ]


def test_challengers_need_the_simulated_venue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMU_API_KEY", "key")
    monkeypatch.setenv("EMU_API_SECRET", "secret")
    document = strategy(challengers=CHALLENGERS[:1])
    document["execution"] = {
        "kind": "ccxt",
        "exchange": "binance",
        "api_key": "${EMU_API_KEY}",
        "secret": "${EMU_API_SECRET}",
    }
    assert lines(tmp_path, document) == [
        "s.yaml:39:1 challengers: challengers simulate their fills with the strategy's "
        "execution: {kind: simulated}, the run's paper fill model; execution.kind is ccxt"
    ]


def test_each_mistake_of_a_promotion_gate_is_one_located_line(tmp_path: Path) -> None:
    gate = {"min_bars": 30, "min_fills": 5}
    saved = {"kind": "saved", "path": "m.pkl", "sha256": "0" * 64}  # no such file
    document = strategy(
        challengers=[
            {"name": "a", "model": LOGIT, "promote_when": gate},
            {"name": "b", "model": saved, "promote_when": {"min_bars": 2, "alpha": 0.7}},
            {"name": "c", "model": saved, "promote_when": {"min_bar": 30}},
        ]
    )
    missing = f"file not found: {tmp_path / 'm.pkl'}"
    assert lines(tmp_path, document) == [
        "s.yaml:49:5 challengers.0.promote_when: a challenger is promoted by swapping its "
        "model file in; give it a saved model (from_run: RUN or path: with sha256), not "
        "one of kind sklearn that trains in the run",
        f"s.yaml:54:11 challengers.1.model.path: {missing}",
        f"s.yaml:54:11 challengers.2.model.path: {missing}",
        "s.yaml:57:15 challengers.1.promote_when.min_bars: must be >= 3, was 2",
        "s.yaml:58:12 challengers.1.promote_when.alpha: must be <= 0.5, was 0.7",
        "s.yaml:62:5 challengers.2.promote_when.min_bar: unknown key (did you mean 'min_bars'?)",
    ]


def test_a_challenger_s_signal_takes_the_strategy_s_runner_keys(tmp_path: Path) -> None:
    """``regimes``, ``top_k`` and ``sides`` in a challenger's signal section mean what they
    mean in the strategy's (they used to be refused: unknown key, valid keys: threshold,
    min_interval); a key not written is the strategy's."""
    from tradeloom.engine.core_spec import core_spec
    from tradeloom.engine.wiring import build_pipeline
    from tradeloom.live.lifecycle.challengers import candidate_pipeline
    from tradeloom.schemas.regime import RegimeParams

    own = {"kind": "threshold", "threshold": 0.005, "sides": "long", "regimes": ["trending"]}
    copied = {"kind": "threshold", "threshold": 0.04, "sides": "short", "top_k": 2}
    document = strategy(
        challengers=[
            {"name": "own", "model": LOGIT, "signal": own},
            {"name": "copied", "model": LOGIT, "signal": copied},
            {"name": "plain", "model": LOGIT},
        ],
        signal={"kind": "threshold", "threshold": 0.04, "sides": "short", "top_k": 2},
    )
    document["execution"]["allow_short"] = True
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    config, _ = load_strategy(path)
    pipeline = build_pipeline(config)
    first, second, third = (candidate_pipeline(pipeline, c).config for c in config.challengers)
    assert (first.signal_sides, first.signal_regimes, first.signal_top_k) == (
        "long",
        ("trending",),
        2,  # not written: the strategy's
    )
    assert first.regime == RegimeParams() and config.regime is None
    assert (second.signal_sides, second.signal_top_k) == ("short", 2)
    assert (third.signal_sides, third.signal_regimes, third.signal_top_k) == ("short", (), 2)
    spec = core_spec(
        candidate_pipeline(pipeline, config.challengers[0]), 3600, periods_per_year=8760.0
    )
    assert spec.sides == 1 and spec.regime_filter != 0 and spec.journal_regime


def test_a_challenger_s_short_side_on_a_long_only_venue_is_refused_at_its_key(
    tmp_path: Path,
) -> None:
    from tradeloom.engine.wiring import build_pipeline

    short = {"kind": "threshold", "threshold": 0.005, "sides": "short"}
    document = strategy(
        challengers=[{"name": "a", "model": LOGIT, "signal": short}],
        signal={"kind": "threshold", "threshold": 0.04, "sides": "long"},
    )
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    config, _ = load_strategy(path)  # the venue is known once built (validate builds it)
    with pytest.raises(ConfigError) as caught:
        build_pipeline(config)
    assert [line.replace(str(path), "s.yaml") for line in caught.value.lines()] == [
        "s.yaml:52:12 challengers.0.signal.sides: is short but the venue trades long-only "
        "(execution.allow_short: false): the strategy could never open a position; set "
        "execution.allow_short: true, or signal.sides: long"
    ]


def test_a_challenger_s_top_k_with_scale_in_is_refused_at_its_key(tmp_path: Path) -> None:
    ranked = {"kind": "threshold", "threshold": 0.005, "top_k": 1}
    document = strategy(challengers=[{"name": "a", "model": LOGIT, "signal": ranked}])
    document["risk"]["scaling"] = {
        "scale_in": {"kind": "pyramid", "step": 0.02, "max_adds": 2, "max_position": 1.0}
    }
    assert lines(tmp_path, document) == [
        "s.yaml:57:12 challengers.0.signal.top_k: not available with risk.scaling.scale_in: "
        "adds are not ranked"
    ]
