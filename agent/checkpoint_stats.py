"""How many bytes of LangGraph checkpoint each email's thread holds.

A thread's size is the sum of ``octet_length`` of what the Postgres saver stores for it: each
checkpoint's JSON and metadata, its channel blobs and its pending writes (the payload columns, not
keys, row headers or indexes; ``table_bytes`` has the tables' size on disk, indexes included).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import TERMINAL_STATUSES

TERMINAL = sorted(s.value for s in TERMINAL_STATUSES)
CHECKPOINT_TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
ThreadKind = Literal["finished", "open", "other"]

# Bytes of every thread in :threads (text[]), one number.
THREADS_BYTES_SQL = text(
    """
    SELECT
      (SELECT coalesce(sum(octet_length(checkpoint::text) + octet_length(metadata::text)), 0)
       FROM checkpoints WHERE thread_id = ANY(:threads))
    + (SELECT coalesce(sum(octet_length(blob)), 0) FROM checkpoint_blobs WHERE thread_id = ANY(:threads))
    + (SELECT coalesce(sum(octet_length(blob)), 0) FROM checkpoint_writes WHERE thread_id = ANY(:threads))
    """
)

# Per kind of thread: finished (email in a terminal status), open (queued, processing, review) or
# other (no run row: not an email thread of ours). Whole-table scans: an operator's command.
_SIZES_SQL = text(
    """
    WITH c AS (
      SELECT thread_id, count(*) AS n,
             sum(octet_length(checkpoint::text) + octet_length(metadata::text)) AS b
      FROM checkpoints GROUP BY thread_id
    ), bl AS (
      SELECT thread_id, sum(octet_length(blob)) AS b FROM checkpoint_blobs GROUP BY thread_id
    ), w AS (
      SELECT thread_id, sum(octet_length(blob)) AS b FROM checkpoint_writes GROUP BY thread_id
    ), t AS (
      SELECT CASE WHEN e.status IS NULL THEN 'other'
                  WHEN e.status = ANY(:terminal) THEN 'finished' ELSE 'open' END AS kind,
             c.n, c.b + coalesce(bl.b, 0) + coalesce(w.b, 0) AS total
      FROM c
      LEFT JOIN bl USING (thread_id)
      LEFT JOIN w USING (thread_id)
      LEFT JOIN runs r ON r.thread_id = c.thread_id
      LEFT JOIN emails e ON e.id = r.email_id
    )
    SELECT kind, count(*) AS threads, sum(n) AS checkpoints, sum(total) AS total, avg(total) AS mean,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY total) AS p50,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY total) AS p95, max(total) AS max
    FROM t GROUP BY kind
    """
)


@dataclass(frozen=True)
class ThreadSizes:
    threads: int = 0
    checkpoints: int = 0
    total_bytes: int = 0
    mean_bytes: float = 0.0
    p50_bytes: float = 0.0
    p95_bytes: float = 0.0
    max_bytes: int = 0


@dataclass(frozen=True)
class CheckpointStats:
    finished_emails: int  # emails in a terminal status, with or without a thread
    sizes: dict[ThreadKind, ThreadSizes]
    table_bytes: dict[str, int]  # pg_total_relation_size: on disk, with indexes and TOAST

    @property
    def finished(self) -> ThreadSizes:
        return self.sizes.get("finished", ThreadSizes())


async def threads_bytes(session: AsyncSession, *, thread_ids: list[str]) -> int:
    return int((await session.execute(THREADS_BYTES_SQL, {"threads": thread_ids})).scalar_one())


async def checkpoint_stats(session: AsyncSession) -> CheckpointStats:
    sizes: dict[ThreadKind, ThreadSizes] = {}
    for row in (await session.execute(_SIZES_SQL, {"terminal": TERMINAL})).mappings():
        sizes[row["kind"]] = _sizes(row)
    finished_emails = (
        await session.execute(
            text("SELECT count(*) FROM emails WHERE status = ANY(:terminal)"), {"terminal": TERMINAL}
        )
    ).scalar_one()
    tables = {
        name: int((await session.execute(text(f"SELECT pg_total_relation_size('{name}')"))).scalar_one())
        for name in CHECKPOINT_TABLES  # our constants, never input
    }
    return CheckpointStats(finished_emails=int(finished_emails), sizes=sizes, table_bytes=tables)


def _sizes(row: Any) -> ThreadSizes:
    return ThreadSizes(
        threads=int(row["threads"]),
        checkpoints=int(row["checkpoints"]),
        total_bytes=int(row["total"]),
        mean_bytes=float(row["mean"]),
        p50_bytes=float(row["p50"]),
        p95_bytes=float(row["p95"]),
        max_bytes=int(row["max"]),
    )
