"""What a worker does with one job: gateway scan, then the agent; every failure lands on the email."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import sqlalchemy.exc
from opentelemetry.propagate import extract
from opentelemetry.trace import Status, StatusCode

from agent.inputs import GuardedEmail
from agent.runner import resume_email, run_email, thread_id_for
from agent.state import ReviewDecision
from app.db import Database
from app.errors import MessageRejected, ModelUnavailable, ToolUnavailable
from app.models import EmailStatus
from app.repo import audit, emails, pii_vault, reviews, runs
from app.services import Services
from app.settings import Settings
from app.telemetry import tracer
from gateway.pii import redact_email
from gateway.scan import scan_raw

log = logging.getLogger(__name__)


async def process_email(services: Services, *, email_id: int, trace: dict[str, str] | None = None) -> str:
    with tracer().start_as_current_span("process_email", context=extract(trace or {})) as span:
        span.set_attribute("mailspine.email_id", email_id)
        db = services.db
        async with db.transaction() as session:
            row = await emails.get_email(session, email_id=email_id)
            if row is None:
                raise LookupError(f"email {email_id} does not exist")
            if row.status != EmailStatus.QUEUED and row.status != EmailStatus.PROCESSING:
                return row.status  # a re-delivered job for an email that already moved on
            raw = row.raw
        try:
            _, guarded = scan_raw(raw, email_id=email_id, max_bytes=services.settings.max_email_bytes)
        except MessageRejected as exc:
            return await _terminal(
                services, email_id, EmailStatus.FAILED, f"rejected by gateway: {exc}", span
            )
        except Exception as exc:  # a scanner bug must fail closed: the email never reaches the agent
            log.exception("gateway scan of email %s crashed", email_id)
            detail = f"quarantined: the gateway scan failed ({type(exc).__name__}); see the worker log"
            return await _terminal(services, email_id, EmailStatus.QUARANTINED, detail, span)
        seen = await store_scanned(db, services.settings, email_id=email_id, guarded=guarded)
        span.set_attribute("mailspine.guardrail.decision", guarded.verdict.decision)
        if guarded.verdict.decision == "quarantine":
            reason = "quarantined: " + "; ".join(guarded.verdict.reasons)[:900]
            return await _terminal(services, email_id, EmailStatus.QUARANTINED, reason, span)
        await index_for_history(db, services.settings, email_id)
        try:
            outcome = await run_email(services.graph, services.ctx, seen)
        except (ToolUnavailable, ModelUnavailable):
            raise  # transient: the job is retried, the thread resumes from its last checkpoint
        except Exception as exc:
            if database_unavailable(exc):
                raise  # transient too: Postgres restarted or failed over under the run
            log.exception("email %s failed", email_id)
            return await _terminal(
                services, email_id, EmailStatus.FAILED, f"{type(exc).__name__}: {exc}", span
            )
        span.set_attribute("mailspine.outcome", outcome.status)
        return outcome.status


async def store_scanned(
    db: Database, settings: Settings, *, email_id: int, guarded: GuardedEmail
) -> GuardedEmail:
    """Store what the gateway found: the parsed fields, the redacted text, the PII vault. Returns
    the email as the agent sees it: placeholders instead of personal data (gateway/pii.py), the
    real values encrypted in the vault."""
    seen, entries = redact_email(guarded) if settings.pii.enabled else (guarded, {})
    async with db.transaction() as session:
        await pii_vault.store(
            session, email_id=email_id, entries=entries, key=settings.pii.vault_key.get_secret_value()
        )
        await emails.set_parsed(
            session,
            email_id=email_id,
            subject=guarded.subject,
            sender_address=guarded.sender_address,
            sender_name=guarded.sender_name,
            sent_at=guarded.sent_at,
            in_reply_to=guarded.in_reply_to,
            references=guarded.references,
            text_body=seen.text,
            verdict=guarded.verdict.model_dump(mode="json"),
            conversation_id=await emails.conversation_for(
                session,
                message_id=guarded.message_id,
                in_reply_to=guarded.in_reply_to,
                references=guarded.references,
            ),
        )
    return seen


async def resume_review(services: Services, *, review_id: int, trace: dict[str, str] | None = None) -> str:
    with tracer().start_as_current_span("resume_review", context=extract(trace or {})) as span:
        span.set_attribute("mailspine.review_id", review_id)
        async with services.db.transaction() as session:
            review = await reviews.get_review(session, review_id=review_id)
            if review is None or review.status == "pending":
                raise LookupError(f"review {review_id} is missing or undecided")
            email_id = review.email_id
            decision = ReviewDecision(
                decision="approve" if review.status == "approved" else "reject",
                reviewer=review.reviewer or "unknown",
                reason=review.decision_reason,
                approved_plan=review.decided_payload.get("plan") if review.decided_payload else None,
                approved_hash=review.decided_payload.get("plan_hash") if review.decided_payload else None,
            )
        try:
            outcome = await resume_email(services.graph, services.ctx, email_id=email_id, decision=decision)
        except (ToolUnavailable, ModelUnavailable):
            raise
        except Exception as exc:
            if database_unavailable(exc):
                raise
            log.exception("resuming review %s failed", review_id)
            return await _terminal(
                services, email_id, EmailStatus.FAILED, f"{type(exc).__name__}: {exc}", span
            )
        return outcome.status


async def give_up(
    services: Services,
    *,
    error: BaseException,
    attempts: int,
    email_id: int | None = None,
    review_id: int | None = None,
) -> None:
    """The job failed for the last time: an email still ``queued``/``processing`` becomes ``failed``
    with the reason, where ``mailspine emails retry`` finds it, instead of waiting forever behind a
    failed job. Best effort: when the database itself is what failed, the error is logged here and
    the job's own failure still stands."""
    try:
        async with services.db.transaction() as session:
            if email_id is None and review_id is not None:
                review = await reviews.get_review(session, review_id=review_id)
                email_id = review.email_id if review is not None else None
            row = await emails.get_email(session, email_id=email_id) if email_id is not None else None
            status = row.status if row is not None else None
        if email_id is None or status not in (EmailStatus.QUEUED, EmailStatus.PROCESSING, EmailStatus.REVIEW):
            return
        if status == EmailStatus.REVIEW and review_id is None:
            return  # paused for a person: not this job's to fail
        detail = f"gave up after {attempts} attempt(s): {type(error).__name__}: {error}"
        with tracer().start_as_current_span("give_up") as span:
            span.set_attribute("mailspine.email_id", email_id)
            await _terminal(services, email_id, EmailStatus.FAILED, detail[:1000], span)
    except Exception:
        log.exception(
            "could not mark email %s (review %s) failed after its last attempt", email_id, review_id
        )


async def index_for_history(db: Database, settings: Settings, email_id: int) -> None:
    """Embed the email's redacted text for the semantic history (tools/history_index.py). Without
    a model (or on any error but a lost database) the email goes on: the history search falls
    back to full-text search, and ``mailspine history reindex`` embeds it later."""
    from tools.history_index import index_email

    try:
        await index_email(db, email_id=email_id, settings=settings)
    except Exception as exc:
        if database_unavailable(exc):
            raise
        log.warning("email %s not embedded for the history (%s)", email_id, type(exc).__name__)


# SQLSTATE classes of a lost or refused connection: 08 connection exception, 40 transaction
# rollback (serialization, deadlock), 53 insufficient resources, 57 operator intervention (shutdown,
# restart, "cannot connect now"). No SQLSTATE at all: the client lost the connection itself.
_TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "57")


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says Postgres was unreachable, not that the work is wrong: the job is retried
    and the email resumes from its last checkpoint instead of failing. Follows the explicit cause
    chain (SQLAlchemy and procrastinate wrap psycopg's errors)."""
    current: BaseException | None = exc
    for _ in range(8):
        if current is None:
            return False
        if isinstance(current, sqlalchemy.exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, sqlalchemy.exc.TimeoutError):  # no pooled connection in time
            return True
        if isinstance(current, psycopg.OperationalError | psycopg.InterfaceError):
            state = current.sqlstate
            return state is None or state[:2] in _TRANSIENT_SQLSTATE_CLASSES
        current = getattr(current, "orig", None) or current.__cause__
    return False


async def _terminal(services: Services, email_id: int, status: EmailStatus, detail: str, span: Any) -> str:
    span.set_status(
        Status(StatusCode.ERROR, detail[:200]) if status == EmailStatus.FAILED else Status(StatusCode.OK)
    )
    async with services.db.transaction() as session:
        await emails.set_status(session, email_id=email_id, status=status, detail=detail)
        await runs.update_run(
            session, thread_id=thread_id_for(email_id), status=status.value, error=detail, finished=True
        )
        await audit.append_audit(
            session,
            actor="pipeline",
            action=f"email.{status.value}",
            subject_type="email",
            subject_id=str(email_id),
            details={"detail": detail[:500]},
        )
    log.warning("email %s %s: %s", email_id, status.value, detail)
    return status.value
