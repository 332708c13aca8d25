"""``mailspine demo``: the whole pipeline on the demo mailbox with embedded defaults.

It resets its own database (``mailspine_demo``) on the configured server (embedded when
``DATABASE_URL`` is unset), starts the CRM and a worker (plus the API and dashboard with
``--serve``), ingests the mailbox, waits until every email is settled and prints a summary. With
``--no-serve`` the last line printed is exactly one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from app.crm_admin import AGENT_SCOPES, create_crm_token
from app.db import Database, fresh_database, resolve_database_url
from app.ingest import ingest_messages
from app.migrate import upgrade
from app.models import TERMINAL_STATUSES, EmailStatus
from app.processes import ProcessGroup, streamlit_command
from app.repo import emails, spans
from app.settings import Settings
from app.telemetry import flush_telemetry, setup_telemetry
from tools.crm import READER_SCOPES
from tools.mailbox_dir import iter_directory_mailbox

log = logging.getLogger(__name__)
DEMO_DB = "mailspine_demo"


async def wait_settled(
    db: Database,
    ids: list[int],
    *,
    timeout_s: float,
    progress: bool = True,
    check: Callable[[], None] | None = None,
) -> dict[str, int]:
    """Poll until every email is terminal or waiting for review; return counts by status.

    ``check`` is called on every poll and may raise (e.g. when a worker process died).
    """
    settled = {*TERMINAL_STATUSES, EmailStatus.REVIEW}
    deadline = time.monotonic() + timeout_s
    last = -1
    while True:
        async with db.transaction() as session:
            counts = await emails.count_by_status(session, email_ids=ids)
        done = sum(n for status, n in counts.items() if status in settled)
        if progress and done != last:
            print(f"  processed {done}/{len(ids)}", file=sys.stderr, flush=True)
            last = done
        if done >= len(ids):
            return counts
        if check is not None:
            check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {done}/{len(ids)} emails settled after {timeout_s}s: {counts}")
        await asyncio.sleep(0.5)


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds through ProcessGroup, which stops every child


def run_demo(
    settings: Settings, *, serve: bool, mailbox: Path | None, timeout_s: float, imap: bool = False
) -> int:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        with ExitStack() as stack:
            return _run(
                settings,
                stack,
                serve=serve,
                mailbox=mailbox or settings.mailbox_dir,
                timeout_s=timeout_s,
                imap=imap,
            )
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 130


def _run(
    settings: Settings, stack: ExitStack, *, serve: bool, mailbox: Path, timeout_s: float, imap: bool
) -> int:
    url = fresh_database(resolve_database_url(settings), DEMO_DB)
    upgrade(url)
    from infra.crm.migrate import upgrade as crm_upgrade

    crm_upgrade(url)
    from gateway.guards.corpus import sync_corpus

    sync_corpus(url)  # the semantic injection detector's corpus, in pgvector where the server has it
    # One token per tool credential: the write tools' and the read tools' (read-only scopes).
    token = create_crm_token(url, name="demo-agent", scopes=list(AGENT_SCOPES))
    read_token = create_crm_token(url, name="demo-agent-reader", scopes=list(READER_SCOPES))
    setup_telemetry(
        service_name=f"{settings.otel_service_name}-demo",
        database_url=url,
        otlp_endpoint=settings.otel_exporter_otlp_endpoint,
    )
    env = {
        "DATABASE_URL": url,
        "MAILSPINE_TOOLS__CREDENTIALS__CRM_WRITE": token,
        "MAILSPINE_TOOLS__CREDENTIALS__CRM_READ": read_token,
        "MAILSPINE_CRM_BASE_URL": settings.crm_base_url,
        "OTEL_BSP_SCHEDULE_DELAY": "500",
    }
    if imap:
        from app.demo_mail import local_mail_servers

        mail = stack.enter_context(local_mail_servers(settings.var_dir / "mail", mailbox))
        env |= mail.env
    group = stack.enter_context(ProcessGroup(settings.var_dir / "logs", env))
    group.start("crm", ["crm", "serve"])
    group.wait_http("crm", f"{settings.crm_base_url}/health")
    group.start("worker", ["worker"])
    if serve:
        group.start("api", ["api"])
        group.wait_http("api", f"{settings.gateway_url}/health")
        group.start("dashboard", streamlit_command(settings))
    summary = asyncio.run(_process(settings, url, mailbox, timeout_s, group.check_alive, via_imap=imap))
    if not serve:
        group.stop("worker")  # a graceful stop flushes the worker's last spans
    else:
        time.sleep(1.0)  # the worker exports spans every 500 ms (OTEL_BSP_SCHEDULE_DELAY above)
    summary["spans"] = asyncio.run(_count_spans(url))
    if imap:
        print(
            f"  replies sent over SMTP: {len(mail.sink.messages)} (IMAP {mail.imap_port}, "
            f"SMTP {mail.sink.port})",
            file=sys.stderr,
        )
    print(json.dumps(summary), flush=True)
    if not serve:
        return 0
    print(f"\n  gateway API   {settings.gateway_url}/docs   (dev key: MAILSPINE_REVIEWER_API_KEY)")
    print(f"  dashboard     http://{settings.api_host}:{settings.dashboard_port}")
    print(f"  CRM           {settings.crm_base_url}/docs")
    print("  Ctrl-C stops everything.", flush=True)
    while True:
        group.check_alive()
        time.sleep(1)


async def _process(
    settings: Settings,
    url: str,
    mailbox: Path,
    timeout_s: float,
    check: Callable[[], None],
    *,
    via_imap: bool,
) -> dict[str, Any]:
    db = Database(url)
    try:
        if via_imap:  # the worker's poller ingests from the local dovecot; wait for every message
            expected = len(await asyncio.to_thread(lambda: list(mailbox.glob("*.eml"))))
            ids = await _await_ingest(db, expected=expected, timeout_s=timeout_s, check=check)
        else:
            messages = iter_directory_mailbox(mailbox, max_bytes=settings.max_email_bytes)
            report = await ingest_messages(
                db, messages, account=settings.mailbox_account, queue=settings.queue_name
            )
            ids = report.new_ids
        counts = await wait_settled(db, ids, timeout_s=timeout_s, check=check)
    finally:
        await db.dispose()
    flush_telemetry()
    return {
        "processed": sum(counts.values()),
        "auto": counts.get(EmailStatus.DONE, 0),
        "review": counts.get(EmailStatus.REVIEW, 0),
        "quarantined": counts.get(EmailStatus.QUARANTINED, 0),
        "failed": counts.get(EmailStatus.FAILED, 0),
        "spans": 0,
    }


async def _await_ingest(
    db: Database, *, expected: int, timeout_s: float, check: Callable[[], None]
) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while True:
        async with db.transaction() as session:
            ids = [e.id for e in await emails.list_emails(session, limit=expected + 1)]
        if len(ids) >= expected:
            return sorted(ids)
        check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(ids)}/{expected} messages arrived over IMAP after {timeout_s}s")
        await asyncio.sleep(0.5)


async def _count_spans(url: str) -> int:
    flush_telemetry()
    db = Database(url)
    try:
        async with db.transaction() as session:
            return await spans.count_spans(session)
    finally:
        await db.dispose()
