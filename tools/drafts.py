"""Reply drafts: stored for sending, keyed by a deterministic Message-ID per (thread, draft).

A draft's status is the durable record of its send: ``draft`` until the SMTP sender reaches its
point of no return, then ``sent`` (``OutboundRecord``, see ``tools/mailbox_smtp.py``).
"""

from __future__ import annotations

import asyncio
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


async def set_outbound_status(db: Database, *, message_id: str, status: str) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(OutboundMessage).where(OutboundMessage.message_id == message_id).values(status=status)
        )


async def outbound_status(db: Database, *, message_id: str) -> str | None:
    async with db.transaction() as session:
        stmt = select(OutboundMessage.status).where(OutboundMessage.message_id == message_id)
        return (await session.execute(stmt)).scalar_one_or_none()


class OutboundRecord:
    """``SendRecord`` for one draft: the SMTP thread writes the status through the worker's loop."""

    def __init__(self, db: Database, *, message_id: str, loop: asyncio.AbstractEventLoop) -> None:
        self.db, self.message_id, self.loop = db, message_id, loop

    def _run(self, status: str) -> None:
        # No timeout: giving up while the commit may still land would record a send that never
        # happened; the database's own timeouts bound the wait.
        done = asyncio.run_coroutine_threadsafe(
            set_outbound_status(self.db, message_id=self.message_id, status=status), self.loop
        )
        done.result()

    def commit(self) -> None:
        self._run("sent")

    def revoke(self) -> None:
        self._run("draft")
