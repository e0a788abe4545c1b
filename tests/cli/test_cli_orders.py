"""``execution.orders`` through the ``tradeloom`` command.

A limit order of a YAML strategy rests, fills at its limit with the maker's fee and
is journaled with its kind and price, in a ``tradeloom run`` over a CSV market this
test writes; a sliced order's children name their parent; settings that cannot hold
are refused by ``tradeloom validate`` with one located line each and exit 2.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.builders import OMIT, PRECOMPUTED, REPORTED, strategy_text, write_bars
from tradeloom.cli.main import main
from tradeloom.journal import read_rows

STRATEGY = strategy_text(
    PRECOMPUTED,
    REPORTED,  # its report.html tells the resting orders
    name="resting",
    signal={"threshold": 0.3, "min_interval": OMIT},
    execution={
        "kind": "simulated",
        "initial_cash": 10000,
        "fill": "next_open",
        "fee_bps": 10,
        "maker_fee_bps": 2,
        "orders": {
            "type": "limit",
            "limit": {"offset_bps": 100, "time_in_force": "GTC", "fallback_after_bars": 3},
            "queue": "conservative",
        },
    },
)
"""A buy limit 1% under the close; the tests rely on its line numbers."""


def _bars(folder: Path) -> None:
    # bar 0 says up: a buy limit at 99; bar 1 only touches 99, bar 2 trades through
    nan = math.nan
    write_bars(
        folder, [100.0] * 4, [0.9, nan, nan, nan], open_=[100.0] * 4, high=[101.0] * 4,
        low=[100.0, 99.0, 98.0, 99.5], volume=1e6,
    )  # fmt: skip


def test_a_limit_order_rests_and_fills_at_its_limit_with_the_makers_fee(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    _bars(tmp_path)
    (tmp_path / "s.yaml").write_text(STRATEGY, encoding="utf-8")

    assert main(["run", "s.yaml", "--out", "run"]) == 0

    journal = tmp_path / "run" / "journal.sqlite"
    quantity = 5_000.0 / (100.0 * 1.001)  # sized with the taker fee, the most it may pay
    (order,) = read_rows(journal, ["order"])
    assert order.values == {
        **order.values,
        "kind": "limit",
        "limit_price": 99.0,
        "reference_price": 100.0,
        "parent_id": None,
        "quantity": pytest.approx(quantity, rel=1e-12),
    }
    assert order.values["stop_price"] is None  # NaN: NULL in the journal
    (fill,) = read_rows(journal, ["fill"])
    assert (fill.bar, fill.values["price"], fill.values["slippage"]) == (2, 99.0, 0.0)
    assert fill.values["fee"] == pytest.approx(quantity * 99.0 * 0.0002, rel=1e-12)
    assert fill.values["order_id"] == order.values["id"]
    assert fill.values["liquidity"] == "maker"  # the core's resting fill, journaled as one
    # execution quality: bought at 99 against the decision's 100, 2 bars after it
    block = json.loads((tmp_path / "run" / "metrics.json").read_text())["execution_quality"]
    (group,) = block["groups"]
    assert (group["venue"], group["order_type"], group["maker_share"]) == ("simulated", "limit", 1)
    assert group["shortfall_bps"] == pytest.approx(-100.0)
    assert group["fee_bps"] == pytest.approx(2.0 * 99.0 / 100.0)
    assert group["bars_to_first_fill"] == {"median": 2.0, "p90": 2.0}
    assert group["seconds_to_first_fill"] == {"median": 7200.0, "p90": 7200.0}
    report = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    table = report.split("<section id='execution-quality'>")[1].split("</section>")[0]
    assert "<td>simulated</td><td>limit</td><td>1</td><td>100.0%</td><td>-100.00</td>" in table
    assert capsys.readouterr().err == ""


def test_twap_children_name_their_parent_and_sum_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _bars(tmp_path)
    text = STRATEGY.replace(
        "    type: limit\n", "    type: market\n    slicing: {kind: twap, children: 3}\n"
    )
    (tmp_path / "s.yaml").write_text(text, encoding="utf-8")

    assert main(["run", "s.yaml", "--out", "run"]) == 0

    journal = tmp_path / "run" / "journal.sqlite"
    (parent,) = read_rows(journal, ["sliced_order"])
    assert (parent.values["slicing"], parent.values["children"]) == ("twap", 3)
    children = [r.values for r in read_rows(journal, ["order"])]
    assert [c["parent_id"] for c in children] == [parent.values["id"]] * 3
    assert len({c["id"] for c in children}) == 3
    assert sum(c["quantity"] for c in children) == pytest.approx(
        parent.values["quantity"], rel=1e-12
    )
    fills = list(read_rows(journal, ["fill"]))
    assert [f.bar for f in fills] == [1, 2, 3]


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        (
            "      time_in_force: GTC\n",
            "      time_in_force: GTD\n",
            "s.yaml:28:22 execution.orders.limit.time_in_force: expected 'GTC', 'IOC' or "
            "'FOK', was 'GTD'",
        ),
        (
            "      fallback_after_bars: 3\n",
            "      fallbak_after_bars: 3\n",
            "s.yaml:29:7 execution.orders.limit.fallbak_after_bars: unknown key (did you "
            "mean 'fallback_after_bars'?)",
        ),
        (
            "      time_in_force: GTC\n",
            "      time_in_force: IOC\n",
            "s.yaml:27:7 execution.orders.limit: time_in_force IOC never rests: a fallback "
            "or expiry needs GTC",
        ),
        (
            "      offset_bps: 100\n",
            "      offset_bps: 100\n      expire_after_bars: 2\n",
            "s.yaml:27:7 execution.orders.limit: give a fallback "
            "(fallback_after_bars/seconds) or expire_after_bars, not both",
        ),
        (
            "    queue: conservative\n",
            "    queue: conservative\n    slicing: {kind: participation, children: 3}\n",
            "s.yaml:31:14 execution.orders.slicing: participation needs max_volume_fraction "
            "(0.1 = 10%)",
        ),
        (
            "  maker_fee_bps: 2\n",
            "  maker_fee_bps: -20\n",
            "s.yaml:23:18 execution.maker_fee_bps: must be >= -10, was -20",
        ),
    ],
)
def test_order_settings_that_cannot_hold_are_refused_at_validate(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    old: str,
    new: str,
    line: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    _bars(tmp_path)
    assert STRATEGY.count(old) == 1
    (tmp_path / "s.yaml").write_text(STRATEGY.replace(old, new), encoding="utf-8")
    assert main(["validate", "s.yaml"]) == 2
    assert capsys.readouterr() == ("", line + "\n")
