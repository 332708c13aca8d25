"""Stored spans, written by ``app.telemetry.PostgresSpanExporter``."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import SpanRecord


async def count_spans(session: AsyncSession, *, trace_ids: list[str] | None = None) -> int:
    stmt = select(func.count()).select_from(SpanRecord)
    if trace_ids is not None:
        stmt = stmt.where(SpanRecord.trace_id.in_(trace_ids))
    return int((await session.execute(stmt)).scalar_one())
