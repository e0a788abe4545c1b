"""How patiently to repeat a read that failed on the network: attempts and waits.

The wait before retry ``n`` (1-based) is ``min(max_delay, base_delay * 2**(n-1))``,
shortened by up to ``jitter`` of itself at random, so that many clients hit by the same
outage do not come back in lockstep ("equal jitter" at the default 0.5), and never
shorter than a ``Retry-After`` the exchange asked for: retrying a Binance 429 early
earns a 418 ban. Kept apart from `ccxt_retry` (which calls ccxt) so that validating a
strategy file does not import ccxt.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field, model_validator

from tradeloom.plugins.component import Params

__all__ = ["RetryParams", "RetryPolicy"]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to repeat a read that failed on the network.

    Attributes:
        max_attempts: Requests per read, the first included (1: never retry).
        base_delay: Seconds before the first retry.
        max_delay: Cap on the backoff (a longer ``Retry-After`` is still honoured).
        jitter: Fraction in [0, 1] by which a wait is shortened at random.
    """

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, was {self.max_attempts}")
        if not 0 < self.base_delay <= self.max_delay:
            raise ValueError(
                f"need 0 < base_delay <= max_delay, was {self.base_delay} and {self.max_delay}"
            )
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be in [0, 1], was {self.jitter}")

    def delay(self, retry: int, draw: float, retry_after: float = 0.0) -> float:
        """Return the seconds to wait before retry number ``retry`` (1-based).

        Args:
            retry: 1 for the wait after the first failure.
            draw: A uniform draw in [0, 1): how much of the jitter to take.
            retry_after: The exchange's ``Retry-After``, a floor on the wait.
        """
        backoff = min(self.max_delay, self.base_delay * 2.0 ** (retry - 1))
        return max(backoff * (1.0 - self.jitter * draw), retry_after)


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
