"""Ingest: store each new message raw and enqueue its processing job in the same transaction.

Two entry points share one per-message step:
- ``ingest_messages``: a directory mailbox (one transaction per message).
- ``ingest_batch``: one IMAP fetch batch. The folder's cursor is locked, the messages above it
  are stored and queued, and the cursor advances, all in one transaction. A crash anywhere
  leaves either all of it or none of it. A UIDVALIDITY change resets the cursor (a resync); the
  Message-ID + content-hash key keeps the resync from ingesting anything twice.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32

from opentelemetry import trace
from opentelemetry.propagate import inject
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.queue import PROCESS_EMAIL, enqueue, enqueue_many
from app.repo import audit, cursors
from app.repo.emails import insert_email, insert_emails
from app.telemetry import tracer
from tools.mailbox_dir import MailboxMessage

log = logging.getLogger(__name__)


@dataclass
class IngestReport:
    new_ids: list[int] = field(default_factory=list)
    duplicates: int = 0
    skipped_below_cursor: int = 0
    resynced: bool = False


def thread_lock(email_id: int) -> str:
    return f"email-{email_id}"


def message_id_key(raw: bytes, digest: str) -> str:
    """The dedup key's Message-ID: the header when present, else one derived from the content hash."""
    try:
        value = BytesHeaderParser(policy=compat32).parsebytes(raw).get("Message-ID")
    except Exception:  # the gateway reports the real problem; here we only need a key
        value = None
    value = str(value).strip() if value else ""
    return value[:998] or f"<sha256-{digest[:32]}@mailspine.invalid>"


async def _store(
    session: AsyncSession, message: MailboxMessage, *, account: str, queue: str, report: IngestReport
) -> None:
    with tracer().start_as_current_span("ingest") as span:
        digest = hashlib.sha256(message.raw).hexdigest()
        span.set_attribute("mailspine.account", account)
        span.set_attribute("mailspine.size_bytes", len(message.raw))
        carrier: dict[str, str] = {}
        inject(carrier)
        ctx = span.get_span_context()
        row = await insert_email(
            session,
            account=account,
            folder=message.folder,
            uidvalidity=message.uidvalidity,
            uid=message.uid,
            message_id=message_id_key(message.raw, digest),
            content_sha256=digest,
            raw=message.raw,
            source_ref=message.ref,
            trace_id=format(ctx.trace_id, "032x") if ctx.is_valid else None,
        )
        if row is None:
            span.set_attribute("mailspine.duplicate", True)
            report.duplicates += 1
            return
        await enqueue(
            session,
            queue=queue,
            task=PROCESS_EMAIL,
            lock=thread_lock(row.id),
            args={"email_id": row.id, "trace": carrier},
        )
        span.set_attribute("mailspine.email_id", row.id)
        report.new_ids.append(row.id)


async def _store_many(
    session: AsyncSession, messages: list[MailboxMessage], *, account: str, queue: str, report: IngestReport
) -> None:
    """``_store`` for a whole batch: one INSERT and one enqueue; still one ``ingest`` span per message."""
    spans, keys, rows, carriers = [], [], [], []
    for message in messages:
        span = tracer().start_span(
            "ingest", attributes={"mailspine.account": account, "mailspine.size_bytes": len(message.raw)}
        )
        digest = hashlib.sha256(message.raw).hexdigest()
        message_id, ctx = message_id_key(message.raw, digest), span.get_span_context()
        carrier: dict[str, str] = {}
        inject(carrier, context=trace.set_span_in_context(span))
        spans.append(span)
        keys.append((message_id, digest))
        carriers.append(carrier)
        rows.append(
            {
                "account": account,
                "folder": message.folder,
                "uidvalidity": message.uidvalidity,
                "uid": message.uid,
                "source_ref": message.ref,
                "message_id": message_id,
                "content_sha256": digest,
                "raw": message.raw,
                "trace_id": format(ctx.trace_id, "032x") if ctx.is_valid else None,
            }
        )
    new: dict[tuple[str, str], int] = {}
    try:
        new = await insert_emails(session, rows=rows)
        jobs = [
            (thread_lock(new[k]), {"email_id": new[k], "trace": c})
            for k, c in zip(keys, carriers, strict=True)
            if k in new
        ]
        await enqueue_many(session, queue=queue, task=PROCESS_EMAIL, jobs=jobs)
        report.new_ids += sorted(new.values())
        report.duplicates += len(rows) - len(new)
    finally:
        for span, key in zip(spans, keys, strict=True):
            span.set_attribute("mailspine.duplicate", key not in new)
            if key in new:
                span.set_attribute("mailspine.email_id", new[key])
            span.end()


async def ingest_messages(
    db: Database, messages: Iterable[MailboxMessage], *, account: str, queue: str
) -> IngestReport:
    report = IngestReport()
    for message in messages:
        async with db.transaction() as session:
            await _store(session, message, account=account, queue=queue, report=report)
    log.info("ingested %d new message(s), %d duplicate(s)", len(report.new_ids), report.duplicates)
    return report


async def ingest_batch(
    db: Database,
    messages: list[MailboxMessage],
    *,
    account: str,
    folder: str,
    uidvalidity: int,
    queue: str,
    advance_cursor: bool = True,
) -> IngestReport:
    """Store one fetched batch and advance the folder's cursor atomically (see module docstring).

    ``advance_cursor=False`` (backfill) stores older messages without moving the cursor.
    """
    report = IngestReport()
    async with db.transaction() as session:
        cursor = await cursors.lock_cursor(session, account=account, folder=folder, uidvalidity=uidvalidity)
        if cursor.uidvalidity != uidvalidity:
            report.resynced = True
            await audit.append_audit(
                session,
                actor="ingest",
                action="mailbox.uidvalidity_changed",
                subject_type="mailbox",
                subject_id=f"{account}/{folder}",
                details={"old": cursor.uidvalidity, "new": uidvalidity},
            )
            log.warning(
                "%s/%s: UIDVALIDITY %s -> %s, resyncing", account, folder, cursor.uidvalidity, uidvalidity
            )
            cursor.uidvalidity, cursor.last_uid = uidvalidity, 0
        fresh = [m for m in messages if not advance_cursor or (m.uid or 0) > cursor.last_uid]
        report.skipped_below_cursor = len(messages) - len(fresh)  # another poller committed them first
        await _store_many(session, fresh, account=account, queue=queue, report=report)
        await audit.flush_credential_uses(session)  # e.g. the IMAP login that fetched this batch
        if advance_cursor and messages:
            cursor.last_uid = max(cursor.last_uid, *(m.uid or 0 for m in messages))
            cursor.last_error = None
    return report
