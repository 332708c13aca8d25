"""Reply drafts: stored for sending, keyed by a deterministic Message-ID per (thread, draft)."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert

from app.db import Database
from app.models import OutboundMessage
from tools.actions import DraftReply
from tools.base import ToolSpec, tool_span

SAVE_DRAFT = ToolSpec(
    name="draft_reply",
    description="Save a reply draft to the sender for sending after any review.",
    access="write",
    scopes=("mail.drafts.write",),
)


def draft_message_id(*, thread_id: str, idempotency_key: str, domain: str = "mailspine.local") -> str:
    return f"<{hashlib.sha256(f'{thread_id}|{idempotency_key}'.encode()).hexdigest()[:32]}@{domain}>"


async def save_draft(
    db: Database,
    action: DraftReply,
    *,
    email_id: int,
    thread_id: str,
    in_reply_to: str | None,
    references: list[str],
    idempotency_key: str,
) -> dict[str, Any]:
    """Upsert by Message-ID, so a retry after an unknown outcome finds the draft it already wrote."""
    message_id = draft_message_id(thread_id=thread_id, idempotency_key=idempotency_key)
    with tool_span(SAVE_DRAFT, call_id=idempotency_key[:16]):
        async with db.transaction() as session:
            await session.execute(
                insert(OutboundMessage)
                .values(
                    email_id=email_id,
                    thread_id=thread_id,
                    message_id=message_id,
                    to_address=str(action.to),
                    subject=action.subject,
                    body=action.body,
                    in_reply_to=in_reply_to,
                    status="draft",
                )
                .on_conflict_do_nothing(index_elements=[OutboundMessage.message_id])
            )
            row = (
                await session.execute(
                    select(OutboundMessage.id).where(OutboundMessage.message_id == message_id)
                )
            ).scalar_one()
    refs = [r for r in references if r != in_reply_to]
    return {
        "outbound_id": row,
        "message_id": message_id,
        "in_reply_to": in_reply_to,
        "references": [*refs, in_reply_to] if in_reply_to else refs,
    }


async def mark_sent(db: Database, *, message_id: str) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(OutboundMessage).where(OutboundMessage.message_id == message_id).values(status="sent")
        )
