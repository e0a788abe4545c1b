"""The Dask settings a sweep's workers run best with, and a local cluster started with them.

A Dask worker runs more than its tasks: every 10 ms its statistical profiler walks the
task thread's stack, every 20 ms its event loop measures itself, twice a second it samples
the process and the disks, ten times a second its memory. Each wakes the worker's event
loop, which takes the GIL from the task running the sweep's variants. A sweep's tasks
take a fraction of a second to seconds each and need none of it: `WORKER_SETTINGS` turns
the profiler off and makes the rest a second or two apart (the scheduler still sees each
worker's heartbeat and memory; the dashboard's per-task profile is what goes). Every
number a sweep computes is the same with or without them.

`local_cluster` starts a `distributed.LocalCluster` of worker processes, one thread each,
with these settings (a notebook's sweep, `benchmarks/bench_sweep.py`); for a cluster
started by hand, `environment` gives the same settings as the ``DASK_*`` variables to set
for ``dask worker`` (docs/guides/sweeps-on-dask.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distributed import LocalCluster

__all__ = ["WORKER_SETTINGS", "environment", "local_cluster"]

WORKER_SETTINGS: Mapping[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.admin.system-monitor.disk": False,
    "distributed.worker.memory.monitor-interval": "1s",
}
"""Dask configuration for a sweep's workers (keys as `dask.config.set` takes them)."""


def environment(settings: Mapping[str, Any] = WORKER_SETTINGS) -> dict[str, str]:
    """Return ``settings`` as the environment variables Dask reads its configuration from
    (``DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False``...)."""
    return {
        "DASK_" + "__".join(part.upper().replace("-", "_") for part in key.split(".")): str(value)
        for key, value in settings.items()
    }


def local_cluster(workers: int, **options: Any) -> LocalCluster:
    """Return a running `distributed.LocalCluster` of ``workers`` processes of one thread
    each, its scheduler and workers configured with `WORKER_SETTINGS`.

    Args:
        workers: Worker processes.
        **options: More keywords for ``LocalCluster`` (``dashboard_address=":0"``...).
    """
    import dask
    from distributed import LocalCluster

    # The nannies hand their configuration to the worker processes they start.
    with dask.config.set(dict(WORKER_SETTINGS)):
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, **options)
