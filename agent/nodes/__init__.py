"""Graph nodes, one module each. ``traced_node`` gives every node its own span."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from langgraph.errors import GraphInterrupt
from langgraph.runtime import Runtime

from agent.context import Context
from agent.state import EmailState
from app.telemetry import tracer

NodeFn = Callable[[EmailState, Runtime[Context]], Awaitable[dict[str, Any]]]
F = TypeVar("F", bound=NodeFn)


def traced_node(name: str) -> Callable[[F], F]:
    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        async def run(state: EmailState, runtime: Runtime[Context]) -> dict[str, Any]:
            with tracer().start_as_current_span(f"node {name}") as span:
                span.set_attribute("langgraph.node", name)
                span.set_attribute("mailspine.email_id", state["email"].email_id)
                try:
                    return await fn(state, runtime)
                except GraphInterrupt:
                    # An interrupt is the review pause, not a failure.
                    span.set_attribute("mailspine.interrupted", True)
                    raise

        return run  # type: ignore[return-value]

    return wrap
