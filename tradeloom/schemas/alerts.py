"""The keys of ``live.alerts``: where a paper or live run's alerts go, which events, how often.

What the run's alerts observer (`tradeloom.live.outputs.alerts.Alerts`) is configured
with, validated with the strategy file as every other section.
"""

from __future__ import annotations

import urllib.parse
from typing import Literal, Self, get_args

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

__all__ = ["ALERT_EVENTS", "SEVERITY", "AlertEvent", "AlertTarget", "AlertsParams"]


AlertEvent = Literal[
    "halt",
    "kill",
    "resume",
    "trading_state",
    "health_action",
    "liquidation",
    "exchange_errors",
    "stale_data",
    "restart",
    "venue_unreachable",
    "exit_refused",
    "protective_exit_refused",
    "parity",
]
ALERT_EVENTS: tuple[str, ...] = get_args(AlertEvent)
"""Every event an alert can be sent for."""

SEVERITY: dict[str, str] = {
    "halt": "critical",
    "kill": "critical",
    "liquidation": "critical",
    "resume": "info",
    "restart": "info",
    "trading_state": "warning",
    "health_action": "warning",
    "exchange_errors": "warning",
    "stale_data": "warning",
    "venue_unreachable": "warning",
    "exit_refused": "warning",
    "protective_exit_refused": "critical",
    "parity": "warning",
}


def _is_http_url(text: str) -> bool:
    parsed = urllib.parse.urlsplit(text.strip())
    return parsed.scheme.lower() in ("http", "https") and bool(parsed.hostname)


def _is_reference(value: SecretStr | None) -> bool:
    # A resolved ${NAME} prints as its reference; a value written out prints as stars.
    return value is None or str(value).startswith("${")


class AlertTarget(BaseModel):
    """One destination of the alerts."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["webhook", "slack", "telegram"] = Field(
        description='webhook: a JSON object POSTed to url; slack: {"text": ...} POSTed to '
        "url; telegram: the Bot API's sendMessage with token and chat_id."
    )
    url: SecretStr | None = Field(
        default=None,
        description="webhook and slack: where to POST, as ${ENV_VAR}; telegram: the Bot API's "
        "base URL (default https://api.telegram.org), as ${ENV_VAR}.",
    )
    token: SecretStr | None = Field(
        default=None, description="telegram: the bot's token, as ${ENV_VAR}."
    )
    chat_id: str | None = Field(
        default=None, min_length=1, description="telegram: the chat to send to."
    )
    name: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="Names the target in logs and metrics (default: its kind and position).",
    )

    @field_validator("url", "token")
    @classmethod
    def _secret_only(cls, value: SecretStr | None) -> SecretStr | None:
        if not _is_reference(value):
            raise ValueError(
                "a webhook URL carries its token: give an environment variable reference such "
                "as ${ALERT_WEBHOOK_URL}, never the value itself"
            )
        return value

    @field_validator("url")
    @classmethod
    def _http_only(cls, value: SecretStr | None) -> SecretStr | None:
        # file:// or ftp:// would "deliver" by reading a file: every alert silently lost
        if value is not None and not _is_http_url(value.get_secret_value()):
            raise ValueError(
                "must hold an http:// or https:// URL with a host; it holds another scheme "
                "or no URL (not shown: it may carry a token)"
            )
        return value

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.kind in ("webhook", "slack") and self.url is None:
            raise ValueError(f"kind {self.kind} needs url (as ${{ENV_VAR}})")
        if self.kind == "telegram" and (self.token is None or self.chat_id is None):
            raise ValueError("kind telegram needs token (as ${ENV_VAR}) and chat_id")
        if self.kind != "telegram" and (self.token is not None or self.chat_id is not None):
            raise ValueError(f"token and chat_id are telegram's keys, not {self.kind}'s")
        return self


class AlertsParams(BaseModel):
    """Keys of ``live.alerts``."""

    model_config = ConfigDict(extra="forbid")

    targets: list[AlertTarget] = Field(
        min_length=1, max_length=20, description="Where alerts go (1 .. 20 targets)."
    )
    events: list[AlertEvent] = Field(
        default_factory=lambda: list(get_args(AlertEvent)),
        min_length=1,
        description="Which events alert (default: all): " + ", ".join(ALERT_EVENTS) + ".",
    )
    dedup_seconds: float = Field(
        default=300.0,
        ge=0,
        le=86_400,
        description="Drop an alert identical to one sent less than this long ago (seconds).",
    )
    max_per_minute: int = Field(
        default=20, ge=1, le=10_000, description="Drop alerts beyond this many a minute."
    )
    queue_size: int = Field(
        default=100, ge=1, le=100_000, description="Alerts waiting to be sent, at most."
    )
    timeout_seconds: float = Field(
        default=5.0, gt=0, le=120, description="Give up on a target after this long."
    )
    exchange_errors: int = Field(
        default=5,
        ge=1,
        le=100_000,
        description="Alert when this many exchange errors came within exchange_error_seconds.",
    )
    exchange_error_seconds: float = Field(
        default=300.0, gt=0, le=86_400, description="The window of exchange_errors."
    )
