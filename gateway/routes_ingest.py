"""Push ingestion: ``POST /v1/messages`` with a raw RFC 822 message (scope ``ingest``).

The same path as the IMAP and directory pollers (``app.ingest.ingest_messages``): the message is
stored raw and its processing job enqueued in one transaction, keyed by Message-ID + content hash,
so a retried delivery is answered with the stored email's id and never processed twice.
"""

from __future__ import annotations

import hashlib
from enum import Enum
from typing import Annotated

from fastapi import FastAPI, HTTPException, Query, Request, Response, status
from sqlalchemy import select

from app.ingest import ingest_messages, message_id_key
from app.models import Email
from gateway.auth import Ingester
from gateway.routes_deps import AUTH_ERRORS, AppSettings, Db, errors
from gateway.schemas import IngestOut
from tools.mailbox_dir import MailboxMessage, headers_only

TAGS: list[str | Enum] = ["ingest"]
MEDIA_TYPE = "message/rfc822"
_BODY = {"required": True, "content": {MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}}


def _header_block(raw: bytes) -> bytes:
    for sep in (b"\r\n\r\n", b"\n\n"):
        if sep in raw:
            return raw.split(sep, 1)[0]
    return raw[: 256 * 1024]


def register(app: FastAPI, *, max_body_size: int) -> None:
    """The route; ``max_body_size`` (bytes) replaces the app-wide request limit for it."""

    @app.post(
        "/v1/messages",
        tags=TAGS,
        max_body_size=max_body_size,
        status_code=status.HTTP_202_ACCEPTED,
        response_model=IngestOut,
        responses={
            200: {
                "model": IngestOut,
                "description": "Already stored (a repeated delivery): nothing new queued",
            },
            **AUTH_ERRORS,
            **errors(400, 413, 415),
        },
        openapi_extra={"requestBody": _BODY},
    )
    async def push_message(
        request: Request,
        response: Response,
        who: Ingester,
        db: Db,
        settings: AppSettings,
        account: Annotated[
            str, Query(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$", description="Recorded as the email's account")
        ] = "push",
    ) -> IngestOut:
        """Store one message and queue it: 202 when new, 200 with ``duplicate: true`` when already stored."""
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != MEDIA_TYPE:
            raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, f"send the message as {MEDIA_TYPE}")
        raw = await request.body()  # bounded: the route's max_body_size answers 413 past the limit
        if not raw.strip():
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "empty message")
        if len(raw) > settings.max_email_bytes:
            # Like the pollers: too big to process, stored headers-only so it stays visible (then rejected).
            raw = headers_only(_header_block(raw), size=len(raw))
        message = MailboxMessage(ref=f"push:{who.id}", raw=raw)
        report = await ingest_messages(db, [message], account=account, queue=settings.queue_name)
        if report.new_ids:
            return IngestOut(email_id=report.new_ids[0], duplicate=False)
        # Stored before (same Message-ID and bytes; the Message-ID is derived from the bytes).
        digest = hashlib.sha256(raw).hexdigest()
        stmt = select(Email.id).where(
            Email.message_id == message_id_key(raw, digest), Email.content_sha256 == digest
        )
        async with db.transaction() as session:
            existing = (await session.execute(stmt)).scalar_one()
        response.status_code = status.HTTP_200_OK
        return IngestOut(email_id=existing, duplicate=True)
