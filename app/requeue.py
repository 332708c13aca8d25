"""Put failed emails back in the queue once their cause is fixed (an expired key, a model name typo).

A failed email keeps its LangGraph thread: the new job resumes from the last checkpoint, so the
steps that had finished are not repeated, and the ledger still stops any side effect from running
twice. Emails the gateway rejected (unparseable, too big) fail the same way again and are skipped
unless asked for by id.
"""

from __future__ import annotations

from sqlalchemy import select

from app.db import Database
from app.ingest import thread_lock
from app.models import Email, EmailStatus
from app.queue import PROCESS_EMAIL, enqueue
from app.repo import audit, emails

GATEWAY_REJECTION = "rejected by gateway"


async def requeue_failed(
    db: Database, *, queue: str, email_ids: list[int] | None = None, actor: str = "cli"
) -> list[int]:
    """Re-enqueue failed emails (all of them but gateway rejections, or exactly ``email_ids``)."""
    async with db.transaction() as session:
        query = select(Email.id, Email.status_detail).where(Email.status == EmailStatus.FAILED)
        if email_ids:
            query = query.where(Email.id.in_(email_ids))
        rows = (await session.execute(query.order_by(Email.id).with_for_update())).all()
        chosen = [
            email_id
            for email_id, detail in rows
            if email_ids or not (detail or "").startswith(GATEWAY_REJECTION)
        ]
        for email_id in chosen:
            await emails.set_status(
                session, email_id=email_id, status=EmailStatus.QUEUED, detail=f"requeued by {actor}"
            )
            await enqueue(
                session,
                queue=queue,
                task=PROCESS_EMAIL,
                lock=thread_lock(email_id),
                args={"email_id": email_id, "trace": {}},
            )
            await audit.append_audit(
                session,
                actor=actor,
                action="email.requeued",
                subject_type="email",
                subject_id=str(email_id),
                details={},
            )
    return chosen
