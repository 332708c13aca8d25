"""The procrastinate app and its tasks. Importable on purpose: workers and ``defer`` find it here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from procrastinate import App, BaseRetryStrategy, JobContext, PsycopgConnector, RetryDecision
from procrastinate.exceptions import ConnectorException, JobAborted
from procrastinate.jobs import Job
from procrastinate.manager import JobManager
from psycopg_pool import AsyncConnectionPool

from app import pipeline
from app.errors import CircuitOpen, ModelUnavailable, ToolUnavailable
from app.prompt_evals import PROMPT_EVAL, run_gate
from app.queue import MAINTENANCE_QUEUE, PROCESS_EMAIL, RESUME_REVIEW
from app.services import Services
from evals import online

# The connector gets its pool when a worker opens the app (``open_queue``). Not ``App.with_connector``:
# periodic tasks stay bound to the app they were declared on, so that app itself must be opened.
queue_app = App(connector=PsycopgConnector())


@asynccontextmanager
async def open_queue(database_url: str, *, max_size: int = 3) -> AsyncIterator[App]:
    pool: AsyncConnectionPool = AsyncConnectionPool(
        database_url, min_size=1, max_size=max_size, open=False, check=AsyncConnectionPool.check_connection
    )
    await pool.open(wait=True, timeout=30)
    try:
        async with queue_app.open_async(pool=pool):
            yield queue_app
    finally:
        await pool.close()
        _forget_pool(queue_app.connector)


def _forget_pool(connector: object) -> None:
    """Let ``queue_app`` be opened again in this process (tests do; a worker opens it once).

    procrastinate 3.10's ``PsycopgConnector.close_async`` leaves a pool it was given in place (it
    does not own it), and ``open_async`` returns early while one is set: the next ``open_queue``
    would keep using the pool closed above ("the pool ... is already closed").
    """
    if isinstance(connector, PsycopgConnector):
        connector._async_pool = None
        connector._pool_externally_set = False


class TransientRetry(BaseRetryStrategy):
    """When a job that failed for a transient reason runs again.

    The thread resumes from its last checkpoint and the ledger keeps side effects from repeating,
    so a retry only costs the step that failed.

    - ``CircuitOpen`` (the model provider is down and its breaker open): when the breaker lets a
      probe through, however many times that takes up to ``CIRCUIT_MAX_ATTEMPTS`` (about a day at
      the default 60 s reset). Emails wait; none fails because a provider had an outage.
    - ``ToolUnavailable`` / ``ModelUnavailable`` / the database unreachable (a Postgres restart or
      failover, ``pipeline.database_unavailable``): exponential backoff (2, 4, 8 ... s, at least the
      server's ``Retry-After``), ``max_attempts`` times; then the job fails and the email is marked
      ``failed`` with the reason (``pipeline.give_up``), for ``mailspine emails retry``.
    - cancelled by a stopping worker (its graceful timeout ran out): at once, on any worker.
    - anything else: not retried (the pipeline records it on the email).
    """

    def __init__(self, *, max_attempts: int = 8, base_s: float = 2.0, max_wait_s: float = 600.0) -> None:
        self.max_attempts, self.base_s, self.max_wait_s = max_attempts, base_s, max_wait_s

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        attempts = job.attempts
        if isinstance(exception, asyncio.CancelledError | JobAborted):
            # A stopping worker cancels the jobs still running when its graceful timeout ends;
            # procrastinate marks them aborted and asks here (for JobAborted only when the reason is
            # the shutdown). Without a retry the email stayed "processing" for good: the stalled-job
            # sweep picks up only jobs left "doing". Another worker resumes it from its checkpoint.
            return RetryDecision(retry_in={"seconds": 1})
        if isinstance(exception, CircuitOpen):
            if attempts >= CIRCUIT_MAX_ATTEMPTS:
                return None
            wait = max(1.0, exception.retry_after_s or 1.0)
            return RetryDecision(retry_in={"seconds": int(wait) + 1})
        transient = isinstance(exception, (ToolUnavailable, ModelUnavailable)) or (
            pipeline.database_unavailable(exception)
        )
        if not transient or attempts >= self.max_attempts:
            return None
        wait = min(self.max_wait_s, self.base_s ** (attempts + 1))
        retry_after = getattr(exception, "retry_after_s", None)
        if retry_after:
            wait = max(wait, min(self.max_wait_s, retry_after))
        return RetryDecision(retry_in={"seconds": int(wait) + 1})


CIRCUIT_MAX_ATTEMPTS = 1500
TRANSIENT = TransientRetry()

# A worker that stops heartbeating this long (SIGKILL, OOM, lost machine) has its jobs retried.
STALLED_AFTER_S = 60.0

log = logging.getLogger(__name__)
_services: Services | None = None


def bind_services(services: Services | None) -> None:
    global _services
    _services = services


def services() -> Services:
    if _services is None:
        raise RuntimeError("worker services are not initialised (run through `mailspine worker`)")
    return _services


@queue_app.task(name=PROCESS_EMAIL, retry=TRANSIENT, pass_context=True)
async def process_email(context: JobContext, email_id: int, trace: dict[str, str] | None = None) -> str:
    try:
        status = await pipeline.process_email(services(), email_id=email_id, trace=trace)
    except Exception as exc:
        if _last_attempt(context, exc):
            await pipeline.give_up(
                services(), email_id=email_id, error=exc, attempts=context.job.attempts + 1
            )
        raise
    await online.after_task(services(), email_id=email_id)
    return status


@queue_app.task(name=RESUME_REVIEW, retry=TRANSIENT, pass_context=True)
async def resume_review(context: JobContext, review_id: int, trace: dict[str, str] | None = None) -> str:
    try:
        status = await pipeline.resume_review(services(), review_id=review_id, trace=trace)
    except Exception as exc:
        if _last_attempt(context, exc):
            await pipeline.give_up(
                services(), review_id=review_id, error=exc, attempts=context.job.attempts + 1
            )
        raise
    await online.after_task(services(), review_id=review_id)
    return status


@queue_app.task(name=online.ONLINE_EVAL, retry=TRANSIENT)
async def online_eval(email_id: int) -> list[str]:
    """Score one finished run: rule checks, and the judge when a real model is configured."""
    return await online.score_email(services(), email_id=email_id)


@queue_app.task(name=online.SHADOW_RUN, retry=TRANSIENT)
async def shadow_run(email_id: int) -> int | None:
    """Run the shadow candidate on one finished email (no side effects); store the comparison."""
    from evals.shadow import run_shadow

    row = await run_shadow(services(), email_id=email_id)
    return row.id if row is not None else None


def _last_attempt(context: JobContext, exc: Exception) -> bool:
    """No retry follows this failure. Every retry counts, including the ones that bring back the
    jobs of killed workers, so a job killed often can run out of attempts on a transient error."""
    return TRANSIENT.get_retry_decision(exception=exc, job=context.job) is None


# procrastinate_retry_job's RAISE when the job is gone or no longer doing/failed.
_NOT_RETRYABLE = "Job was not found or has an invalid status to retry"


async def retry_stalled(jobs: JobManager, *, seconds_since_heartbeat: float = STALLED_AFTER_S) -> int:
    """Put jobs of dead workers back to ``todo``; the thread resumes from its last checkpoint.

    Returns how many jobs were actually retried. A job that left ``doing`` between the select and its
    retry (it finished, or another process retried or deleted it) is skipped, not an error."""
    retried = 0
    for job in await jobs.get_stalled_jobs(seconds_since_heartbeat=seconds_since_heartbeat):
        log.warning("retrying job %s (%s) of a stalled worker", job.id, job.task_name)
        try:
            await jobs.retry_job(job)
        except ConnectorException as exc:
            cause = exc.__cause__
            if not (isinstance(cause, psycopg.errors.RaiseException) and _NOT_RETRYABLE in str(cause)):
                raise
            log.info("job %s left 'doing' before its retry; skipped", job.id)
            continue
        retried += 1
    return retried


@queue_app.periodic(cron="* * * * *", periodic_id="retry-stalled")
@queue_app.task(
    name="retry_stalled_jobs", queue=MAINTENANCE_QUEUE, queueing_lock="retry_stalled_jobs", pass_context=True
)
async def retry_stalled_jobs(context: JobContext, timestamp: int) -> int:
    return await retry_stalled(context.app.job_manager)


@queue_app.periodic(cron="17 * * * *", periodic_id="purge-auth-state")
@queue_app.task(
    name="purge_auth_state", queue=MAINTENANCE_QUEUE, queueing_lock="purge_auth_state", pass_context=True
)
async def purge_auth_state(context: JobContext, timestamp: int) -> dict[str, int]:
    """Hourly: expired refresh tokens, finished sessions and stale login-throttle rows."""
    from gateway.auth_sessions import purge_expired

    svc = services()
    purged = await purge_expired(svc.db, svc.settings.auth)
    log.info("purged auth state: %s", purged)
    return {
        "refresh_tokens": purged.refresh_tokens,
        "sessions": purged.sessions,
        "throttle_rows": purged.throttle_rows,
    }


@queue_app.periodic(cron="41 * * * *", periodic_id="prune-checkpoints")
@queue_app.task(
    name="prune_checkpoints", queue=MAINTENANCE_QUEUE, queueing_lock="prune_checkpoints", pass_context=True
)
async def prune_checkpoints(context: JobContext, timestamp: int) -> dict[str, int]:
    """Hourly: emails finished over MAILSPINE_CHECKPOINT_RETENTION_S ago keep only their last checkpoint."""
    from agent.retention import prune_checkpoints as prune

    svc = services()
    report = await prune(svc.db, older_than_s=svc.settings.checkpoint_retention_s)
    return {
        "threads": report.threads,
        "checkpoints_deleted": report.checkpoints_deleted,
        "writes_deleted": report.writes_deleted,
        "blobs_deleted": report.blobs_deleted,
        "bytes_freed": report.bytes_before - report.bytes_after,
    }


@queue_app.task(name=PROMPT_EVAL, queue=MAINTENANCE_QUEUE)
async def prompt_eval(name: str, version: str, requested_by: str | None = None) -> dict[str, Any]:
    """The prompt console's eval request: the gate for ``name@version``, verdict stored in eval_runs.
    Not retried: a failure (no baseline, no CREATEDB right) stays on record for the console to show."""
    log.info("prompt eval of %s@%s requested by %s", name, version, requested_by or "?")
    svc = services()
    report = await run_gate(
        database_url=svc.db.url, name=name, version=version, baseline=svc.settings.eval_baseline
    )
    return {"passed": bool(report.get("passed")), "runs": report.get("runs", [])}
