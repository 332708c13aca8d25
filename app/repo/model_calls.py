"""Model call records: what each email and each day spent."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models_llm import ModelCall


async def record_call(session: AsyncSession, **values: object) -> None:
    # An INSERT statement, not ``session.add``: one row per model call is on the hot path, and
    # the ORM's unit of work costs more than the statement itself.
    await session.execute(insert(ModelCall).values(**values))


async def spent_today_micro_usd(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Cost of every model call since 00:00 UTC today, in micro-USD."""
    now = now or datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    total = await session.scalar(
        select(func.coalesce(func.sum(ModelCall.cost_micro_usd), 0)).where(ModelCall.created_at >= midnight)
    )
    return int(total or 0)


async def calls_for_thread(session: AsyncSession, *, thread_id: str) -> list[ModelCall]:
    rows = await session.execute(
        select(ModelCall).where(ModelCall.thread_id == thread_id).order_by(ModelCall.id)
    )
    return list(rows.scalars())
