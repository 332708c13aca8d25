"""Semantic history on whichever Postgres the session has: pgvector (embedded PostgreSQL 16) or
``real[]`` + numpy (PostgreSQL 15 without the extension), and the full-text fallback on both.

Run it both ways: ``DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test pytest ...`` (numpy)
and with ``DATABASE_URL`` unset (pgvector).
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid

import pytest
from sqlalchemy import text

from app.db import Database
from app.models import EmailStatus
from app.pipeline import store_scanned
from app.repo import email_embeddings, emails
from app.settings import Settings
from gateway.scan import scan_raw
from tools.history import Subject, load_subject
from tools.history_emails import email_history
from tools.history_index import index_email
from tools.history_semantic import similar_emails

pytestmark = pytest.mark.integration


def mime(
    sender: str, name: str, subject: str, body: str, *, message_id: str, in_reply_to: str | None = None
) -> bytes:
    headers = [
        f"From: {name} <{sender}>",
        "To: support@mailspine.test",
        f"Subject: {subject}",
        f"Message-ID: {message_id}",
        "Date: Mon, 02 Nov 2026 10:00:00 +0000",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
    ]
    if in_reply_to:
        headers += [f"In-Reply-To: {in_reply_to}", f"References: {in_reply_to}"]
    return ("\r\n".join(headers) + "\r\n\r\n" + body + "\r\n").encode()


async def store_processed(db: Database, settings: Settings, raw: bytes, *, embed: bool = True) -> int:
    """What ``app.pipeline.process_email`` stores before the agent runs: the parsed email with its
    redacted text, the vault, and (``embed``) the history embedding; then marked done."""
    message_id = f"<{uuid.uuid4().hex}@history.test>"
    raw = raw.replace(b"Message-ID: <auto>", f"Message-ID: {message_id}".encode())
    async with db.transaction() as session:
        row = await emails.insert_email(
            session,
            account="history-test",
            message_id=message_id,
            content_sha256=hashlib.sha256(raw).hexdigest(),
            raw=raw,
        )
    assert row is not None
    _, guarded = scan_raw(raw, email_id=row.id, max_bytes=settings.max_email_bytes)
    await store_scanned(db, settings, email_id=row.id, guarded=guarded)  # as the worker stores it
    async with db.transaction() as session:
        await emails.set_status(session, email_id=row.id, status=EmailStatus.DONE)
    if embed:
        assert await index_email(db, email_id=row.id, settings=settings)
    return row.id


async def subject_of(db: Database, email_id: int) -> Subject:
    subject = await load_subject(db, email_id=email_id)
    assert subject is not None
    return subject


async def has_pgvector(db: Database) -> bool:
    async with db.transaction() as session:
        found = await session.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'vector'"))
        return found.scalar_one_or_none() is not None


def raw(sender: str, name: str, body: str, **kw: str) -> bytes:
    return mime(sender, name, "Question", body, message_id="<auto>", **kw)


async def test_semantic_search_finds_the_related_email_of_the_same_customer_only(
    db: Database, test_settings: Settings
) -> None:
    tag = uuid.uuid4().hex[:6]
    ann, bob = f"ann.{tag}@acme-{tag}.example", f"bob.{tag}@other-{tag}.example"
    related = await store_processed(
        db,
        test_settings,
        raw(
            ann,
            "Ann Archer",
            "The invoice for order 4471 charged our card twice. Please refund the duplicate payment.",
        ),
    )
    unrelated = await store_processed(
        db,
        test_settings,
        raw(ann, "Ann Archer", "Could we schedule a training session for our new warehouse staff in March?"),
    )
    other_customer = await store_processed(
        db,
        test_settings,
        raw(
            bob,
            "Bob Baker",
            "The invoice for order 4471 charged our card twice. Please refund the duplicate payment.",
        ),
    )
    current = await store_processed(
        db,
        test_settings,
        raw(
            ann,
            "Ann Archer",
            "We were billed two times for the same invoice. Can you return the extra charge?",
        ),
    )

    async with db.transaction() as session:
        kind = await email_embeddings.backend(session)
    expected = "pgvector" if await has_pgvector(db) else "numpy"
    assert kind == ("pgvector" if expected == "pgvector" else "array")

    found = await similar_emails(db, await subject_of(db, current), settings=test_settings.history, limit=5)
    refs = [item.ref for item in found]
    assert refs and refs[0] == f"email:{related}", refs
    assert f"email:{other_customer}" not in refs, "another customer's email reached this planner"
    assert all(item.source == "semantic" and item.via == expected for item in found)
    if f"email:{unrelated}" in refs:
        assert refs.index(f"email:{unrelated}") > refs.index(f"email:{related}")
    # The summary is the redacted text: no name, no address.
    assert all("Ann" not in item.summary and "@" not in item.summary for item in found)


async def test_full_text_search_is_the_fallback_without_embeddings(
    db: Database, test_settings: Settings
) -> None:
    tag = uuid.uuid4().hex[:6]
    carl, dora = f"carl.{tag}@beta-{tag}.example", f"dora.{tag}@gamma-{tag}.example"
    related = await store_processed(
        db,
        test_settings,
        raw(carl, "Carl Cole", "The pallet delivery to Hamburg arrived damaged."),
        embed=False,
    )
    await store_processed(
        db, test_settings, raw(carl, "Carl Cole", "Thanks for the quick answer yesterday."), embed=False
    )
    other = await store_processed(
        db,
        test_settings,
        raw(dora, "Dora Dunn", "Our pallet delivery to Hamburg arrived damaged."),
        embed=False,
    )
    current = await store_processed(
        db, test_settings, raw(carl, "Carl Cole", "Another pallet was damaged on delivery."), embed=False
    )
    found = await similar_emails(db, await subject_of(db, current), settings=test_settings.history, limit=5)
    assert [(i.ref, i.via) for i in found] == [(f"email:{related}", "fulltext")]
    assert f"email:{other}" not in [i.ref for i in found]

    # Semantic search switched off: the full-text search runs even where embeddings exist.
    off = test_settings.history.model_copy(update={"semantic_enabled": False})
    assert all(
        i.via == "fulltext"
        for i in await similar_emails(db, await subject_of(db, current), settings=off, limit=5)
    )


async def test_thread_sender_and_company_history_with_free_mail_excluded(
    db: Database, test_settings: Settings
) -> None:
    tag = uuid.uuid4().hex[:6]
    erin, fay, gus = (
        f"erin.{tag}@delta-{tag}.example",
        f"fay.{tag}@delta-{tag}.example",
        f"gus.{tag}@gmail.com",
    )
    root = await store_processed(
        db,
        test_settings,
        mime(erin, "Erin Eve", "Order", "Where is order 17?", message_id=f"<root.{tag}@history.test>"),
        embed=False,
    )
    earlier = await store_processed(
        db, test_settings, raw(erin, "Erin Eve", "Do you ship to Norway?"), embed=False
    )
    colleague = await store_processed(
        db, test_settings, raw(fay, "Fay Fox", "Please send a quote for 40 boxes."), embed=False
    )
    await store_processed(
        db, test_settings, raw(gus, "Gus Gray", "Hello from a free-mail address."), embed=False
    )
    current = await store_processed(
        db,
        test_settings,
        mime(
            erin,
            "Erin Eve",
            "Re: Order",
            "Any news on order 17?",
            message_id="<auto>",
            in_reply_to=f"<root.{tag}@history.test>",
        ),
        embed=False,
    )
    subject = await subject_of(db, current)
    assert subject.domain == f"delta-{tag}.example"

    async def refs(scope: str) -> list[tuple[str, str | None, str]]:
        items = await email_history(db, subject, scope=scope, limit=5, excerpt_chars=200)  # type: ignore[arg-type]
        return [(i.source, i.via, i.ref) for i in items]

    assert await refs("thread") == [("mailspine.emails", "thread", f"email:{root}")]
    assert await refs("sender") == [("mailspine.emails", "sender", f"email:{earlier}")]
    assert await refs("company") == [("mailspine.emails", "company", f"email:{colleague}")]

    free = await store_processed(db, test_settings, raw(gus, "Gus Gray", "Me again."), embed=False)
    free_subject = await subject_of(db, free)
    assert free_subject.domain is None
    items = await email_history(db, free_subject, scope="company", limit=5, excerpt_chars=200)
    assert items == [], "gmail.com is not a company"


def test_reindex_embeds_the_emails_that_have_no_embedding(
    database_url: str, test_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from app.cli import cli
    from app.settings import get_settings

    async def setup() -> list[int]:
        db = Database(database_url)
        try:
            tag = uuid.uuid4().hex[:6]
            sender = f"hana.{tag}@eta-{tag}.example"
            return [
                await store_processed(db, test_settings, raw(sender, "Hana Hill", body), embed=False)
                for body in ("The scanner firmware update failed twice.", "Our scanner needs a new battery.")
            ]
        finally:
            await db.dispose()

    async def embedded(ids: list[int]) -> set[int]:
        db = Database(database_url)
        try:
            async with db.transaction() as session:
                rows = await session.execute(
                    text("SELECT email_id FROM email_embeddings WHERE email_id = ANY(:ids)"), {"ids": ids}
                )
                return {int(i) for (i,) in rows.all()}
        finally:
            await db.dispose()

    ids = asyncio.run(setup())
    assert asyncio.run(embedded(ids)) == set()
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("MAILSPINE_ENV", "test")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["history", "reindex", "--batch", "1"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "email(s) to embed" in result.output and "embedded" in result.output
    assert asyncio.run(embedded(ids)) == set(ids)
    again = CliRunner().invoke(cli, ["history", "reindex"], env={"DATABASE_URL": database_url})
    get_settings.cache_clear()
    assert again.exit_code == 0 and "embedded 0 of 0" in again.output, again.output
