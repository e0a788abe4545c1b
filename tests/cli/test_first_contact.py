"""What a new user meets first: refusals before any bar runs, plugins beside the strategy,
a summary that hides nothing."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import yaml

from tradeloom.cli.main import main
from tradeloom.reporting.summary import format_summary

ROOT = Path(__file__).resolve().parents[2]


def short_btc(tmp_path: Path, **changes: object) -> Path:
    doc = yaml.safe_load((ROOT / "strategies" / "btc_rf.yaml").read_text())
    doc["data"]["bars"] = 2000
    doc["model"]["params"]["n_jobs"] = 1
    for key, value in changes.items():
        section, _, name = key.rpartition(".")
        target = doc
        for part in section.split("."):
            target = target[part]
        target[name] = value
    path = tmp_path / "btc.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_a_model_that_can_never_train_is_refused(tmp_path: Path, capsys) -> None:
    path = short_btc(tmp_path)  # train_window 3000 on 2,000 bars
    lines = path.read_text().splitlines()
    row, text = next((i, t) for i, t in enumerate(lines, 1) if "train_window:" in t)
    where = f"{path}:{row}:{text.index(':') + 3}"
    line = (
        f"{where} model.walk_forward.train_window: the model can never train: its first "
        "fold predicts bar 3,004 at the earliest (min_train_rows 3000 + label.horizon 4 + "
        "embargo 0), and the data has 2,000 bars; lower train_window (or min_train_rows) or "
        "use more bars"
    )
    for command in ("validate", "run"):
        assert main([command, str(path)]) == 2
        assert capsys.readouterr() == ("", f"{line}\n")
    assert not (tmp_path / "runs").exists()
    enough = main(["validate", str(path), "--set", "model.walk_forward.train_window=1000"])
    assert enough == 0


def test_a_volume_feature_on_data_without_volume_is_refused(tmp_path: Path, capsys) -> None:
    rows = ["timestamp,open,high,low,close"]
    rows += [f"2024-01-01T{h:02d}:00:00Z,1,2,0.5,1.5" for h in range(24)]
    (tmp_path / "bars.csv").write_text("\n".join(rows) + "\n")
    strategy = tmp_path / "s.yaml"
    strategy.write_text(
        textwrap.dedent(
            """\
            name: novol
            data: {kind: csv, path: bars.csv}
            features:
              - {kind: log_return, period: 1}
              - {kind: volume_zscore, window: 5}
            model: {kind: precomputed, column: close}
            signal: {kind: threshold, threshold: 0.5}
            risk: {sizing: {kind: fixed_fraction, fraction: 0.5}}
            execution: {kind: simulated, initial_cash: 1000}
            """
        )
    )
    assert main(["validate", str(strategy)]) == 2
    assert capsys.readouterr().err == (
        f"{strategy}:5:5 features.1: volume_zscore reads volume, and the data has no volume "
        "column; remove this feature or use data with volume\n"
    )


def test_a_plugin_module_beside_the_strategy_file_imports(tmp_path: Path, capsys) -> None:
    """No PYTHONPATH: the strategy file's folder is where ``plugins:`` modules are found."""
    (tmp_path / "my_local_plugin_13.py").write_text(
        (ROOT / "tests" / "fixtures" / "plugins" / "recording_observer.py").read_text()
    )
    path = short_btc(tmp_path, **{"model.walk_forward.train_window": 500})
    doc = yaml.safe_load(path.read_text())
    doc["plugins"] = ["my_local_plugin_13"]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err


def test_the_summary_hides_nothing_and_does_not_contradict_itself() -> None:
    metrics = {
        "strategy": "s",
        "bars": 10,
        "trades": 2,
        "final_equity": 1.0,
        "run_dir": "/r",
        "open_position": -0.5,
        "open_position_entry_price": 101.5,
        "open_position_entry_time": "2024-03-01T04:00:00+00:00",
        "open_position_pnl": -3.25,
        "refusals": {
            "rejected": {"SHORT_NOT_ALLOWED": {"ENTRY": 3}, "HALTED": {"ENTRY": 12}},
            "cut": {"INSUFFICIENT_CASH": {"ENTRY": 2}},
            "cancelled": {"NO_ROUTE": {"EXIT_SIGNAL": 5, "EXIT_STOP_LOSS": 1}},
        },
        "exits": {"EXIT_SIGNAL": 2},
        "health": "HEALTHY",
        "health_worst": "CRITICAL",
        "halt": "HEALTH_HALT at 2024-03-01 05:00",
    }
    rows = dict(line.strip().split("  ", 1) for line in format_summary(metrics).splitlines()[1:])
    rows = {k.strip(): v.strip() for k, v in rows.items()}
    assert rows["open at the end"] == "short 0.5 since 2024-03-01 04:00 at 101.50, unrealized -3.25"
    assert rows["exits by reason"] == "2 EXIT_SIGNAL"
    assert rows["refusals"] == "23 (15 rejected, 2 cut, 6 cancelled) by code and purpose"
    assert rows["HALTED"] == "12 rejected: 12 ENTRY"
    assert rows["SHORT_NOT_ALLOWED"] == "3 rejected: 3 ENTRY"
    assert rows["INSUFFICIENT_CASH"] == "2 cut: 2 ENTRY"
    assert rows["NO_ROUTE"] == "6 cancelled: 5 EXIT_SIGNAL, 1 EXIT_STOP_LOSS"
    assert rows["WARNING"] == (
        "6 exits refused (1 EXIT_STOP_LOSS, 5 EXIT_SIGNAL; 6 NO_ROUTE): each left open the "
        "position it was to close"
    )
    assert rows["health"] == "HEALTHY at the end, CRITICAL at worst"
    assert rows["halt"] == "HEALTH_HALT at 2024-03-01 05:00 (no new positions after it)"
    flat = format_summary({**metrics, "open_position": 0.0, "refusals": {}})
    assert "open at the end           nothing (flat)" in flat
    assert "refusals                  none" in flat
    assert "WARNING" not in flat
    # a metrics.json written before the table: its rejections and cuts, purpose unknown
    older = {k: v for k, v in metrics.items() if k != "refusals"}
    older.update(rejections={"HALTED": 12}, cut_orders={"INSUFFICIENT_CASH": 2})
    lines = format_summary(older)
    assert "\n    HALTED                  12 rejected: 12 UNKNOWN\n" in lines
    assert "\n    INSUFFICIENT_CASH       2 cut: 2 UNKNOWN\n" in lines


def test_counts_are_integers_in_metrics_json(tmp_path: Path, capsys) -> None:
    path = short_btc(tmp_path, **{"model.walk_forward.train_window": 500})
    assert main(["run", str(path), "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    counts = ["bars", "trades", "long_trades", "signals", "orders", "fills", "predictions"]
    counts += ["model_trainings", "max_drawdown_duration_bars"]
    assert all(type(m[k]) is int for k in counts), {k: m[k] for k in counts}
    assert type(m["monitoring"]["rolling_auc"]["health_changes"]) is int
    assert all(type(v) is int for v in m["rejections"].values())
    assert all(type(v) is int for v in m["exits"].values())
    text = (tmp_path / "run" / "fills.csv").read_text()
    assert "0000000" not in text  # shortest round-tripping floats, not %.17g
