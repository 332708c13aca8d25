"""Trace viewer: one trace's span tree from the ``spans`` table (scope ``emails:read``).

Only attributes on an allowlist leave the API: ids, counts, model and tool names, tokens, cost,
the prompt version, guardrail decisions and scores. Span status messages and events are left
out: they can hold an exception's text.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated

from fastapi import FastAPI, HTTPException, Path, status

from app.models import SpanRecord
from app.repo import dashboard_queries as q
from gateway.auth import EmailReader
from gateway.routes_deps import AUTH_ERRORS, Session, errors
from gateway.schemas_dashboard import AttrValue, SpanOut, TraceOut

TAGS: list[str | Enum] = ["traces"]
TraceId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="A trace id: 32 lowercase hex digits")]

SHOWN = frozenset(
    {
        "gen_ai.operation.name",
        "gen_ai.provider.name",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.output.type",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.tool.name",
        "gen_ai.tool.type",
        "langgraph.node",
        "mailspine.email_id",
        "mailspine.review_id",
        "mailspine.review.decision",
        "mailspine.prompt",
        "mailspine.model.requests",
        "mailspine.model.cost_micro_usd",
        "mailspine.guardrail.decision",
        "mailspine.guardrail.degraded",
        "mailspine.guardrail.scanners",
        "mailspine.guardrail.redacted_secrets",
        "mailspine.interrupted",
        "mailspine.outcome",
        "mailspine.tool",
        "mailspine.tool.access",
        "mailspine.history.backend",
        "mailspine.history.items",
        "mailspine.send.attempt",
        "mailspine.send.reconciled",
        "error.type",
    }
)
# Per-scanner numbers: mailspine.guardrail.<scanner>.score and .latency_ms.
SHOWN_PATTERN = re.compile(r"^mailspine\.guardrail\.[a-z0-9_]{1,64}\.(?:score|latency_ms)$")
_MAX_TEXT = 200


def _value(value: object) -> AttrValue | None:
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value[:_MAX_TEXT]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v[:_MAX_TEXT] for v in value[:50]]
    return None


def shown_attributes(attrs: dict[str, object] | None) -> dict[str, AttrValue]:
    out: dict[str, AttrValue] = {}
    for key, raw in (attrs or {}).items():
        if key in SHOWN or SHOWN_PATTERN.match(key):
            value = _value(raw)
            if value is not None:
                out[key] = value
    return out


def span_tree(spans: list[SpanRecord]) -> list[SpanOut]:
    """Depth first from the roots (a span whose parent is not stored is a root), by start time."""
    ids = {s.span_id for s in spans}
    children: dict[str | None, list[SpanRecord]] = {}
    for span in spans:  # already ordered by start time
        parent = span.parent_span_id if span.parent_span_id in ids else None
        children.setdefault(parent, []).append(span)
    out: list[SpanOut] = []
    stack = [(s, 0) for s in reversed(children.get(None, []))]
    while stack:
        span, depth = stack.pop()
        out.append(
            SpanOut(
                span_id=span.span_id,
                parent_span_id=span.parent_span_id,
                depth=depth,
                name=span.name,
                service=span.service_name,
                start=span.start_time,
                duration_ms=float(span.duration_ms),
                status=span.status_code,
                attributes=shown_attributes(span.attributes),
            )
        )
        stack.extend((c, depth + 1) for c in reversed(children.get(span.span_id, [])))
    return out


def register(app: FastAPI) -> None:
    @app.get(
        "/v1/traces/{trace_id}",
        tags=TAGS,
        response_model=TraceOut,
        responses={**AUTH_ERRORS, **errors(404)},
    )
    async def get_trace(trace_id: TraceId, _: EmailReader, session: Session) -> TraceOut:
        """The trace's spans as a tree: names, timing, status and selected attributes."""
        spans = await q.spans_of_trace(session, trace_id=trace_id)
        if not spans:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no spans stored for trace {trace_id}")
        return TraceOut(trace_id=trace_id, spans=span_tree(spans))
