"""A router over two venues, splitting, one venue down for some bars: the backtest and a
paper run journal the same orders, routes, fills per venue, rejections and states.

The paper run is the real `LiveRunner` on a simulated clock (`paper_replay.paper_run`:
warm-up, one tick per bar, killed and restarted from its journal once); both trade
`Router.modelled_venue`. Venue ``thin`` is the cheaper (5 bps) with 3,000 USDT, ``deep``
the dearer (12 bps) with 7,000: a buy of half the equity splits over both, and while
``thin`` is in its outage every order goes to ``deep`` alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from tradeloom.backtest.run import run_strategy
from tradeloom.engine.wiring import build_pipeline
from tradeloom.journal import RUN_KINDS, read_rows
from tradeloom.schemas import load_strategy

from tests.engine.paper_replay import PAPER_ONLY, paper_run  # isort: skip

START = pd.Timestamp("2024-01-01T00:00:00Z")
BARS, WARM = 160, 40
OUTAGE = (START + pd.Timedelta(hours=70), START + pd.Timedelta(hours=110))
BACKTEST_ONLY = frozenset({"data_loaded", "order_expired"})


def _write(folder: Path) -> Path:
    rng = np.random.default_rng(7)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, BARS)))
    open_ = np.r_[close[0], close[:-1]] * np.exp(rng.normal(0.0, 0.004, BARS))
    probability = rng.random(BARS)
    probability[:WARM] = np.nan  # the history a paper run starts from is not traded
    pd.DataFrame(
        {
            "timestamp": [(START + pd.Timedelta(hours=i)).isoformat() for i in range(BARS)],
            "open": open_,
            "high": np.maximum(open_, close) * 1.01,
            "low": np.minimum(open_, close) * 0.99,
            "close": close,
            "volume": rng.uniform(50.0, 200.0, BARS),
            "p_up": probability,
        }
    ).to_csv(folder / "bars.csv", index=False, float_format="%.17g")
    doc: dict[str, Any] = {
        "name": "routed",
        "data": {"kind": "csv", "path": "bars.csv"},
        "features": [{"kind": "log_return", "period": 1}],
        "model": {"kind": "precomputed", "column": "p_up", "horizon": 2},
        "signal": {"kind": "threshold", "threshold": 0.2, "min_interval": 2},
        "risk": {"sizing": {"kind": "fixed_fraction", "fraction": 0.5}},
        "execution": {
            "kind": "router",
            "venues": [
                {
                    "name": "thin",
                    "kind": "simulated",
                    "initial_cash": 3000,
                    "fee_bps": 5,
                    "slippage_bps": 1,
                    "outages": [{"start": OUTAGE[0].isoformat(), "end": OUTAGE[1].isoformat()}],
                },
                {
                    "name": "deep",
                    "kind": "simulated",
                    "initial_cash": 7000,
                    "fee_bps": 12,
                    "slippage_bps": 2,
                },
            ],
        },
    }
    path = folder / "strategy.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def _number(value: Any) -> Any:
    # a backtest's order ids are {strategy}-{hash}-{n:06d}[-rK], a paper run's
    # {strategy}-{run key}-{n:06d}[-rK]: the same order has the same n (and K)
    if not isinstance(value, str):
        return value
    parts = value.split("-")
    return "-".join(parts[2:]) if len(parts) >= 3 else value


def _rows(journal: Path, left_out: frozenset[str]) -> list[tuple[Any, ...]]:
    return [
        (
            r.bar,
            r.timestamp,
            r.symbol,
            r.kind,
            r.correlation_id,
            {
                k: _number(v) if k in ("id", "order_id", "parent_id", "trade_id") else v
                for k, v in r.values.items()
            },
        )
        for r in read_rows(journal)
        if r.kind not in RUN_KINDS and r.kind not in left_out
    ]


def test_a_two_venue_router_with_an_outage_journals_alike_in_backtest_and_paper(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path)
    config, plugins = load_strategy(path, [])
    backtest = run_strategy(
        build_pipeline(config),
        plugins,
        out=tmp_path / "backtest",
        driver="per_bar",  # type: ignore[arg-type]
    )
    paper = paper_run(path, tmp_path / "paper", warm=WARM, restart_at=100)
    theirs = _rows(backtest.run_dir / "journal.sqlite", BACKTEST_ONLY)
    mine = _rows(paper, PAPER_ONLY)
    for i, (a, b) in enumerate(zip(mine, theirs, strict=False)):
        assert a == b, f"journal row {i}"
    assert len(mine) == len(theirs)
    assert len(list(read_rows(paper, ["restarted"]))) == 1
    # what the journals agree on is what the test is about: splits, both venues, an outage
    decisions = [r for r in theirs if r[3] == "route_decision"]
    by_order: dict[str, set[str]] = {}
    for row in decisions:
        by_order.setdefault(row[5]["parent_id"], set()).add(row[5]["venue"])
    assert any(len(venues) == 2 for venues in by_order.values()), "no order was split"
    outage = [r[5]["venue"] for r in decisions if OUTAGE[0] <= pd.Timestamp(r[1]) < OUTAGE[1]]
    assert outage and set(outage) == {"deep"}, "no order during the outage, or one at thin"
    health = [(r[5]["venue"], r[5]["state"]) for r in theirs if r[3] == "venue_health"]
    assert health == [("thin", "down"), ("thin", "up")]
    venue_fills = [r for r in theirs if r[3] == "venue_fill"]
    fills = [r for r in theirs if r[3] == "fill"]
    assert len(venue_fills) == len(fills) > 0
    # the backtest's batch driver journals the same rows as its per-bar driver
    batch = run_strategy(build_pipeline(config), plugins, out=tmp_path / "batch", driver="auto")
    assert _rows(batch.run_dir / "journal.sqlite", frozenset()) == _rows(
        backtest.run_dir / "journal.sqlite", frozenset()
    )
