"""The tool contract: every tool declares what it is, what it may touch, and is traced per call.

A ``ToolSpec`` says what a tool is (name, description), what it takes and returns (pydantic
models), whether it reads or writes, which scopes its credential needs, which credential that is
(a name the secrets provider resolves, ``tools/secrets.py``), how long a call may wait, and how
often it may be called across all workers (``rate_per_s`` / ``burst``, ``tools/ratelimit.py``).
Every tool is listed once in ``tools/registry.py``; nodes reach tools only through the node's
``BoundTools`` there.

Errors specific to the contract (their place in the tree of ``app/errors.py``):

    ToolError
    ├── ToolNotAllowed            a node asked for a tool it is not bound to (never retried)
    └── ToolUnavailable
        └── RateLimited           the tool's shared rate limit had no token in time (the job retries)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from opentelemetry.trace import Span, Status, StatusCode
from pydantic import BaseModel

from app.errors import ToolError, ToolUnavailable
from app.telemetry import tracer


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str  # reaches the model when the tool is bound to a node
    access: Literal["read", "write"]
    scopes: tuple[str, ...]
    timeout_s: float = 10.0  # also bounds how long a call waits for a rate-limit token
    input_model: type[BaseModel] | None = None
    output_model: type[BaseModel] | None = None
    # The name of the one credential this tool uses (``tools/secrets.py``); None: it needs none
    # (it works on mailspine's own database).
    credential: str | None = None
    # Shared across all workers (a token bucket in Postgres). None: not limited.
    rate_per_s: float | None = None
    burst: int = 1


class ToolNotAllowed(ToolError):
    """A node asked for a tool it is not bound to. Not transient: retrying asks again."""

    def __init__(self, *, node: str, tool: str) -> None:
        super().__init__(f"node {node!r} is not bound to tool {tool!r}; it may not call it")
        self.node, self.tool = node, tool


class RateLimited(ToolUnavailable):
    """No token in the tool's shared bucket within the tool's timeout; ``retry_after_s``: when one
    will be there. Transient: the job is retried (``app/tasks.py``)."""

    def __init__(self, *, tool: str, retry_after_s: float) -> None:
        super().__init__(f"tool {tool!r} is rate limited; next token in {retry_after_s:.2f} s")
        self.tool, self.retry_after_s = tool, retry_after_s


@contextmanager
def tool_span(spec: ToolSpec, *, call_id: str | None = None) -> Iterator[Span]:
    """One ``execute_tool {name}`` span per call (GenAI semantic conventions)."""
    with tracer().start_as_current_span(f"execute_tool {spec.name}") as span:
        span.set_attribute("gen_ai.operation.name", "execute_tool")
        span.set_attribute("gen_ai.tool.name", spec.name)
        span.set_attribute("gen_ai.tool.type", "function")
        span.set_attribute("mailspine.tool.access", spec.access)
        if spec.credential:  # the credential's name, never its value
            span.set_attribute("mailspine.tool.credential", spec.credential)
        if call_id:
            span.set_attribute("gen_ai.tool.call.id", call_id)
        try:
            yield span
        except Exception as exc:
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            span.set_attribute("error.type", type(exc).__name__)
            raise
