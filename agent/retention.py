"""Checkpoint retention: prune the threads of finished emails down to their final checkpoint.

The Postgres saver keeps every superstep's checkpoint, its pending writes and every version of
every channel blob, forever. Once an email is finished (done, rejected, quarantined or failed) and
``older_than_s`` has passed since, only its last checkpoint matters: ``graph.aget_state`` reads it
(the final values: extraction, plan, risk, decision, effects, outcome) and a re-delivered job
sees a thread with nothing left to run. Per finished thread this keeps the latest checkpoint of
each namespace with its own pending writes and the blobs its ``channel_versions`` name, and
deletes the older checkpoints, their writes and every blob no kept checkpoint references.

A thread waiting for review is not finished: it keeps everything, so it resumes as before. Runs,
reviews, the ledger and the audit log are ours, not the saver's, and are never touched.

Set-based SQL, one transaction per ``batch`` threads (the saver's own ``aprune`` in
langgraph-checkpoint-postgres >= 3.2 runs several statements and one transaction per thread).
Threads that use a ``DeltaChannel`` (their state is rebuilt from older checkpoints' writes) are
skipped, as the saver's ``keep_latest`` refuses them; mailspine's graph has none.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from agent.checkpoint_stats import TERMINAL, threads_bytes
from app.db import Database
from app.telemetry import tracer

log = logging.getLogger(__name__)

DEFAULT_BATCH = 500
_PRUNE_LOCK = 0x636B7074  # advisory lock id: one prune batch at a time (periodic task, CLI)

# Finished threads with something to prune (a second checkpoint), oldest run first, after a cursor.
_CANDIDATES_SQL = text(
    """
    SELECT r.id, r.thread_id, EXISTS (
             SELECT 1 FROM checkpoints c
             WHERE c.thread_id = r.thread_id
             AND c.metadata ?| array['counters_since_delta_snapshot', 'delta_writes_versioned']
           ) AS delta
    FROM runs r JOIN emails e ON e.id = r.email_id
    WHERE r.id > :after
      AND e.status = ANY(:terminal)
      AND coalesce(r.finished_at, e.updated_at) < :cutoff
      AND EXISTS (SELECT 1 FROM checkpoints c WHERE c.thread_id = r.thread_id OFFSET 1)
    ORDER BY r.id
    LIMIT :batch
    """
)

# The latest checkpoint of each (thread, namespace): checkpoint ids are uuid6, ordered by time.
_HEADS = """
    WITH heads AS (
      SELECT DISTINCT ON (thread_id, checkpoint_ns) thread_id, checkpoint_ns, checkpoint_id
      FROM checkpoints WHERE thread_id = ANY(:threads)
      ORDER BY thread_id, checkpoint_ns, checkpoint_id DESC
    )
"""

# Writes of the checkpoints about to go (and any orphan written before the head); the head's own
# pending writes stay: a thread that failed mid-step keeps what it needs to be resumed.
_DELETE_WRITES_SQL = text(
    _HEADS
    + """
    DELETE FROM checkpoint_writes w USING heads h
    WHERE w.thread_id = h.thread_id AND w.checkpoint_ns = h.checkpoint_ns
      AND w.checkpoint_id < h.checkpoint_id
    """
)

_DELETE_CHECKPOINTS_SQL = text(
    _HEADS
    + """
    DELETE FROM checkpoints c USING heads h
    WHERE c.thread_id = h.thread_id AND c.checkpoint_ns = h.checkpoint_ns
      AND c.checkpoint_id < h.checkpoint_id
    RETURNING c.thread_id
    """
)

# As the saver's own prune does: a kept checkpoint whose parent is gone has no parent.
_ORPHAN_PARENTS_SQL = text(
    """
    UPDATE checkpoints c SET parent_checkpoint_id = NULL
    WHERE c.thread_id = ANY(:threads) AND c.parent_checkpoint_id IS NOT NULL
      AND NOT EXISTS (
        SELECT 1 FROM checkpoints p
        WHERE p.thread_id = c.thread_id AND p.checkpoint_ns = c.checkpoint_ns
          AND p.checkpoint_id = c.parent_checkpoint_id
      )
    """
)

# A blob lives as long as a checkpoint of its thread and namespace names its (channel, version).
_DELETE_BLOBS_SQL = text(
    """
    DELETE FROM checkpoint_blobs b
    WHERE b.thread_id = ANY(:threads)
      AND NOT EXISTS (
        SELECT 1 FROM checkpoints c
        WHERE c.thread_id = b.thread_id AND c.checkpoint_ns = b.checkpoint_ns
          AND c.checkpoint -> 'channel_versions' ->> b.channel = b.version
      )
    """
)


@dataclass(frozen=True)
class PruneReport:
    threads: int = 0  # finished threads that had checkpoints deleted
    checkpoints_deleted: int = 0
    writes_deleted: int = 0
    blobs_deleted: int = 0
    bytes_before: int = 0  # of those threads (see agent/checkpoint_stats.py for what is counted)
    bytes_after: int = 0
    skipped: int = 0  # finished threads left alone because they use a DeltaChannel
    dry_run: bool = False

    def __add__(self, other: PruneReport) -> PruneReport:
        counts = {f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        return PruneReport(**counts | {"dry_run": self.dry_run})


async def prune_checkpoints(
    database: Database | str,
    *,
    older_than_s: float,
    batch: int = DEFAULT_BATCH,
    now: datetime | None = None,
    dry_run: bool = False,
) -> PruneReport:
    """Prune every thread of an email finished more than ``older_than_s`` before ``now``.

    ``dry_run`` runs the same statements and rolls each batch back: the report says what a real
    run would delete. Idempotent: a second run finds nothing left to delete.
    """
    if older_than_s < 0 or batch < 1:
        raise ValueError(f"older_than_s must be >= 0 and batch >= 1 (got {older_than_s}, {batch})")
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=older_than_s)
    db = Database(database) if isinstance(database, str) else database
    report, after = PruneReport(dry_run=dry_run), 0
    with tracer().start_as_current_span("prune_checkpoints") as span:
        try:
            more = True
            while more:
                # One transaction per batch; closing the session rolls back whatever is not committed.
                async with db.sessions() as session:
                    part, after, more = await _prune_batch(session, cutoff=cutoff, after=after, batch=batch)
                    await (session.rollback() if dry_run else session.commit())
                report += part
        finally:
            if db is not database:
                await db.dispose()
        for f in fields(report):
            span.set_attribute(f"mailspine.checkpoints.{f.name}", getattr(report, f.name))
    if report.skipped:
        log.warning("left %d finished thread(s) that use a DeltaChannel unpruned", report.skipped)
    log.info("%s checkpoints: %s", "dry run, would prune" if dry_run else "pruned", report)
    return report


async def _prune_batch(
    session: AsyncSession, *, cutoff: datetime, after: int, batch: int
) -> tuple[PruneReport, int, bool]:
    """One batch in the caller's transaction: (what was deleted, the cursor, whether to go on)."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PRUNE_LOCK})
    rows = (
        await session.execute(
            _CANDIDATES_SQL, {"after": after, "terminal": TERMINAL, "cutoff": cutoff, "batch": batch}
        )
    ).all()
    if not rows:
        return PruneReport(), after, False
    threads = [thread_id for _, thread_id, delta in rows if not delta]
    skipped = len(rows) - len(threads)
    cursor, more = int(rows[-1][0]), len(rows) == batch
    if not threads:
        return PruneReport(skipped=skipped), cursor, more
    params = {"threads": threads}
    before = await threads_bytes(session, thread_ids=threads)
    writes = (await session.execute(_DELETE_WRITES_SQL, params)).rowcount  # type: ignore[attr-defined]
    pruned = [t for (t,) in (await session.execute(_DELETE_CHECKPOINTS_SQL, params)).all()]
    await session.execute(_ORPHAN_PARENTS_SQL, params)
    blobs = (await session.execute(_DELETE_BLOBS_SQL, params)).rowcount  # type: ignore[attr-defined]
    part = PruneReport(
        threads=len(set(pruned)),
        checkpoints_deleted=len(pruned),
        writes_deleted=int(writes),
        blobs_deleted=int(blobs),
        bytes_before=before,
        bytes_after=await threads_bytes(session, thread_ids=threads),
        skipped=skipped,
    )
    return part, cursor, more
