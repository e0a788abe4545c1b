"""The ``router`` execution component: its keys, their errors, and its backtest model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tradeloom.journal import RouteModel, read_events
from tradeloom.plugins.component import BuildContext, ParamError
from tradeloom.plugins.execution.router import Router, RouterParams, build
from tradeloom.runner.cli import main

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "router_two_venues.yaml"
CTX = BuildContext(strategy_name="t", strategy_dir=ROOT, seed=0)


def router(*venues: dict[str, object], **keys: object) -> Router:
    return build(RouterParams.model_validate({"venues": list(venues), **keys}), CTX)


def sim(name: str, **keys: object) -> dict[str, object]:
    return {"name": name, "kind": "simulated", **keys}


# --- the backtest's model ------------------------------------------------------------------


def test_market_orders_are_modelled_on_the_lowest_taker_fee_plus_slippage() -> None:
    r = router(
        sim("a", fee_bps=4, slippage_bps=2, maker_fee_bps=2, initial_cash=60_000),
        sim("b", fee_bps=2, slippage_bps=6, maker_fee_bps=0, initial_cash=40_000),
    )
    spec = r.kernel_spec()
    assert (r.market_venue, r.limit_venue) == ("a", "b")
    assert (spec.fee_rate, spec.slippage, spec.maker_fee_rate) == (0.0004, 0.0002, 0.0)
    assert spec.initial_cash == 100_000
    assert r.route_model() == RouteModel(
        market_venue="a",
        limit_venue="b",
        taker_fee=0.0004,
        slippage=0.0002,
        maker_fee=0.0,
        initial_cash=100_000.0,
    )


def test_equal_costs_model_the_first_venue_in_file_order() -> None:
    r = router(sim("x", fee_bps=3), sim("y", fee_bps=3))
    assert (r.market_venue, r.limit_venue) == ("x", "x")
    r = router(sim("y", fee_bps=3), sim("x", fee_bps=3))
    assert (r.market_venue, r.limit_venue) == ("y", "y")


def test_the_routers_order_keys_reach_the_core() -> None:
    r = router(sim("a"), fill="close", max_volume_fraction=0.2, orders={"type": "limit"})
    spec = r.kernel_spec()
    assert (spec.fill_at_close, spec.max_volume_fraction) == (True, 0.2)
    assert (
        spec.orders.order_type
        != RouterParams.model_validate({"venues": [sim("a")]}).orders.kernel().order_type
    )


def test_a_venue_named_twice_is_refused_where_the_second_is() -> None:
    with pytest.raises(ParamError) as caught:
        router(sim("a"), sim("b"), sim("a"))
    assert (caught.value.key, caught.value.message) == (
        "venues.2.name",
        "venue 'a' is listed twice (first as venues.0); give each venue its own name",
    )


def test_a_backtest_journals_the_venues_it_models_the_router_with(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code = main(
        [
            "run",
            str(EXAMPLE),
            "--out",
            str(out),
            "--set",
            "data.bars=600",
            "--set",
            "model.walk_forward.train_window=200",
            "--set",
            "model.walk_forward.retrain_every=200",
        ]
    )
    assert code == 0
    [row] = list(read_events(out / "journal.sqlite", ["route_model"]))
    assert isinstance(row, RouteModel)
    assert (row.market_venue, row.limit_venue, row.initial_cash) == ("cheap", "deep", 100_000.0)


# --- bad input, through the CLI ---------------------------------------------------------------


def _bad_file(tmp_path: Path, execution: dict[str, object]) -> Path:
    doc = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    doc["execution"] = execution
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def _line_of(path: Path, text: str, nth: int = 1) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    found = [i + 1 for i, line in enumerate(lines) if text in line]
    return found[nth - 1]


def test_bad_router_keys_exit_2_with_one_located_line_each(tmp_path: Path) -> None:
    path = _bad_file(
        tmp_path,
        {
            "kind": "router",
            "venues": [
                {"name": "a", "kind": "simulated", "fee_bps": 20_000, "slipage_bps": 1},
                {"name": "b", "kind": "simulatd"},
                {"name": "c", "kind": "simulated", "fill": "close"},
            ],
        },
    )
    proc = subprocess.run(
        [sys.executable, "-m", "tradeloom.runner.cli", "validate", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    fee = _line_of(path, "fee_bps: 20000")
    typo = _line_of(path, "slipage_bps")
    kind = _line_of(path, "kind: simulatd")
    fill = _line_of(path, "fill: close")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"{path}:{fee}:14 execution.venues.0.fee_bps: must be < 10000, was 20000",
        f"{path}:{typo}:5 execution.venues.0.slipage_bps: unknown key (did you mean "
        "'slippage_bps'?)",
        f"{path}:{kind}:11 execution.venues.1.kind: expected one of 'simulated', 'ccxt', "
        "was 'simulatd'",
        f"{path}:{fill}:11 execution.venues.2.fill: fill is a key of the router "
        "(execution.fill), the same for every venue, was 'close'",
    ]


@pytest.mark.parametrize(
    ("venues", "where", "message"),
    [
        ([], "venues: []", "execution.venues: must have at least 1 item, was empty"),
        (
            [{"name": "a", "kind": "simulated"}, {"name": "a", "kind": "simulated"}],
            "name: a",
            "execution.venues.1.name: venue 'a' is listed twice (first as venues.0); give "
            "each venue its own name",
        ),
        (
            [{"name": "A b", "kind": "simulated"}],
            "name: A b",
            "execution.venues.0.name: must match ^[a-z][a-z0-9_]{0,23}$, was 'A b'",
        ),
    ],
)
def test_a_router_without_venues_or_with_a_name_twice_exits_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    venues: list[dict[str, object]],
    where: str,
    message: str,
) -> None:
    path = _bad_file(tmp_path, {"kind": "router", "venues": venues})
    code = main(["validate", str(path)])
    err = capsys.readouterr().err
    line = _line_of(path, where, nth=2 if "twice" in message else 1)
    assert code == 2
    [shown] = err.splitlines()
    assert shown.startswith(f"{path}:{line}:")
    assert shown.endswith(f" {message}")


def test_live_mode_needs_every_venue_to_be_an_exchange_account(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["validate", str(EXAMPLE), "--mode", "live"])
    lines = capsys.readouterr().err.splitlines()
    assert code == 2
    assert [line.split(" ", 1)[1] for line in lines if "execution" in line] == [
        "execution.venues.0.kind: --mode live sends every venue's orders to its exchange: "
        "venue 'cheap' needs kind ccxt, was simulated",
        "execution.venues.1.kind: --mode live sends every venue's orders to its exchange: "
        "venue 'deep' needs kind ccxt, was simulated",
    ]
