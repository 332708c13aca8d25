"""The gateway's HTTP API (FastAPI). HTTP status codes appear only in this package."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from opentelemetry import trace
from opentelemetry.propagate import inject
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.errors import ReviewConflict
from app.hashing import payload_hash
from app.models import Review
from app.queue import RESUME_REVIEW, enqueue, queue_depth
from app.repo import audit, emails, reviews, runs
from app.settings import Settings
from app.telemetry import tracer
from gateway.auth import Reviewer
from gateway.schemas import DecisionIn, DecisionOut, EmailOut, ReviewDetail, ReviewOut, Stats
from tools.actions import Plan


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    db: Database = request.app.state.db
    async with db.transaction() as session:
        yield session


Session = Annotated[AsyncSession, Depends(_session)]


def _email_trace(trace_id: str | None) -> Any:
    """A parent context in the email's own trace, so the decision and the resumed run join it."""
    if not trace_id:
        return None
    ctx = SpanContext(
        int(trace_id, 16), random.getrandbits(64), is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)
    )
    return trace.set_span_in_context(NonRecordingSpan(ctx))


async def _review_out(session: AsyncSession, review: Review, detail: bool = False) -> ReviewOut:
    email = await emails.get_email(session, email_id=review.email_id)
    base = {
        "id": review.id,
        "email_id": review.email_id,
        "thread_id": review.thread_id,
        "status": review.status,
        "reasons": review.reasons,
        "payload": review.payload,
        "payload_hash": review.payload_hash,
        "created_at": review.created_at,
        "subject": email.subject if email else None,
        "sender": email.sender_address if email else None,
    }
    if not detail:
        return ReviewOut(**base)
    run = await runs.get_run(session, thread_id=review.thread_id)
    return ReviewDetail(
        **base,
        text=email.text_body if email else None,
        verdict=email.verdict if email else None,
        extraction=run.extraction if run else None,
        trace_id=email.trace_id if email else None,
    )


def create_app(*, settings: Settings, database_url: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.db = Database(database_url)
        yield
        await app.state.db.dispose()

    app = FastAPI(title="mailspine gateway", version="0.1.0", lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/reviews", response_model=list[ReviewOut])
    async def list_reviews(
        _: Reviewer, session: Session, state: Annotated[str, Query(alias="status")] = "pending"
    ) -> list[ReviewOut]:
        return [await _review_out(session, r) for r in await reviews.list_reviews(session, status=state)]

    @app.get("/v1/reviews/{review_id}", response_model=ReviewDetail)
    async def get_review(review_id: int, _: Reviewer, session: Session) -> ReviewOut:
        review = await reviews.get_review(session, review_id=review_id)
        if review is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"review {review_id} not found")
        return await _review_out(session, review, detail=True)

    @app.post("/v1/reviews/{review_id}/decision", response_model=DecisionOut)
    async def decide(review_id: int, who: Reviewer, body: DecisionIn, session: Session) -> DecisionOut:
        review = await reviews.get_review(session, review_id=review_id)
        if review is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"review {review_id} not found")
        email = await emails.get_email(session, email_id=review.email_id)
        with tracer().start_as_current_span(
            "review decision", context=_email_trace(email.trace_id if email else None)
        ) as span:
            plan: Plan | None = None
            if body.decision == "approve":
                plan = body.plan or Plan.model_validate(review.payload["plan"])
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

    @app.get("/v1/emails", response_model=list[EmailOut])
    async def list_emails(
        _: Reviewer,
        session: Session,
        state: Annotated[str | None, Query(alias="status")] = None,
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

    @app.get("/v1/stats", response_model=Stats)
    async def stats(_: Reviewer, session: Session) -> Stats:
        pending = await reviews.list_reviews(session, status="pending", limit=10_000)
        return Stats(
            emails=await emails.count_by_status(session),
            pending_reviews=len(pending),
            queue=await queue_depth(session, queue=settings.queue_name),
        )

    return app
