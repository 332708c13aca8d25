"""``mailspine worker``: run queued jobs until SIGTERM/SIGINT (in-flight jobs finish first).

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

from app import tasks
from app.errors import DatabaseError
from app.poller import run_pollers
from app.queue import MAINTENANCE_QUEUE
from app.repo import audit
from app.services import open_services
from app.settings import Settings

log = logging.getLogger(__name__)
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def run_worker(
    settings: Settings, *, database_url: str, stop_when_idle: bool = False, poll_mailboxes: bool = True
) -> None:
    """Run jobs; unless told otherwise, also run the IMAP pollers (one active per account, leased)."""
    from gateway.guards.pipeline import configure_default_pipeline

    # Load the guard pipeline (llm-guard, embeddings, corpus) once, before the first job.
    await asyncio.to_thread(configure_default_pipeline, settings, database_url=database_url)
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
                run = asyncio.create_task(
                    app.run_worker_async(
                        queues=[settings.queue_name, MAINTENANCE_QUEUE],
                        concurrency=settings.worker_concurrency,
                        wait=not stop_when_idle,
                        install_signal_handlers=False,  # ours: they tell a requested stop apart
                        shutdown_graceful_timeout=30,
                        delete_jobs="successful",
                    )
                )
                requested = await _until_stopped(run)
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


async def _until_stopped(run: asyncio.Task[None]) -> bool:
    """Wait for the queue worker; True when it stopped because of SIGINT/SIGTERM. The first signal
    cancels it, which procrastinate turns into a graceful stop (in-flight jobs finish, up to the
    graceful timeout); the handlers are removed then, so a second signal stops the process hard."""
    loop = asyncio.get_running_loop()
    requested = False

    def on_signal() -> None:
        nonlocal requested
        requested = True
        for sig in _STOP_SIGNALS:
            loop.remove_signal_handler(sig)
        log.info("stop requested: finishing in-flight jobs")
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
