"""Fake components and plugins, so the schema tests do not depend on the built-ins."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import pluggy
import pytest
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from tradeloom.plugins.component import Component, Params
from tradeloom.plugins.manager import PluginImportError, Plugins
from tradeloom.plugins.registry import PluginInfo, Registry


class Synthetic(Params):
    symbol: str = "BTC/USDT"
    timeframe: Literal["1m", "1h", "1d"] = "1h"
    bars: int = Field(default=1000, ge=1)
    start: datetime | None = None


class Csv(Params):
    path: str


class LogReturn(Params):
    period: int = Field(default=1, ge=1)


class Rsi(Params):
    window: int = Field(default=14, ge=1)


class Lags(Params):
    of: list[str] = Field(min_length=1)
    lags: list[int] = Field(default=[1])


class Label(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    horizon: int = Field(default=1, ge=1)


class WalkForward(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    train_window: int = Field(default=1000, ge=1)
    retrain_every: int = Field(default=100, ge=1)

    @model_validator(mode="after")
    def _retrain_within_window(self) -> WalkForward:
        if self.retrain_every > self.train_window:
            raise ValueError(
                f"retrain_every ({self.retrain_every}) must be <= train_window "
                f"({self.train_window})"
            )
        return self


class Sklearn(Params):
    estimator: str
    n_estimators: int = Field(default=100, ge=1)
    params: dict[str, Any] = Field(default_factory=dict)
    label: Label = Label()
    walk_forward: WalkForward = WalkForward()


class Threshold(Params):
    threshold: float = Field(gt=0, lt=1)
    min_interval: int = Field(default=0, ge=0)


class Kelly(Params):
    fraction: float = Field(default=0.25, gt=0, le=1)
    max_position: float = Field(default=0.1, gt=0, le=1)


class DrawdownHalt(Params):
    max_drawdown: float = Field(gt=0, le=1)


class Exposure(Params):
    limit: float = Field(ge=0)


class Simulated(Params):
    initial_cash: float = Field(default=100_000, gt=0)
    fee_bps: float = Field(default=10, ge=0)
    allow_short: bool = False


class Exchange(Params):
    exchange: str
    api_key: SecretStr
    api_secret: SecretStr | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class RollingAuc(Params):
    window: int = Field(default=500, ge=1)
    warning_below: float = 0.52
    critical_below: float = 0.48

    @model_validator(mode="after")
    def _ordered(self) -> RollingAuc:
        if self.critical_below > self.warning_below:
            raise ValueError("critical_below must be <= warning_below")
        return self


def _factory(params: Any, context: Any) -> Any:
    return params


FAKE_COMPONENTS: tuple[Component, ...] = (
    Component("data", "synthetic", Synthetic, _factory, "random-walk bars"),
    Component("data", "csv", Csv, _factory),
    Component("features", "log_return", LogReturn, _factory),
    Component("features", "rsi", Rsi, _factory),
    Component("features", "lags", Lags, _factory),
    Component("model", "sklearn", Sklearn, _factory),
    Component("signal", "threshold", Threshold, _factory),
    Component("allocation", "equal", Params, _factory),
    Component("sizing", "kelly", Kelly, _factory),
    Component("risk", "drawdown_halt", DrawdownHalt, _factory),
    Component("risk", "exposure", Exposure, _factory),
    Component("execution", "simulated", Simulated, _factory),
    Component("execution", "exchange", Exchange, _factory),
    Component("monitoring", "rolling_auc", RollingAuc, _factory),
)

EXTRA_COMPONENTS: tuple[Component, ...] = (
    Component("features", "ema", Rsi, _factory, "exponential moving average"),
)
"""What the fake plugin module ``tests.extra_features`` adds when a strategy lists it."""

VALID = """\
name: btc_rf
seed: 7
data:
  kind: synthetic
  bars: 500
features:
  - kind: log_return
    period: 1
  - kind: rsi
    window: 14
model:
  kind: sklearn
  estimator: sklearn.ensemble.RandomForestClassifier
  params:
    max_depth: 5
  label:
    horizon: 4
signal:
  kind: threshold
  threshold: 0.3
risk:
  sizing:
    kind: kelly
    fraction: 0.25
  rules:
    - kind: drawdown_halt
      max_drawdown: 0.15
  max_holding_bars: 48
execution:
  kind: simulated
monitoring:
  - kind: rolling_auc
    window: 200
"""
"""A valid strategy for the fake components; line numbers are relied on by the tests."""


def make_plugins(*extra: Component) -> Plugins:
    """Return plugins holding the fake components (and ``extra``)."""
    infos = [PluginInfo("fake", "module tests.fake", FAKE_COMPONENTS)]
    if extra:
        infos.append(PluginInfo("tests.extra_features", "module tests.extra_features", extra))
    return Plugins(pluggy.PluginManager("tradeloom"), Registry(infos))


class FakeLoader:
    """Stands in for `load_plugins`: knows one importable and one broken module."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, modules: Sequence[str]) -> Plugins:
        self.calls.append(list(modules))
        extra: list[Component] = []
        for index, module in enumerate(modules):
            if module == "tests.extra_features":
                extra.extend(EXTRA_COMPONENTS)
            else:
                raise PluginImportError(
                    index, module, f"ModuleNotFoundError: No module named '{module}'"
                )
        return make_plugins(*extra)


@pytest.fixture
def fake_loader() -> FakeLoader:
    return FakeLoader()


@pytest.fixture
def strategy_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], str]:
    """Write a strategy file as ``s.yaml`` in the working directory; return its name."""
    monkeypatch.chdir(tmp_path)

    def write(text: str) -> str:
        (tmp_path / "s.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
        return "s.yaml"

    return write


@pytest.fixture
def valid() -> str:
    """Return the text of a valid strategy file (see `VALID`)."""
    return VALID


@pytest.fixture
def plugins() -> Plugins:
    """Return plugins holding the fake components."""
    return make_plugins()
