"""Jobs of a worker that died mid-job go back to the queue instead of being stuck in 'doing'."""

from __future__ import annotations

from sqlalchemy import text

from app.db import Database
from app.queue import PROCESS_EMAIL, enqueue
from app.tasks import open_queue, retry_stalled
from tests.support.stalled import mark_stalled


async def test_jobs_of_a_dead_worker_are_retried(db: Database, database_url: str) -> None:
    async with db.transaction() as session:
        job_id = await enqueue(
            session, queue="mailspine", task=PROCESS_EMAIL, args={"email_id": 0}, lock="email-stalled-test"
        )
    async with open_queue(database_url) as app:
        async with db.transaction() as session:
            await mark_stalled(session, [job_id])
        assert await retry_stalled(app.job_manager, seconds_since_heartbeat=60) >= 1
        async with db.transaction() as session:
            status = (
                await session.execute(
                    text("SELECT status::text FROM procrastinate_jobs WHERE id = :j"), {"j": job_id}
                )
            ).scalar_one()
            await session.execute(text("DELETE FROM procrastinate_jobs WHERE id = :j"), {"j": job_id})
    assert status == "todo"
