"""Runs explorer: search emails and their runs, and one email's timeline (scope ``emails:read``).

The sender address and subject are shown as ``/v1/emails`` shows them (the stored values);
nothing else of the message is: no body, no extraction beyond the intent, no effect payloads.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Annotated, Literal

from fastapi import FastAPI, HTTPException, Query, status

from app.models import Email, Run, SpanRecord
from app.repo import dashboard_queries as q
from app.repo import emails
from gateway.auth import EmailReader
from gateway.routes_deps import AUTH_ERRORS, RowId, Session, errors
from gateway.schemas_dashboard import RunRow, RunsPage, Timeline, TimelineEvent

TAGS: list[str | Enum] = ["runs"]
EmailState = Literal["queued", "processing", "review", "done", "rejected", "quarantined", "failed"]
GUARD_SPAN = "apply_guardrail gateway"


def _usd(value: Decimal | int | float | None) -> float:
    return float(value or 0)


def _row(email: Email, run: Run | None) -> RunRow:
    intent = (run.extraction or {}).get("intent") if run else None
    return RunRow(
        email_id=email.id,
        sender=email.sender_address,
        subject=email.subject,
        email_status=email.status,
        intent=intent if isinstance(intent, str) else None,
        route=run.route if run else None,
        run_status=run.status if run else None,
        cost_usd=_usd(run.cost_usd if run else None),
        input_tokens=run.input_tokens if run else 0,
        output_tokens=run.output_tokens if run else 0,
        trace_id=email.trace_id,
        worker=run.worker if run else None,
        received_at=email.received_at,
        started_at=run.started_at if run else None,
        finished_at=run.finished_at if run else None,
    )


def _int(value: object) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _node_events(spans: list[SpanRecord]) -> list[TimelineEvent]:
    """One event per node span, with the tokens and cost of the model calls made inside it."""
    by_id = {s.span_id: s for s in spans}
    usage: dict[str, list[int]] = {}
    for span in spans:
        attrs = span.attributes or {}
        if "gen_ai.usage.input_tokens" not in attrs:
            continue
        parent = by_id.get(span.parent_span_id or "")
        for _ in range(50):  # walk up to the enclosing node span (a trace is shallow)
            if parent is None or parent.name.startswith("node "):
                break
            parent = by_id.get(parent.parent_span_id or "")
        if parent is not None:
            totals = usage.setdefault(parent.span_id, [0, 0, 0])
            totals[0] += _int(attrs.get("gen_ai.usage.input_tokens"))
            totals[1] += _int(attrs.get("gen_ai.usage.output_tokens"))
            totals[2] += _int(attrs.get("mailspine.model.cost_micro_usd"))
    events = []
    for span in spans:
        if not span.name.startswith("node "):
            continue
        attrs = span.attributes or {}
        node = attrs.get("langgraph.node")
        tokens = usage.get(span.span_id)
        events.append(
            TimelineEvent(
                at=span.start_time,
                kind="node",
                name=node if isinstance(node, str) else span.name[5:],
                duration_ms=float(span.duration_ms),
                status="interrupted" if attrs.get("mailspine.interrupted") else span.status_code,
                input_tokens=tokens[0] if tokens else 0,
                output_tokens=tokens[1] if tokens else 0,
                cost_usd=tokens[2] / 1_000_000 if tokens else 0.0,
                span_id=span.span_id,
            )
        )
    return events


def register(app: FastAPI) -> None:
    @app.get("/v1/runs", tags=TAGS, response_model=RunsPage, responses=AUTH_ERRORS)
    async def search_runs(
        _: EmailReader,
        session: Session,
        sender: Annotated[
            str | None, Query(max_length=320, pattern=r"^[^\x00]*$", description="Part of the sender address")
        ] = None,
        intent: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z_]+$")] = None,
        state: Annotated[EmailState | None, Query(alias="status", description="The email's status")] = None,
        since: Annotated[datetime | None, Query(alias="from", description="Received at or after")] = None,
        until: Annotated[datetime | None, Query(alias="to", description="Received before")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> RunsPage:
        """Emails and their runs, newest first; each filter narrows the search."""
        where = q.RunFilter(sender=sender, intent=intent, status=state, since=since, until=until)
        total, rows = await q.search_runs(session, where=where, limit=limit, offset=offset)
        return RunsPage(total=total, limit=limit, offset=offset, items=[_row(e, r) for e, r in rows])

    @app.get(
        "/v1/emails/{email_id}/timeline",
        tags=TAGS,
        response_model=Timeline,
        responses={**AUTH_ERRORS, **errors(404)},
    )
    async def timeline(email_id: RowId, _: EmailReader, session: Session) -> Timeline:
        """Ingested, scanned (the verdict), each graph node, the review, each side effect, finished."""
        email = await emails.get_email(session, email_id=email_id)
        if email is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"email {email_id} not found")
        run = await q.run_for_email(session, email_id=email_id)
        spans = await q.spans_of_trace(session, trace_id=email.trace_id) if email.trace_id else []
        events = [TimelineEvent(at=email.received_at, kind="ingested", name="ingested", status="queued")]
        guard = next((s for s in spans if s.name == GUARD_SPAN), None)
        if email.verdict is not None or guard is not None:
            events.append(
                TimelineEvent(
                    at=guard.start_time if guard else None,
                    kind="scanned",
                    name="gateway scan",
                    duration_ms=float(guard.duration_ms) if guard else None,
                    status=str((email.verdict or {}).get("decision", "unknown")),
                    span_id=guard.span_id if guard else None,
                )
            )
        events += _node_events(spans)
        for review in await q.reviews_for_email(session, email_id=email_id):
            events.append(
                TimelineEvent(at=review.created_at, kind="review_created", name="review", status="pending")
            )
            if review.decided_at is not None:
                events.append(
                    TimelineEvent(
                        at=review.decided_at,
                        kind="review_decided",
                        name="review",
                        status=review.status,
                        actor=review.reviewer,
                    )
                )
        if run is not None:
            for effect in await q.effects_for_thread(session, thread_id=run.thread_id):
                events.append(
                    TimelineEvent(
                        at=effect.created_at,
                        kind="effect",
                        name=effect.action,
                        status=effect.status,
                        attempts=effect.attempts,
                    )
                )
            if run.finished_at is not None:
                events.append(
                    TimelineEvent(
                        at=run.finished_at,
                        kind="finished",
                        name="finished",
                        status=run.status,
                        input_tokens=run.input_tokens,
                        output_tokens=run.output_tokens,
                        cost_usd=_usd(run.cost_usd),
                    )
                )
        events.sort(key=lambda e: e.at or email.received_at)
        return Timeline(
            email_id=email.id,
            status=email.status,
            trace_id=email.trace_id,
            route=run.route if run else None,
            cost_usd=_usd(run.cost_usd if run else None),
            input_tokens=run.input_tokens if run else 0,
            output_tokens=run.output_tokens if run else 0,
            events=events,
        )
