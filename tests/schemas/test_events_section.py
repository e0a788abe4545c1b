"""``live.events``: each entry's kind and keys checked when the file loads, one line each."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradeloom.errors import ConfigError
from tradeloom.plugins.events.nats import NatsParams
from tradeloom.plugins.events.redis_streams import RedisStreamsParams
from tradeloom.schemas import load_strategy

ROOT = Path(__file__).resolve().parents[2]


def _with_events(tmp_path: Path, events: str) -> Path:
    text = (ROOT / "strategies" / "btc_rf.yaml").read_text()
    path = tmp_path / "s.yaml"
    path.write_text(text + f"live:\n  events:\n{events}")
    return path


def test_a_valid_section_loads_with_each_kinds_params(tmp_path: Path) -> None:
    path = _with_events(
        tmp_path,
        "    - {kind: nats, url: 'nats://h:4222', subject_prefix: a.b}\n"
        "    - {kind: redis_streams, name: r2, maxlen: 1000, drain_seconds: 0}\n",
    )
    config, _ = load_strategy(path, ())
    entries = config.live.events or []
    assert [e.label for e in entries] == ["nats", "r2"]
    assert entries[1].drain_seconds == 0
    assert NatsParams.model_validate(entries[0].model_extra).subject_prefix == "a.b"
    assert RedisStreamsParams.model_validate(entries[1].model_extra).maxlen == 1000


def test_every_problem_is_one_line_at_its_key(tmp_path: Path) -> None:
    path = _with_events(
        tmp_path,
        "    - {kind: kafka}\n"
        "    - {kind: redis_streams, urll: 'redis://x', timeout: -1}\n"
        "    - {kind: nats, subject_prefix: 'a.>'}\n"
        "    - {kind: nats}\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_strategy(path, ())
    lines = [line.removeprefix(f"{path}:") for line in caught.value.lines()]
    first = len((ROOT / "strategies" / "btc_rf.yaml").read_text().splitlines()) + 3  # its entries
    assert lines == [
        f"{first}:14 live.events.0.kind: unknown events kind 'kafka'; installed kinds: nats, "
        "redis_streams",
        f"{first + 1}:35 live.events.1.urll: unknown key (did you mean 'url'?)",
        f"{first + 1}:57 live.events.1.timeout: Input should be greater than 0",
        f"{first + 2}:36 live.events.2.subject_prefix: String should match pattern "
        "'^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$'",
        f"{first + 3}:7 live.events.3.name: another entry is named 'nats': name each apart",
    ]
