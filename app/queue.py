"""Enqueueing jobs inside our own transactions (procrastinate's tables live in our database).

``enqueue`` calls procrastinate's own SQL function in the caller's SQLAlchemy transaction, so an
email row and its processing job commit together or not at all. The job ``lock`` is the thread id:
procrastinate never runs two jobs with the same lock at once, so one thread never runs on two
workers at the same time.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

MAINTENANCE_QUEUE = "mailspine.maintenance"  # periodic housekeeping; every worker listens to it
PROCESS_EMAIL = "process_email"
RESUME_REVIEW = "resume_review"

_DEFER = text(
    "SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[ROW("
    ":queue, :task, 0, :lock, :queueing_lock, CAST(:args AS jsonb), NULL"
    ")::procrastinate_job_to_defer_v1]))"
)


async def enqueue(
    session: AsyncSession,
    *,
    queue: str,
    task: str,
    args: dict[str, Any],
    lock: str,
    queueing_lock: str | None = None,
) -> int:
    params = {
        "queue": queue,
        "task": task,
        "lock": lock,
        "queueing_lock": queueing_lock,
        "args": json.dumps(args),
    }
    return int((await session.execute(_DEFER, params)).scalar_one())


async def queue_depth(session: AsyncSession, *, queue: str) -> dict[str, int]:
    rows = await session.execute(
        text("SELECT status::text, count(*) FROM procrastinate_jobs WHERE queue_name = :q GROUP BY status"),
        {"q": queue},
    )
    return {status: int(n) for status, n in rows.all()}


async def enqueue_many(
    session: AsyncSession, *, queue: str, task: str, jobs: list[tuple[str, dict[str, Any]]]
) -> None:
    """Enqueue ``(lock, args)`` jobs in one statement (the batched ingest path)."""
    if not jobs:
        return
    rows, params = [], {"queue": queue, "task": task}
    for i, (lock, args) in enumerate(jobs):
        rows.append(f"ROW(:queue, :task, 0, :l{i}, NULL, CAST(:a{i} AS jsonb), NULL)")
        params |= {f"l{i}": lock, f"a{i}": json.dumps(args)}
    sql = f"SELECT procrastinate_defer_jobs_v1(ARRAY[{', '.join(rows)}]::procrastinate_job_to_defer_v1[])"
    await session.execute(text(sql), params)
