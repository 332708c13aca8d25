"""Graph nodes, one module each. ``traced_node`` gives every node its own span."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from langgraph.config import get_config
from langgraph.errors import GraphInterrupt
from langgraph.runtime import Runtime

from agent.context import Context
from agent.llm import CallScope
from agent.state import EmailState, Usage
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


def call_scope(state: EmailState, runtime: Runtime[Context], node: str) -> CallScope:
    """The budget scope of a model call made by ``node``: what the email spent before it."""
    ctx = runtime.context
    return CallScope(
        thread_id=str(get_config()["configurable"]["thread_id"]),
        node=node,
        llm=ctx.settings.llm,
        spent=state.get("usage") or Usage(),
        timeout_s=ctx.settings.model_timeout_s,
        db=ctx.db,
    )


def unsure_reason(what: str, error: str | None, unsure: str | None) -> str:
    """How an unusable model result reads in the review reasons."""
    if unsure == "budget":
        return f"budget exceeded at {what}: {error}"
    if unsure == "refused":
        return f"{what} refused: {error}"
    return f"{what} invalid: {error}"
