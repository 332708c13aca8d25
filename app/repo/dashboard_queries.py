"""Read queries behind the dashboard API (``gateway/routes_runs.py`` and its siblings).

Nothing here writes. Each function answers one screen's question in a few statements; the
gateway decides what of it a caller may see.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Email, Review, Run, SideEffect, SpanRecord
from app.models_eval import EvalRun
from app.models_llm import ModelCall
from app.models_online import OnlineScore

_Stmt = TypeVar("_Stmt", bound=Any)  # a SELECT of any columns


@dataclass(frozen=True)
class RunFilter:
    sender: str | None = None  # case-insensitive substring of the sender address
    intent: str | None = None  # the run's extracted intent, exactly
    status: str | None = None  # the email's status
    since: datetime | None = None  # received at or after
    until: datetime | None = None  # received before


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filtered(stmt: _Stmt, where: RunFilter) -> _Stmt:
    if where.sender:
        stmt = stmt.where(Email.sender_address.ilike(f"%{_escape_like(where.sender)}%", escape="\\"))
    if where.intent:
        stmt = stmt.where(Run.extraction["intent"].astext == where.intent)
    if where.status:
        stmt = stmt.where(Email.status == where.status)
    if where.since is not None:
        stmt = stmt.where(Email.received_at >= where.since)
    if where.until is not None:
        stmt = stmt.where(Email.received_at < where.until)
    return stmt


async def search_runs(
    session: AsyncSession, *, where: RunFilter, limit: int, offset: int
) -> tuple[int, list[tuple[Email, Run | None]]]:
    """Emails with their run (None: never reached the agent), newest first, and how many match."""
    joined = Run.email_id == Email.id
    counted = _filtered(select(func.count(Email.id)).select_from(Email).outerjoin(Run, joined), where)
    total = await session.scalar(counted)
    page = _filtered(select(Email, Run).outerjoin(Run, joined), where)
    page = page.order_by(Email.id.desc()).limit(limit).offset(offset)
    rows: list[tuple[Email, Run | None]] = [(e, r) for e, r in (await session.execute(page)).tuples()]
    return int(total or 0), rows


async def run_for_email(session: AsyncSession, *, email_id: int) -> Run | None:
    return (await session.execute(select(Run).where(Run.email_id == email_id))).scalar_one_or_none()


async def reviews_for_email(session: AsyncSession, *, email_id: int) -> list[Review]:
    stmt = select(Review).where(Review.email_id == email_id).order_by(Review.id)
    return list((await session.execute(stmt)).scalars())


async def effects_for_thread(session: AsyncSession, *, thread_id: str) -> list[SideEffect]:
    stmt = select(SideEffect).where(SideEffect.thread_id == thread_id).order_by(SideEffect.id)
    return list((await session.execute(stmt)).scalars())


async def spans_of_trace(session: AsyncSession, *, trace_id: str, limit: int = 5000) -> list[SpanRecord]:
    stmt = (
        select(SpanRecord)
        .where(SpanRecord.trace_id == trace_id)
        .order_by(SpanRecord.start_time, SpanRecord.span_id)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


# --- evals ---


async def list_eval_runs(
    session: AsyncSession, *, dataset_sha256: str | None, limit: int, offset: int
) -> list[EvalRun]:
    stmt = select(EvalRun).order_by(EvalRun.started_at.desc(), EvalRun.id.desc()).limit(limit).offset(offset)
    if dataset_sha256:
        stmt = stmt.where(EvalRun.dataset_sha256 == dataset_sha256)
    return list((await session.execute(stmt)).scalars())


# --- quality and cost ---


async def score_buckets(
    session: AsyncSession, *, since: datetime, bucket: str
) -> list[tuple[str, datetime, float | None, int]]:
    """``(name, bucket start, mean, scored count)`` per score name and hour or day; skipped
    scores (null) are not counted."""
    start = func.date_trunc(bucket, OnlineScore.created_at)
    stmt = (
        select(OnlineScore.name, start, func.avg(OnlineScore.value), func.count(OnlineScore.value))
        .where(OnlineScore.created_at >= since)
        .group_by(OnlineScore.name, start)
        .order_by(OnlineScore.name, start)
    )
    return [
        (name, at, float(mean) if mean is not None else None, int(n))
        for name, at, mean, n in (await session.execute(stmt)).tuples()
    ]


async def review_decisions_by_day(
    session: AsyncSession, *, since: datetime
) -> list[tuple[datetime, str, int]]:
    """``(UTC day, status, count)`` of reviews decided since ``since``: reviewer feedback over time."""
    day = func.date_trunc("day", Review.decided_at)
    stmt = (
        select(day, Review.status, func.count())
        .where(Review.decided_at.is_not(None), Review.decided_at >= since)
        .group_by(day, Review.status)
        .order_by(day, Review.status)
    )
    return [(d, s, int(n)) for d, s, n in (await session.execute(stmt)).tuples()]


async def model_spend_by_day(
    session: AsyncSession, *, since: datetime
) -> list[tuple[datetime, str, str, int, int, int, int]]:
    """``(UTC day, provider, model, calls, input tokens, output tokens, micro-USD)``."""
    day = func.date_trunc("day", ModelCall.created_at)
    stmt = (
        select(
            day,
            ModelCall.provider,
            ModelCall.model,
            func.count(),
            func.coalesce(func.sum(ModelCall.input_tokens), 0),
            func.coalesce(func.sum(ModelCall.output_tokens), 0),
            func.coalesce(func.sum(ModelCall.cost_micro_usd), 0),
        )
        .where(ModelCall.created_at >= since)
        .group_by(day, ModelCall.provider, ModelCall.model)
        .order_by(day, ModelCall.provider, ModelCall.model)
    )
    return [
        (d, p, m, int(n), int(i), int(o), int(c))
        for d, p, m, n, i, o, c in (await session.execute(stmt)).tuples()
    ]


async def circuit_open_calls(session: AsyncSession, *, since: datetime) -> tuple[int, datetime | None]:
    """Model calls refused by an open circuit breaker since ``since``, and the latest one's time."""
    stmt = select(func.count(), func.max(ModelCall.created_at)).where(
        ModelCall.status == "circuit_open", ModelCall.created_at >= since
    )
    n, last = (await session.execute(stmt)).one()
    return int(n), last


async def oldest_pending_review(session: AsyncSession) -> tuple[int, datetime | None]:
    stmt = select(func.count(), func.min(Review.created_at)).where(Review.status == "pending")
    n, oldest = (await session.execute(stmt)).one()
    return int(n), oldest


async def workers(session: AsyncSession) -> list[tuple[int, datetime, int]] | None:
    """``(worker id, last heartbeat, jobs it is running)`` from procrastinate's own tables; None
    when this procrastinate schema has no worker table (older than 3.0)."""
    exists = await session.scalar(text("SELECT to_regclass('procrastinate_workers') IS NOT NULL"))
    if not exists:
        return None
    rows = await session.execute(
        text(
            "SELECT w.id, w.last_heartbeat, count(j.id) FROM procrastinate_workers w"
            " LEFT JOIN procrastinate_jobs j ON j.worker_id = w.id AND j.status = 'doing'"
            " GROUP BY w.id, w.last_heartbeat ORDER BY w.id"
        )
    )
    return [(int(i), hb, int(n)) for i, hb, n in rows.tuples()]
