"""The ``mailspine`` command. Heavy imports stay inside commands so ``--help`` is instant."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from app.cli_eval_gate import eval_baseline, eval_gate
from app.cli_history import history_cli
from app.cli_online import online_cli
from app.cli_prompts import prompts_cli
from app.cli_tools import tools_cli
from app.errors import MailspineError
from app.settings import Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")

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
checkpoints_cli = typer.Typer(help="LangGraph checkpoints: retention and size.", no_args_is_help=True)
cli.add_typer(checkpoints_cli, name="checkpoints")
emails_cli = typer.Typer(help="Emails already ingested.", no_args_is_help=True)
cli.add_typer(emails_cli, name="emails")
users_cli = typer.Typer(help="Gateway users: reviewers, admins and auditors.", no_args_is_help=True)
keys_cli = typer.Typer(help="Service API keys (msk_...).", no_args_is_help=True)
cli.add_typer(users_cli, name="users")
cli.add_typer(keys_cli, name="keys")
cli.add_typer(prompts_cli, name="prompts")
cli.add_typer(tools_cli, name="tools")
cli.add_typer(history_cli, name="history")


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
    from gateway.guards.corpus import sync_corpus

    written = sync_corpus(url)  # the injection corpus for pgvector (0 when unchanged or no pgvector)
    typer.echo(f"database is up to date ({written} injection-corpus rows written)")


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
def audit_verify(
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Check the audit log's hash chain and its anchor; exit 1 naming each modified, removed or
    reordered row."""
    import dataclasses
    import json

    from app.db import Database
    from app.repo.audit import AuditReport, verify_log

    _, url = _boot("audit")

    async def run() -> AuditReport:
        db = Database(url)
        try:
            async with db.transaction() as session:
                return await verify_log(session)
        finally:
            await db.dispose()

    report = asyncio.run(run())
    if json_out:
        typer.echo(json.dumps({"ok": report.ok, **dataclasses.asdict(report)}, indent=2))
    else:
        for problem in report.problems:
            where = f"row {problem.row}" if problem.row is not None else "log"
            typer.echo(f"{where}: {problem.kind}: {problem.detail}", err=True)
        state = "intact" if report.ok else f"BROKEN ({len(report.problems)} problem(s))"
        typer.echo(f"audit log {state}: {report.rows} rows, last row {report.last_id}, head {report.head}")
    if not report.ok:
        raise typer.Exit(1)


@emails_cli.command("retry")
def emails_retry(
    email_id: Annotated[
        list[int] | None, typer.Option("--id", help="Only these emails (gateway rejections too)")
    ] = None,
) -> None:
    """Queue failed emails again, e.g. after fixing an expired model or CRM key. Each resumes from
    its last checkpoint; the ledger keeps side effects from repeating."""
    import getpass

    from app.db import Database
    from app.requeue import requeue_failed

    settings, url = _boot("emails")

    async def run() -> list[int]:
        db = Database(url)
        try:
            return await requeue_failed(
                db, queue=settings.queue_name, email_ids=email_id or None, actor=f"cli:{getpass.getuser()}"
            )
        finally:
            await db.dispose()

    ids = asyncio.run(run())
    typer.echo(f"requeued {len(ids)} failed email(s)" + (f": {', '.join(map(str, ids))}" if ids else ""))


@checkpoints_cli.command("prune")
def checkpoints_prune(
    older_than: Annotated[
        float | None,
        typer.Option(
            min=0, help="Seconds since the email finished (default: MAILSPINE_CHECKPOINT_RETENTION_S)"
        ),
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="Threads per transaction")] = 500,
    dry_run: Annotated[bool, typer.Option(help="Report what would be deleted; delete nothing")] = False,
) -> None:
    """Keep only the final checkpoint of each finished email's thread (workers do this hourly)."""
    from agent.retention import prune_checkpoints

    settings, url = _boot("checkpoints")
    age = settings.checkpoint_retention_s if older_than is None else older_than
    report = asyncio.run(prune_checkpoints(url, older_than_s=age, batch=batch, dry_run=dry_run))
    verb = "would delete" if dry_run else "deleted"
    typer.echo(
        f"{report.threads} finished thread(s) older than {age:g}s: {verb} {report.checkpoints_deleted} "
        f"checkpoints, {report.writes_deleted} writes, {report.blobs_deleted} blobs; "
        f"{report.bytes_before:,} -> {report.bytes_after:,} bytes"
    )
    if report.skipped:
        typer.echo(f"{report.skipped} thread(s) use a DeltaChannel and were left as they are", err=True)


@checkpoints_cli.command("stats")
def checkpoints_stats() -> None:
    """Bytes of checkpoint per thread, for finished and open emails."""
    from agent.checkpoint_stats import ThreadKind, checkpoint_stats

    stats = _in_transaction("checkpoints", checkpoint_stats)
    typer.echo(f"finished emails: {stats.finished_emails} ({stats.finished.threads} with a thread)")
    labels: dict[ThreadKind, str] = {
        "finished": "finished threads",
        "open": "open threads (queued, processing, review)",
        "other": "other threads (no mailspine run)",
    }
    for kind, label in labels.items():
        s = stats.sizes.get(kind)
        if s is None:
            continue
        typer.echo(
            f"{label}: {s.threads}, {s.checkpoints / s.threads:.1f} checkpoints each; bytes per thread "
            f"mean {s.mean_bytes:,.0f}, p50 {s.p50_bytes:,.0f}, p95 {s.p95_bytes:,.0f}, max {s.max_bytes:,}; "
            f"total {s.total_bytes:,}"
        )
    on_disk = ", ".join(f"{name} {size:,}" for name, size in stats.table_bytes.items())
    typer.echo(f"tables on disk (with indexes; space is reused after VACUUM, not returned): {on_disk}")


def _in_transaction(role: str, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in one database transaction (committed if it returns)."""
    from app.db import Database

    _, url = _boot(role)

    async def run() -> T:
        db = Database(url)
        try:
            async with db.transaction() as session:
                return await work(session)
        finally:
            await db.dispose()

    return asyncio.run(run())


def _cli_actor() -> str:
    import getpass

    return f"cli:{getpass.getuser()}"


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@users_cli.command("create")
def users_create(
    email: Annotated[str, typer.Option(help="Sign-in e-mail (case-insensitive)")],
    role: Annotated[str, typer.Option(help="reviewer, admin or auditor")],
    password_stdin: Annotated[bool, typer.Option(help="Read the password from stdin (no prompt)")] = False,
    no_password: Annotated[bool, typer.Option(help="OIDC sign-in only: no password")] = False,
) -> None:
    """Create a gateway user; prompts for the password (argon2id-hashed, never stored in clear)."""
    from gateway.auth_accounts import AccountError, create_user

    settings = get_settings()
    password = None if no_password else _read_password(password_stdin)
    try:
        user = _in_transaction(
            "admin",
            lambda s: create_user(
                s, settings.auth, email=email, role=role, password=password, actor=_cli_actor()
            ),
        )
    except AccountError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"created user {user.id}: {user.email} ({user.role})")


@users_cli.command("list")
def users_list() -> None:
    """List users, their roles and status."""
    from app.repo.users import list_users

    for u in _in_transaction("admin", lambda s: list_users(s)):
        state = "active" if u.active else "disabled"
        login = u.last_login_at.isoformat(timespec="seconds") if u.last_login_at else "never"
        typer.echo(f"{u.id}\t{u.email}\t{u.role}\t{state}\tlast sign-in {login}")


@users_cli.command("disable")
def users_disable(email: Annotated[str, typer.Option(help="The user's e-mail")]) -> None:
    """Disable a user and end their sessions at once."""
    from app.repo.users import get_user_by_email
    from gateway.auth_accounts import update_user

    settings = get_settings()

    async def work(session: AsyncSession) -> bool:
        user = await get_user_by_email(session, email=email)
        if user is None:
            return False
        await update_user(session, settings.auth, user_id=user.id, active=False, actor=_cli_actor())
        return True

    if not _in_transaction("admin", work):
        typer.echo(f"error: no user {email}", err=True)
        raise typer.Exit(1)
    typer.echo(f"disabled {email}")


@users_cli.command("set-password")
def users_set_password(
    email: Annotated[str, typer.Option(help="The user's e-mail")],
    password_stdin: Annotated[bool, typer.Option(help="Read the password from stdin (no prompt)")] = False,
) -> None:
    """Set a new password (ends the user's sessions)."""
    from app.repo.users import get_user_by_email
    from gateway.auth_accounts import AccountError, update_user

    settings = get_settings()
    password = _read_password(password_stdin)

    async def work(session: AsyncSession) -> bool:
        user = await get_user_by_email(session, email=email)
        if user is None:
            return False
        await update_user(session, settings.auth, user_id=user.id, password=password, actor=_cli_actor())
        return True

    try:
        found = _in_transaction("admin", work)
    except AccountError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if not found:
        typer.echo(f"error: no user {email}", err=True)
        raise typer.Exit(1)
    typer.echo(f"password changed for {email}")


@users_cli.command("unlock")
def users_unlock(email: Annotated[str, typer.Option(help="The locked-out e-mail")]) -> None:
    """Lift a sign-in lockout before it runs out."""
    from gateway.auth_accounts import unlock_account

    cleared = _in_transaction("admin", lambda s: unlock_account(s, email=email, actor=_cli_actor()))
    typer.echo(f"unlocked {email}" if cleared else f"{email} had no failed sign-ins on record")


@keys_cli.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="What the key is for")],
    scope: Annotated[
        list[str],
        typer.Option(help="ingest, review:read, review:write, emails:read, stats:read, admin (repeatable)"),
    ],
) -> None:
    """Create a service key and print it once (only its hash is stored)."""
    from gateway.auth_accounts import AccountError, create_key

    try:
        row, key = _in_transaction(
            "admin", lambda s: create_key(s, name=name, scopes=scope, actor=_cli_actor())
        )
    except AccountError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"created key {row.id} ({name}; {', '.join(row.scopes)}). It is shown only now:", err=True)
    typer.echo(key)


@keys_cli.command("list")
def keys_list() -> None:
    """List keys (id, name, scopes, status); never the keys themselves."""
    from app.repo.api_keys import list_keys

    for k in _in_transaction("admin", lambda s: list_keys(s)):
        state = f"revoked {k.revoked_at.isoformat(timespec='seconds')}" if k.revoked_at else "active"
        typer.echo(f"{k.id}\t{k.name}\t{','.join(k.scopes)}\t{state}\tby {k.created_by}")


@keys_cli.command("revoke")
def keys_revoke(key_id: Annotated[int, typer.Argument(help="The key's id (msk_<id>_...)")]) -> None:
    """Revoke a key: it stops working at once."""
    from gateway.auth_accounts import revoke_key

    if _in_transaction("admin", lambda s: revoke_key(s, key_id=key_id, actor=_cli_actor())) is None:
        typer.echo(f"error: no active key {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked key {key_id}")


eval_cli = typer.Typer(help="Offline evaluation of the agent on a labelled dataset.", no_args_is_help=True)
cli.add_typer(eval_cli, name="eval")
eval_cli.add_typer(online_cli, name="online")


@eval_cli.command("run")
def eval_run(
    dataset: Annotated[
        Path | None, typer.Option(help="Labelled JSONL (evals/datasets/README.md); default: the golden set")
    ] = None,
    prompt: Annotated[
        list[str] | None, typer.Option(help="Pin a prompt version, name@version (repeatable)")
    ] = None,
    prompt_file: Annotated[
        list[Path] | None,
        typer.Option(help="Pin a prompt version from a YAML file outside agent/prompts (repeatable)"),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Model for both tiers (overrides MAILSPINE_MODEL)")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N cases")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the JSON report, not markdown")] = False,
    keep_db: Annotated[bool, typer.Option(help="Keep the eval's own database for inspection")] = False,
    store: Annotated[bool, typer.Option("--store/--no-store", help="Record the run in eval_runs")] = True,
    write_baseline: Annotated[bool, typer.Option(help="Write the metrics to evals/baseline.json")] = False,
) -> None:
    """Run the real graph over a labelled dataset in a fresh database and report its metrics."""
    import json

    from app.db import resolve_database_url
    from evals.gate_io import register_prompt_file
    from evals.gate_io import write_baseline as save_baseline
    from evals.golden import GOLDEN, GoldenError
    from evals.report import BASELINE, load_baseline, render_markdown
    from evals.runner import EvalRequest, parse_pins, register_stored_pins, run_eval

    # A model named here also satisfies a real provider that has no MAILSPINE_MODEL configured.
    settings = Settings(model=model) if model else get_settings()
    # The report is the output: warnings and errors from the stack, progress from evals only
    # (a quarantine, which the worker logs as a warning, is an expected outcome here).
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s [eval] %(name)s: %(message)s",
    )
    logging.getLogger("evals").setLevel(settings.log_level.upper())
    logging.getLogger("app.pipeline").setLevel(logging.ERROR)
    if write_baseline and (
        limit or prompt or prompt_file or model or (dataset and dataset.resolve() != GOLDEN)
    ):
        typer.echo(
            "error: --write-baseline records a full default run (no --dataset/--limit/--prompt/--model)",
            err=True,
        )
        raise typer.Exit(2)
    # A draft (a version stored only in the registry) is read from this deployment's database.
    asyncio.run(register_stored_pins(resolve_database_url(settings), prompt or []))
    request = EvalRequest(
        dataset=dataset or GOLDEN,
        prompts=parse_pins([*(prompt or []), *(register_prompt_file(p) for p in prompt_file or [])]),
        model=model,
        limit=limit,
        keep_db=keep_db,
        store=store,
    )
    try:
        report = run_eval(settings, database_url=resolve_database_url(settings), request=request)
    except GoldenError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if write_baseline:
        save_baseline(report, BASELINE, previous=load_baseline())  # keeps the gate's tolerances
    typer.echo(json.dumps(report, indent=2) if json_out else render_markdown(report, load_baseline()))


eval_cli.command("gate")(eval_gate)
eval_cli.command("baseline")(eval_baseline)


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
