"""``${NAME}`` secrets: resolved from the environment, never shown, only in secret fields."""

from __future__ import annotations

import pickle
from collections.abc import Callable

import pytest
import yaml
from pydantic import SecretStr

from tradeloom.errors import ConfigError, Problem
from tradeloom.schemas import Secret, load_strategy
from tradeloom.schemas.secrets import resolve_secrets, secret_reference, to_document

VALUE = "sk-live-0123456789abcdef"

EXCHANGE = """\
  kind: exchange
  exchange: binance
  api_key: ${TL_API_KEY}
"""


def _with_execution(valid: str, execution: str) -> str:
    head, _, tail = valid.partition("execution:\n  kind: simulated\n")
    return f"{head}execution:\n{execution}{tail}"


def test_secret_shows_its_reference_never_its_value() -> None:
    secret = Secret(VALUE, "TL_API_KEY")
    assert isinstance(secret, SecretStr)
    assert secret.get_secret_value() == VALUE
    assert secret.name == "TL_API_KEY"
    assert str(secret) == "${TL_API_KEY}"
    assert repr(secret) == "Secret('${TL_API_KEY}')"
    assert f"{secret}" == "${TL_API_KEY}"
    assert secret == Secret(VALUE, "TL_API_KEY")
    assert secret != Secret(VALUE, "OTHER")
    assert pickle.loads(pickle.dumps(secret)) == secret


@pytest.mark.parametrize(
    ("value", "name"),
    [("${A}", "A"), ("${_X1}", "_X1"), ("$A", None), ("${A}x", None), ("x${A}", None)],
)
def test_only_a_whole_reference_is_a_secret(value: str, name: str | None) -> None:
    assert secret_reference(value) == name


def test_resolve_secrets() -> None:
    data = {"a": "${KEY}", "b": ["${KEY}", "${GONE}", "$KEY"], "c": 1}
    resolved, problems = resolve_secrets(data, lambda path: f"f:{path}", {"KEY": VALUE})
    assert resolved["a"] == Secret(VALUE, "KEY")
    assert resolved["b"][0] == Secret(VALUE, "KEY")
    assert resolved["b"][1:] == ["${GONE}", "$KEY"]
    assert resolved["c"] == 1
    assert problems == [Problem("f:b.1", "b.1", "environment variable GONE is not set")]
    assert data["a"] == "${KEY}"
    assert to_document(resolved) == data


def test_a_secret_field_gets_the_value_and_the_document_keeps_the_reference(
    strategy_file: Callable[[str], str],
    valid: str,
    fake_loader: Callable,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TL_API_KEY", VALUE)
    name = strategy_file(_with_execution(valid, EXCHANGE))
    config, _ = load_strategy(name, load_plugins=fake_loader)
    params = config.execution.params
    assert params.api_key.get_secret_value() == VALUE
    assert config.document["execution"]["api_key"] == "${TL_API_KEY}"
    dumped = yaml.safe_dump(dict(config.document))
    for text in (str(config), repr(config), str(params), repr(params), dumped):
        assert VALUE not in text
    assert VALUE not in params.model_dump_json()


def test_an_unset_variable_is_a_problem_at_its_key(
    strategy_file: Callable[[str], str],
    valid: str,
    fake_loader: Callable,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TL_API_KEY", raising=False)
    name = strategy_file(_with_execution(valid, EXCHANGE))
    with pytest.raises(
        ConfigError,
        match=r"^s\.yaml:32:12 execution\.api_key: environment variable TL_API_KEY is not set$",
    ):
        load_strategy(name, load_plugins=fake_loader)


def test_secrets_only_go_to_secret_fields_and_never_show(
    strategy_file: Callable[[str], str],
    valid: str,
    fake_loader: Callable,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TL_API_KEY", VALUE)
    execution = """\
  kind: exchange
  exchange: ${TL_API_KEY}
  api_key: ${TL_API_KEY}
  api_secret: written-in-the-file
  options:
    token: ${TL_API_KEY}
"""
    text = _with_execution(valid, execution).replace("name: btc_rf", "name: ${TL_API_KEY}")
    name = strategy_file(text)
    with pytest.raises(ConfigError) as caught:
        load_strategy(name, ["seed=${TL_API_KEY}"], load_plugins=fake_loader)
    assert caught.value.lines() == [
        "--set seed: secrets (${...}) are only accepted by secret fields, was ${TL_API_KEY}",
        "s.yaml:1:7 name: secrets (${...}) are only accepted by secret fields, was ${TL_API_KEY}",
        "s.yaml:31:13 execution.exchange: secrets (${...}) are only accepted by secret "
        "fields, was ${TL_API_KEY}",
        "s.yaml:33:15 execution.api_secret: a secret must be an environment variable "
        "reference such as ${API_SECRET}, never the value itself",
        # options.token names a credential: a free-form mapping takes it as a secret
    ]
    assert VALUE not in str(caught.value)
    assert "written-in-the-file" not in str(caught.value)
