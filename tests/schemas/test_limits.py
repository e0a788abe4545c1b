"""The pre-trade limits' keys (``live.limits``): all optional, unknown keys refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tradeloom.schemas.limits import PreTradeLimits


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
