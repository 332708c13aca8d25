"""SQLAlchemy models: the data plane's tables. Migrations live in ``app/migrations``."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSONB, list[Any]: JSONB}


def _now() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class EmailStatus(StrEnum):
    QUEUED = "queued"  # stored, processing job enqueued
    PROCESSING = "processing"
    REVIEW = "review"  # waiting for a human decision
    DONE = "done"  # terminal: completed (automatically or after approval)
    REJECTED = "rejected"  # terminal: a reviewer rejected the plan
    QUARANTINED = "quarantined"  # terminal: the gateway refused it
    FAILED = "failed"  # terminal, visible: an error with a reason in status_detail


TERMINAL_STATUSES = frozenset(
    {EmailStatus.DONE, EmailStatus.REJECTED, EmailStatus.QUARANTINED, EmailStatus.FAILED}
)


class Email(Base):
    __tablename__ = "emails"
    __table_args__ = (
        UniqueConstraint("account", "folder", "uidvalidity", "uid", name="uq_emails_mailbox_uid"),
        UniqueConstraint("message_id", "content_sha256", name="uq_emails_message_content"),
        Index("ix_emails_status", "status"),
        Index("ix_emails_sender", "sender_address"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(200))
    folder: Mapped[str | None] = mapped_column(String(500))
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    uid: Mapped[int | None] = mapped_column(BigInteger)
    source_ref: Mapped[str | None] = mapped_column(Text)  # file name or other locator in the mailbox
    message_id: Mapped[str] = mapped_column(String(998))
    content_sha256: Mapped[str] = mapped_column(String(64))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    size_bytes: Mapped[int] = mapped_column(Integer)
    # Parsed fields, filled by the gateway scan.
    subject: Mapped[str | None] = mapped_column(Text)
    sender_address: Mapped[str | None] = mapped_column(String(320))
    sender_name: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    in_reply_to: Mapped[str | None] = mapped_column(String(998))
    references: Mapped[list[Any]] = mapped_column(JSONB, default=list)
    # The Message-ID of the first message of the conversation (from In-Reply-To / References).
    conversation_id: Mapped[str | None] = mapped_column(String(998), index=True)
    text_body: Mapped[str | None] = mapped_column(Text)
    verdict: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(32), default=EmailStatus.QUEUED)
    status_detail: Mapped[str | None] = mapped_column(Text)
    trace_id: Mapped[str | None] = mapped_column(String(32))
    received_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class MailboxCursor(Base):
    """How far ingestion got in one folder: advanced in the same transaction as the jobs it enqueues."""

    __tablename__ = "mailbox_cursors"

    account: Mapped[str] = mapped_column(String(200), primary_key=True)
    folder: Mapped[str] = mapped_column(String(500), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = _now()


class Run(Base):
    """One agent run = one LangGraph thread per email."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    email_id: Mapped[int] = mapped_column(ForeignKey("emails.id"), unique=True)
    thread_id: Mapped[str] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(32))  # running | review | done | rejected | failed
    route: Mapped[str | None] = mapped_column(String(32))  # auto | review | ignore
    outcome: Mapped[str | None] = mapped_column(Text)
    extraction: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    plan: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(12, 6), default=Decimal(0))
    trace_id: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    # service.instance.id of the process that last started, resumed or finished it (app.telemetry)
    worker: Mapped[str | None] = mapped_column(String(100))
    started_at: Mapped[datetime] = _now()
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Review(Base):
    __tablename__ = "reviews"
    __table_args__ = (
        Index("ix_reviews_status", "status", "created_at"),
        UniqueConstraint("thread_id", "payload_hash", name="uq_reviews_thread_payload"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    email_id: Mapped[int] = mapped_column(ForeignKey("emails.id"))
    thread_id: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(32), default="pending")  # pending | approved | rejected
    reasons: Mapped[list[Any]] = mapped_column(JSONB, default=list)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    payload_hash: Mapped[str] = mapped_column(String(64))
    decided_payload: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    reviewer: Mapped[str | None] = mapped_column(String(200))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SideEffect(Base):
    """The side-effect ledger: intent before the call, result after, keyed for idempotency."""

    __tablename__ = "side_effects"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    thread_id: Mapped[str] = mapped_column(String(100), index=True)
    node: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    payload_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # intent | succeeded | failed
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class OutboundMessage(Base):
    """Reply drafts written by the agent; sending (SMTP) picks them up from here."""

    __tablename__ = "outbound_messages"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    email_id: Mapped[int] = mapped_column(ForeignKey("emails.id"))
    thread_id: Mapped[str] = mapped_column(String(100))
    message_id: Mapped[str] = mapped_column(String(998), unique=True)
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    in_reply_to: Mapped[str | None] = mapped_column(String(998))
    status: Mapped[str] = mapped_column(String(16), default="draft")  # draft | sent
    created_at: Mapped[datetime] = _now()


class AuditEntry(Base):
    """Append-only, hash-chained record of decisions and side effects."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = _now()
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    subject_type: Mapped[str] = mapped_column(String(50))
    subject_id: Mapped[str] = mapped_column(String(100))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Migration 0013: the OpenTelemetry trace (hex) the entry was written in, the SHA-256 of the
    # canonical JSON of its subject payload, and the version of the hash (1: rows written before it).
    trace_id: Mapped[str | None] = mapped_column(String(32))
    payload_sha256: Mapped[str | None] = mapped_column(String(64))
    hash_version: Mapped[int] = mapped_column(SmallInteger)


class SpanRecord(Base):
    __tablename__ = "spans"
    __table_args__ = (Index("ix_spans_trace", "trace_id"), Index("ix_spans_start", "start_time"))

    span_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    trace_id: Mapped[str] = mapped_column(String(32))
    parent_span_id: Mapped[str | None] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(16))
    service_name: Mapped[str | None] = mapped_column(String(100))
    service_instance: Mapped[str | None] = mapped_column(String(100))  # service.instance.id
    start_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    duration_ms: Mapped[float] = mapped_column(Numeric(14, 3))
    status_code: Mapped[str] = mapped_column(String(8))
    status_message: Mapped[str | None] = mapped_column(Text)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    events: Mapped[list[Any]] = mapped_column(JSONB, default=list)
