"""Append-only, hash-chained audit log (UPDATE/DELETE are refused by a trigger)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import AuditEntry

GENESIS = "0" * 64
_CHAIN_LOCK = 0x6D61696C  # advisory lock id serialising appends so the chain has no forks


def entry_hash(
    *, prev_hash: str, actor: str, action: str, subject_type: str, subject_id: str, details: dict[str, Any]
) -> str:
    body = json.dumps(
        [prev_hash, actor, action, subject_type, subject_id, details], sort_keys=True, default=str
    )
    return hashlib.sha256(body.encode()).hexdigest()


async def append_audit(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append within the caller's transaction (the lock is released when it commits)."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK})
    last = (await session.execute(select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1))).scalar()
    prev = last or GENESIS
    details = details or {}
    entry = AuditEntry(
        actor=actor,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        details=details,
        prev_hash=prev,
        hash=entry_hash(
            prev_hash=prev,
            actor=actor,
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
            details=details,
        ),
    )
    session.add(entry)
    await session.flush()
    return entry


async def verify_chain(session: AsyncSession) -> tuple[int, int | None]:
    """(rows checked, id of the first broken row or None)."""
    prev, count = GENESIS, 0
    for row in (await session.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars():
        expected = entry_hash(
            prev_hash=prev,
            actor=row.actor,
            action=row.action,
            subject_type=row.subject_type,
            subject_id=row.subject_id,
            details=row.details,
        )
        if row.prev_hash != prev or row.hash != expected:
            return count, row.id
        prev, count = row.hash, count + 1
    return count, None
