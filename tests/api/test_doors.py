"""The API's two doors into one backtest (`tradeloom.api.strategy`): a file's bars and the
same bars as a DataFrame give the same run; each call runs under the command's rules, its
native threads and its first run's kernel forms (`tradeloom.kernels.first_run`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import ThreadpoolController, threadpool_limits

import tradeloom
from tradeloom.cli.main import main
from tradeloom.plugins.model import sklearn_fitting

ROOT = Path(__file__).resolve().parents[2]

STRATEGY = """\
name: doors
data: {kind: csv, path: bars.csv, symbol: GOOG/USD, timeframe: 1d}
features:
  - {kind: returns, period: 1}
  - {kind: rsi, window: 14}
  - {kind: lags, of: [returns_1], lags: 2}
model:
  kind: sklearn
  estimator: sklearn.ensemble.HistGradientBoostingClassifier
  params: {max_iter: 10, max_depth: 2}
  scaler: none
  label: {horizon: 3}
  walk_forward: {train_window: 150, retrain_every: 100}
signal: {kind: threshold, threshold: 0.05}
risk:
  sizing: {kind: fixed_fraction, fraction: 0.5}
  stop_loss: 0.03
execution: {kind: simulated, initial_cash: 10000, fill: next_open, fee_bps: 10}
"""


def _market(folder: Path, n: int = 400) -> tuple[Path, pd.DataFrame]:
    """Write a daily market and the strategy reading it; return the strategy file and the
    bars as pandas reads the file."""
    rng = np.random.default_rng(11)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    bars = pd.DataFrame(
        {"open": close * (1 + rng.normal(0, 0.003, n)), "high": close * 1.02,
         "low": close * 0.98, "close": close, "volume": rng.integers(1_000, 9_000, n)},
        index=pd.date_range("2021-01-04", periods=n, freq="D", tz="UTC", name="timestamp"),
    )  # fmt: skip
    bars.to_csv(folder / "bars.csv")
    (folder / "strategy.yaml").write_text(STRATEGY)
    frame = pd.read_csv(folder / "bars.csv", index_col="timestamp", parse_dates=True)
    return folder / "strategy.yaml", frame


def _same_run(a: tradeloom.Run, b: tradeloom.Run) -> None:
    for table in ("equity", "trades", "fills", "orders"):
        pd.testing.assert_frame_equal(getattr(a, table), getattr(b, table), obj=table)
    pd.testing.assert_series_equal(a.stats.drop("run_dir"), b.stats.drop("run_dir"))


def test_a_frame_backtests_as_the_file_it_was_read_from(tmp_path: Path) -> None:
    file, bars = _market(tmp_path)
    strategy = tradeloom.load(file)

    from_file = strategy.backtest(quiet=True)
    from_frame = strategy.with_data(bars).backtest(quiet=True)

    assert len(from_file.trades) > 5 and from_file.stats["bars"] == 400
    _same_run(from_frame, from_file)
    # the journals' decisions, row for row (the data's own row says where the bars were)
    for kind in ("signal", "order", "fill", "model_trained"):
        pd.testing.assert_frame_equal(from_frame.journal(kind), from_file.journal(kind), obj=kind)


def _openmp_threads() -> list[int]:
    return sorted(
        {i.num_threads for i in ThreadpoolController().select(user_api="openmp").lib_controllers}
    )


def test_a_backtest_fits_on_the_commands_native_threads_and_leaves_the_callers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sklearn.ensemble  # noqa: F401  (its OpenMP runtime loaded, as a notebook's use does)

    file, _ = _market(tmp_path)
    strategy = tradeloom.load(file)
    seen: list[tuple[list[int], str | None]] = []
    counted = sklearn_fitting.openmp_threads

    def fit_threads() -> int:  # called as each fold's model is fitted
        seen.append((_openmp_threads(), os.environ.get("OMP_NUM_THREADS")))
        return counted()

    monkeypatch.setattr(sklearn_fitting, "openmp_threads", fit_threads)
    monkeypatch.delenv("TRADELOOM_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    with threadpool_limits(limits=3, user_api="openmp"):  # a notebook's own setting
        strategy.backtest(quiet=True)
        assert _openmp_threads() == [3] and os.environ["OMP_NUM_THREADS"] == "3"
    assert seen and set(map(str, seen)) == {str(([1], "1"))}  # tradeloom run's: one

    monkeypatch.setenv("TRADELOOM_THREADS", "two")
    with pytest.raises(
        tradeloom.UserError, match=r"^TRADELOOM_THREADS: expected an integer >= 1, was 'two'$"
    ):
        strategy.backtest(quiet=True)


_FIRST_CALL = """
import json, sys
import pandas as pd
import tradeloom
bars = pd.read_csv("bars.csv", index_col="timestamp", parse_dates=True)
run = tradeloom.load("strategy.yaml").with_data(bars).backtest(quiet=True)
print(json.dumps({"equity": run.equity["equity"].tolist(), "numba": "numba" in sys.modules}))
"""


def test_a_small_first_call_runs_its_kernels_as_python_as_the_command_does(
    tmp_path: Path,
) -> None:
    file, bars = _market(tmp_path)
    cache = tmp_path / "kernels"  # empty: a call that asked it would compile, here or behind
    env = {**os.environ, "TRADELOOM_FIRST_RUN": "auto", "TRADELOOM_KERNEL_CACHE": str(cache)}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])

    done = subprocess.run(
        [sys.executable, "-c", _FIRST_CALL],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    first = json.loads(done.stdout.splitlines()[-1])
    assert first["numba"] is False  # every kernel as Python: cheaper than numba's start
    assert "compil" not in done.stderr, done.stderr  # nothing compiled, nor in the background
    assert not cache.exists()  # the kernel cache was not even looked into
    compiled = tradeloom.load(file).with_data(bars).backtest(quiet=True)  # the suite compiles
    assert first["equity"] == compiled.equity["equity"].tolist()


def test_the_background_compile_reruns_the_frames_backtest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file, bars = _market(tmp_path)
    monkeypatch.chdir(tmp_path)  # where the mapping's relative path is
    strategy = tradeloom.load(tradeloom.load(file).document).with_data(bars)  # a mapping's
    inputs = tmp_path / "inputs"
    inputs.mkdir()

    words = strategy._warm_words("per_bar", inputs)

    assert words[1:3] == ["--driver", "per-bar"]
    assert Path(words[0]).parent == inputs  # the mapping's temporary file, copied
    data = json.loads(words[-1].removeprefix("--set=data="))
    assert data == {"kind": "parquet", "path": str(inputs / "bars.parquet"), "symbol": "GOOG/USD",
                    "timeframe": "1d"}  # fmt: skip
    assert main(["-q", "run", *words, "--out", str(tmp_path / "warm")]) == 0  # warm's run
    _same_run(tradeloom.open_run(tmp_path / "warm"), strategy.backtest(quiet=True))
