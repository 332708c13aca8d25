"""After a full run through the real stack (IMAP in, CRM over HTTP, a review, SMTP out), no
credential appears anywhere mailspine writes (every table, every process log), and no raw PII of the
processed emails appears in checkpoints, spans, logs, the ledger or the audit log.

The credentials are fresh random values set for this run, so a match is a leak, not a coincidence.
A self-check plants a credential and a PII value in each kind of place and expects the scan to
find them, so a scan that silently looks at nothing fails.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet

from app.db import Database
from app.repo import audit, pii_vault
from app.settings import REPO_ROOT
from infra.mail.dovecot import Dovecot
from infra.mail.smtp_sink import SmtpSink
from tests.integration.test_mail_e2e import _unique
from tests.integration.test_pipeline import email_status, settle, wait_for
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.integration
LOGS = REPO_ROOT / "var" / "test" / "logs" / "secrets"
# Orders, refunds (one waits for review), a phone number in a signature, a legal threat, German.
EMAILS = [
    "01-order-status-tent.eml",
    "03-order-status-signature-phone.eml",
    "04-refund-small-eur.eml",
    "06-refund-large-eur.eml",
    "10-complaint-legal-lawyer.eml",
    "15-support-boot-sizing.eml",
    "23-de-refund-quoted-printable.eml",
    "29-multipart-alt-support.eml",
]
# Where raw PII must never be (the CRM, the outbox and the encrypted vault hold it by design).
PII_FREE = ("spans", "checkpoint", "side_effects", "audit_log", "runs", "model_calls", "log ")


@dataclass
class Run:
    stack: Stack
    ids: list[int]
    credentials: dict[str, str]  # what it is -> the value in use
    vault_key: str


@pytest.fixture(scope="module")
def run(pg_server_url: str, dovecot: Dovecot, smtp_sink: SmtpSink) -> Iterator[Run]:
    shutil.rmtree(LOGS, ignore_errors=True)  # scan this run's logs only
    mail_user = dovecot.add_user(f"u{secrets.token_hex(5)}", secrets.token_urlsafe(12))
    smtp_sink.reset()
    dovecot.create_folder(mail_user.name, mail_user.password, "Sent")
    vault_key = Fernet.generate_key().decode()
    chosen = {
        "jwt secret": secrets.token_urlsafe(40),
        "gateway api key": secrets.token_urlsafe(24),
        "reviewer api key": secrets.token_urlsafe(24),
        "openai api key": "sk-" + secrets.token_urlsafe(24),
    }
    imap = {
        "name": "support",
        "host": dovecot.host,
        "port": dovecot.port,
        "security": "none",
        "username": mail_user.name,
        "password": mail_user.password,
        "timeout_s": 10,
    }
    smtp = {
        "host": smtp_sink.host,
        "port": smtp_sink.port,
        "security": "none",
        "username": smtp_sink.username,
        "password": smtp_sink.password,
        "from_address": "support@mailspine.test",
        "sent_copy_account": "support",
    }
    env = {
        "MAILSPINE_IMAP_ACCOUNTS": json.dumps([imap]),
        "MAILSPINE_SMTP": json.dumps(smtp),
        "MAILSPINE_PII__VAULT_KEY": vault_key,
        "MAILSPINE_AUTH__JWT_SECRET": chosen["jwt secret"],
        "MAILSPINE_GATEWAY_API_KEY": chosen["gateway api key"],
        "MAILSPINE_REVIEWER_API_KEY": chosen["reviewer api key"],
        "MAILSPINE_OPENAI_API_KEY": chosen["openai api key"],
    }
    with running_stack(pg_server_url, LOGS, env=env) as stack:
        stack.start_api()
        stack.start_worker()
        message_ids = []
        for name in EMAILS:
            raw, message_id = _unique(name, mail_user.name)
            dovecot.append(mail_user.name, mail_user.password, "INBOX", raw)
            message_ids.append(message_id)

        def stored() -> list[int]:
            return [i for (i,) in stack.sql("SELECT id FROM emails WHERE message_id = ANY(%s)", message_ids)]

        wait_for(lambda: len(stored()) == len(EMAILS), timeout_s=120, what="IMAP ingest")
        ids = sorted(stored())
        settle(stack, ids)
        pending = [r for r in stack.api.get("/v1/reviews").json() if r["email_id"] in ids]
        assert pending, "the large refund waits for a review"
        item = pending[0]
        answer = stack.api.post(
            f"/v1/reviews/{item['id']}/decision",
            json={"decision": "approve", "payload_hash": item["payload_hash"]},
        )
        assert answer.status_code == 200, answer.text
        access_token = stack.api.headers["Authorization"].removeprefix("Bearer ")
        wait_for(lambda: email_status(stack, item["email_id"]) != "review", what="the approved run")
        settle(stack, ids)
        stack.group.stop("worker")  # flush their spans and logs
        stack.group.stop("api")
        credentials = {
            **chosen,
            "vault key": vault_key,
            "imap password": mail_user.password,
            "smtp password": smtp_sink.password,
            # SMTP AUTH PLAIN on the wire, should a debug log ever print it
            "smtp auth plain": base64.b64encode(
                f"\0{smtp_sink.username}\0{smtp_sink.password}".encode()
            ).decode(),
            "reviewer password": stack.reviewer_password,
            "access token": access_token,
        }
        # The CRM tokens, however the stack names them (MAILSPINE_CRM_TOKEN, per-tool credentials).
        for name, value in stack.group.env.items():
            if name.startswith("MAILSPINE_") and re.search(r"TOKEN|CREDENTIAL", name) and len(value) >= 16:
                credentials[name] = value
        yield Run(stack=stack, ids=ids, credentials=credentials, vault_key=vault_key)


def _pii(run: Run) -> set[str]:
    """The processed emails' personal data, as the gateway found and vaulted it."""

    async def load() -> set[str]:
        db = Database(run.stack.url)
        try:
            found: set[str] = set()
            async with db.transaction() as session:
                for email_id in run.ids:
                    entries = await pii_vault.load(session, email_id=email_id, key=run.vault_key)
                    # Whole values only: a first name alone ("Alpine", "May") is also an ordinary word.
                    found |= {
                        value
                        for token, (_, value) in entries.items()
                        if len(value) >= 6 and not token.endswith(("_FIRST]", "_LAST]"))
                    }
            return found
        finally:
            await db.dispose()

    return asyncio.run(load())


def collect(conn: psycopg.Connection, log_dir: Path) -> dict[str, str]:
    """Everything mailspine wrote, as text: each table of ours (each row as Postgres prints it),
    checkpoint blobs decoded (msgpack keeps strings as UTF-8), and each process log."""
    places: dict[str, str] = {}
    tables = conn.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name"
    ).fetchall()
    for (table,) in tables:
        places[table] = "\n".join(str(r) for (r,) in conn.execute(f'SELECT t::text FROM public."{table}" t'))
    blobs = conn.execute(
        "SELECT blob FROM checkpoint_blobs WHERE blob IS NOT NULL "
        "UNION ALL SELECT blob FROM checkpoint_writes WHERE blob IS NOT NULL"
    ).fetchall()
    places["checkpoint blobs decoded"] = b"\n".join(bytes(b) for (b,) in blobs).decode("utf-8", "replace")
    for path in sorted(log_dir.glob("*.log")):
        places[f"log {path.name}"] = path.read_text(errors="replace")
    return places


def leaks(
    places: dict[str, str], needles: dict[str, str], *, only: tuple[str, ...] = ()
) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for where, text in places.items():
        if only and not where.startswith(only):
            continue
        hits = sorted(what for what, value in needles.items() if value in text)
        if hits:
            found[where] = hits[:5]
    return found


def test_no_credential_anywhere_and_no_raw_pii_where_it_does_not_belong(run: Run) -> None:
    pii = {value: value for value in _pii(run)}
    assert len(pii) >= 8  # the senders' addresses, names and phone numbers were found and vaulted
    assert len(run.credentials) >= 11  # incl. at least one CRM token from the stack's environment
    with psycopg.connect(run.stack.url) as conn:
        places = collect(conn, LOGS)
    assert {"spans", "audit_log", "side_effects", "checkpoint_blobs", "log worker.log"} <= places.keys()
    assert places["spans"] and places["audit_log"] and places["checkpoint blobs decoded"]
    assert leaks(places, run.credentials) == {}
    assert leaks(places, pii, only=PII_FREE) == {}


def test_the_scan_finds_a_planted_credential_and_pii(run: Run, tmp_path: Path) -> None:
    token = next(v for k, v in run.credentials.items() if k.startswith("MAILSPINE_"))
    address = next(v for v in _pii(run) if "@" in v)
    (tmp_path / "worker.log").write_text(f"INFO connected with {run.credentials['smtp password']}\n")
    with psycopg.connect(run.stack.url) as conn:  # planted in a transaction that is rolled back
        planted = conn.execute(
            "UPDATE checkpoint_blobs SET blob = blob || %s::bytea "
            "WHERE ctid = (SELECT ctid FROM checkpoint_blobs WHERE blob IS NOT NULL LIMIT 1)",
            (b"\xa5" + token.encode(),),
        ).rowcount
        planted += conn.execute(
            "UPDATE spans SET attributes = attributes || jsonb_build_object('leak', %s::text) "
            "WHERE span_id = (SELECT span_id FROM spans LIMIT 1)",
            (address,),
        ).rowcount
        assert planted == 2
        places = collect(conn, tmp_path)
        conn.rollback()
    found = leaks(places, run.credentials)
    assert found["checkpoint blobs decoded"] and found["log worker.log"] == ["smtp password"], found
    assert leaks(places, {address: address}, only=PII_FREE) == {"spans": [address]}


def test_every_side_effect_and_decision_is_audited_with_trace_and_payload_hash(run: Run) -> None:
    stack = run.stack
    effects = stack.sql(
        "SELECT idempotency_key, action, payload_hash FROM side_effects "
        "WHERE status = 'succeeded' ORDER BY id"
    )
    assert {"crm_upsert_contact", "draft_reply", "send_reply"} <= {action for _, action, _ in effects}
    for key, action, payload_hash in effects:
        rows = stack.sql(
            "SELECT trace_id, payload_sha256, hash_version FROM audit_log "
            "WHERE action = %s AND details->>'idempotency_key' = %s",
            f"effect.{action}",
            key,
        )
        assert len(rows) == 1, (action, key)
        [(trace_id, digest, version)] = rows
        assert digest == payload_hash and version == 2
        assert trace_id and stack.sql("SELECT count(*) FROM spans WHERE trace_id = %s", trace_id)[0][0] > 0
    [(decision_hash, decision_trace)] = stack.sql(
        "SELECT payload_sha256, trace_id FROM audit_log WHERE action = 'review.approve'"
    )
    [(shown,)] = stack.sql("SELECT payload_hash FROM reviews WHERE status = 'approved'")
    assert decision_hash == shown and decision_trace
    used = {s for (s,) in stack.sql("SELECT subject_id FROM audit_log WHERE action = 'credential.use'")}
    assert {"imap:imap_accounts[support].password", "smtp:smtp.password"} <= used
    assert any(s.startswith("crm:") for s in used)
    configs = stack.sql("SELECT subject_id FROM audit_log WHERE action = 'config.change' ORDER BY id")
    assert sorted(s for (s,) in configs) == ["api", "worker"]

    async def verify() -> audit.AuditReport:
        db = Database(stack.url)
        try:
            async with db.transaction() as session:
                return await audit.verify_log(session)
        finally:
            await db.dispose()

    report = asyncio.run(verify())
    assert report.problems == [] and report.rows > len(effects)
