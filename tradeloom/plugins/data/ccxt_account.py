"""The keys of a ccxt connection, shared by the ``ccxt`` data source and venue.

An exchange id, ccxt's client settings and the account's credentials (only as
``${ENV}`` secrets). Importing this module does not import ccxt: validating a
strategy file that names no exchange stays fast.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, field_validator

from tradeloom.plugins.component import ParamError, Params

__all__ = ["ExchangeAccountParams", "check_account"]


class ExchangeAccountParams(Params):
    """Keys of a ccxt connection: the exchange, its client settings and the account's keys.

    Shared by the ``ccxt`` data source and the ``ccxt`` execution component.
    """

    exchange: str = Field(description="A ccxt exchange id such as binance, kraken or okx.")
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="ccxt client options (exchange.options), as ccxt takes them.",
    )
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="Other ccxt client settings (timeout, enableRateLimit, proxies...); "
        "credentials (api keys, auth headers) only as ${ENV_VAR}.",
    )
    api_key: SecretStr | None = Field(default=None, description="API key, as ${ENV_VAR}.")
    secret: SecretStr | None = Field(default=None, description="API secret, as ${ENV_VAR}.")
    password: SecretStr | None = Field(
        default=None, description="API passphrase (some exchanges), as ${ENV_VAR}."
    )

    @field_validator("exchange")
    @classmethod
    def _check_exchange(cls, value: str) -> str:
        from tradeloom.plugins.data.ccxt_client import check_exchange_id

        return check_exchange_id(value)

    def settings(self) -> dict[str, Any]:
        """Return the ccxt constructor settings: ``config``, ``options`` and credentials."""
        # ${ENV} credentials in config (headers) and options reach ccxt as their values
        settings: dict[str, Any] = _reveal(dict(self.config))
        if self.options:
            settings["options"] = _reveal(dict(self.options))
        for name, value in (
            ("apiKey", self.api_key),
            ("secret", self.secret),
            ("password", self.password),
        ):
            if value is not None:
                settings[name] = value.get_secret_value()
        return settings


def _reveal(value: Any) -> Any:
    # for ccxt's constructor only: never logged, never written
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {key: _reveal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_reveal(item) for item in value]
    return value


def check_account(params: ExchangeAccountParams) -> None:
    """Refuse credentials written in ``config`` and settings ccxt does not have.

    Raises:
        ParamError: At ``config.<key>``.
    """
    from tradeloom.plugins.data.ccxt_client import CREDENTIAL_SETTINGS, unknown_settings

    for key in params.config:
        if key in CREDENTIAL_SETTINGS:
            raise ParamError(
                f"config.{key}",
                "credentials never go in config; use api_key, secret or password with an "
                "${ENV_VAR} reference",
            )
    for key, problem in unknown_settings(params.exchange, params.config).items():
        raise ParamError(f"config.{key}", problem)
