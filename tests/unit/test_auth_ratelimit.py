"""Token buckets: the burst, the refill, Retry-After, and keys that do not share a budget."""

from __future__ import annotations

import pytest
from fastapi import HTTPException

from app.settings_auth import AuthSettings
from gateway.ratelimit import Limits, TokenBucket, enforce


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill() -> None:
    clock = Clock()
    bucket = TokenBucket(60, clock)  # one a second, bursts of 60
    assert all(bucket.take("a") == 0.0 for _ in range(60))
    wait = bucket.take("a")
    assert 0.99 <= wait <= 1.0
    assert bucket.take("b") == 0.0  # another key, its own budget
    clock.now += 1.0
    assert bucket.take("a") == 0.0 and bucket.take("a") > 0


def test_retry_after_does_not_spend() -> None:
    bucket = TokenBucket(2, Clock())
    assert bucket.retry_after("k") == 0.0
    bucket.take("k"), bucket.take("k")
    assert bucket.retry_after("k") == pytest.approx(30.0)
    assert bucket.retry_after("k") == pytest.approx(30.0)


def test_enforce_raises_429_with_retry_after() -> None:
    bucket = TokenBucket(1, Clock())
    enforce(bucket, "k", "test")
    with pytest.raises(HTTPException) as err:
        enforce(bucket, "k", "test")
    assert err.value.status_code == 429 and err.value.headers == {"Retry-After": "60"}


def test_limits_follow_the_settings() -> None:
    limits = Limits(AuthSettings(rate_limit_per_minute=7, login_rate_limit_per_minute=3))
    assert (limits.principal.rate_per_minute, limits.login.rate_per_minute) == (7, 3)
    assert limits.ingest.rate_per_minute == 1200 and limits.anonymous.rate_per_minute == 60
