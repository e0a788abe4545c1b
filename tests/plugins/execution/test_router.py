"""The ``router`` execution component: its keys, their errors, and its backtest model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from tests import forkserver
from tradeloom.cli.main import main
from tradeloom.journal import FillEvent, RouteDecision, VenueFill, read_events
from tradeloom.plugins.component import BuildContext, ParamError
from tradeloom.plugins.execution.router import Router, RouterParams, build

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "router_two_venues.yaml"
CTX = BuildContext(strategy_name="t", strategy_dir=ROOT, seed=0)


def router(*venues: dict[str, object], **keys: object) -> Router:
    return build(RouterParams.model_validate({"venues": list(venues), **keys}), CTX)


def sim(name: str, **keys: object) -> dict[str, object]:
    return {"name": name, "kind": "simulated", **keys}


# --- the backtest's model ------------------------------------------------------------------


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


def test_a_backtest_journals_each_childs_venue_and_its_fills_at_that_venues_fee(
    tmp_path: Path,
) -> None:
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
    journal = out / "journal.sqlite"
    decisions = list(read_events(journal, ["route_decision"]))
    venue_fills = list(read_events(journal, ["venue_fill"]))
    fills = list(read_events(journal, ["fill"]))
    assert decisions and len(venue_fills) == len(fills)
    venue_of = {d.order_id: d.venue for d in decisions if isinstance(d, RouteDecision)}
    fee_bps = {"cheap": 4.0, "deep": 2.0}
    for venue_fill, fill in zip(venue_fills, fills, strict=True):
        assert isinstance(venue_fill, VenueFill) and isinstance(fill, FillEvent)
        venue = venue_of[venue_fill.order_id]
        assert venue_fill.order_id.startswith(fill.order_id + "-r")
        assert (venue_fill.quantity, venue_fill.fee) == (fill.quantity, fill.fee)
        assert fill.fee == pytest.approx(fill.quantity * fill.price * fee_bps[venue] / 1e4)
    assert not list(read_events(journal, ["route_model"]))
    metrics = json.loads((out / "metrics.json").read_text())
    [cheap] = [v for v in metrics["venues"] if v["venue"] == "cheap"]
    assert cheap["fills"] == sum(1 for f in venue_fills if venue_of[f.order_id] == "cheap")


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
    proc = forkserver.run(
        [sys.executable, "-m", "tradeloom.cli.main", "validate", str(path)],
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


def test_limit_orders_an_outage_out_of_order_and_outages_live_exit_2_located(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def limit_orders_with(end: str) -> Path:
        outage = {"start": "2024-01-02T00:00:00Z", "end": end}
        venue = {"name": "a", "kind": "simulated", "outages": [outage]}
        execution = {"kind": "router", "orders": {"type": "limit"}, "venues": [venue]}
        return _bad_file(tmp_path, execution)

    path = limit_orders_with("2024-01-01T00:00:00Z")
    assert main(["validate", str(path)]) == 2
    [shown] = capsys.readouterr().err.splitlines()
    line = _line_of(path, "start: '2024-01-02")
    assert shown.startswith(f"{path}:{line}:")
    assert shown.endswith(
        " execution.venues.0.outages.0: end must be after start, was "
        "2024-01-01T00:00:00+00:00 <= 2024-01-02T00:00:00+00:00"
    )
    path = limit_orders_with("2024-01-03T00:00:00Z")
    assert main(["validate", str(path)]) == 2
    [shown] = capsys.readouterr().err.splitlines()
    assert shown == (
        f"{path}:{_line_of(path, 'type: limit')}:11 execution.orders.type: a router is "
        "modelled per venue for market orders in backtests and paper, was limit; use "
        "market, or run the limit orders live"
    )
    assert main(["validate", str(path), "--mode", "live"]) == 2
    shown = capsys.readouterr().err
    assert "execution.venues.0.outages: --mode live: a venue is down when its requests " in shown
    assert "execution.orders.type" not in shown  # live routes limit orders


def test_a_router_refuses_batched_orders() -> None:
    with pytest.raises(ParamError) as caught:
        router(sim("a"), sim("b"), orders={"batch": True})
    assert (caught.value.key, caught.value.message) == (
        "orders.batch",
        "a router sends each order's parts to its venues one by one; remove orders.batch "
        "(kind: ccxt or a universe's simulated execution batches)",
    )
