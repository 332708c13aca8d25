"""The one exception hierarchy of mailspine.

    MailspineError
    ├── ConfigurationError        settings missing or unsafe; raised at start-up
    ├── DatabaseError             embedded Postgres failed to start, migrations missing, the job
    │                             queue lost its database (the worker exits 2: restart it)
    ├── MailboxError              a mailbox cannot be read or written
    │   ├── MailboxAuthError      wrong credentials / expired token (fix the credential; no retry)
    │   └── MailboxUnavailable    unreachable host, TLS failure, dropped connection (retried with backoff)
    ├── GatewayError
    │   └── MessageRejected       input refused before it reaches the agent (too big, unparseable)
    ├── AgentError
    │   ├── ModelError            a model call failed or returned unusable output
    │   │   ├── ModelUnavailable  429 / 5xx / timeout / bad response after retries (the job is retried)
    │   │   │   └── CircuitOpen   the provider's circuit breaker is open: the email waits
    │   │   └── ModelRejected     400 / 401 / 403 / 404 / content filter: fails fast, never retried
    │   ├── BudgetExceeded        a per-email or daily budget is spent (the email goes to review)
    │   └── ReviewConflict        a decision does not match the pending review (stale hash, decided)
    ├── PromptRegistryError       agent/prompts/registry.py: a released file edited in place, a
    │                             promotion without a passing eval run, an unknown version
    └── ToolError                 a tool call failed
        ├── ToolAuthError         the tool's credential is missing, invalid or lacks a scope
        ├── ToolNotAllowed        tools/base.py: a node called a tool it is not bound to (never retried)
        └── ToolUnavailable       the remote system is unreachable or timed out (outcome may be unknown)
            └── RateLimited       tools/base.py: no token in the tool's shared bucket in time (retried)

Errors are never swallowed: a per-email failure is recorded on the email and the run, logged,
and the batch moves on.
"""

from __future__ import annotations


class MailspineError(Exception):
    """Base of every error mailspine raises on purpose."""


class ConfigurationError(MailspineError):
    pass


class DatabaseError(MailspineError):
    pass


class MailboxError(MailspineError):
    pass


class MailboxAuthError(MailboxError):
    pass


class MailboxUnavailable(MailboxError):
    pass


class GatewayError(MailspineError):
    pass


class MessageRejected(GatewayError):
    pass


class AgentError(MailspineError):
    pass


class ModelError(AgentError):
    pass


class ModelUnavailable(ModelError):
    """Transient: the provider did not answer usefully. ``retry_after_s``: when to try again."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class CircuitOpen(ModelUnavailable):
    pass


class ModelRejected(ModelError):
    """The provider refused the request itself: retrying the same request cannot help.

    ``kind``: ``auth`` (401/403: fix the key), ``bad_request`` (400/404/422: fix the model name or
    the request), ``content_filter`` (the provider's safety system refused the content)."""

    def __init__(self, message: str, *, kind: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status


class BudgetExceeded(AgentError):
    pass


class ReviewConflict(AgentError):
    pass


class ToolError(MailspineError):
    pass


class ToolAuthError(ToolError):
    pass


class ToolUnavailable(ToolError):
    pass
