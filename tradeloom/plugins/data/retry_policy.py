"""The ``data.retry`` keys of the ``ccxt`` source: how patiently to repeat a read.

The keys describe a `tradeloom.runtime.retrying.RetryPolicy` (capped exponential backoff with
jitter, never shorter than an exchange's ``Retry-After``). Kept apart from `ccxt_retry`
(which imports ccxt) so that validating a strategy file does not import ccxt.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from tradeloom.plugins.component import Params
from tradeloom.runtime.retrying import RetryPolicy

__all__ = ["RetryParams"]


class RetryParams(Params):
    """YAML keys of the retry policy (``data.retry`` of the ``ccxt`` source)."""

    max_attempts: int = Field(
        default=5, ge=1, le=100, strict=True, description="Requests per read, the first included."
    )
    base_delay: float = Field(
        default=1.0, gt=0, le=600, description="Seconds before the first retry; doubles each time."
    )
    max_delay: float = Field(default=30.0, gt=0, le=3600, description="Longest wait, in seconds.")
    jitter: float = Field(
        default=0.5, ge=0, le=1, description="Each wait is shortened by up to this fraction."
    )

    @model_validator(mode="after")
    def _check_delays(self) -> RetryParams:
        if self.max_delay < self.base_delay:
            raise ValueError(
                f"max_delay must be >= base_delay ({self.base_delay:g}), was {self.max_delay:g}"
            )
        return self

    def policy(self) -> RetryPolicy:
        """Return the policy these keys describe."""
        return RetryPolicy(self.max_attempts, self.base_delay, self.max_delay, self.jitter)
