"""Waiting for a benchmark's emails to settle while sampling the workers' memory."""

from __future__ import annotations

import asyncio

import psutil

from app.db import Database
from app.demo import wait_settled


def settle_sampling_rss(url: str, ids: list[int], workers: list[psutil.Process]) -> int:
    """Wait until every email of ``ids`` is settled (up to 30 minutes); return the peak RSS in bytes
    of the largest single worker process, sampled every 0.2 s meanwhile."""
    peak = 0

    async def settle() -> None:
        nonlocal peak
        db = Database(url)
        task = asyncio.create_task(wait_settled(db, ids, timeout_s=1800, progress=False))
        while not task.done():
            peak = max([peak, *(p.memory_info().rss for p in workers if p.is_running())])
            await asyncio.sleep(0.2)
        await task
        await db.dispose()

    asyncio.run(settle())
    return peak
