"""The ``allocation:`` section: its allocator is a plugin component; its window,
constraints and schedule are validated, each refusal one line naming the key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from tradeloom.engine.wiring import build_pipeline
from tradeloom.errors import ConfigError
from tradeloom.plugins.protocols_allocation import Allocator, GroupCap, WeightConstraints
from tradeloom.schemas import load_strategy
from tradeloom.schemas.allocation import AllocationConstraints, weight_constraints

ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT",
           "ADA/USDT", "AVAX/USDT", "DOGE/USDT", "DOT/USDT", "LINK/USDT"]  # fmt: skip
GOOD = """\
allocation:
  kind: black_litterman
  objective: utility
  risk_aversion: 4
  window: 240
  constraints: {max_weight: 0.3, transaction_cost: 0.001, group_caps: {l1: 0.5}}
  rebalance: {calendar: weekly}
"""


def _strategy(tmp_path: Path, allocation: str) -> Path:
    text = (ROOT / "strategies" / "portfolio_top3.yaml").read_text()
    text = text.replace("risk:\n  sizing:", allocation + "\nrisk:\n  sizing:")
    text = text.replace(
        "    max_weight: 0.25\n",
        "    max_weight: 0.25\n    groups: {l1: [BTC/USDT, ETH/USDT, SOL/USDT]}\n"
        "    max_group_exposure: 0.5\n",
    )
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


def _line(path: Path, text: str) -> int:
    return path.read_text().splitlines().index(text) + 1


def test_a_valid_section_is_built_for_every_mode(tmp_path: Path) -> None:
    path = _strategy(tmp_path, GOOD)
    config, _ = load_strategy(path)
    assert config.allocation is not None and config.allocation.kind == "black_litterman"
    assert config.allocation_window == 240
    assert config.allocation_rebalance is not None
    assert config.allocation_rebalance.calendar == "weekly"
    assert isinstance(build_pipeline(config).allocator, Allocator)
    assert isinstance(build_pipeline(config, mode="paper", served=True).allocator, Allocator)


def test_without_the_section_nothing_changes(tmp_path: Path) -> None:
    config, _ = load_strategy(ROOT / "strategies" / "portfolio_top3.yaml")
    assert config.allocation is None and config.allocation_constraints is None
    assert build_pipeline(config).allocator is None


def test_what_cannot_be_met_is_refused_one_line_each(tmp_path: Path) -> None:
    path = _strategy(
        tmp_path,
        """\
allocation:
  kind: risk_parity
  covariance: sample
  window: 8
  constraints:
    side: long_short
    max_weight: 0.05
    group_caps: {l1: 0.4, defi: 0.2}
    bounds: {BTC/USDTT: {max: 0.3}}
  rebalance: {every: 24}
""",
    )
    with pytest.raises(ConfigError) as caught:
        load_strategy(path)
    lines = {
        "window": "  window: 8",
        "side": "    side: long_short",
        "max": "    max_weight: 0.05",
        "caps": "    group_caps: {l1: 0.4, defi: 0.2}",
        "bounds": "    bounds: {BTC/USDTT: {max: 0.3}}",
    }
    at = {key: _line(path, text) for key, text in lines.items()}
    listed = ", ".join(repr(s) for s in SYMBOLS)
    assert caught.value.lines() == [
        f"{path}:{at['window']}:11 allocation.window: a sample covariance of 10 symbols is "
        "singular with 8 bars: the window needs more than 10 (or covariance: ledoit_wolf)",
        f"{path}:{at['side']}:11 allocation.constraints.side: allocation kind risk_parity is "
        "long-only; long_short needs minimum_variance, mean_variance or black_litterman",
        f"{path}:{at['max']}:17 allocation.constraints.max_weight: the largest weights sum to "
        "0.5, below net_exposure 1: no weights can reach it",
        f"{path}:{at['caps']}:17 allocation.constraints.group_caps: allocation kind "
        "risk_parity cannot honour group caps (it solves no program over the weights); "
        "minimum_variance, mean_variance, maximum_diversification or black_litterman solve "
        "under them",
        f"{path}:{at['caps']}:17 allocation.constraints.group_caps: the caps and bounds let "
        "the weights reach 0.5 at most, below net_exposure 1",
        f"{path}:{at['caps']}:33 allocation.constraints.group_caps.defi: unknown group "
        "'defi'; the groups are l1",
        f"{path}:{at['bounds']}:25 allocation.constraints.bounds.BTC/USDTT: unknown symbol "
        f"'BTC/USDTT' (did you mean 'BTC/USDT'?); the data's symbols are {listed}",
    ]


@pytest.mark.parametrize(
    ("constraints", "message"),
    [
        ("{min_weight: -0.1}", "min_weight: long_only weights are >= 0, was -0.1; set side: "
         "long_short to sell short"),
        ("{gross_exposure: 2}", "gross_exposure applies to side: long_short (long_only: the net)"),
        ("{side: long_short, net_exposure: 1, gross_exposure: 0.5}",
         "gross_exposure 0.5 is below |net_exposure| 1"),
        ("{max_turnover: 0.2, transaction_cost: 0.001}",
         "max_turnover and transaction_cost: declare one of the two"),
        ("{min_weight: 0.2, max_weight: 0.1}", "min_weight 0.2 is above max_weight 0.1"),
        ("{net_exposure: 0}", "net_exposure: long_only weights sum to more than 0, was 0"),
    ],
)  # fmt: skip
def test_a_contradiction_in_the_keys_is_one_line(
    tmp_path: Path, constraints: str, message: str
) -> None:
    text = (
        GOOD.replace(
            "  constraints: {max_weight: 0.3, transaction_cost: 0.001, group_caps: {l1: 0.5}}",
            f"  constraints: {constraints}",
        )
        .replace("black_litterman", "minimum_variance")
        .replace("  objective: utility\n  risk_aversion: 4\n", "")
    )
    path = _strategy(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_strategy(path)
    line = _line(path, f"  constraints: {constraints}")
    assert caught.value.lines() == [f"{path}:{line}:16 allocation.constraints: {message}"]


def test_the_section_s_own_keys_are_required_and_checked(tmp_path: Path) -> None:
    path = _strategy(tmp_path, "allocation:\n  kind: hrp\n  windw: 100\n")
    with pytest.raises(ConfigError) as caught:
        load_strategy(path)
    at = _line(path, "allocation:") + 1
    assert caught.value.lines() == [
        f"{path}:{at}:3 allocation.rebalance: required key is missing",
        f"{path}:{at + 1}:3 allocation.windw: unknown key (did you mean 'window'?)",
    ]


def test_an_unknown_allocator_lists_the_installed_ones(tmp_path: Path) -> None:
    path = _strategy(
        tmp_path, "allocation:\n  kind: risk_parit\n  window: 100\n  rebalance: {every: 5}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_strategy(path)
    assert caught.value.lines() == [
        f"{path}:{_line(path, '  kind: risk_parit')}:9 allocation.kind: unknown allocation "
        "kind 'risk_parit' (did you mean 'risk_parity'?); installed kinds: black_litterman, "
        "equal_weight, hrp, inverse_volatility, maximum_diversification, mean_variance, "
        "minimum_variance, risk_parity"
    ]


def test_constraints_resolve_over_the_symbols() -> None:
    declared = AllocationConstraints.model_validate(
        {"side": "long_short", "net_exposure": 0.5, "gross_exposure": 1.5, "max_weight": 0.6,
         "bounds": {"ETH/USDT": {"min": 0.0}}, "group_caps": {"l1": 0.4}, "max_turnover": 0.3}
    )  # fmt: skip
    resolved = weight_constraints(
        declared, ["BTC/USDT", "ETH/USDT", "SOL/USDT"], {"l1": ["SOL/USDT", "XRP/USDT"]}
    )
    assert resolved == WeightConstraints(
        min_weight=(-1.0, 0.0, -1.0),
        max_weight=(0.6, 0.6, 0.6),
        net_exposure=0.5,
        gross_exposure=1.5,
        groups=(GroupCap("l1", (2,), 0.4),),
        max_turnover=0.3,
        names=("BTC/USDT", "ETH/USDT", "SOL/USDT"),
    )
    assert resolved.shorts and not weight_constraints(AllocationConstraints(), ["A"]).shorts
    long_only = weight_constraints(AllocationConstraints(net_exposure=0.8), ["A", "B"])
    assert (long_only.min_weight, long_only.max_weight) == ((0.0, 0.0), (0.8, 0.8))
    with pytest.raises(ValidationError):
        AllocationConstraints.model_validate({"sid": "long_only"})
    assert np.isclose(sum(long_only.max_weight), 1.6)


def test_signal_sides_bars_the_other_side_in_the_bounds() -> None:
    """With an allocation layer the weights are the positions: ``signal.sides`` narrows
    their bounds, so the allocator solves under it (it used to be ignored there)."""
    declared = AllocationConstraints.model_validate(
        {"side": "long_short", "net_exposure": 0.5, "max_weight": 0.6, "min_weight": -0.4,
         "bounds": {"B": {"min": 0.1}}}
    )  # fmt: skip
    long = weight_constraints(declared, ["A", "B"], sides="long")
    assert (long.min_weight, long.max_weight) == ((0.0, 0.1), (0.6, 0.6))
    assert not long.shorts
    short = weight_constraints(
        declared.model_copy(update={"net_exposure": -0.5}), ["A"], sides="short"
    )
    assert (short.min_weight, short.max_weight) == ((-0.4,), (0.0,))
    both = weight_constraints(declared, ["A", "B"])
    assert both.min_weight == (-0.4, 0.1)


@pytest.mark.parametrize(
    ("sides", "constraints", "message"),
    [
        ("short", "{max_weight: 0.3}",
         "is short but allocation.constraints.side is long_only: the allocator's weights "
         "are never below 0; set side: long_short with a net_exposure below 0, or "
         "signal.sides: long"),
        ("short", "{side: long_short, net_exposure: 0.5}",
         "is short but allocation.constraints.net_exposure is 0.5: weights of 0 or below "
         "cannot sum to it; set a net_exposure below 0, or signal.sides: both"),
        ("long", "{side: long_short, net_exposure: -0.5}",
         "is long but allocation.constraints.net_exposure is -0.5: weights of 0 or above "
         "cannot sum to it; set a net_exposure above 0, or signal.sides: both"),
    ],
)  # fmt: skip
def test_a_side_the_weights_cannot_keep_to_is_one_line_at_signal_sides(
    tmp_path: Path, sides: str, constraints: str, message: str
) -> None:
    path = _strategy(
        tmp_path,
        f"allocation:\n  kind: minimum_variance\n  window: 100\n"
        f"  constraints: {constraints}\n  rebalance: {{every: 5}}\n",
    )
    path.write_text(path.read_text().replace("  sides: long\n", f"  sides: {sides}\n"))
    with pytest.raises(ConfigError) as caught:
        load_strategy(path)
    line = _line(path, f"  sides: {sides}")
    assert caught.value.lines() == [f"{path}:{line}:10 signal.sides: {message}"]


def test_signal_sides_long_over_long_short_weights_validates(tmp_path: Path) -> None:
    path = _strategy(
        tmp_path,
        "allocation:\n  kind: minimum_variance\n  window: 100\n"
        "  constraints: {side: long_short, net_exposure: 0.8, min_weight: -0.3}\n"
        "  rebalance: {every: 5}\n",
    )
    config, _ = load_strategy(path)
    assert config.signal_sides == "long"


@pytest.mark.parametrize(
    ("kind", "constraints", "key", "message"),
    [
        ("hrp", "{group_caps: {l1: 0.5}}", "group_caps",
         "allocation kind hrp cannot honour group caps (it solves no program over the "
         "weights); minimum_variance, mean_variance, maximum_diversification or "
         "black_litterman solve under them"),
        ("risk_parity", "{max_turnover: 0.2}", "max_turnover",
         "allocation kind risk_parity cannot honour a turnover limit (it solves no program "
         "over the weights); minimum_variance, mean_variance, maximum_diversification or "
         "black_litterman solve under it"),
        ("minimum_variance", "{transaction_cost: 0.001}", "transaction_cost",
         "allocation kind minimum_variance maximises no expected return to charge a "
         "transaction cost against; mean_variance or black_litterman do (or limit the "
         "trading with max_turnover where the allocator honours it)"),
        ("equal_weight", "{transaction_cost: 0.001}", "transaction_cost",
         "allocation kind equal_weight maximises no expected return to charge a "
         "transaction cost against; mean_variance or black_litterman do (or limit the "
         "trading with max_turnover where the allocator honours it)"),
    ],
)  # fmt: skip
def test_a_constraint_the_allocator_cannot_honour_is_refused_at_its_key(
    tmp_path: Path, kind: str, constraints: str, key: str, message: str
) -> None:
    """HRP with group caps used to fail most rebalances of a run with validate silent."""
    path = _strategy(
        tmp_path,
        f"allocation:\n  kind: {kind}\n  window: 100\n  constraints:\n"
        f"    {key}: {constraints[len(key) + 3 : -1]}\n  rebalance: {{every: 5}}\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_strategy(path)
    line = _line(path, f"    {key}: {constraints[len(key) + 3 : -1]}")
    assert caught.value.lines() == [
        f"{path}:{line}:{len(key) + 7} allocation.constraints.{key}: {message}"
    ]


def test_the_allocators_that_solve_honour_every_constraint(tmp_path: Path) -> None:
    for kind in ("minimum_variance", "maximum_diversification"):
        path = _strategy(
            tmp_path,
            f"allocation:\n  kind: {kind}\n  window: 100\n"
            "  constraints: {group_caps: {l1: 0.5}, max_turnover: 0.3}\n"
            "  rebalance: {every: 5}\n",
        )
        load_strategy(path)
    load_strategy(_strategy(tmp_path, GOOD))  # black_litterman with caps and a cost


THIRD_PARTY = """
import numpy as np
from pydantic import Field
from tradeloom.plugin import AllocationResult, Component, Params, hookimpl


class TiltParams(Params):
    strength: float = Field(default=1.0, gt=0)


class Tilt:
    def __init__(self, params):
        self.strength = params.strength

    def allocate(self, returns, constraints, probabilities=None, horizon=0, previous=None):
        score = np.exp(self.strength * np.nan_to_num(probabilities, nan=0.5))
        return AllocationResult.ok(constraints.net_exposure * score / score.sum())


@hookimpl
def tradeloom_components():
    return [Component("allocation", "tilt", TiltParams, lambda params, ctx: Tilt(params))]
"""


def test_a_third_party_package_adds_an_allocator(tmp_path: Path) -> None:
    (tmp_path / "tilt_allocator.py").write_text(THIRD_PARTY)
    allocation = "allocation:\n  kind: tilt\n  strength: 2\n  window: 50\n  rebalance: {every: 4}\n"
    path = _strategy(tmp_path, allocation)
    path.write_text("plugins: [tilt_allocator]\n" + path.read_text())
    config, _ = load_strategy(path)
    allocator = build_pipeline(config).allocator
    assert isinstance(allocator, Allocator)
    constraints = WeightConstraints.long_only(2)
    result = allocator.allocate(np.zeros((50, 2)), constraints, np.array([1.0, 0.5]), 4)
    assert result.status == "ok" and result.weights is not None
    np.testing.assert_allclose(result.weights, [np.e / (np.e + 1), 1 / (np.e + 1)])
