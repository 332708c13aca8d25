"""Rate limits: in-process token buckets, per principal and per client IP.

Per process: with N API processes behind a load balancer a client gets up to N times the
configured rate. Login lockout, which must hold across processes, lives in the database instead
(``gateway.auth_throttle``). Request body size limits are FastAPI's own ``max_body_size`` (set in
``gateway.api``): a body over the limit is answered 413 before it is read in full.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import HTTPException, status

from app.settings_auth import AuthSettings

_MAX_KEYS = 50_000  # beyond this, full (idle) buckets are forgotten


@dataclass
class TokenBucket:
    """``rate_per_minute`` requests per minute on average, bursts of up to that many."""

    rate_per_minute: int
    clock: Callable[[], float] = time.monotonic
    _state: dict[str, tuple[float, float]] = field(default_factory=dict)  # key -> (tokens, at)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def capacity(self) -> float:
        return float(self.rate_per_minute)

    def _refill(self, key: str, now: float) -> float:
        tokens, at = self._state.get(key, (self.capacity, now))
        return min(self.capacity, tokens + (now - at) * self.rate_per_minute / 60.0)

    def take(self, key: str) -> float:
        """Spend one token: 0.0 if allowed, else the seconds until one is available."""
        with self._lock:
            now = self.clock()
            tokens = self._refill(key, now)
            if tokens < 1.0:
                self._state[key] = (tokens, now)
                return (1.0 - tokens) * 60.0 / self.rate_per_minute
            self._state[key] = (tokens - 1.0, now)
            if len(self._state) > _MAX_KEYS:
                self._forget_idle(now)
            return 0.0

    def retry_after(self, key: str) -> float:
        """Seconds until the next request would be allowed (0.0: now), without spending."""
        with self._lock:
            tokens = self._refill(key, self.clock())
            return 0.0 if tokens >= 1.0 else (1.0 - tokens) * 60.0 / self.rate_per_minute

    def _forget_idle(self, now: float) -> None:
        for key in [k for k in self._state if self._refill(k, now) >= self.capacity]:
            del self._state[key]


class Limits:
    """The buckets of one app: per principal (API, ingest) and per IP (anonymous, sign-in)."""

    def __init__(self, settings: AuthSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.principal = TokenBucket(settings.rate_limit_per_minute, clock)
        self.ingest = TokenBucket(settings.ingest_rate_limit_per_minute, clock)
        self.anonymous = TokenBucket(settings.anonymous_rate_limit_per_minute, clock)
        self.login = TokenBucket(settings.login_rate_limit_per_minute, clock)


def too_many(retry_after_s: float, what: str) -> HTTPException:
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        f"rate limit exceeded ({what}); retry later",
        headers={"Retry-After": str(max(1, math.ceil(retry_after_s)))},
    )


def enforce(bucket: TokenBucket, key: str, what: str) -> None:
    wait = bucket.take(key)
    if wait > 0:
        raise too_many(wait, what)
