"""The ``mailspine`` command. Heavy imports stay inside commands so ``--help`` is instant."""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from app.errors import MailspineError
from app.settings import Settings, get_settings

cli = typer.Typer(help="mailspine: a production email-processing agent.", no_args_is_help=True)
db_cli = typer.Typer(help="Database schema.", no_args_is_help=True)
crm_cli = typer.Typer(help="The reference CRM service.", no_args_is_help=True)
crm_token_cli = typer.Typer(help="CRM access tokens.", no_args_is_help=True)
mailbox_cli = typer.Typer(help="Mailboxes.", no_args_is_help=True)
audit_cli = typer.Typer(help="The audit log.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(crm_cli, name="crm")
crm_cli.add_typer(crm_token_cli, name="token")
cli.add_typer(mailbox_cli, name="mailbox")
cli.add_typer(audit_cli, name="audit")


def _boot(role: str) -> tuple[Settings, str]:
    """Settings, logging, database URL and telemetry for one process."""
    from app.db import resolve_database_url
    from app.telemetry import setup_telemetry

    settings = get_settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s [{role}] %(name)s: %(message)s",
    )
    url = resolve_database_url(settings)
    setup_telemetry(
        service_name=f"{settings.otel_service_name}-{role}",
        database_url=url,
        otlp_endpoint=settings.otel_exporter_otlp_endpoint,
    )
    return settings, url


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations (mailspine tables, job queue, checkpoints)."""
    from app.migrate import upgrade

    _, url = _boot("migrate")
    upgrade(url)
    typer.echo("database is up to date")


@cli.command()
def worker(
    concurrency: Annotated[int | None, typer.Option(help="Jobs run at once in this process")] = None,
    until_idle: Annotated[bool, typer.Option(help="Exit when the queue is empty")] = False,
    poll: Annotated[bool, typer.Option("--poll/--no-poll", help="Also run the IMAP pollers")] = True,
) -> None:
    """Run queued jobs (process_email, resume_review) and the IMAP pollers until stopped."""
    from app.worker import run_worker

    settings, url = _boot("worker")
    if concurrency:
        settings = settings.model_copy(update={"worker_concurrency": concurrency})
    asyncio.run(run_worker(settings, database_url=url, stop_when_idle=until_idle, poll_mailboxes=poll))


@cli.command()
def api() -> None:
    """Serve the gateway HTTP API."""
    import uvicorn

    from gateway.api import create_app

    settings, url = _boot("api")
    uvicorn.run(
        create_app(settings=settings, database_url=url),
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
    )


@crm_cli.command("serve")
def crm_serve() -> None:
    """Run the reference CRM service (migrates its own schema first)."""
    import uvicorn

    from infra.crm.app import create_app
    from infra.crm.migrate import upgrade

    settings, url = _boot("crm")
    upgrade(url)
    uvicorn.run(
        create_app(database_url=url), host=settings.crm_host, port=settings.crm_port, log_level="warning"
    )


@crm_token_cli.command("create")
def crm_token_create(
    name: Annotated[str, typer.Option(help="What the token is for")],
    scopes: Annotated[str, typer.Option(help="Comma-separated scopes")],
) -> None:
    """Create a CRM access token and print it once."""
    from app.crm_admin import create_crm_token

    _, url = _boot("crm")
    typer.echo(create_crm_token(url, name=name, scopes=[s.strip() for s in scopes.split(",") if s.strip()]))


@mailbox_cli.command("ingest")
def mailbox_ingest(
    directory: Annotated[Path | None, typer.Option(help="Directory of .eml files or a Maildir")] = None,
) -> None:
    """Ingest every new message of the directory mailbox and queue it for processing."""
    from app.db import Database
    from app.ingest import ingest_messages
    from tools.mailbox_dir import iter_directory_mailbox

    settings, url = _boot("ingest")
    root = directory or settings.mailbox_dir

    async def run() -> None:
        db = Database(url)
        try:
            messages = iter_directory_mailbox(root, max_bytes=settings.max_email_bytes)
            report = await ingest_messages(
                db, messages, account=settings.mailbox_account, queue=settings.queue_name
            )
        finally:
            await db.dispose()
        typer.echo(f"ingested {len(report.new_ids)} new, {report.duplicates} already stored")

    asyncio.run(run())


@mailbox_cli.command("check")
def mailbox_check() -> None:
    """Connect to every configured IMAP account and report capabilities, folders and counts."""
    from app.mail_sync import check_account

    settings = get_settings()
    if not settings.imap_accounts:
        typer.echo(
            "no IMAP accounts configured (MAILSPINE_IMAP_ACCOUNTS); the demo uses the directory mailbox"
        )
        raise typer.Exit(1)
    failed = 0
    for account in settings.imap_accounts:
        report = check_account(account, max_bytes=settings.max_email_bytes)
        mark = "ok" if report.ok else "FAILED"
        where = f"{account.username} at {account.host}:{account.port}, {account.security}"
        typer.echo(f"{account.name} ({where}): {mark}")
        if report.capabilities:
            typer.echo(f"  capabilities: {' '.join(report.capabilities)}")
        for f in report.folders:
            typer.echo(f"  {f.name}: {f.messages} messages, {f.unseen} unseen, UIDVALIDITY {f.uidvalidity}")
        if report.error:
            typer.echo(f"  error: {report.error}", err=True)
            failed += 1
    raise typer.Exit(1 if failed else 0)


@mailbox_cli.command("backfill")
def mailbox_backfill(
    account: Annotated[str, typer.Option(help="Account name from MAILSPINE_IMAP_ACCOUNTS")],
    since: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="Ingest messages since this date")],
    folder: Annotated[str | None, typer.Option(help="Folder (default: the account's folders)")] = None,
) -> None:
    """Ingest older messages (not stored yet) since a date, with a progress bar."""
    from rich.progress import Progress, TaskID

    from app.db import Database
    from app.mail_sync import backfill
    from tools.mailbox_imap import ImapReader

    settings, url = _boot("backfill")
    imap = settings.imap_account(account)

    async def run() -> None:
        db = Database(url)
        reader = ImapReader(imap, max_bytes=settings.max_email_bytes)
        try:
            await asyncio.to_thread(reader.open)
            with Progress() as bar:
                for name in [folder] if folder else imap.folders:
                    task = bar.add_task(f"{account}/{name}", total=None)

                    def advance(done: int, total: int, task: TaskID = task) -> None:
                        bar.update(task, completed=done, total=total)

                    report = await backfill(
                        db, reader, name, since=since.date(), queue=settings.queue_name, progress=advance
                    )
                    bar.stop_task(task)
                    typer.echo(
                        f"{account}/{name}: {len(report.new_ids)} new, {report.duplicates} already stored"
                    )
        finally:
            await asyncio.to_thread(reader.close)
            await db.dispose()

    asyncio.run(run())


@audit_cli.command("verify")
def audit_verify() -> None:
    """Check the audit log's hash chain; exit 1 if any row was modified or removed."""
    from app.db import Database
    from app.repo.audit import verify_chain

    _, url = _boot("audit")

    async def run() -> tuple[int, int | None]:
        db = Database(url)
        try:
            async with db.transaction() as session:
                return await verify_chain(session)
        finally:
            await db.dispose()

    checked, broken = asyncio.run(run())
    if broken is not None:
        typer.echo(f"audit chain BROKEN at row {broken} (after {checked} good rows)", err=True)
        raise typer.Exit(1)
    typer.echo(f"audit chain intact: {checked} rows")


@cli.command()
def dashboard() -> None:
    """Serve the reviewer dashboard (Streamlit)."""
    from app.processes import streamlit_command

    settings = get_settings()
    import subprocess

    raise typer.Exit(subprocess.call(streamlit_command(settings)))


@cli.command()
def demo(
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Keep the API and dashboard running")
    ] = True,
    mailbox: Annotated[Path | None, typer.Option(help="Mailbox directory to load")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for processing")] = 300.0,
    imap: Annotated[
        bool, typer.Option(help="Serve the mailbox from a local dovecot and send replies over SMTP")
    ] = False,
) -> None:
    """Run the whole pipeline on the demo mailbox with embedded defaults."""
    from app.demo import run_demo

    settings = get_settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s [demo] %(name)s: %(message)s",
    )
    raise typer.Exit(run_demo(settings, serve=serve, mailbox=mailbox, timeout_s=timeout, imap=imap))


def main() -> None:
    try:
        cli()
    except MailspineError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
