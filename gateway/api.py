"""The gateway's HTTP API (FastAPI). HTTP status codes appear only in this package.

Routers: ``routes_auth`` (sign-in), ``routes_admin`` (users, keys), ``routes_ingest`` (push); the dashboard's
``routes_runs``, ``routes_traces``, ``routes_evals``, ``routes_prompts``, ``routes_quality``;
``routes_metrics`` (Prometheus);
the review, email and stats routes are here. Who may call what: ``gateway.auth``.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import FastAPI, HTTPException, Query, status
from opentelemetry import trace
from opentelemetry.propagate import inject
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.errors import ReviewConflict
from app.hashing import payload_hash
from app.models import Email, Review, Run
from app.queue import RESUME_REVIEW, enqueue, queue_depth
from app.repo import audit, emails, pii_vault, reviews, runs
from app.settings import Settings
from app.telemetry import tracer
from gateway import (
    routes_admin,
    routes_auth,
    routes_evals,
    routes_ingest,
    routes_metrics,
    routes_prompts,
    routes_quality,
    routes_runs,
    routes_traces,
)
from gateway.auth import EmailReader, ReviewReader, ReviewWriter, StatsReader
from gateway.auth_oidc import OidcVerifier
from gateway.pii import restore
from gateway.ratelimit import Limits
from gateway.routes_deps import AUTH_ERRORS, RowId, Session, errors
from gateway.schemas import DecisionIn, DecisionOut, EmailOut, ReviewDetail, ReviewOut, Stats
from tools.actions import Plan
from tools.pii_boundary import redact_known, restore_value

ReviewStatus = Literal["pending", "approved", "rejected"]
EmailState = Literal["queued", "processing", "review", "done", "rejected", "quarantined", "failed"]


def _email_trace(trace_id: str | None) -> Any:
    """A parent context in the email's own trace, so the decision and the resumed run join it."""
    if not trace_id:
        return None
    ctx = SpanContext(
        int(trace_id, 16), random.getrandbits(64), is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)
    )
    return trace.set_span_in_context(NonRecordingSpan(ctx))


def _intent(run: Run | None) -> str | None:
    """The intent the agent extracted, for the queue's filter; None before extraction (or none found)."""
    extraction = run.extraction if run is not None else None
    intent = extraction.get("intent") if isinstance(extraction, dict) else None
    return str(intent) if intent else None


async def _review_out(
    session: AsyncSession,
    review: Review,
    *,
    email: Email | None,
    run: Run | None,
    vault_key: str,
    detail: bool = False,
) -> ReviewOut:
    """A review as a reviewer sees it: placeholders restored (reviewers may see the customer's data).

    ``payload_hash`` stays the hash of the stored (redacted) plan: that is what a decision binds to.
    The caller loads the email and the run, so the list route fetches them in one query each.
    """
    entries = await pii_vault.load(session, email_id=review.email_id, key=vault_key)
    base = {
        "id": review.id,
        "email_id": review.email_id,
        "thread_id": review.thread_id,
        "status": review.status,
        "reasons": review.reasons,
        "payload": restore_value(review.payload, entries),
        "payload_hash": review.payload_hash,
        "created_at": review.created_at,
        "subject": email.subject if email else None,
        "sender": email.sender_address if email else None,
        "intent": _intent(run),
    }
    if not detail:
        return ReviewOut(**base)
    return ReviewDetail(
        **base,
        text=restore(email.text_body or "", entries) if email else None,
        verdict=email.verdict if email else None,
        extraction=restore_value(run.extraction, entries) if run else None,
        trace_id=email.trace_id if email else None,
    )


def create_app(*, settings: Settings, database_url: str) -> FastAPI:
    vault_key = settings.pii.vault_key.get_secret_value()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.db = Database(database_url)
        async with app.state.db.transaction() as session:  # a config.change entry if it changed
            await audit.record_config(session, component="api", settings=settings, secret_key=vault_key)
        app.state.limits = Limits(settings.auth)
        app.state.oidc = OidcVerifier(settings.auth) if settings.auth.oidc_enabled else None
        yield
        await app.state.db.dispose()

    # Bodies over the limit are answered 413 before they are read in full (the ingest route allows more).
    app = FastAPI(
        title="mailspine gateway",
        version="0.1.0",
        lifespan=lifespan,
        max_body_size=settings.auth.max_request_bytes,
    )
    routes_auth.register(app)
    routes_admin.register(app)
    routes_ingest.register(app, max_body_size=settings.auth.max_ingest_bytes)
    for dashboard_routes in (routes_runs, routes_traces, routes_evals, routes_prompts, routes_quality):
        dashboard_routes.register(app)  # the dashboard API (docs/architecture.md, "Dashboard API")
    routes_metrics.register(app)  # Prometheus (docs/operations.md)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/reviews", response_model=list[ReviewOut], responses=AUTH_ERRORS)
    async def list_reviews(
        _: ReviewReader, session: Session, state: Annotated[ReviewStatus, Query(alias="status")] = "pending"
    ) -> list[ReviewOut]:
        found = await reviews.list_reviews(session, status=state)
        by_id = await emails.get_emails(session, email_ids=[r.email_id for r in found])
        by_thread = await runs.get_runs_by_thread(session, thread_ids=[r.thread_id for r in found])
        return [
            await _review_out(
                session, r, email=by_id.get(r.email_id), run=by_thread.get(r.thread_id), vault_key=vault_key
            )
            for r in found
        ]

    @app.get("/v1/reviews/{review_id}", response_model=ReviewDetail, responses={**AUTH_ERRORS, **errors(404)})
    async def get_review(review_id: RowId, _: ReviewReader, session: Session) -> ReviewOut:
        review = await reviews.get_review(session, review_id=review_id)
        if review is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"review {review_id} not found")
        email = await emails.get_email(session, email_id=review.email_id)
        run = await runs.get_run(session, thread_id=review.thread_id)
        return await _review_out(session, review, email=email, run=run, vault_key=vault_key, detail=True)

    @app.post(
        "/v1/reviews/{review_id}/decision",
        response_model=DecisionOut,
        responses={**AUTH_ERRORS, **errors(400, 404, 409, 413)},
    )
    async def decide(review_id: RowId, who: ReviewWriter, body: DecisionIn, session: Session) -> DecisionOut:
        review = await reviews.get_review(session, review_id=review_id)
        if review is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"review {review_id} not found")
        email = await emails.get_email(session, email_id=review.email_id)
        with tracer().start_as_current_span(
            "review decision", context=_email_trace(email.trace_id if email else None)
        ) as span:
            plan: Plan | None = None
            if body.decision == "approve":
                if body.plan is not None:
                    # The reviewer edited real values; the graph, ledger and checkpoints keep placeholders.
                    entries = await pii_vault.load(session, email_id=review.email_id, key=vault_key)
                    plan = Plan.model_validate(redact_known(body.plan.model_dump(mode="json"), entries))
                else:
                    plan = Plan.model_validate(review.payload["plan"])
            executed = (
                {"plan": plan.model_dump(mode="json"), "plan_hash": payload_hash(plan)} if plan else None
            )
            try:
                decided = await reviews.decide_review(
                    session,
                    review_id=review_id,
                    decision=body.decision,
                    reviewer=who.id,
                    expected_hash=body.payload_hash,
                    decided_payload=executed,
                    reason=body.reason,
                )
            except ReviewConflict as exc:
                raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
            await audit.append_audit(
                session,
                actor=who.id,
                action=f"review.{body.decision}",
                subject_type="review",
                subject_id=str(review_id),
                details={
                    "shown_hash": body.payload_hash,
                    "edited": body.plan is not None,
                    "executed_plan_hash": executed["plan_hash"] if executed else None,
                },
                payload_sha256=body.payload_hash,  # the exact payload the reviewer was shown
            )
            span.set_attribute("mailspine.review_id", review_id)
            span.set_attribute("mailspine.review.decision", body.decision)
            carrier: dict[str, str] = {}
            inject(carrier)
            job_id = await enqueue(
                session,
                queue=settings.queue_name,
                task=RESUME_REVIEW,
                lock=review.thread_id,
                args={"review_id": review_id, "trace": carrier},
            )
        return DecisionOut(
            review_id=review_id,
            status=decided.status,
            executed_plan_hash=executed["plan_hash"] if executed else None,
            job_id=job_id,
        )

    @app.get("/v1/emails", response_model=list[EmailOut], responses=AUTH_ERRORS)
    async def list_emails(
        _: EmailReader,
        session: Session,
        state: Annotated[EmailState | None, Query(alias="status")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[EmailOut]:
        rows = await emails.list_emails(session, status=state, limit=limit)
        return [
            EmailOut(
                id=r.id,
                subject=r.subject,
                sender=r.sender_address,
                status=r.status,
                status_detail=r.status_detail,
                received_at=r.received_at,
                trace_id=r.trace_id,
            )
            for r in rows
        ]

    @app.get("/v1/stats", response_model=Stats, responses=AUTH_ERRORS)
    async def stats(_: StatsReader, session: Session) -> Stats:
        pending = await reviews.list_reviews(session, status="pending", limit=10_000)
        return Stats(
            emails=await emails.count_by_status(session),
            pending_reviews=len(pending),
            queue=await queue_depth(session, queue=settings.queue_name),
        )

    return app
