"""The one retry policy and loop that market-data reads and the venue's reads share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradeloom.runtime.retrying import (
    RetriesExhausted,
    RetryPolicy,
    call_with_retries,
    retry_after_seconds,
)


class Flaky(Exception):
    pass


class Refused(Exception):
    pass


def failing(errors: list[Exception], answer: str = "ok") -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def read() -> str:
        calls.append(len(calls) + 1)
        if errors:
            raise errors.pop(0)
        return answer

    return calls, read


policies = st.builds(
    RetryPolicy,
    max_attempts=st.integers(1, 10),
    base_delay=st.floats(0.01, 60.0),
    max_delay=st.floats(60.0, 3600.0),
    jitter=st.floats(0.0, 1.0),
)


@given(
    policy=policies,
    retry=st.integers(1, 40),
    draw=st.floats(0.0, 1.0, exclude_max=True),
    retry_after=st.floats(0.0, 3600.0),
)
def test_a_delay_honours_retry_after_in_full_and_is_otherwise_capped(
    policy: RetryPolicy, retry: int, draw: float, retry_after: float
) -> None:
    wait = policy.delay(retry, draw, retry_after)
    assert wait >= retry_after
    assert wait <= max(policy.max_delay, retry_after)
    assert wait <= policy.delay(retry, 0.0, retry_after)  # jitter only shortens
    assert policy.delay(retry, 0.0) <= policy.delay(retry + 1, 0.0)  # the ceiling never drops


def test_jitter_shortens_waits_by_up_to_its_fraction() -> None:
    policy = RetryPolicy(max_attempts=9, base_delay=1.0, max_delay=8.0, jitter=0.5)
    assert [policy.delay(n, 0.0) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert [policy.delay(n, 0.5) for n in range(1, 6)] == [0.75, 1.5, 3.0, 6.0, 6.0]
    assert policy.delay(5, 0.999) == pytest.approx(4.004)
    assert policy.delay(1, 0.5, retry_after=2.0) == 2.0
    assert policy.delay(1, 0.5, retry_after=60.0) == 60.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_attempts": 0}, "max_attempts must be >= 1, was 0"),
        (
            {"base_delay": 5.0, "max_delay": 2.0},
            "need 0 < base_delay <= max_delay, was 5.0 and 2.0",
        ),
        ({"jitter": 1.5}, r"jitter must be in \[0, 1\], was 1.5"),
    ],
)
def test_an_impossible_policy_is_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=rf"^{message}$"):
        RetryPolicy(**kwargs)


def test_retryable_errors_are_retried_with_the_policy_waits_and_retry_after() -> None:
    calls, read = failing([Flaky("503"), Flaky("429"), Flaky("timeout")])
    sleeps: list[float] = []

    answer = call_with_retries(
        read,
        what="fetch_ticker",
        policy=RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=3.0),
        is_retryable=lambda error: isinstance(error, Flaky),
        retry_after=lambda error: 45.0 if str(error) == "429" else 0.0,
        sleep=sleeps.append,
        draw=lambda: 0.0,
    )

    assert (answer, calls, sleeps) == ("ok", [1, 2, 3, 4], [1.0, 45.0, 3.0])


def test_an_error_that_is_not_retryable_is_raised_as_it_was_at_once() -> None:
    refused = Refused("bad symbol")
    calls, read = failing([refused])
    sleeps: list[float] = []

    with pytest.raises(Refused) as info:
        call_with_retries(
            read,
            what="fetch_ticker",
            policy=RetryPolicy(),
            is_retryable=lambda error: isinstance(error, Flaky),
            sleep=sleeps.append,
        )

    assert (info.value, calls, sleeps) == (refused, [1], [])


class Unavailable(RetriesExhausted):
    pass


def test_giving_up_names_the_read_the_attempts_and_the_last_error_on_one_line() -> None:
    last = Flaky("503\n  Service   Unavailable")
    calls, read = failing([Flaky("502"), last])

    with pytest.raises(Unavailable) as info:
        call_with_retries(
            read,
            what="fetch_order",
            policy=RetryPolicy(max_attempts=2),
            is_retryable=lambda error: isinstance(error, Flaky),
            sleep=lambda _: None,
            exhausted=Unavailable,
        )

    assert str(info.value) == (
        "fetch_order: no answer after 2 attempts; last error Flaky: 503 Service Unavailable"
    )
    assert (info.value.operation, info.value.attempts, info.value.__cause__) == (
        "fetch_order",
        2,
        last,
    )
    assert calls == [1, 2]
    assert str(RetriesExhausted("load_markets", 1, "Flaky: x")) == (
        "load_markets: no answer after 1 attempt; last error Flaky: x"
    )


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"RETRY-AFTER": "86400"}, 3600.0),
        ({"Retry-After": "-3"}, 0.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),
        ({"Content-Type": "application/json"}, 0.0),
        (None, 0.0),
    ],
)
def test_retry_after_is_read_from_the_headers(
    headers: dict[str, str] | None, seconds: float
) -> None:
    assert retry_after_seconds(headers) == seconds
