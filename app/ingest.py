"""Ingest: store each new message raw and enqueue its processing job in the same transaction."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32

from opentelemetry.propagate import inject

from app.db import Database
from app.queue import PROCESS_EMAIL, enqueue
from app.repo.emails import insert_email
from app.telemetry import tracer
from tools.mailbox_dir import MailboxMessage

log = logging.getLogger(__name__)


@dataclass
class IngestReport:
    new_ids: list[int] = field(default_factory=list)
    duplicates: int = 0


def thread_lock(email_id: int) -> str:
    return f"email-{email_id}"


def _message_id(raw: bytes, digest: str) -> str:
    try:
        value = BytesHeaderParser(policy=compat32).parsebytes(raw).get("Message-ID")
    except Exception:  # the gateway reports the real problem; here we only need a key
        value = None
    value = str(value).strip() if value else ""
    return value[:998] or f"<sha256-{digest[:32]}@mailspine.invalid>"


async def ingest_messages(
    db: Database, messages: Iterable[MailboxMessage], *, account: str, queue: str
) -> IngestReport:
    report = IngestReport()
    for message in messages:
        with tracer().start_as_current_span("ingest") as span:
            digest = hashlib.sha256(message.raw).hexdigest()
            span.set_attribute("mailspine.account", account)
            span.set_attribute("mailspine.size_bytes", len(message.raw))
            carrier: dict[str, str] = {}
            inject(carrier)
            ctx = span.get_span_context()
            trace_id = format(ctx.trace_id, "032x") if ctx.is_valid else None
            async with db.transaction() as session:
                row = await insert_email(
                    session,
                    account=account,
                    message_id=_message_id(message.raw, digest),
                    content_sha256=digest,
                    raw=message.raw,
                    source_ref=message.ref,
                    trace_id=trace_id,
                )
                if row is None:
                    span.set_attribute("mailspine.duplicate", True)
                    report.duplicates += 1
                    continue
                await enqueue(
                    session,
                    queue=queue,
                    task=PROCESS_EMAIL,
                    lock=thread_lock(row.id),
                    args={"email_id": row.id, "trace": carrier},
                )
            span.set_attribute("mailspine.email_id", row.id)
            report.new_ids.append(row.id)
    log.info("ingested %d new message(s), %d duplicate(s)", len(report.new_ids), report.duplicates)
    return report
