"""A running live run swaps its forest for a saved torch fold at a bar boundary and then
decides what a fresh run of that fold decides on the same bars: the windows it reads are
built again from the run's history at the swap, and the fold is kept in the run directory
as the weights file it is (``.pt``), which a restart loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.live.live_emulated import REGISTRY, emulated_run, rows, tick_until, trained_registry
from tests.live.test_model_swap import LAST, SWAP_AT, _after, _decisions, _fresh, _started
from tradeloom.engine.control import request_swap
from tradeloom.plugins.model.saved_model import SavedTorchModel

pytestmark = pytest.mark.xdist_group("torch")

TORCH_REGISTRY = REGISTRY.replace(
    "  kind: sklearn\n  estimator: sklearn.ensemble.RandomForestClassifier\n"
    "  params: {n_estimators: 12, max_depth: 3, min_samples_leaf: 5, n_jobs: 1}\n",
    "  kind: torch\n  network: gru\n  params: {hidden: 6}\n  window: 8\n"
    "  training: {epochs: 10, batch_size: 32, learning_rate: 0.01, validation: 0}\n",
)
"""The registry's strategy with a small GRU for its forest: the running model's label."""


@pytest.mark.slow
def test_a_live_run_swaps_in_a_torch_fold_and_decides_as_a_fresh_run_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "kind: torch" in TORCH_REGISTRY
    for folder in ("registry", "fresh"):
        (tmp_path / folder).mkdir()
    registry = trained_registry(tmp_path / "registry", TORCH_REGISTRY)
    fresh = _fresh(registry, tmp_path / "fresh")
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    with emulated_run(tmp_path, monkeypatch) as run:
        runner = _started(run, run_dir)
        try:
            tick_until(run, runner, SWAP_AT)
            swap_bar = len(runner.session_or_fail.history) - 1
            request_swap(run_dir, registry, None, "a network")
            assert runner.inbox.wake.wait(5)
            runner.tick()
            assert isinstance(runner.session_or_fail.models[0], SavedTorchModel)
            tick_until(run, runner, LAST)
            runner.stop("test over")
        finally:
            runner.inbox.restore_signal_handlers()
        assert run.emulator.errors == []
    journal = run_dir / "journal.sqlite"
    (swapped,) = rows(journal, "model_swapped")
    assert swapped["file"].endswith(".pt") and (run_dir / swapped["file"]).is_file()
    after = _after(_decisions(journal), swap_bar)
    assert after == _after(fresh, swap_bar)  # bit for bit: one window at a time in both
    assert sum(p is not None for _, p in after["probabilities"]) > 30
    assert after["orders"], "the swapped model never traded: the comparison proves little"
