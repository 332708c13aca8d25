"""Emails: stored raw on ingest, parsed fields and status filled in as they move through."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from app.models import Email, EmailStatus


async def insert_email(
    session: AsyncSession,
    *,
    account: str,
    message_id: str,
    content_sha256: str,
    raw: bytes,
    folder: str | None = None,
    uidvalidity: int | None = None,
    uid: int | None = None,
    source_ref: str | None = None,
    trace_id: str | None = None,
) -> Email | None:
    """Insert a new email; ``None`` when it is already stored (same mailbox UID or same content)."""
    stmt = (
        insert(Email)
        .values(
            account=account,
            folder=folder,
            uidvalidity=uidvalidity,
            uid=uid,
            source_ref=source_ref,
            message_id=message_id,
            content_sha256=content_sha256,
            raw=raw,
            size_bytes=len(raw),
            status=EmailStatus.QUEUED,
            trace_id=trace_id,
            references=[],
        )
        .on_conflict_do_nothing()
        .returning(Email)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def insert_emails(session: AsyncSession, *, rows: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """Insert many; returns ``{(message_id, content_sha256): id}`` for the rows that were new."""
    if not rows:
        return {}
    values = [
        {**r, "size_bytes": len(r["raw"]), "status": EmailStatus.QUEUED, "references": []} for r in rows
    ]
    stmt = (
        insert(Email)
        .values(values)
        .on_conflict_do_nothing()
        .returning(Email.id, Email.message_id, Email.content_sha256)
    )
    return {(m, h): i for i, m, h in (await session.execute(stmt)).all()}


async def get_email(session: AsyncSession, *, email_id: int) -> Email | None:
    return await session.get(Email, email_id)


async def get_emails(session: AsyncSession, *, email_ids: list[int]) -> dict[int, Email]:
    """These emails in one query (a list page must not query per row), by id; missing ids are absent.

    The raw message is not loaded (it may be megabytes per email and a list never shows it); reading
    ``raw`` on these objects raises instead of quietly querying again.
    """
    if not email_ids:
        return {}
    stmt = select(Email).where(Email.id.in_(set(email_ids))).options(defer(Email.raw, raiseload=True))
    return {email.id: email for email in (await session.execute(stmt)).scalars()}


async def conversation_for(
    session: AsyncSession, *, message_id: str, in_reply_to: str | None, references: list[str]
) -> str:
    """The conversation a message belongs to: that of the newest stored message it replies to or
    references (In-Reply-To first), else a new conversation keyed by its own Message-ID."""
    parents = [p for p in [in_reply_to, *reversed(references)] if p and p != message_id]
    if parents:
        stmt = select(Email.message_id, Email.conversation_id).where(Email.message_id.in_(parents))
        found = {m: c for m, c in (await session.execute(stmt)).all()}
        for parent in parents:
            if parent in found:
                return found[parent] or parent
        return references[0] if references else parents[0]  # the thread's root, even if we never saw it
    return message_id


async def set_parsed(
    session: AsyncSession,
    *,
    email_id: int,
    subject: str,
    sender_address: str | None,
    sender_name: str | None,
    sent_at: datetime | None,
    in_reply_to: str | None,
    references: list[str],
    text_body: str,
    verdict: dict[str, Any],
    conversation_id: str | None = None,
) -> None:
    await session.execute(
        update(Email)
        .where(Email.id == email_id)
        .values(
            subject=subject,
            sender_address=sender_address,
            sender_name=sender_name,
            sent_at=sent_at,
            in_reply_to=in_reply_to,
            references=references,
            text_body=text_body,
            verdict=verdict,
            conversation_id=conversation_id,
            updated_at=func.now(),
        )
    )


async def set_status(
    session: AsyncSession, *, email_id: int, status: EmailStatus, detail: str | None = None
) -> None:
    await session.execute(
        update(Email)
        .where(Email.id == email_id)
        .values(status=status, status_detail=detail, updated_at=func.now())
    )


async def past_emails_from(
    session: AsyncSession,
    *,
    sender_address: str,
    before_id: int,
    limit: int = 5,
    conversation_id: str | None = None,
) -> list[Email]:
    """Earlier emails from the same sender or in the same conversation, newest first."""
    related = Email.sender_address == sender_address
    if conversation_id:
        related = related | (Email.conversation_id == conversation_id)
    stmt = select(Email).where(related, Email.id < before_id).order_by(Email.id.desc()).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def count_by_status(session: AsyncSession, *, email_ids: list[int] | None = None) -> dict[str, int]:
    stmt = select(Email.status, func.count()).group_by(Email.status)
    if email_ids is not None:
        stmt = stmt.where(Email.id.in_(email_ids))
    return {status: n for status, n in (await session.execute(stmt)).all()}


async def list_emails(session: AsyncSession, *, status: str | None = None, limit: int = 100) -> list[Email]:
    stmt = select(Email).order_by(Email.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(Email.status == status)
    return list((await session.execute(stmt)).scalars())
