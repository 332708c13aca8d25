"""``mailspine worker``: run queued jobs until SIGTERM/SIGINT (in-flight jobs finish first).

The first SIGTERM (or SIGINT) stops fetching jobs and lets the ones in flight finish, up to
``SHUTDOWN_GRACEFUL_TIMEOUT_S``; jobs still running then are cancelled (procrastinate marks them
``aborted``). A second signal stops the process at once. With ``MAILSPINE_WORKER_HEALTH_PORT``
set, ``/livez`` and ``/readyz`` report all this (``app/worker_health.py``): ``/readyz`` answers
503 ``draining`` from the first signal on.

A worker whose job queue stops on its own — procrastinate stops when a side task fails, e.g. its
LISTEN connection during a Postgres restart — exits with an error instead of a clean 0, so its
supervisor (systemd ``Restart=on-failure``, Kubernetes, the demo) starts a fresh one; jobs it left
half done come back through the stalled-job retry (``app.tasks.retry_stalled``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import threading
from collections.abc import Callable

from procrastinate import App
from procrastinate.worker import Worker

from app import tasks
from app.errors import DatabaseError
from app.poller import run_pollers
from app.queue import MAINTENANCE_QUEUE
from app.repo import audit
from app.services import open_services
from app.settings import Settings
from app.worker_health import WorkerHealth, database_check, serve_health

log = logging.getLogger(__name__)
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
SHUTDOWN_GRACEFUL_TIMEOUT_S = 30.0


async def run_worker(
    settings: Settings, *, database_url: str, stop_when_idle: bool = False, poll_mailboxes: bool = True
) -> None:
    """Run jobs; unless told otherwise, also run the IMAP pollers (one active per account, leased).

    The health endpoints, when configured, start first: a supervisor sees the worker alive (and
    not yet ready) while the guard pipeline loads, and sees it draining after SIGTERM."""
    health = WorkerHealth(
        concurrency=settings.worker_concurrency, check_database=database_check(database_url)
    )
    async with serve_health(health, host=settings.worker_health_host, port=settings.worker_health_port):
        await _run(
            settings,
            health,
            database_url=database_url,
            stop_when_idle=stop_when_idle,
            poll_mailboxes=poll_mailboxes,
        )


async def _run(
    settings: Settings,
    health: WorkerHealth,
    *,
    database_url: str,
    stop_when_idle: bool,
    poll_mailboxes: bool,
) -> None:
    from gateway.guards.pipeline import configure_default_pipeline

    # Load the guard pipeline (llm-guard, embeddings, corpus) once, before the first job.
    await asyncio.to_thread(configure_default_pipeline, settings, database_url=database_url)
    health.pipeline_loaded = True
    async with open_services(settings, database_url=database_url) as services:
        async with services.db.transaction() as session:  # a config.change entry if it changed
            await audit.record_config(
                session,
                component="worker",
                settings=settings,
                secret_key=settings.pii.vault_key.get_secret_value(),
            )
        # What is loaded by now (llm-guard, the embedding model, torch, the graph) lives as long as
        # the process: freeze it out of the garbage collector's view, so that a full collection
        # during a job no longer walks millions of long-lived objects (bench/runtime.py measures it).
        gc.freeze()
        stop = asyncio.Event()
        pollers = (
            asyncio.create_task(run_pollers(services.db, settings, stop))
            if poll_mailboxes and settings.imap_accounts and not stop_when_idle
            else None
        )
        tasks.bind_services(services)
        try:
            async with tasks.open_queue(database_url) as app:
                log.info(
                    "worker started (queue %s, concurrency %d)",
                    settings.queue_name,
                    settings.worker_concurrency,
                )
                worker = _queue_worker(app, settings, health, stop_when_idle=stop_when_idle)
                run = asyncio.create_task(_work(worker))
                health.attach(worker, run)
                requested = await _until_stopped(run, on_stop=health.begin_draining)
                if not requested and not stop_when_idle:
                    raise DatabaseError(
                        "the job queue stopped on its own (see the error above: usually its database "
                        "connection was lost); exiting so that a fresh worker takes over"
                    )
        finally:
            stop.set()
            if pollers is not None:
                await pollers
            tasks.bind_services(None)
            log.info("worker stopped")


def _queue_worker(app: App, settings: Settings, health: WorkerHealth, *, stop_when_idle: bool) -> Worker:
    """What ``App.run_worker_async`` builds, built here so that the health endpoints can read its id.
    (Its ``perform_import_paths`` has nothing to do: the tasks are declared in ``app.tasks`` itself.)"""
    return Worker(
        app=app,
        queues=[settings.queue_name, MAINTENANCE_QUEUE],
        concurrency=settings.worker_concurrency,
        wait=not stop_when_idle,
        install_signal_handlers=False,  # ours: they tell a requested stop apart
        shutdown_graceful_timeout=SHUTDOWN_GRACEFUL_TIMEOUT_S,
        delete_jobs="successful",
        worker_middleware=[health.track_job],  # counts the jobs in flight
    )


async def _work(worker: Worker) -> None:
    await worker.run()  # type: ignore[no-untyped-call]  # unannotated in procrastinate 3.10


async def _until_stopped(run: asyncio.Task[None], *, on_stop: Callable[[], None] | None = None) -> bool:
    """Wait for the queue worker; True when it stopped because of SIGINT/SIGTERM. The first signal
    calls ``on_stop`` and cancels the worker, which procrastinate turns into a graceful stop
    (in-flight jobs finish, up to the graceful timeout); the handlers are removed then, so a second
    signal stops the process hard."""
    loop = asyncio.get_running_loop()
    requested = False

    def on_signal() -> None:
        nonlocal requested
        requested = True
        for sig in _STOP_SIGNALS:
            loop.remove_signal_handler(sig)
        log.info("stop requested: finishing in-flight jobs")
        if on_stop is not None:
            on_stop()
        run.cancel()

    handled = threading.current_thread() is threading.main_thread()  # signals reach only that one
    for sig in _STOP_SIGNALS if handled else ():
        loop.add_signal_handler(sig, on_signal)
    try:
        await run
    except asyncio.CancelledError:
        if not requested:
            raise
    finally:
        for sig in _STOP_SIGNALS if handled and not requested else ():
            loop.remove_signal_handler(sig)
    return requested
