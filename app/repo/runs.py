"""Runs: one per email thread, with outcome, token usage, cost and trace id."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Run
from app.telemetry import instance_id


async def start_run(session: AsyncSession, *, email_id: int, thread_id: str, trace_id: str | None) -> Run:
    stmt = (
        insert(Run)
        .values(
            email_id=email_id, thread_id=thread_id, status="running", trace_id=trace_id, worker=instance_id()
        )
        .on_conflict_do_update(
            index_elements=[Run.thread_id], set_={"status": "running", "worker": instance_id()}
        )
        .returning(Run)
    )
    return (await session.execute(stmt)).scalar_one()


async def get_run(session: AsyncSession, *, thread_id: str) -> Run | None:
    return (await session.execute(select(Run).where(Run.thread_id == thread_id))).scalar_one_or_none()


async def get_runs_by_thread(session: AsyncSession, *, thread_ids: list[str]) -> dict[str, Run]:
    """The runs of these threads in one query (a list page must not query per row), by thread id."""
    if not thread_ids:
        return {}
    stmt = select(Run).where(Run.thread_id.in_(set(thread_ids)))
    return {run.thread_id: run for run in (await session.execute(stmt)).scalars()}


async def update_run(
    session: AsyncSession,
    *,
    thread_id: str,
    status: str,
    route: str | None = None,
    outcome: str | None = None,
    extraction: dict[str, Any] | None = None,
    plan: dict[str, Any] | None = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    cost_usd: Decimal | None = None,
    error: str | None = None,
    finished: bool = False,
) -> None:
    values: dict[str, Any] = {"status": status}
    for key, value in {
        "route": route,
        "outcome": outcome,
        "extraction": extraction,
        "plan": plan,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost_usd": cost_usd,
        "error": error,
    }.items():
        if value is not None:
            values[key] = value
    if finished:
        values["finished_at"] = func.now()
        values["worker"] = instance_id()
    await session.execute(update(Run).where(Run.thread_id == thread_id).values(**values))
