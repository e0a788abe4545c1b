"""The scaling keys (``risk.scaling``): bounds, cross-field rules located at their key,
the settings they cannot go with, and what reaches the compiled core's parameters."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradeloom.cli.main import main
from tradeloom.core import layout as L
from tradeloom.engine.core_spec import core_spec
from tradeloom.engine.wiring import build_pipeline
from tradeloom.errors import ConfigError
from tradeloom.schemas import load_strategy

ROOT = Path(__file__).resolve().parents[2]
SCALING = """\
  scaling:
    take_profit_levels:
      - {gain: 0.02, close: 0.5}
      - {gain: 0.04, close: 0.25}
    scale_in: {kind: dca, step: 0.01, max_adds: 3, max_position: 0.4}
"""


def _strategy(tmp_path: Path, scaling: str = SCALING, extra: str = "") -> Path:
    text = (ROOT / "strategies" / "btc_rf.yaml").read_text()
    text = text.replace("  max_holding_bars: 48\n", "  max_holding_bars: 48\n" + extra + scaling)
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


def _line(path: Path, text: str) -> int:
    return path.read_text().splitlines().index(text) + 1


def _problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_strategy(path)
    return caught.value.lines()


def test_the_keys_reach_the_core(tmp_path: Path) -> None:
    config, _ = load_strategy(_strategy(tmp_path))
    prm = core_spec(build_pipeline(config), 3600, periods_per_year=0.0).vector()
    assert (prm[L.P_SC_KIND], prm[L.P_SC_STEP], prm[L.P_SC_MAX_ADDS]) == (L.SCALE_DCA, 0.01, 3)
    assert prm[L.P_SC_CAP] == 0.4
    assert prm[L.P_TP_LEVELS] == 2
    assert list(prm[L.P_TP_GAIN : L.P_TP_GAIN + 2]) == [0.02, 0.04]
    assert list(prm[L.P_TP_CLOSE : L.P_TP_CLOSE + 2]) == [0.5, 0.25]


def test_without_the_keys_nothing_scales(tmp_path: Path) -> None:
    config, _ = load_strategy(_strategy(tmp_path, scaling=""))
    prm = core_spec(build_pipeline(config), 3600, periods_per_year=0.0).vector()
    assert (prm[L.P_SC_KIND], prm[L.P_TP_LEVELS]) == (L.SCALE_NONE, 0.0)


def test_bad_values_are_located(tmp_path: Path) -> None:
    bad = """\
  scaling:
    take_profit_levels:
      - {gain: 0.02, close: 0.5}
    scale_in: {kind: martingale, step: 0, max_adds: 0, max_position: 0.4, every: 2}
"""
    path = _strategy(tmp_path, bad)
    add = _line(
        path, "    scale_in: {kind: martingale, step: 0, max_adds: 0, max_position: 0.4, every: 2}"
    )
    assert _problems(path) == [
        f"{path}:{add}:22 risk.scaling.scale_in.kind: expected 'pyramid' or 'dca', "
        "was 'martingale'",
        f"{path}:{add}:40 risk.scaling.scale_in.step: must be > 0, was 0",
        f"{path}:{add}:53 risk.scaling.scale_in.max_adds: must be >= 1, was 0",
        f"{path}:{add}:75 risk.scaling.scale_in.every: unknown key; valid keys: kind, step, "
        "max_adds, max_position",
    ]


def test_the_levels_rise_and_close_at_most_the_whole_position(tmp_path: Path) -> None:
    path = _strategy(tmp_path, SCALING.replace("gain: 0.04", "gain: 0.01"))
    levels = _line(path, "    take_profit_levels:")
    assert _problems(path) == [
        f"{path}:{levels}:5 risk.scaling: take_profit_levels: gains must rise level by level, "
        "level 2 has gain 0.01 after 0.02"
    ]

    path = _strategy(tmp_path, SCALING.replace("close: 0.25", "close: 0.75"))
    assert _problems(path) == [
        f"{path}:{levels}:5 risk.scaling: take_profit_levels: the closes add up to at most "
        "1 (the whole position), were 1.25"
    ]


def test_settings_scaling_cannot_go_with_are_refused_at_their_key(tmp_path: Path) -> None:
    path = _strategy(tmp_path, extra="  take_profit: 0.03\n  portfolio: {max_weight: 0.5}\n")
    gain = _line(path, "      - {gain: 0.04, close: 0.25}")
    add = _line(path, "    scale_in: {kind: dca, step: 0.01, max_adds: 3, max_position: 0.4}")
    assert _problems(path) == [
        f"{path}:{gain}:16 risk.scaling.take_profit_levels.1.gain: must be below "
        "risk.take_profit (0.03), which closes the rest; was 0.04",
        f"{path}:{add}:15 risk.scaling.scale_in: not available with risk.portfolio or "
        "signal.top_k: adds are neither ranked nor checked against the portfolio limits",
    ]
    text = (ROOT / "strategies" / "btc_rf.yaml").read_text()
    text = text.replace("  max_holding_bars: 48\n", "  max_holding_bars: 48\n" + SCALING)
    text = text.replace(
        "  allow_short: false\n", "  allow_short: false\n  orders: {stops: bar_close}\n"
    )
    path.write_text(text)
    levels = _line(path, "    take_profit_levels:")
    assert _problems(path) == [
        f"{path}:{levels + 1}:7 risk.scaling.take_profit_levels: not available with "
        "execution.orders.stops: bar_close: each level is a stop order resting at the venue "
        "(use stops: exchange)"
    ]


def test_the_cli_exits_2_with_the_located_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _strategy(tmp_path, SCALING.replace("max_adds: 3", "max_adds: 101"))
    add = _line(path, "    scale_in: {kind: dca, step: 0.01, max_adds: 101, max_position: 0.4}")
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[0] == (
        f"{path}:{add}:49 risk.scaling.scale_in.max_adds: must be <= 100, was 101"
    )


def test_adds_are_refused_with_signal_top_k(tmp_path: Path) -> None:
    path = _strategy(tmp_path)
    path.write_text(
        path.read_text().replace("  min_interval: 4\n", "  min_interval: 4\n  top_k: 1\n")
    )
    add = _line(path, "    scale_in: {kind: dca, step: 0.01, max_adds: 3, max_position: 0.4}")
    assert _problems(path) == [
        f"{path}:{add}:15 risk.scaling.scale_in: not available with risk.portfolio or "
        "signal.top_k: adds are neither ranked nor checked against the portfolio limits"
    ]
