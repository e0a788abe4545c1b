"""The Dask settings a sweep's workers run with: as variables, in the docs, in a cluster."""

from __future__ import annotations

import re
from pathlib import Path

import dask.config
import pytest
from distributed import Client

from tradeloom.sweep.dask_settings import WORKER_SETTINGS, environment, local_cluster

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "sweeps-on-dask.md"


def test_the_variables_are_read_back_as_the_settings() -> None:
    variables = environment()
    assert all(name.startswith("DASK_DISTRIBUTED__") for name in variables)
    read = dask.config.collect_env(variables)
    for key, value in WORKER_SETTINGS.items():
        assert dask.config.get(key, config=read) == value, key


def test_the_guide_sets_every_variable_for_dask_worker() -> None:
    text = GUIDE.read_text()
    block = re.search(r"```bash\n(DASK_.*?dask worker [^\n]*)\n```", text, re.S)
    assert block is not None, "the guide has no `DASK_... dask worker` block"
    shown = dict(re.findall(r"^(DASK_\w+)=(\S+) \\$", block.group(1), re.M))
    assert shown == environment()


@pytest.mark.slow
def test_a_local_cluster_runs_its_workers_with_the_settings() -> None:
    with (
        local_cluster(1, dashboard_address=":0") as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        seen = client.run(_worker_view)
    [(profile, settings)] = seen.values()
    assert profile is False  # no profiler callback at all
    assert settings == dict(WORKER_SETTINGS)


def _worker_view(dask_worker: object) -> tuple[bool, dict[str, object]]:
    callbacks = getattr(dask_worker, "periodic_callbacks", {})
    return "profile" in callbacks, {key: dask.config.get(key) for key in WORKER_SETTINGS}
