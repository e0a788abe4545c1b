"""Prometheus metrics of a paper run: scraped over HTTP while it trades, and agreeing
with its journal; the example dashboard and alert rules name only metrics that exist;
a taken port is refused before any bar."""

from __future__ import annotations

import json
import re
import socket
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.builders import OMIT, strategy_text
from tests.live.live_emulated import STRATEGY, emulated_run, rows, tick_bars
from tradeloom.cli.main import main
from tradeloom.live.outputs.metrics import METRICS
from tradeloom.reporting.execution_quality import shortfall_bps

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "examples" / "grafana" / "tradeloom-dashboard.json"
RULES = ROOT / "examples" / "prometheus" / "alerts.yml"

METERED = STRATEGY.replace(
    "live:\n",
    """monitoring:
  - {kind: rolling_auc, window: 20, min_samples: 10}
  - {kind: calibration, window: 20, min_samples: 10}
  - {kind: feature_drift, window: 20, min_samples: 10}
live:
  metrics: {port: 0}
""",
)


def scrape(port: int) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """GET /metrics; return every sample's value by sample name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        assert reply.status == 200
        text = reply.read().decode()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[key] = sample.value
    return samples


def one(
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]], name: str, **labels: str
) -> float:
    return samples[name][tuple(sorted(labels.items()))]


def by_label(samples: dict, name: str, label: str) -> dict[str, float]:
    return {dict(key)[label]: value for key, value in samples.get(name, {}).items() if value}


def _check_against_journal(samples: dict, journal: Path) -> None:
    assert one(samples, "tradeloom_bars_processed_total") == len(rows(journal, "live_bar"))
    assert one(samples, "tradeloom_orders_total", status="submitted") == len(rows(journal, "order"))
    assert one(samples, "tradeloom_fills_total") == len(rows(journal, "fill"))
    assert one(samples, "tradeloom_slippage_bps_count") == len(rows(journal, "fill"))
    codes: dict[str, float] = {}
    for row in rows(journal, "rejection"):
        codes[row["code"]] = codes.get(row["code"], 0) + 1
    assert by_label(samples, "tradeloom_risk_rejections_total", "code") == codes
    stages = by_label(samples, "tradeloom_tick_stage_seconds_count", "stage")
    bars = len(rows(journal, "live_bar"))
    for stage in ("fetch", "features", "predict", "decide", "journal"):
        assert stages[stage] >= bars, stage
    assert one(samples, "tradeloom_journal_write_seconds_count") == bars
    # execution quality: each fill once, by its journaled liquidity, against its order
    fills = rows(journal, "fill")
    liquidity: dict[str, float] = {}
    for row in fills:
        name = row["liquidity"] or "unknown"
        liquidity[name] = liquidity.get(name, 0) + 1
    assert by_label(samples, "tradeloom_execution_fills_total", "liquidity") == liquidity
    orders = {row["id"]: row for row in rows(journal, "order")}
    costs = [
        shortfall_bps(
            orders[f["order_id"]]["side"], f["price"], orders[f["order_id"]]["reference_price"]
        )
        for f in fills
    ]
    labels = {"venue": "simulated", "order_type": "market"}
    assert one(samples, "tradeloom_execution_shortfall_bps_count", **labels) == len(fills)
    buckets = samples["tradeloom_execution_shortfall_bps_bucket"]
    for key, count in buckets.items():  # no _sum: a histogram of negative values has none
        bound = float(dict(key)["le"])
        assert count == sum(1 for cost in costs if cost <= bound), bound
    assert one(samples, "tradeloom_execution_fill_seconds_count", **labels) == len(fills)


@pytest.fixture
def metered_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple]:
    with (
        emulated_run(tmp_path, monkeypatch, text=METERED, history=180) as run,
        ExitStack() as stack,
    ):
        runner = run.runner(tmp_path / "run", mode="paper", refresh=False)
        runner.attach_observers(stack)
        runner.start()
        try:
            yield run, runner, tmp_path / "run" / "journal.sqlite"
        finally:
            runner.stop("test over")


def test_a_paper_run_scraped_while_it_trades_agrees_with_its_journal(metered_run: tuple) -> None:
    run, runner, journal = metered_run
    assert runner.metrics_port

    tick_bars(run, runner, 40)
    first = scrape(runner.metrics_port)
    tick_bars(run, runner, 30)
    second = scrape(runner.metrics_port)

    _check_against_journal(second, journal)
    assert one(first, "tradeloom_bars_processed_total") == 40
    assert one(second, "tradeloom_bars_processed_total") == 70
    assert one(second, "tradeloom_orders_total", status="submitted") > 0  # it traded
    assert one(second, "tradeloom_trading_state", tradeloom_trading_state="ACTIVE") == 1
    assert one(second, "tradeloom_trading_state", tradeloom_trading_state="HALTED") == 0
    book = runner.session_or_fail.engine.portfolio
    assert one(second, "tradeloom_position", symbol="BTC/USDT") == pytest.approx(book.position)
    close = runner.session_or_fail.history.bar(len(runner.session_or_fail.history) - 1).close
    assert one(second, "tradeloom_equity") == pytest.approx(book.equity(close))
    assert 0 <= one(second, "tradeloom_drawdown_ratio") < 1
    assert one(second, "tradeloom_data_staleness_seconds") == 0  # the last bar just closed
    recorder = runner.recorder_or_fail
    for name, monitor, key in (
        ("tradeloom_model_auc", "rolling_auc", "auc"),
        ("tradeloom_model_brier", "calibration", "brier"),
        ("tradeloom_feature_psi_max", "feature_drift", "psi_max"),
    ):
        expected = recorder.monitor_values[monitor][-1][1][key]
        assert one(second, name, monitor=monitor) == pytest.approx(expected), name
    info = dict(next(iter(second["tradeloom_run_info"])))
    assert info["strategy"] == "live_rf" and info["mode"] == "paper" and info["run_id"] == "run"


def test_the_kill_switch_shows_as_the_halted_state(metered_run: tuple) -> None:
    run, runner, _ = metered_run
    tick_bars(run, runner, 2)
    runner.session_or_fail.kill("test kill")

    runner.tick()
    samples = scrape(runner.metrics_port)

    assert one(samples, "tradeloom_trading_state", tradeloom_trading_state="HALTED") == 1
    assert one(samples, "tradeloom_trading_state", tradeloom_trading_state="ACTIVE") == 0


def _expressions(value: object) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("expr", "query") and isinstance(item, str):
                yield item
            else:
                yield from _expressions(item)
    elif isinstance(value, list):
        for item in value:
            yield from _expressions(item)


def _names(expressions: list[str]) -> set[str]:
    return {name for e in expressions for name in re.findall(r"\btradeloom_[a-z_]+\b", e)}


_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "info": ("_info",),
    "gauge": ("",),
    "stateset": ("",),
}


def _exported_names(metered: tuple) -> set[str]:
    """The series names a scrape declares (a labelled metric with no series yet too)."""
    run, runner, _ = metered
    tick_bars(run, runner, 3)
    with urllib.request.urlopen(f"http://127.0.0.1:{runner.metrics_port}/metrics") as reply:
        families = [
            family
            for family in text_string_to_metric_families(reply.read().decode())
            if not family.name.endswith("_created")  # prometheus_client's start times
        ]
    names = {family.name + suffix for family in families for suffix in _SUFFIXES[family.type]}
    declared = {spec.name + ("_info" if spec.kind == "info" else "") for spec in METRICS}
    assert declared == {family.name for family in families}
    return names


def test_the_dashboard_names_only_metrics_a_run_exports(metered_run: tuple) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = list(_expressions(dashboard))
    exported = _exported_names(metered_run)

    assert dashboard["title"] and dashboard["panels"] and len(expressions) >= 10
    assert _names(expressions) <= exported, _names(expressions) - exported
    # and every metric of the list has a panel
    shown = _names(expressions)
    for spec in METRICS:
        assert any(name.startswith(spec.name) for name in shown), spec.name


def test_the_alert_rules_name_only_metrics_a_run_exports(metered_run: tuple) -> None:
    rules = yaml.safe_load(RULES.read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    names = {rule["alert"] for rule in alerts}
    exported = _exported_names(metered_run)

    assert {"TradeloomHalted", "TradeloomStaleData", "TradeloomDrawdown"} <= names
    assert any("exchange_errors" in rule["expr"] for rule in alerts)  # the error rate
    assert _names([rule["expr"] for rule in alerts]) <= exported


def test_a_taken_port_is_refused_in_one_line_before_any_bar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        strategy = tmp_path / "s.yaml"
        strategy.write_text(SIMULATED.replace("PORT", str(port)))

        code = main(
            [
                "run",
                str(strategy),
                "--mode",
                "paper",
                "--clock",
                "simulated",
                "--speed",
                "max",
                "--max-bars",
                "3",
                "--out",
                "run",
            ]
        )

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [
        f"{strategy}:37:11 live.metrics.port: port {port} on 127.0.0.1 is taken by another "
        "program; choose a free port (0: any free one)"
    ]
    assert not (tmp_path / "run" / "journal.sqlite").exists()


SIMULATED = strategy_text(
    name="metered",
    seed=OMIT,
    signal={"min_interval": OMIT},
    execution={"fee_bps": OMIT},
    live={"metrics": {"port": "PORT"}},
)


def test_exchange_errors_are_counted_by_ccxt_class(metered_run: tuple) -> None:
    from tradeloom.testing import ServerError

    run, runner, _ = metered_run
    run.emulator.faults.next("GET /api/v3/klines", ServerError(503), times=2)

    tick_bars(run, runner, 1)  # the read is retried past both failures
    samples = scrape(runner.metrics_port)

    assert by_label(samples, "tradeloom_exchange_errors_total", "error") == {
        "ExchangeNotAvailable": 2
    }
    assert one(samples, "tradeloom_bars_processed_total") == 1
