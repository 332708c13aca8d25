"""The tool contract: every tool declares what it is, what it may touch, and is traced per call."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from opentelemetry.trace import Span, Status, StatusCode

from app.telemetry import tracer


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str  # reaches the model when the tool is bound to a node
    access: Literal["read", "write"]
    scopes: tuple[str, ...]
    timeout_s: float = 10.0


@contextmanager
def tool_span(spec: ToolSpec, *, call_id: str | None = None) -> Iterator[Span]:
    """One ``execute_tool {name}`` span per call (GenAI semantic conventions)."""
    with tracer().start_as_current_span(f"execute_tool {spec.name}") as span:
        span.set_attribute("gen_ai.operation.name", "execute_tool")
        span.set_attribute("gen_ai.tool.name", spec.name)
        span.set_attribute("gen_ai.tool.type", "function")
        span.set_attribute("mailspine.tool.access", spec.access)
        if call_id:
            span.set_attribute("gen_ai.tool.call.id", call_id)
        try:
            yield span
        except Exception as exc:
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            span.set_attribute("error.type", type(exc).__name__)
            raise
