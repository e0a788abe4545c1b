"""The sweep's executor in this process and on a local pool: same results, each once."""

from __future__ import annotations

import io
import math
import multiprocessing
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.sweep import tasks_fixture as toy
from tradeloom.errors import ServiceUnreachable, UserError
from tradeloom.runtime import progress
from tradeloom.sweep.pool import run_on_pool
from tradeloom.sweep.shared_args import shared_arguments
from tradeloom.sweep.sweep_progress import SweepProgress
from tradeloom.sweep.tasks import Task, TaskFailed, WorkersDied, execute


def scores(n: int) -> list[Task]:
    return [Task(f"t{x}", toy.score, (x,)) for x in range(n)]


def collect(tasks: list[Task], **how: Any) -> tuple[dict[str, Any], Counter[str]]:
    """Run ``tasks``; return the results by key and how often each key was handed over."""
    results: dict[str, Any] = {}
    seen: Counter[str] = Counter()

    def on_result(task: Task, result: Any) -> None:
        results[task.key] = result
        seen[task.key] += 1

    execute(tasks, on_result=on_result, **how)
    return results, seen


def test_serial_runs_each_task_in_order() -> None:
    order: list[str] = []
    execute(scores(5), on_result=lambda task, result: order.append(task.key))
    assert order == ["t0", "t1", "t2", "t3", "t4"]


def test_keys_must_be_unique() -> None:
    tasks = [Task("a", toy.score, (1,)), Task("a", toy.score, (2,))]
    with pytest.raises(ValueError, match=r"^task keys must be unique$"):
        execute(tasks, on_result=lambda task, result: None)


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ({"workers": 0}, r"^workers: must be at least 1, was 0$"),
        ({"retries": -1}, r"^retries: must be at least 0, was -1$"),
        ({"connect_timeout": 0.0}, r"^connect timeout: must be more than 0 s, was 0$"),
    ],
)
def test_settings_out_of_range_are_refused(how: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError, match=message):
        execute(scores(2), on_result=lambda task, result: None, **how)


def test_a_raising_task_stops_the_serial_sweep_naming_its_key() -> None:
    tasks = [Task(f"t{x}", toy.fail_on, (2, x)) for x in range(5)]
    done: list[str] = []
    with pytest.raises(TaskFailed, match=r"^task t2 failed: ValueError: no variant 2$") as info:
        execute(tasks, on_result=lambda task, result: done.append(task.key))
    assert isinstance(info.value.__cause__, ValueError)
    assert info.value.key == "t2"
    assert done == ["t0", "t1"]


def test_the_pool_gives_the_serial_results() -> None:
    serial, _ = collect(scores(12))
    pooled, seen = collect(scores(12), workers=2)
    assert pooled == serial
    assert set(seen.values()) == {1}


def test_the_pool_gives_the_serial_results_with_a_shared_argument() -> None:
    values = np.linspace(0.0, 1.0, 50_000)
    tasks = [Task(f"w{x}", toy.weighted, (values, x)) for x in range(6)]
    serial, _ = collect(tasks)
    pooled, _ = collect(tasks, workers=2)
    assert pooled == serial


def test_only_objects_several_tasks_pass_are_shared() -> None:
    values, other, name = np.zeros(3), np.ones(3), "x" * 100
    tasks = [Task("a", toy.weighted, (values, name)), Task("b", toy.weighted, (values, name))]
    tasks.append(Task("c", toy.weighted, (other, 1)))
    assert [id(value) for value in shared_arguments(tasks).values()] == [id(values)]


def test_spawned_pool_gives_the_serial_results() -> None:
    tasks = scores(6)
    serial, _ = collect(tasks)
    pooled: dict[str, Any] = {}
    run_on_pool(tasks, lambda t, r: pooled.__setitem__(t.key, r), 2, 0, start_method="spawn")
    assert pooled == serial


def test_a_raising_task_stops_the_pool_naming_its_key() -> None:
    tasks = [Task(f"t{x}", toy.fail_on, (3, x)) for x in range(8)]
    done: list[str] = []
    with pytest.raises(TaskFailed, match=r"^task t3 failed: ValueError: no variant 3$") as info:
        execute(tasks, on_result=lambda task, result: done.append(task.key), workers=2)
    assert isinstance(info.value.__cause__, ValueError)
    assert "t3" not in done


def test_a_dead_pool_worker_has_its_tasks_rerun_each_handed_over_once(tmp_path: Path) -> None:
    doomed = (0, 5)
    tasks = [Task(f"t{x}", toy.die_once, (str(tmp_path), x, doomed)) for x in range(12)]
    results, seen = collect(tasks, workers=2, retries=2)
    assert results == collect(scores(12))[0]
    assert seen == Counter({f"t{x}": 1 for x in range(12)})
    assert sorted(path.name for path in tmp_path.iterdir()) == ["0.died", "5.died"]


@pytest.mark.parametrize(("retries", "deaths"), [(0, "once"), (1, "2 times")])
def test_a_pool_that_keeps_dying_stops_after_its_retries(retries: int, deaths: str) -> None:
    tasks = [Task(f"t{x}", toy.always_die, (x,)) for x in range(2)]
    message = (
        rf"^a worker process of the local pool died {deaths} \(killed, out of memory, or a"
        r" crash in compiled code\); 2 tasks not run, the first t0$"
    )
    with pytest.raises(WorkersDied, match=message) as info:
        execute(tasks, on_result=lambda task, result: None, workers=2, retries=retries)
    assert info.value.keys == ["t0", "t1"]


def test_an_interrupt_stops_the_pool_processes() -> None:
    before = set(multiprocessing.active_children())
    workers: set[multiprocessing.Process] = set()

    def on_result(task: Task, result: Any) -> None:
        workers.update(set(multiprocessing.active_children()) - before)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        execute(scores(40), on_result=on_result, workers=2)
    assert len(workers) == 2
    assert not any(process.is_alive() for process in workers)


def test_the_progress_keeps_the_best_objective() -> None:
    with SweepProgress(5, "sharpe") as bar:
        for objective in (0.5, None, 1.5, math.nan, 1.2):
            bar.advance(objective)
    assert (bar.done, bar.best) == (5, 1.5)
    with SweepProgress(3, "drawdown", higher_is_better=False) as bar:
        for objective in (0.3, 0.1, 0.2):
            bar.advance(objective)
    assert bar.best == 0.1


def test_the_progress_is_silent_when_bars_are_off(capsys: pytest.CaptureFixture[str]) -> None:
    assert not progress.active()
    with SweepProgress(2, "sharpe") as bar:
        bar.advance(1.0)
        bar.advance(2.0)
    assert capsys.readouterr() == ("", "")


def test_the_progress_shows_done_total_and_best(monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    screen = io.StringIO()
    monkeypatch.setattr(progress, "_enabled", True)
    monkeypatch.setattr(
        progress, "_console", lambda: Console(file=screen, force_terminal=True, width=120)
    )
    with SweepProgress(3, "sharpe") as bar:
        for objective in (0.25, 1.75, 1.0):
            bar.advance(objective)
            progress._progress.refresh()
    shown = screen.getvalue()
    assert "sweep, best sharpe 1.75" in shown
    assert "3/3" in shown


@pytest.mark.parametrize("workers", [1, 2])
def test_an_unreachable_service_stops_the_sweep_with_its_own_line(workers: int) -> None:
    """A `ServiceUnreachable` (an LLM server that is down) is raised as it is, serial or
    from the pool: its one line says what to do, and the CLI prints it without a wrapper."""
    tasks = [Task(f"t{x}", toy.unreachable_on, (1, x)) for x in range(4)]
    with pytest.raises(ServiceUnreachable, match=r"^cannot connect to the server of variant 1$"):
        execute(tasks, on_result=lambda task, result: None, workers=workers)
