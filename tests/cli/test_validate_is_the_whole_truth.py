"""``tradeloom validate`` is the whole truth about a file: what ``run`` refuses, validate
refused first, at the same ``FILE:LINE:COL`` with the same line; every problem of a
section in one round; and what validate only warns of (Kelly on probabilities that are
not calibrated, a signal that may go short on a long-only venue), every mode says.

The hostile corpus run both ways is `tests/hostile/test_corpus.py`; every case of the
hostile-input tests that validate refuses, run refuses alike (`tests/hostile/test_input.py`'s
``refused``); every shipped file validates and runs (`tests/cli/test_cli.py`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tradeloom.cli.main import main

ROOT = Path(__file__).resolve().parents[2]

UNIVERSE = """\
name: pooled
seed: 3
data:
  kind: synthetic
  symbols: [BTC/USDT, ETH/USDT]
  bars: 600
features:
  - {kind: log_return, period: 1}
  - {kind: rsi, window: 14}
model:
  kind: sklearn
  estimator: sklearn.ensemble.RandomForestClassifier
  params: {n_estimators: 5, max_depth: 3, n_jobs: 1}
  pooling: pooled
  calibration: {method: sigmoid, holdout: 60}
  label: {horizon: 2}
  walk_forward: {train_window: 250, retrain_every: 150}
signal: {kind: threshold, threshold: 0.05, sides: long}
risk:
  sizing: {kind: fixed_fraction, fraction: 0.2}
execution: {kind: simulated, initial_cash: 10000}
"""

POOLED_CALIBRATION = (
    "pooled.yaml:15:16 model.calibration: pooled training over several symbols is not "
    "calibrated (its rows are not one bar each); set model.pooling: per_symbol"
)


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def _refused_alike(capsys: pytest.CaptureFixture[str], path: str, *lines: str) -> None:
    """validate and a backtest both exit 2 with exactly ``lines`` on stderr."""
    said = "".join(f"{line}\n" for line in lines)
    assert _cli(capsys, "validate", path) == (2, "", said)
    assert _cli(capsys, "run", path, "--out", "run") == (2, "", said)
    assert not Path("run").exists()


# --- what run refused after validate accepted ---------------------------------------


def test_pooled_calibrated_training_over_a_universe_is_refused_by_validate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("pooled.yaml").write_text(UNIVERSE)

    _refused_alike(capsys, "pooled.yaml", POOLED_CALIBRATION)

    # per symbol, each symbol's model is calibrated on its own bars: valid
    Path("per_symbol.yaml").write_text(UNIVERSE.replace("pooling: pooled", "pooling: per_symbol"))
    assert _cli(capsys, "validate", "per_symbol.yaml")[0] == 0
    # one market pooled is one market: valid
    one = UNIVERSE.replace("symbols: [BTC/USDT, ETH/USDT]", "symbol: BTC/USDT")
    Path("one.yaml").write_text(one)
    assert _cli(capsys, "validate", "one.yaml")[0] == 0


SMALL = """\
name: small
seed: 1
data: {kind: synthetic, symbol: BTC/USDT, timeframe: 1h, bars: 400}
features: [{kind: log_return, period: 1}, {kind: rsi, window: 14}]
model:
  kind: sklearn
  estimator: sklearn.ensemble.RandomForestClassifier
  params: {n_estimators: 5, max_depth: 3, n_jobs: 1}
  label: {horizon: 2}
  walk_forward: {train_window: 150, retrain_every: 100}
signal: {kind: threshold, threshold: 0.02}
risk: {sizing: {kind: fixed_fraction, fraction: 0.5}}
execution: {kind: simulated, initial_cash: 10000}
"""


def test_a_saved_model_given_only_bars_of_its_training_data_is_refused_by_validate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("small.yaml").write_text(SMALL)
    assert _cli(capsys, "run", "small.yaml", "--out", "trained", "-q")[0] == 0
    saved = SMALL[: SMALL.index("model:")] + "model: {from_run: trained}\n"
    saved += SMALL[SMALL.index("signal:") :]
    Path("saved.yaml").write_text(saved.replace("bars: 400", "bars: 200"))

    _refused_alike(
        capsys,
        "saved.yaml",
        "saved.yaml:5:8 model: every bar is inside fold-0002.pkl's training data (its labels "
        "reach 2023-01-16T05:00:00+00:00, the bars end 2023-01-09T07:00:00+00:00); give it "
        "bars after that",
    )
    Path("saved.yaml").write_text(saved)
    assert _cli(capsys, "validate", "saved.yaml")[0] == 0


def test_a_challenger_whose_factory_refuses_is_refused_by_validate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # a paper run builds its challengers at its start: validate builds them too
    monkeypatch.chdir(tmp_path)
    Path("s.yaml").write_text(
        SMALL
        + "challengers:\n"
        + "  - name: logit\n"
        + "    model:\n"
        + "      kind: sklearn\n"
        + "      estimator: sklearn.linear_model.LogisticRegresion\n"
        + "      label: {horizon: 2}\n"
        + "      walk_forward: {train_window: 150, retrain_every: 100}\n"
    )
    refusal = (
        "s.yaml:18:18 challengers.0.model.estimator: cannot import "
        "'sklearn.linear_model.LogisticRegresion': module 'sklearn.linear_model' has no "
        "attribute 'LogisticRegresion' (did you mean 'LogisticRegression'?)"
    )

    _refused_alike(capsys, "s.yaml", refusal)
    paper = ["--mode", "paper", "--clock", "simulated", "--speed", "max", "--max-bars", "1"]
    assert _cli(capsys, "validate", "s.yaml", *paper[:4]) == (2, "", f"{refusal}\n")
    assert _cli(capsys, "run", "s.yaml", *paper, "--out", "paper") == (2, "", f"{refusal}\n")


def test_a_feature_timeframe_a_files_bars_cannot_make_is_refused_at_its_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    rows = [f"{1704067200 + 3600 * i},100,101,99,100.5,10" for i in range(300)]
    Path("bars.csv").write_text("timestamp,open,high,low,close,volume\n" + "\n".join(rows))
    text = SMALL.replace(
        "data: {kind: synthetic, symbol: BTC/USDT, timeframe: 1h, bars: 400}",
        "data: {kind: csv, path: bars.csv, symbol: BTC/USDT}",
    ).replace("{kind: rsi, window: 14}", "{kind: rsi, window: 14, timeframe: 90m}")
    Path("s.yaml").write_text(text)
    refusal = (
        "s.yaml:4:78 features.1.timeframe: must be a whole multiple of the bars' 1h (each of "
        "its bars is made of whole 1h bars), was 90m"
    )

    # the file's timeframe is its rows': known once they are read, refused at the same key
    code, out, err = _cli(capsys, "run", "s.yaml", "--out", "read")
    assert (code, out, err) == (2, "", f"{refusal}\n")
    # written in the file: validate knows it
    Path("s.yaml").write_text(text.replace("symbol: BTC/USDT}", "symbol: BTC/USDT, timeframe: 1h}"))
    _refused_alike(capsys, "s.yaml", refusal)


PORTFOLIO = """\
name: pair
initial_cash: 100000
strategies:
  - {file: trend_btc.yaml, weight: 0.6}
  - {file: reversion_eth.yaml, weight: 0.4}
risk:
  portfolio:
    max_group_exposure: 0.5
    groups:
      majors: [BTC/USDT, DOGE/USDT]
"""


def test_a_portfolio_group_naming_no_market_and_strategies_on_two_clocks_are_refused_by_validate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("trend_btc.yaml", "reversion_eth.yaml"):
        shutil.copy(ROOT / "examples" / "two_strategies" / name, name)
    trend = Path("trend_btc.yaml")
    trend.write_text(trend.read_text().replace("  bars: 1500", "  bars: 1400"))
    Path("pair.yaml").write_text(PORTFOLIO)

    _refused_alike(
        capsys,
        "pair.yaml",
        "pair.yaml:5:12 strategies.1.file: the strategies' bars must share one clock: "
        "trend_btc has 1,400 1h bars from 2024-01-01T00:00Z, reversion_eth has 1,500 1h bars "
        "from 2024-01-01T00:00Z; give them the same timeframe, start and bars",
        "pair.yaml:10:15 risk.portfolio.groups.majors: 'DOGE/USDT' is not a market of any "
        "strategy (they trade BTC/USDT, ETH/USDT)",
    )


# --- every problem of a section in one round -----------------------------------------

ALLOCATING = (ROOT / "strategies" / "universe_risk_parity.yaml").read_text()


def test_an_unknown_key_of_an_allocator_hides_none_of_the_sections_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    text = ALLOCATING.replace(
        "  covariance: ledoit_wolf\n", "  covariance: ledoit_wolf\n  covarience: sample\n"
    ).replace("    max_weight: 0.4\n", "    max_weight: 0.1\n    bounds: {DOGE/USDT: {max: 0.2}}\n")
    Path("alloc.yaml").write_text(text)

    assert _cli(capsys, "validate", "alloc.yaml") == (
        2,
        "",
        "alloc.yaml:43:3 allocation.covarience: unknown key (did you mean 'covariance'?)\n"
        "alloc.yaml:47:17 allocation.constraints.max_weight: the largest weights sum to 0.6, "
        "below net_exposure 0.98: no weights can reach it\n"
        "alloc.yaml:48:25 allocation.constraints.bounds.DOGE/USDT: unknown symbol 'DOGE/USDT' "
        "(did you mean 'SOL/USDT'?); the data's symbols are 'BTC/USDT', 'ETH/USDT', "
        "'SOL/USDT', 'BNB/USDT', 'XRP/USDT', 'ADA/USDT'\n",
    )


def test_an_unknown_key_beside_keys_that_contradict_each_other_is_said_with_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # the section's own rule (a minimum above the maximum) runs without the unknown key
    monkeypatch.chdir(tmp_path)
    text = ALLOCATING.replace(
        "    min_trade: 0.005\n", "    min_trade: 0.005\n    min_weight: 0.3\n    max_wieght: 0.1\n"
    ).replace("    max_weight: 0.4\n", "    max_weight: 0.2\n")
    Path("alloc.yaml").write_text(text)

    assert _cli(capsys, "validate", "alloc.yaml") == (
        2,
        "",
        "alloc.yaml:45:5 allocation.constraints: min_weight 0.3 is above max_weight 0.2\n"
        "alloc.yaml:49:5 allocation.constraints.max_wieght: unknown key (did you mean "
        "'max_weight'?)\n",
    )


def test_a_mistake_in_one_section_hides_no_check_of_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # a top-level typo and a bad feature: the allocation's own checks are said with them
    monkeypatch.chdir(tmp_path)
    text = ALLOCATING.replace(
        "name: universe_risk_parity\n", "name: universe_risk_parity\ndescripton: x\n"
    ).replace("    period: 1\n", "    period: one\n")
    text = text.replace("    max_weight: 0.4\n", "    max_weight: 0.1\n")
    Path("alloc.yaml").write_text(text)

    assert _cli(capsys, "validate", "alloc.yaml") == (
        2,
        "",
        "alloc.yaml:10:1 descripton: unknown key (did you mean 'description'?)\n"
        "alloc.yaml:23:13 features.0.period: expected an integer, was 'one'\n"
        "alloc.yaml:47:17 allocation.constraints.max_weight: the largest weights sum to 0.6, "
        "below net_exposure 0.98: no weights can reach it\n",
    )


def test_a_risk_rule_across_sections_is_said_whatever_else_is_wrong(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    text = UNIVERSE.replace("pooling: pooled\n", "pooling: per_symbol\n").replace(
        "  sizing: {kind: fixed_fraction, fraction: 0.2}\n",
        "  sizing: {kind: risk_per_trade, risk: 0.01}\n",
    )
    text = text.replace("seed: 3\n", "seed: -3\n")
    Path("s.yaml").write_text(text)

    assert _cli(capsys, "validate", "s.yaml") == (
        2,
        "",
        "s.yaml:2:7 seed: must be >= 0, was -3\n"
        "s.yaml:20:18 risk.sizing.kind: risk_per_trade sizes by the distance to the stop: "
        "set risk.stop_loss or risk.trailing_stop\n",
    )


# --- Kelly on a model that is not calibrated: a warning in every mode ------------------

KELLY = UNIVERSE.replace("  symbols: [BTC/USDT, ETH/USDT]\n", "  symbol: BTC/USDT\n").replace(
    "  sizing: {kind: fixed_fraction, fraction: 0.2}\n",
    "  sizing: {kind: kelly, fraction: 0.25, avg_win: 0.02, avg_loss: 0.02}\n",
)
UNCALIBRATED = KELLY.replace("  calibration: {method: sigmoid, holdout: 60}\n", "")
WARNING = (
    "kelly reads the probability as a probability (it needs a calibrated model) and the "
    "model is not calibrated; set model.calibration, or size with fixed_fraction"
)


def test_kelly_on_a_model_that_is_not_calibrated_is_a_warning_in_every_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("kelly.yaml").write_text(UNCALIBRATED)
    Path("calibrated.yaml").write_text(KELLY)
    located = f"kelly.yaml:19:18 risk.sizing.kind: warning: {WARNING}"

    code, out, err = _cli(capsys, "validate", "kelly.yaml")
    assert (code, err) == (0, f"{located}\n")
    assert out.startswith("kelly.yaml: valid strategy 'pooled' ")
    assert _cli(capsys, "validate", "calibrated.yaml")[::2] == (0, "")

    code, out, _ = _cli(capsys, "run", "kelly.yaml", "--out", "backtest")
    assert code == 0
    assert f"  warning                   risk.sizing.kind: {WARNING}\n" in out
    metrics = json.loads(Path("backtest/metrics.json").read_text())
    assert metrics["calibration_warning"] == f"risk.sizing.kind: {WARNING}"
    code, out, _ = _cli(capsys, "run", "calibrated.yaml", "--out", "calibrated")
    assert code == 0 and "warning" not in out
    assert "calibration_warning" not in json.loads(Path("calibrated/metrics.json").read_text())

    paper = ["--mode", "paper", "--clock", "simulated", "--speed", "max", "--max-bars", "2"]
    code, _, err = _cli(capsys, "run", "kelly.yaml", *paper, "--out", "paper", "-q")
    assert code == 0
    # once the run has started (a refused run says its refusal alone), among its logs
    assert [line for line in err.splitlines() if not line.startswith("{")] == [located]
    metrics = json.loads(Path("paper/metrics.json").read_text())
    assert metrics["calibration_warning"] == f"risk.sizing.kind: {WARNING}"


def test_the_warning_is_the_swap_rule() -> None:
    # one rule: what a model swap and a hot reload refuse is what every mode warns of
    from tradeloom.engine import capabilities
    from tradeloom.live.lifecycle import model_swap, reload_stage

    assert model_swap.uncalibrated is capabilities.uncalibrated
    assert reload_stage.uncalibrated is capabilities.uncalibrated


# --- a signal that may go short on a long-only venue: a warning in every mode ----------

SIDES = (
    "the signal may go short (signal.sides: both, the default) but the venue trades "
    "long-only (execution.allow_short: false): every down signal while flat is refused "
    "SHORT_NOT_ALLOWED; set signal.sides: long"
)


def test_a_signal_that_may_go_short_on_a_long_only_venue_is_a_warning_in_every_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("both.yaml").write_text(KELLY.replace(", sides: long}", "}"))
    Path("long.yaml").write_text(KELLY)
    located = f"both.yaml:18:16 signal.kind: warning: {SIDES}"

    code, out, err = _cli(capsys, "validate", "both.yaml")
    assert (code, err) == (0, f"{located}\n")
    assert out.startswith("both.yaml: valid strategy 'pooled' ")
    assert _cli(capsys, "validate", "long.yaml")[::2] == (0, "")
    # written, it is located at its key
    Path("written.yaml").write_text(KELLY.replace("sides: long", "sides: both"))
    assert _cli(capsys, "validate", "written.yaml")[::2] == (
        0,
        f"written.yaml:18:51 signal.sides: warning: {SIDES.replace('both, the default', 'both')}\n",
    )

    code, out, _ = _cli(capsys, "run", "both.yaml", "--out", "backtest")
    assert code == 0
    assert f"  warning                   signal.kind: {SIDES}\n" in out
    metrics = json.loads(Path("backtest/metrics.json").read_text())
    assert metrics["sides_warning"] == f"signal.kind: {SIDES}"
    assert "SHORT_NOT_ALLOWED" in metrics["rejections"]  # what it warned of
    code, out, _ = _cli(capsys, "run", "long.yaml", "--out", "long")
    assert code == 0 and "warning" not in out
    metrics = json.loads(Path("long/metrics.json").read_text())
    assert "sides_warning" not in metrics and "SHORT_NOT_ALLOWED" not in metrics["rejections"]

    paper = ["--mode", "paper", "--clock", "simulated", "--speed", "max", "--max-bars", "2"]
    code, _, err = _cli(capsys, "run", "both.yaml", *paper, "--out", "paper", "-q")
    assert code == 0
    assert [line for line in err.splitlines() if not line.startswith("{")] == [located]
    metrics = json.loads(Path("paper/metrics.json").read_text())
    assert metrics["sides_warning"] == f"signal.kind: {SIDES}"


def test_sides_short_on_a_long_only_venue_is_refused_by_validate_and_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("short.yaml").write_text(KELLY.replace("sides: long", "sides: short"))
    _refused_alike(
        capsys,
        "short.yaml",
        "short.yaml:18:51 signal.sides: is short but the venue trades long-only "
        "(execution.allow_short: false): the strategy could never open a position; set "
        "execution.allow_short: true, or signal.sides: long",
    )
    # where the venue shorts, it is valid, and says nothing
    Path("shorts.yaml").write_text(
        KELLY.replace("sides: long", "sides: short").replace(
            "initial_cash: 10000}", "initial_cash: 10000, allow_short: true}"
        )
    )
    assert _cli(capsys, "validate", "shorts.yaml")[::2] == (0, "")
