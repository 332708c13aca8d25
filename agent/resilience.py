"""What to do when a model provider misbehaves: classify the error, back off, trip a breaker.

- ``classify`` sorts an exception from any provider SDK (openai, anthropic, httpx, asyncio) into
  *transient* (429, 5xx, timeouts, dropped connections, a response that is not JSON: retry with
  backoff, honouring ``Retry-After``) or *rejected* (400 / 401 / 403 / 404 / 422 and content
  filters: the same request cannot succeed, so fail fast with a typed ``ModelRejected``).
- ``CircuitBreaker``: after ``threshold`` consecutive transient failures it opens for ``reset_s``;
  every call then raises ``CircuitOpen`` at once (no request is sent) with the time left, so the
  worker puts the email back in the queue to wait instead of failing it. After ``reset_s`` one
  probe call is let through (half-open): success closes the breaker, failure opens it again.
  One breaker per provider endpoint per process (``breaker_for``): every worker learns on its own.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Literal

from app.errors import CircuitOpen

Kind = Literal["transient", "rejected"]
_TRANSIENT_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})  # 529: Anthropic "overloaded"
_REJECTED_STATUS = {400: "bad_request", 401: "auth", 403: "auth", 404: "bad_request", 422: "bad_request"}
_TRANSIENT_NAMES = (
    "Timeout",  # openai.APITimeoutError, anthropic.APITimeoutError, httpx.*Timeout, asyncio/builtin
    "APIConnectionError",
    "ConnectError",
    "ReadError",
    "RemoteProtocolError",
    "APIResponseValidationError",  # a 200 whose body is not what the API promises
    "JSONDecodeError",
)


@dataclass(frozen=True)
class Classified:
    kind: Kind
    reason: str  # short, safe for logs and spans (no request content)
    status: int | None = None
    retry_after_s: float | None = None
    rejected_kind: str = ""  # auth | bad_request | content_filter (when kind == "rejected")


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    raw = headers.get("retry-after-ms")
    if raw is not None:
        try:
            return max(0.0, float(raw) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        try:  # an HTTP date
            return max(0.0, float(parsedate_to_datetime(raw).timestamp()) - time.time())
        except (TypeError, ValueError):
            return None


def _content_filtered(exc: BaseException) -> bool:
    body = getattr(exc, "body", None)
    text = str(body if body is not None else exc).lower()
    return "content_filter" in text or "content management policy" in text or "content_policy" in text


def classify(exc: BaseException) -> Classified:
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int):
        status = getattr(getattr(exc, "response", None), "status_code", None)
    name = type(exc).__name__
    if isinstance(status, int):
        if status < 300:  # the server said OK but the body did not parse: a glitch, try again
            return Classified("transient", f"malformed response ({name}, HTTP {status})", status)
        if status in _REJECTED_STATUS:
            kind = "content_filter" if status == 400 and _content_filtered(exc) else _REJECTED_STATUS[status]
            return Classified("rejected", f"HTTP {status} ({name})", status, rejected_kind=kind)
        if status in _TRANSIENT_STATUS or status >= 500:
            return Classified("transient", f"HTTP {status} ({name})", status, _retry_after(exc))
        return Classified("rejected", f"HTTP {status} ({name})", status, rejected_kind="bad_request")
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)) or any(n in name for n in _TRANSIENT_NAMES):
        return Classified("transient", name)
    if isinstance(exc, (ConnectionError, OSError)):
        return Classified("transient", name)
    if isinstance(exc, ValueError) and "json" in str(exc).lower():
        return Classified("transient", f"malformed response ({name})")
    # Anything else is a bug or an SDK surprise: not retried here, so it surfaces with its type.
    return Classified("rejected", name, rejected_kind="bad_request")


def backoff_s(attempt: int, *, base_s: float, max_s: float, retry_after_s: float | None) -> float:
    """Seconds before retry number ``attempt`` (0-based): exponential with jitter, at least what
    the server asked for, never more than ``max_s``."""
    wait: float = base_s * float(2**attempt) * (0.5 + random.random() / 2)
    if retry_after_s is not None:
        wait = max(wait, retry_after_s)
    return min(wait, max_s)


@dataclass
class CircuitBreaker:
    name: str
    threshold: int
    reset_s: float
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half_open" if self.clock() - self.opened_at >= self.reset_s else "open"

    def before_call(self) -> None:
        """Raise ``CircuitOpen`` unless a call may go out now."""
        with self._lock:
            if self.opened_at is None:
                return
            left = self.reset_s - (self.clock() - self.opened_at)
            if left > 0:
                raise CircuitOpen(
                    f"circuit breaker for {self.name} is open after {self.failures} consecutive "
                    f"failures; next probe in {left:.0f} s",
                    retry_after_s=left,
                )
            if self.probing:  # another call is already probing
                raise CircuitOpen(
                    f"circuit breaker for {self.name} is half-open: a probe call is in flight",
                    retry_after_s=min(self.reset_s, 5.0),
                )
            self.probing = True

    def record_success(self) -> None:
        with self._lock:
            self.failures, self.opened_at, self.probing = 0, None, False

    def record_failure(self) -> None:
        with self._lock:
            self.failures += 1
            if self.probing or self.failures >= self.threshold:
                self.opened_at = self.clock()
            self.probing = False

    def release_probe(self) -> None:
        """A probe that ended without saying anything about the provider (e.g. a 400)."""
        with self._lock:
            self.probing = False


_breakers: dict[str, CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def breaker_for(name: str, *, threshold: int, reset_s: float) -> CircuitBreaker:
    with _breakers_lock:
        breaker = _breakers.get(name)
        if breaker is None or (breaker.threshold, breaker.reset_s) != (threshold, reset_s):
            breaker = _breakers[name] = CircuitBreaker(name=name, threshold=threshold, reset_s=reset_s)
        return breaker


def reset_breakers() -> None:
    """Forget every breaker (tests; a worker starting over)."""
    with _breakers_lock:
        _breakers.clear()
