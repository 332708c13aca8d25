"""The IMAP poller: one loop per account, IDLE with a polling fallback, reconnect with backoff.

Only one poller per account is active at a time across all workers and machines: it holds a
Postgres session-level advisory lock (the lease) on a dedicated connection; the others stand by
and take over when that connection dies. Correctness does not depend on the lease (the cursor row
lock in ``ingest_batch`` already makes double ingestion impossible); it avoids double fetching.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

import psycopg

from app.db import Database
from app.errors import MailboxAuthError, MailboxError
from app.mail_sync import sync_folder
from app.repo import cursors
from app.settings import ImapAccount, Settings
from app.telemetry import tracer
from tools.mailbox_imap import ImapReader

log = logging.getLogger(__name__)
STANDBY_RETRY_S = 10.0
IDLE_SLICE_S = 10.0  # how long one IDLE waits before re-checking the stop flag and the lease


class Backoff:
    """Exponential backoff with full jitter."""

    def __init__(self, *, base: float = 1.0, cap: float = 300.0) -> None:
        self.base, self.cap, self.attempt = base, cap, 0

    def next(self) -> float:
        self.attempt += 1
        return random.uniform(0, min(self.cap, self.base * 2**self.attempt))

    def reset(self) -> None:
        self.attempt = 0


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def _record_error(db: Database, account: ImapAccount, error: str | None) -> None:
    async with db.transaction() as session:
        for folder in account.folders:
            await cursors.record_error(session, account=account.name, folder=folder, error=error)


async def _serve(
    db: Database,
    account: ImapAccount,
    settings: Settings,
    stop: asyncio.Event,
    lease: psycopg.AsyncConnection[object],
) -> None:
    """Connected-session loop; returns on stop, raises on connection or auth trouble."""
    reader = ImapReader(account, max_bytes=settings.max_email_bytes)
    try:
        await asyncio.to_thread(reader.open)
        log.info(
            "%s: connected (%s)", account.name, ", ".join(sorted(reader.capabilities & {"IDLE", "MOVE"}))
        )
        await _record_error(db, account, None)
        while not stop.is_set():
            for folder in account.folders:
                with tracer().start_as_current_span("mailbox sync") as span:
                    span.set_attribute("mailspine.account", account.name)
                    report = await sync_folder(db, reader, folder, queue=settings.queue_name)
                    span.set_attribute("mailspine.ingested", len(report.new_ids))
                if report.new_ids:
                    log.info("%s/%s: ingested %d new message(s)", account.name, folder, len(report.new_ids))
            await lease.execute("SELECT 1")  # lost the lease connection? then stop and re-elect
            await asyncio.to_thread(reader.examine, account.folders[0])
            wait = (
                IDLE_SLICE_S
                if reader.account.idle and "IDLE" in reader.capabilities
                else account.poll_interval_s
            )
            await asyncio.to_thread(reader.wait_for_changes, min(wait, IDLE_SLICE_S))
    finally:
        await asyncio.to_thread(reader.close)


async def poll_account(db: Database, account: ImapAccount, settings: Settings, stop: asyncio.Event) -> None:
    backoff = Backoff()
    key = f"mailspine.poller:{account.name}"
    while not stop.is_set():
        try:
            async with await psycopg.AsyncConnection.connect(db.url, autocommit=True) as lease:
                got = await (
                    await lease.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (key,))
                ).fetchone()
                if not (got and got[0]):
                    await _sleep(stop, STANDBY_RETRY_S)  # another poller holds the lease
                    continue
                log.info("%s: poller active", account.name)
                await _serve(db, account, settings, stop, lease)
                backoff.reset()
        except MailboxAuthError as exc:
            log.error("%s: authentication failed: %s", account.name, exc)
            await _record_error(db, account, f"auth: {exc}")
            await _sleep(stop, max(60.0, backoff.next()))  # a fixed credential is picked up on the next try
        except (MailboxError, psycopg.OperationalError) as exc:
            delay = backoff.next()
            log.warning("%s: %s; reconnecting in %.1fs", account.name, exc, delay)
            await _record_error(db, account, str(exc)[:500])
            await _sleep(stop, delay)


async def run_pollers(db: Database, settings: Settings, stop: asyncio.Event) -> None:
    if not settings.imap_accounts:
        return
    await asyncio.gather(*(poll_account(db, a, settings, stop) for a in settings.imap_accounts))
