"""A stalled job that leaves 'doing' between the select and its retry is skipped, not fatal.

``retry_stalled`` lists the jobs of dead workers, then retries them one by one. Between the two a
job can finish (its worker was only slow) or another process can retry it first; procrastinate's
``procrastinate_retry_job`` then raises. That job must be skipped, the others still retried, and
only the jobs actually retried counted. The race is made deterministic on a real Postgres: the real
``get_stalled_jobs`` runs, then, before ``retry_stalled`` gets the list back, one job is finished
and another is retried by "another process" (the same real ``retry_job`` call, made first).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import pytest
from procrastinate.jobs import Job
from sqlalchemy import text

from app.db import Database
from app.queue import PROCESS_EMAIL, enqueue
from app.tasks import open_queue, retry_stalled
from tests.support.stalled import mark_stalled

pytestmark = pytest.mark.integration


async def _stalled_jobs(db: Database, queue: str, count: int) -> list[int]:
    """``count`` jobs in ``doing`` on ``queue``, held by a worker whose last heartbeat is 10 minutes old."""
    async with db.transaction() as session:
        job_ids = [
            await enqueue(session, queue=queue, task=PROCESS_EMAIL, args={"email_id": 0}, lock=f"{queue}-{i}")
            for i in range(count)
        ]
        await mark_stalled(session, job_ids)
    return job_ids


async def _statuses(db: Database, job_ids: list[int]) -> dict[int, str]:
    async with db.transaction() as session:
        rows = await session.execute(
            text("SELECT id, status::text FROM procrastinate_jobs WHERE id = ANY(:j)"), {"j": job_ids}
        )
        return {int(job_id): status for job_id, status in rows.all()}


async def test_jobs_that_left_doing_before_their_retry_are_skipped(
    db: Database, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = f"race-{uuid.uuid4().hex[:8]}"
    still_stalled, finished, retried_elsewhere = await _stalled_jobs(db, queue, 3)
    async with open_queue(database_url) as app:
        jobs = app.job_manager
        real_get_stalled_jobs = jobs.get_stalled_jobs

        async def racing_get_stalled_jobs(*, seconds_since_heartbeat: float) -> Iterable[Job]:
            # Only this test's queue, so jobs other tests left behind cannot change the count.
            stalled = list(
                await real_get_stalled_jobs(queue=queue, seconds_since_heartbeat=seconds_since_heartbeat)
            )
            assert {job.id for job in stalled} == {still_stalled, finished, retried_elsewhere}
            async with db.transaction() as session:  # the slow worker finishes its job after all
                await session.execute(
                    text("UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id = :j"),
                    {"j": finished},
                )
            await jobs.retry_job(next(job for job in stalled if job.id == retried_elsewhere))
            return stalled

        monkeypatch.setattr(jobs, "get_stalled_jobs", racing_get_stalled_jobs)
        try:
            assert await retry_stalled(jobs, seconds_since_heartbeat=60) == 1
            statuses = await _statuses(db, [still_stalled, finished, retried_elsewhere])
        finally:
            async with db.transaction() as session:
                await session.execute(
                    text("DELETE FROM procrastinate_jobs WHERE queue_name = :q"), {"q": queue}
                )
    assert statuses == {still_stalled: "todo", finished: "succeeded", retried_elsewhere: "todo"}
