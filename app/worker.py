"""``mailspine worker``: run queued jobs until SIGTERM/SIGINT (in-flight jobs finish first)."""

from __future__ import annotations

import asyncio
import logging

from app import tasks
from app.poller import run_pollers
from app.queue import MAINTENANCE_QUEUE
from app.services import open_services
from app.settings import Settings

log = logging.getLogger(__name__)


async def run_worker(
    settings: Settings, *, database_url: str, stop_when_idle: bool = False, poll_mailboxes: bool = True
) -> None:
    """Run jobs; unless told otherwise, also run the IMAP pollers (one active per account, leased)."""
    from gateway.guards.pipeline import configure_default_pipeline

    # Load the guard pipeline (llm-guard, embeddings, corpus) once, before the first job.
    await asyncio.to_thread(configure_default_pipeline, settings, database_url=database_url)
    async with open_services(settings, database_url=database_url) as services:
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
                await app.run_worker_async(
                    queues=[settings.queue_name, MAINTENANCE_QUEUE],
                    concurrency=settings.worker_concurrency,
                    wait=not stop_when_idle,
                    install_signal_handlers=True,
                    shutdown_graceful_timeout=30,
                    delete_jobs="successful",
                )
        finally:
            stop.set()
            if pollers is not None:
                await pollers
            tasks.bind_services(None)
            log.info("worker stopped")
