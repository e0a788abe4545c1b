"""The pre-trade limits' keys (``risk.limits``): all optional, unknown keys refused; the old
``live.limits`` says where they went."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tradeloom.errors import ConfigError
from tradeloom.schemas import load_strategy
from tradeloom.schemas.limits import PreTradeLimits

ROOT = Path(__file__).resolve().parents[2]


def test_limits_are_all_optional_and_unknown_keys_are_refused() -> None:
    assert PreTradeLimits().model_dump() == {
        "max_order_notional": None,
        "max_position_quantity": None,
        "max_orders_per_minute": None,
        "price_collar": None,
        "daily_loss_limit": None,
    }
    with pytest.raises(ValidationError, match="max_position\n  Extra inputs are not permitted"):
        PreTradeLimits.model_validate({"max_position": 1.0})
    with pytest.raises(ValidationError, match="price_collar\n  Input should be less than 1"):
        PreTradeLimits(price_collar=1.5)


def test_limits_under_live_say_they_moved_to_risk(tmp_path: Path) -> None:
    text = (ROOT / "strategies" / "btc_rf.yaml").read_text()
    path = tmp_path / "s.yaml"
    path.write_text(text + "\nlive:\n  limits:\n    max_order_notional: 5000\n")
    line = path.read_text().splitlines().index("    max_order_notional: 5000") + 1
    with pytest.raises(ConfigError) as caught:
        load_strategy(path)
    assert caught.value.lines() == [
        f"{path}:{line}:5 live.limits: the pre-trade limits moved to risk.limits, where "
        "backtests apply them too (a backtest refuses what its paper run refuses): move this "
        "section there"
    ]


def test_risk_limits_reach_the_strategy(tmp_path: Path) -> None:
    text = (ROOT / "strategies" / "btc_rf.yaml").read_text()
    path = tmp_path / "s.yaml"
    path.write_text(
        text.replace(
            "  max_holding_bars: 48\n", "  max_holding_bars: 48\n  limits: {price_collar: 0.1}\n"
        )
    )
    config, _ = load_strategy(path)
    assert config.risk_limits == PreTradeLimits(price_collar=0.1)
