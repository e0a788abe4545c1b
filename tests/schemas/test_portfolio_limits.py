"""The portfolio keys (``signal.top_k``, ``risk.portfolio``): bounds, cross-field rules, group
symbols checked against the data's, and what reaches the compiled core's parameters."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tradeloom.core import layout as L
from tradeloom.engine.core_spec import core_spec
from tradeloom.engine.wiring import build_pipeline
from tradeloom.errors import ConfigError
from tradeloom.schemas import load_strategy
from tradeloom.schemas.portfolio import CorrelationLimit, PortfolioRisk

ROOT = Path(__file__).resolve().parents[2]
PORTFOLIO = """\
  portfolio:
    max_open_positions: 3
    max_gross_exposure: 1.5
    max_net_exposure: 0.8
    max_weight: 0.25
    groups:
      majors: [BTC/USDT]
    max_group_exposure: 0.4
    correlation: {max: 0.8, window: 48}
"""


def _strategy(tmp_path: Path, portfolio: str = PORTFOLIO, top_k: str = "  top_k: 2\n") -> Path:
    text = (ROOT / "strategies" / "btc_rf.yaml").read_text()
    text = text.replace("  max_holding_bars: 48\n", "  max_holding_bars: 48\n" + portfolio)
    text = text.replace("  min_interval: 4\n", "  min_interval: 4\n" + top_k)
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


def _line(path: Path, text: str) -> int:
    return path.read_text().splitlines().index(text) + 1


def test_every_key_is_optional_and_bounded() -> None:
    assert PortfolioRisk() == PortfolioRisk.model_validate({})
    with pytest.raises(ValidationError, match="max_open_positions\n  Input should be greater"):
        PortfolioRisk(max_open_positions=0)
    with pytest.raises(ValidationError, match="max\n  Input should be less than 1"):
        CorrelationLimit(max=1.0, window=10)
    with pytest.raises(
        ValidationError, match="window\n  Input should be greater than or equal to 3"
    ):
        CorrelationLimit(max=0.5, window=2)


def test_groups_and_their_cap_come_together_and_a_symbol_is_in_one_group() -> None:
    with pytest.raises(ValidationError, match="groups need max_group_exposure"):
        PortfolioRisk(groups={"a": ["X"]})
    with pytest.raises(ValidationError, match=r"max_group_exposure needs groups"):
        PortfolioRisk(max_group_exposure=0.5)
    with pytest.raises(
        ValidationError,
        match="symbol 'X' is in group 'b' and in 'a'; a symbol may be in one group only",
    ):
        PortfolioRisk(groups={"a": ["X"], "b": ["Y", "X"]}, max_group_exposure=0.5)
    risk = PortfolioRisk(groups={"a": ["X", "Z"], "b": ["Y"]}, max_group_exposure=0.5)
    assert risk.group_of(["Y", "X", "W", "Z"]) == (1, 0, -1, 0)


def test_the_keys_reach_the_core(tmp_path: Path) -> None:
    config, _ = load_strategy(_strategy(tmp_path))
    assert config.signal_top_k == 2
    assert config.risk_portfolio.correlation == CorrelationLimit(max=0.8, window=48)
    spec = core_spec(build_pipeline(config), 3600, periods_per_year=0.0)
    prm = spec.vector()
    assert (prm[L.P_PORTFOLIO], prm[L.P_TOP_K], prm[L.P_MAX_OPEN]) == (1.0, 2.0, 3.0)
    assert (prm[L.P_MAX_GROSS], prm[L.P_MAX_NET], prm[L.P_MAX_WEIGHT]) == (1.5, 0.8, 0.25)
    assert (prm[L.P_MAX_GROUP], prm[L.P_MAX_CORRELATION]) == (0.4, 0.8)
    assert prm[L.P_CORRELATION_WINDOW] == 48
    assert spec.portfolio.groups == (0,)  # BTC/USDT, the data's symbol, is in majors


def test_without_the_keys_the_core_runs_as_before(tmp_path: Path) -> None:
    config, _ = load_strategy(_strategy(tmp_path, portfolio="", top_k=""))
    prm = core_spec(build_pipeline(config), 3600, periods_per_year=0.0).vector()
    assert prm[L.P_PORTFOLIO] == 0.0 and prm[L.P_CORRELATION_WINDOW] == 0.0


def test_bad_values_are_located(tmp_path: Path) -> None:
    bad = PORTFOLIO.replace("max_weight: 0.25", "max_weight: -1").replace(
        "[BTC/USDT]", "[BTC/USDT, ETH/USDT, BTC/USTD]"
    )
    path = _strategy(tmp_path, bad, "  top_k: 0\n")
    with pytest.raises(ConfigError) as caught:
        load_strategy(path)
    weight = _line(path, "    max_weight: -1")
    top_k = _line(path, "  top_k: 0")
    assert sorted(caught.value.lines()) == sorted(
        [
            f"{path}:{top_k}:10 signal.top_k: must be >= 1, was 0",
            f"{path}:{weight}:17 risk.portfolio.max_weight: must be > 0, was -1",
        ]
    )
    # group symbols are checked once the top level is valid
    path = _strategy(tmp_path, PORTFOLIO.replace("[BTC/USDT]", "[BTC/USDT, BTC/USTD]"))
    with pytest.raises(ConfigError) as caught:
        load_strategy(path)
    group = _line(path, "      majors: [BTC/USDT, BTC/USTD]")
    assert caught.value.lines() == [
        f"{path}:{group}:26 risk.portfolio.groups.majors.1: unknown symbol 'BTC/USTD' "
        "(did you mean 'BTC/USDT'?); the data's symbols are 'BTC/USDT'"
    ]
