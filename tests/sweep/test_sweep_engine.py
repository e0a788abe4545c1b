"""The sweep engine: batched variants equal their own runs, stages are shared and cached,
an interrupted sweep resumes, a NaN objective ranks last."""

from __future__ import annotations

import contextlib
import json
import math
import os
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tradeloom.cli.main import main
from tradeloom.journal import read_events
from tradeloom.sweep.batch import METRIC_KEYS
from tradeloom.sweep.engine import deal, run_sweep
from tradeloom.sweep.leaderboard import rank
from tradeloom.sweep.results import WRITER_FILE, Part, ResultStore
from tradeloom.sweep.space import Axis, Space
from tradeloom.sweep.stage_cache import StageCache
from tradeloom.sweep.stages import STAGE_RUNS
from tradeloom.sweep.tasks import execute
from tradeloom.sweep.variants import StrategySource, check_variants

STRATEGY = Path(__file__).resolve().parent / "small_strategy.yaml"
GRID = [
    "--grid", "signal.threshold=0.02,0.06",
    "--grid", "risk.sizing.fraction=0.25,1.0",
    "--grid", "risk.stop_loss=0.01,0.2",
]  # fmt: skip


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sweep") / "s"
    assert main(["sweep", str(STRATEGY), *GRID, "--out", str(out), "--partitions", "4"]) == 0
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


@pytest.mark.parametrize("row", [0, 5, 7])
def test_a_batched_variant_equals_tradeloom_run_of_it(
    swept: Path, tmp_path: Path, row: int
) -> None:
    results = pd.read_parquet(swept / "results.parquet")
    assert list(results["variant"]) == list(range(8))
    chosen = results.iloc[row]
    overrides = json.loads(chosen["overrides"])
    run = tmp_path / "run"
    argv = ["run", str(STRATEGY), "--out", str(run)]
    for text in overrides:
        argv += ["--set", text]
    assert main(argv) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    for key in METRIC_KEYS:
        mine = chosen[key]
        if key == "rejections":
            mine = json.loads(mine)
        if isinstance(mine, np.generic):
            mine = mine.item()
        theirs = metrics[key]
        if mine is None or (isinstance(mine, float) and math.isnan(mine)):
            assert theirs is None or math.isnan(theirs), key
        else:
            assert _same(mine, theirs), (key, mine, theirs)
    assert metrics["trades"] > 0  # the comparison covers trades, not an idle strategy


def test_a_variant_replays_from_its_row(swept: Path, tmp_path: Path) -> None:
    results = pd.read_parquet(swept / "results.parquet")
    run = tmp_path / "replay"
    assert main(["run", str(STRATEGY), "--variant", f"{swept}:3", "--out", str(run)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["final_equity"] == results.iloc[3]["final_equity"]
    by_key = tmp_path / "by-key"
    key = results.iloc[3]["key"]
    assert main(["run", str(STRATEGY), "--variant", f"{swept}:{key}", "--out", str(by_key)]) == 0
    assert (
        json.loads((by_key / "metrics.json").read_text())["final_equity"] == metrics["final_equity"]
    )


def _row_metrics_equal(chosen: pd.Series, metrics: dict[str, Any]) -> None:
    for key in METRIC_KEYS:
        mine = chosen[key]
        if key == "rejections":
            mine = json.loads(mine)
        if isinstance(mine, np.generic):
            mine = mine.item()
        theirs = metrics[key]
        if mine is None or (isinstance(mine, float) and math.isnan(mine)):
            assert theirs is None or math.isnan(theirs), key
        else:
            assert _same(mine, theirs), (key, mine, theirs)


def test_a_variant_of_a_sweep_with_its_own_set_reproduces_its_row(tmp_path: Path) -> None:
    """``--variant`` applies the sweep's own ``--set`` (sweep.json's overrides) before the
    row's axes, reproduces every figure of the row, and records the sweep and row."""
    out = tmp_path / "s"
    argv = ["sweep", str(STRATEGY), "--set", "data.bars=2000"]
    argv += ["--grid", "signal.threshold=0.02,0.06", "--out", str(out)]
    assert main(argv) == 0
    results = pd.read_parquet(out / "results.parquet")
    run = tmp_path / "replay"
    assert main(["run", str(STRATEGY), "--variant", f"{out}:1", "--out", str(run)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["bars"] == 2000
    _row_metrics_equal(results.iloc[1], metrics)
    assert metrics["trades"] > 0
    key = str(results.iloc[1]["key"])
    assert metrics["variant"] == {"sweep": str(out.resolve()), "row": 1, "key": key}


def test_the_sweep_directory_holds_every_output(swept: Path) -> None:
    results = pd.read_parquet(swept / "results.parquet")
    for column in (
        "key",
        "param.signal.threshold",
        "sharpe",
        "rank",
        "dsr",
        "hash.model",
        "seconds",
    ):
        assert column in results.columns
    returns = np.load(swept / "returns.npy")
    assert returns.shape == (1500, 8)
    overfitting = json.loads((swept / "overfitting.json").read_text())
    assert overfitting["deflated_sharpe"]["n_trials"] == 8
    assert overfitting["pbo"]["n_combinations"] == 6
    assert (swept / "sweep.html").stat().st_size > 10_000
    assert not (swept / "runs").exists()  # no --keep-top: no run directories


def _variants(cache_root: Path, out: Path, thresholds: tuple[float, ...]) -> tuple[Any, ...]:
    source = StrategySource(STRATEGY)
    axes = (Axis("signal.threshold", thresholds, "--grid t"),)
    checked = check_variants(source, axes, list(Space(axes).grid()))
    store = ResultStore(out, {"test": list(thresholds)})
    return source, axes, checked, store, StageCache(cache_root)


def test_a_second_sweep_reads_the_features_and_the_model_from_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    source, axes, checked, store, stages = _variants(cache, tmp_path / "a", (0.02, 0.04))
    before = dict(STAGE_RUNS)
    first = run_sweep(source, axes, checked, store, cache=stages)
    assert first.stage_runs == {"features": 1, "model": 1}
    assert STAGE_RUNS["model"] == before.get("model", 0) + 1
    assert len(list((cache / "model").glob("*.npz"))) == 1
    source, axes, checked, store, stages = _variants(cache, tmp_path / "b", (0.03, 0.05))
    second = run_sweep(source, axes, checked, store, cache=stages)
    assert second.stage_runs == {}  # nothing computed: read from the cache
    assert STAGE_RUNS["model"] == before.get("model", 0) + 1
    assert second.ran == 2


def test_a_corrupt_cache_entry_is_computed_again(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    source, axes, checked, store, stages = _variants(cache, tmp_path / "a", (0.02,))
    run_sweep(source, axes, checked, store, cache=stages)
    for path in (cache / "inputs").glob("*.npz"):
        data = bytearray(path.read_bytes())
        data[-10] ^= 0xFF
        path.write_bytes(bytes(data))
    source, axes, checked, store, stages = _variants(cache, tmp_path / "b", (0.02,))
    again = run_sweep(source, axes, checked, store, cache=stages)
    assert again.stage_runs == {}  # the inputs are rebuilt from the model's cached entry
    rows_a = ResultStore(tmp_path / "a", {"test": [0.02]}).rows
    rows_b = ResultStore(tmp_path / "b", {"test": [0.02]}).rows
    assert [r["final_equity"] for r in rows_a.values()] == [
        r["final_equity"] for r in rows_b.values()
    ]


class _Interrupted(Exception):
    pass


def test_an_interrupted_sweep_resumes_with_the_variants_left(tmp_path: Path) -> None:
    thresholds = (0.02, 0.03, 0.04, 0.05, 0.06)
    source, axes, checked, store, stages = _variants(tmp_path / "cache", tmp_path / "s", thresholds)
    handed: list[str] = []

    def stops_after_two(tasks: Any, *, on_result: Any, workers: int, scheduler: Any) -> None:
        def counted(task: Any, result: Any) -> None:
            on_result(task, result)
            if task.key.startswith("batch-"):
                handed.append(task.key)
                if len(handed) == 2:
                    raise _Interrupted

        execute(tasks, on_result=counted, workers=workers, scheduler=scheduler)

    with pytest.raises(_Interrupted):
        run_sweep(source, axes, checked, store, cache=stages, chunk=1, executor=stops_after_two)
    reopened = ResultStore(tmp_path / "s", {"test": list(thresholds)})
    assert len(reopened.done()) == 2
    resumed = run_sweep(source, axes, checked, reopened, cache=stages, chunk=1)
    assert resumed.ran == 3
    assert len(reopened.done()) == 5
    fresh_source, _, fresh_checked, fresh, fresh_stages = _variants(
        tmp_path / "cache", tmp_path / "fresh", thresholds
    )
    run_sweep(fresh_source, axes, fresh_checked, fresh, cache=fresh_stages)
    assert {k: r["sharpe"] for k, r in reopened.rows.items()} == {
        k: r["sharpe"] for k, r in fresh.rows.items()
    }


@pytest.mark.parametrize("shared", [True, False])
def test_a_cluster_s_tasks_read_neither_the_strategy_file_nor_the_stage_cache(
    tmp_path: Path, shared: bool
) -> None:
    """On a cluster (a scheduler given) the file's text and the series go with the tasks:
    each task here runs with the strategy file and the cache folder moved away, in another
    folder, on unpickled arguments; its numbers are the local sweep's. A batch task that
    finds the run's token in the sweep directory (``shared``: the same machine) writes
    its part there; one that does not (a namesake folder elsewhere) sends its bytes."""
    strategy = tmp_path / "small.yaml"
    strategy.write_bytes(STRATEGY.read_bytes())
    cache = tmp_path / "cache"
    thresholds = (0.02, 0.04, 0.06)
    axes = (Axis("signal.threshold", thresholds, "--grid t"),)

    def sweep(out: str, executor: Any, scheduler: str | None) -> ResultStore:
        source = StrategySource(strategy)
        checked = check_variants(source, axes, list(Space(axes).grid()))
        store = ResultStore(tmp_path / out, {"test": out})
        run_sweep(
            source, axes, checked, store, cache=StageCache(cache), chunk=2,
            scheduler=scheduler, executor=executor,
        )  # fmt: skip
        return store

    ran: list[str] = []
    sent_bytes: list[bool] = []
    token = tmp_path / "remote" / WRITER_FILE

    def elsewhere(tasks: Any, *, on_result: Any, workers: int, scheduler: Any) -> None:
        for task in tasks:
            args = pickle.loads(pickle.dumps(task.args))
            strategy.rename(tmp_path / "away.yaml")
            if cache.exists():
                cache.rename(tmp_path / "cache-away")
            if not shared and token.exists():
                token.write_text("another run's\n")
            try:
                with _working_in(tmp_path / "worker"):
                    result = task.function(*args)
            finally:
                (tmp_path / "away.yaml").rename(strategy)
                if (tmp_path / "cache-away").exists():
                    (tmp_path / "cache-away").rename(cache)
            ran.append(task.key)
            if isinstance(result, Part):
                sent_bytes.append(result.content is not None)
            on_result(task, result)

    remote = sweep("remote", elsewhere, "tcp://127.0.0.1:8786")
    assert [k.split("-")[0] for k in ran] == ["stage", "batch", "batch"]
    assert sent_bytes == [not shared, not shared]
    assert not list((tmp_path / "worker").iterdir())  # the worker wrote nothing
    assert len(list((cache / "inputs").glob("*.npz"))) == 1  # the client cached the series
    local = sweep("local", execute, None)
    assert remote.rows.keys() == local.rows.keys()
    for key, row in local.rows.items():
        assert {k: v for k, v in remote.rows[key].items() if k != "seconds"} == {
            k: v for k, v in row.items() if k != "seconds"
        }
    keys = sorted(local.rows)
    for store in (remote, local):
        assert store.returns(keys) is not None
    theirs, ours = remote.returns(keys), local.returns(keys)
    assert theirs is not None and ours is not None
    assert np.array_equal(theirs.columns(0, 3), ours.columns(0, 3))


@contextlib.contextmanager
def _working_in(folder: Path) -> Iterator[None]:
    folder.mkdir(exist_ok=True)
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


@pytest.mark.parametrize(
    ("variants", "size", "bars", "tasks"),
    [
        (1000, 256, 100_000, 16),
        (1000, 40, 100_000, 25),
        (36, 256, 500_000, 2),
        (15, 256, 10**6, 1),
        (5, 1, 10, 5),
        (300, 83, 300_000, 16),
        # short series: tasks of MIN_TASK_WORK variant-bars at least, not MIN_TASKS
        (1000, 256, 20_000, 4),
        (1000, 256, 40_000, 8),
        (1000, 256, 100, 4),  # ``size`` still caps a task
        (100, 256, 20_000, 1),
    ],
)
def test_a_group_is_dealt_into_tasks_alike_across_the_grid(
    variants: int, size: int, bars: int, tasks: int
) -> None:
    dealt = deal(list(range(variants)), size, bars)
    assert len(dealt) == tasks
    assert sorted(v for part in dealt for v in part) == list(range(variants))  # each once
    assert max(map(len, dealt)) <= size
    assert max(map(len, dealt)) - min(map(len, dealt)) <= 1
    if tasks > 1:  # each task spans the grid: its first and last variants far apart
        assert all(part[-1] - part[0] >= variants - 2 * tasks for part in dealt)


def test_another_sweep_in_the_same_directory_is_refused(tmp_path: Path) -> None:
    ResultStore(tmp_path / "s", {"axes": [1]})
    with pytest.raises(Exception, match=r"holds another sweep"):
        ResultStore(tmp_path / "s", {"axes": [2]})


def test_a_nan_objective_ranks_last_whatever_the_direction() -> None:
    frame = pd.DataFrame({"calmar": [1.0, None, 3.0, float("nan"), 2.0]})
    best_first = rank(frame, "calmar", "maximize")
    assert list(best_first.index) == [2, 4, 0, 1, 3]
    assert list(best_first["rank"]) == [1, 2, 3, 4, 5]
    lowest_first = rank(frame, "calmar", "minimize")
    assert list(lowest_first.index) == [0, 4, 2, 1, 3]
    assert np.isnan(lowest_first["objective_value"].to_numpy()[-2:]).all()


def test_a_variant_run_as_a_whole_backtest_gives_the_batched_numbers(swept: Path) -> None:
    from tradeloom.sweep.full_run import run_full

    results = pd.read_parquet(swept / "results.parquet")
    chosen = results.iloc[6]
    metrics, returns, _, _ = run_full(
        str(STRATEGY), tuple(json.loads(chosen["overrides"])), str(chosen["key"])
    )
    assert metrics["sharpe"] == chosen["sharpe"]
    assert metrics["final_equity"] == chosen["final_equity"]
    assert metrics["rejections"] == json.loads(chosen["rejections"])
    batched = np.load(swept / "returns.npy")[:, 6]
    assert np.array_equal(returns[0], batched)


def test_a_router_variant_is_swept_with_each_venue_modelled(tmp_path: Path) -> None:
    text = STRATEGY.read_text(encoding="utf-8")
    execution = text[text.index("execution:") :]
    router = """execution:
  kind: router
  venues:
    - {name: thin, kind: simulated, initial_cash: 2000, fee_bps: 2}
    - {name: deep, kind: simulated, initial_cash: 98000, fee_bps: 10}
"""
    path = tmp_path / "routed.yaml"
    path.write_text(text.replace(execution, router), encoding="utf-8")
    out = tmp_path / "s"
    grid = ["--grid", "signal.threshold=0.02,0.06"]
    assert main(["sweep", str(path), *grid, "--out", str(out)]) == 0
    results = pd.read_parquet(out / "results.parquet")
    chosen = results.iloc[0]
    run = tmp_path / "run"
    argv = ["run", str(path), "--out", str(run)]
    for override in json.loads(chosen["overrides"]):
        argv += ["--set", override]
    assert main(argv) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["trades"] > 0
    # the variant's numbers are the run's, whose fills are split over the venues
    assert chosen["total_return"] == metrics["total_return"]
    assert chosen["trades"] == metrics["trades"]
    decisions = list(read_events(run / "journal.sqlite", ["route_decision"]))
    assert {getattr(d, "venue", "") for d in decisions} == {"thin", "deep"}


def test_the_cached_features_key_covers_an_informative_pair_s_bars() -> None:
    """A sweep caches features by a hash of the data: the pair's bars are data too, so a
    changed pair (another file, another fetch) computes the features again; a strategy
    without a pair keeps the hash it had."""
    import hashlib

    from tradeloom.domain import Bars
    from tradeloom.sweep.stages import _data_hash

    index = pd.date_range("2024-01-01", periods=4, freq="1h", tz="UTC", name="timestamp")
    frame = pd.DataFrame({k: np.arange(4.0) + 1 for k in ("open", "high", "low", "close")})
    frame = frame.assign(volume=1.0).set_axis(index)
    btc, eth = Bars(frame, "BTC/USDT", "1h", 3600), Bars(frame * 2, "ETH/USDT", "1h", 3600)
    moved = Bars(frame.assign(close=frame["close"] * 3), "ETH/USDT", "1h", 3600)
    digest = hashlib.sha256()  # the hash before informative pairs: caches stay valid
    digest.update(json.dumps(["BTC/USDT", "1h", list(frame.columns)]).encode())
    digest.update(np.ascontiguousarray(index.as_unit("ns").asi8).tobytes())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    assert _data_hash(btc) == digest.hexdigest()[:32]
    assert len({_data_hash(btc), _data_hash(btc, (eth,)), _data_hash(btc, (moved,))}) == 3
