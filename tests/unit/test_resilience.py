"""Error classification, backoff, the circuit breaker and the job retry policy (no network)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import httpx
import openai
import pytest
from procrastinate.exceptions import JobAborted

from agent.resilience import CircuitBreaker, backoff_s, classify
from app.errors import CircuitOpen, ModelUnavailable, ToolUnavailable
from app.tasks import CIRCUIT_MAX_ATTEMPTS, TransientRetry

REQUEST = httpx.Request("POST", "http://model.test/v1/chat/completions")


def _status_error(
    cls: type[openai.APIStatusError], status: int, body: Any = None, **headers: str
) -> Exception:
    response = httpx.Response(status, headers=headers, request=REQUEST)
    return cls("error", response=response, body=body)


@pytest.mark.parametrize(
    ("exc", "kind", "rejected"),
    [
        (_status_error(openai.RateLimitError, 429, **{"retry-after": "7"}), "transient", ""),
        (_status_error(openai.InternalServerError, 503), "transient", ""),
        (_status_error(openai.InternalServerError, 529), "transient", ""),
        (_status_error(openai.AuthenticationError, 401), "rejected", "auth"),
        (_status_error(openai.PermissionDeniedError, 403), "rejected", "auth"),
        (_status_error(openai.NotFoundError, 404), "rejected", "bad_request"),
        (
            _status_error(openai.BadRequestError, 400, {"code": "content_filter"}),
            "rejected",
            "content_filter",
        ),
        (
            _status_error(openai.BadRequestError, 400, {"code": "context_length_exceeded"}),
            "rejected",
            "bad_request",
        ),
        (openai.APITimeoutError(request=REQUEST), "transient", ""),
        (openai.APIConnectionError(request=REQUEST), "transient", ""),
        (httpx.ReadTimeout("slow"), "transient", ""),
        (TimeoutError(), "transient", ""),
        (json.JSONDecodeError("Expecting value", "<html>", 0), "transient", ""),
        (ConnectionResetError(), "transient", ""),
        (KeyError("bug"), "rejected", "bad_request"),
    ],
)
def test_classify(exc: Exception, kind: str, rejected: str) -> None:
    verdict = classify(exc)
    assert (verdict.kind, verdict.rejected_kind) == (kind, rejected), verdict


def test_retry_after_headers_seconds_milliseconds_and_dates() -> None:
    assert classify(_status_error(openai.RateLimitError, 429, **{"retry-after": "7"})).retry_after_s == 7.0
    ms = _status_error(openai.RateLimitError, 429, **{"retry-after-ms": "250", "retry-after": "9"})
    assert classify(ms).retry_after_s == 0.25
    date = _status_error(openai.RateLimitError, 429, **{"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert classify(date).retry_after_s == 0.0  # in the past


def test_backoff_grows_honours_retry_after_and_is_capped() -> None:
    assert 0.5 <= backoff_s(0, base_s=1, max_s=30, retry_after_s=None) <= 1.0
    assert 4.0 <= backoff_s(3, base_s=1, max_s=30, retry_after_s=None) <= 8.0
    assert backoff_s(0, base_s=1, max_s=30, retry_after_s=12) == 12
    assert backoff_s(10, base_s=1, max_s=30, retry_after_s=100) == 30


def test_breaker_opens_half_opens_with_one_probe_and_closes() -> None:
    now = [0.0]
    breaker = CircuitBreaker(name="p", threshold=3, reset_s=10, clock=lambda: now[0])
    for _ in range(2):
        breaker.before_call()
        breaker.record_failure()
    assert breaker.state == "closed"
    breaker.record_success()  # a success resets the count
    for _ in range(3):
        breaker.before_call()
        breaker.record_failure()
    assert breaker.state == "open"
    now[0] = 4.0
    with pytest.raises(CircuitOpen) as opened:
        breaker.before_call()
    assert opened.value.retry_after_s == pytest.approx(6.0)
    now[0] = 10.5
    assert breaker.state == "half_open"
    breaker.before_call()  # the probe
    with pytest.raises(CircuitOpen, match="probe"):
        breaker.before_call()  # only one at a time
    breaker.record_failure()  # the probe failed: open again for a full period
    assert breaker.state == "open"
    now[0] = 21.0
    breaker.before_call()
    breaker.record_success()
    assert breaker.state == "closed" and breaker.failures == 0


def _job(attempts: int) -> Any:
    return SimpleNamespace(attempts=attempts)


def _wait(decision: Any) -> int | None:
    """Seconds until the retry (None: no retry)."""
    if decision is None:
        return None
    return round((decision.retry_at - datetime.now(UTC)).total_seconds())


def test_job_retry_policy() -> None:
    policy = TransientRetry(max_attempts=3, base_s=2, max_wait_s=600)
    assert _wait(policy.get_retry_decision(exception=ToolUnavailable("crm down"), job=_job(0))) == 3
    assert _wait(policy.get_retry_decision(exception=ToolUnavailable("crm down"), job=_job(2))) == 9
    slow = policy.get_retry_decision(exception=ModelUnavailable("429", retry_after_s=40), job=_job(0))
    assert _wait(slow) == 41
    assert policy.get_retry_decision(exception=ToolUnavailable("x"), job=_job(3)) is None
    assert policy.get_retry_decision(exception=ValueError("bug"), job=_job(0)) is None
    # A job cut off by a stopping worker's graceful timeout is retried however often it happened.
    assert _wait(policy.get_retry_decision(exception=asyncio.CancelledError(), job=_job(7))) == 1
    assert _wait(policy.get_retry_decision(exception=JobAborted(), job=_job(0))) == 1
    # An open breaker waits as long as it takes, far beyond max_attempts, then gives up after a day.
    waiting = policy.get_retry_decision(exception=CircuitOpen("open", retry_after_s=30), job=_job(500))
    assert _wait(waiting) == 31
    assert (
        policy.get_retry_decision(
            exception=CircuitOpen("open", retry_after_s=30), job=_job(CIRCUIT_MAX_ATTEMPTS)
        )
        is None
    )
