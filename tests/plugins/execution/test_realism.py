"""``execution.realism``: profiles (built-in, a file, inline) validated before anything
runs, each mistake one line naming the file, line and key (exit 2); the fee tier applied;
the profile shown in the run summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradeloom.cli.main import main
from tradeloom.core.kernels.latency import ARRIVE_NEXT_OPEN, LAT_FIXED, LAT_LOGNORMAL
from tradeloom.plugins.execution.simulated import SimulatedVenueParams, with_realism
from tradeloom.plugins.protocols_orders.realism import BUILT_IN, RealismProfile, load_profile

STRATEGY = """\
name: realism
seed: 3
data: {kind: synthetic, symbol: BTC/USDT, timeframe: 1h, bars: 400}
features:
  - {kind: log_return, period: 1}
model:
  kind: sklearn
  estimator: sklearn.linear_model.LogisticRegression
  label: {horizon: 2}
  walk_forward: {train_window: 200, retrain_every: 100}
signal: {kind: threshold, threshold: 0.02}
risk:
  sizing: {kind: fixed_fraction, fraction: 0.2}
execution:
  kind: simulated
EXECUTION"""


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def _write(folder: Path, execution: str) -> Path:
    path = folder / "realism.yaml"
    path.write_text(STRATEGY.replace("EXECUTION", execution))
    return path


def test_every_built_in_profile_loads_and_names_itself() -> None:
    assert BUILT_IN == ("binance_vip0", "colocated")
    for name in BUILT_IN:
        profile, source = load_profile(name, Path("."))
        assert profile.name == name and source == f"built-in profile {name}"
    vip0, _ = load_profile("binance_vip0", Path("."))
    assert vip0.latency.kernel().kind == LAT_LOGNORMAL


def test_a_bare_number_is_a_fixed_latency_and_the_bar_rule_reaches_the_kernel() -> None:
    profile = RealismProfile.model_validate(
        {"latency": {"send": 250, "cancel": 40, "seed": 7, "on_bars": "next_open"}}
    )
    kernel = profile.latency.kernel()
    assert (kernel.kind, kernel.a, kernel.cancel_kind, kernel.cancel_a) == (
        LAT_FIXED,
        250.0,
        LAT_FIXED,
        40.0,
    )
    assert (kernel.seed, kernel.rule) == (7, ARRIVE_NEXT_OPEN)
    assert profile.describe() == (
        "inline: latency send 250 ms, cancel 40 ms, report 0 ms; seed 7; bars: next_open"
    )


def test_a_bad_profile_file_is_one_line_naming_its_file_line_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "bad.yaml").write_text(
        "name: bad\nlatency:\n  send: {kind: uniform, low_ms: 50, high_ms: 10}\n  sedd: 1\n"
    )
    _write(tmp_path, "  realism: profiles/bad.yaml\n")
    said = (
        "profiles/bad.yaml:3:3 latency.send: high_ms (10) must be >= low_ms (50)\n"
        "profiles/bad.yaml:4:3 latency.sedd: unknown key\n"
    )
    assert _cli(capsys, "validate", "realism.yaml") == (2, "", said)
    assert _cli(capsys, "run", "realism.yaml", "--out", "run") == (2, "", said)


def test_a_profile_that_is_neither_built_in_nor_a_file_is_refused_at_its_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "  realism: binance_vip9\n")
    said = (
        "realism.yaml:16:12 execution.realism: no profile 'binance_vip9': expected a built-in "
        "profile (binance_vip0, colocated) or a .yaml file relative to the strategy file\n"
    )
    assert _cli(capsys, "validate", "realism.yaml") == (2, "", said)


def test_a_profile_with_fees_refuses_fees_set_in_the_file_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "  fee_bps: 5\n  realism: binance_vip0\n")
    said = (
        "realism.yaml:16:12 execution.fee_bps: the realism profile binance_vip0 sets the fees; "
        "remove execution.fee_bps or the profile's fees\n"
    )
    assert _cli(capsys, "validate", "realism.yaml") == (2, "", said)


def test_a_latency_needs_fills_at_the_next_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "  fill: close\n  realism: colocated\n")
    code, _, err = _cli(capsys, "validate", "realism.yaml")
    assert code == 2
    assert err == (
        "realism.yaml:17:12 execution.realism: the profile colocated declares a send latency, "
        "which needs fill: next_open (an order decided at a close cannot fill at that close)\n"
    )


def test_the_profile_fee_tier_replaces_the_venues_fees() -> None:
    params = SimulatedVenueParams.model_validate({"realism": "binance_vip0"})
    applied, realism = with_realism(params, Path("."))
    assert (applied.fee_bps, applied.maker_fee_bps) == (10.0, 10.0)
    assert realism is not None and realism[1] == "built-in profile binance_vip0"


def test_the_run_summary_shows_the_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "  realism: colocated\n")
    code, out, _ = _cli(capsys, "run", "realism.yaml", "--out", "run")
    assert code == 0
    shown = "colocated: latency send 1 ms, cancel 1 ms, report 1 ms; seed 0; bars: bar_open"
    assert [r.split()[0] for r in out.splitlines() if r.endswith(shown)] == ["realism"]
    report = (tmp_path / "run" / "report.html").read_text()
    assert "<h2>Execution realism</h2>" in report
