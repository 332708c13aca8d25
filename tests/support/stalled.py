"""Jobs that look like a dead worker's: ``doing``, held by a worker whose heartbeat is 10 minutes old."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def mark_stalled(session: AsyncSession, job_ids: list[int]) -> int:
    """Put ``job_ids`` in ``doing`` under a new worker last seen 10 minutes ago; returns its id."""
    worker_id = (
        await session.execute(
            text(
                "INSERT INTO procrastinate_workers (last_heartbeat) "
                "VALUES (now() - interval '10 minutes') RETURNING id"
            )
        )
    ).scalar_one()
    await session.execute(
        text("UPDATE procrastinate_jobs SET status = 'doing', worker_id = :w WHERE id = ANY(:j)"),
        {"w": worker_id, "j": job_ids},
    )
    return int(worker_id)
