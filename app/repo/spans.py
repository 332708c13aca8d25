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


async def spans_for_trace(session: AsyncSession, *, trace_id: str) -> list[SpanRecord]:
    stmt = select(SpanRecord).where(SpanRecord.trace_id == trace_id).order_by(SpanRecord.start_time)
    return list((await session.execute(stmt)).scalars())
