"""IMAP ingestion against a real dovecot: exactly once, read-only, resync, concurrency, IDLE, restarts."""

from __future__ import annotations

import asyncio
import re
from datetime import date
from pathlib import Path

import pytest

from app.db import Database
from app.mail_sync import backfill, check_account, sync_folder
from app.poller import poll_account
from app.settings import Settings
from infra.mail.dovecot import Dovecot, MailUser, imap_account
from tests.support.stack import DEMO_MAILBOX
from tools.mailbox_imap import ImapReader

pytestmark = pytest.mark.integration
DEMO = sorted(DEMO_MAILBOX.glob("*.eml"))
LIMIT = 25 * 1024 * 1024


def _reader(dovecot: Dovecot, user: MailUser, **overrides: object) -> ImapReader:
    reader = ImapReader(imap_account(dovecot, user.name, user.password, **overrides), max_bytes=LIMIT)
    reader.open()
    return reader


def _unique(raw: bytes, tag: str) -> bytes:
    """The same demo message under a Message-ID unique to this user (emails are deduplicated globally)."""
    return re.sub(rb"(?im)^(Message-ID:\s*<)", rb"\g<1>" + tag.encode() + b".", raw, count=1)


def _append(dovecot: Dovecot, user: MailUser, paths: list[Path], folder: str = "INBOX") -> list[int]:
    return [
        dovecot.append(user.name, user.password, folder, _unique(p.read_bytes(), user.name)) for p in paths
    ]


async def _email_rows(db: Database, account: str) -> list[tuple[str, int, int]]:
    from sqlalchemy import text

    async with db.transaction() as session:
        rows = await session.execute(
            text("SELECT folder, uidvalidity, uid FROM emails WHERE account = :a ORDER BY uid"),
            {"a": account},
        )
        return [tuple(r) for r in rows.all()]  # type: ignore[misc]


async def _jobs_for(db: Database, ids: list[int]) -> int:
    from sqlalchemy import text

    async with db.transaction() as session:
        q = text("SELECT count(*) FROM procrastinate_jobs WHERE (args->>'email_id')::bigint = ANY(:ids)")
        return int((await session.execute(q, {"ids": ids})).scalar_one())


async def test_sync_ingests_each_message_once_without_touching_flags(
    db: Database, dovecot: Dovecot, mail_user: MailUser
) -> None:
    _append(dovecot, mail_user, DEMO[:5])
    reader = _reader(dovecot, mail_user)
    try:
        first = await sync_folder(db, reader, "INBOX", queue="mailspine")
        again = await sync_folder(db, reader, "INBOX", queue="mailspine")
        _append(dovecot, mail_user, DEMO[5:7])
        later = await sync_folder(db, reader, "INBOX", queue="mailspine")
    finally:
        reader.close()
    assert (len(first.new_ids), len(again.new_ids), len(later.new_ids)) == (5, 0, 2)
    assert await _jobs_for(db, first.new_ids + later.new_ids) == 7
    rows = await _email_rows(db, reader.account.name)
    assert [uid for _, _, uid in rows] == [1, 2, 3, 4, 5, 6, 7]
    with dovecot.client(mail_user.name) as client:
        client.select_folder("INBOX", readonly=True)
        flags = client.get_flags(client.search("ALL"))
    assert all(b"\\Seen" not in f for f in flags.values())  # BODY.PEEK + EXAMINE: nothing marked read


async def test_uidvalidity_change_resyncs_and_ingests_nothing_twice(
    db: Database, dovecot: Dovecot, mail_user: MailUser
) -> None:
    _append(dovecot, mail_user, DEMO[:3])
    reader = _reader(dovecot, mail_user)
    try:
        assert len((await sync_folder(db, reader, "INBOX", queue="mailspine")).new_ids) == 3
        reader.close()
        new_validity = dovecot.reset_uidvalidity(mail_user.name, "INBOX")
        reader.open()
        resync = await sync_folder(db, reader, "INBOX", queue="mailspine")
        _append(dovecot, mail_user, DEMO[3:4])
        after = await sync_folder(db, reader, "INBOX", queue="mailspine")
    finally:
        reader.close()
    assert resync.resynced and resync.new_ids == [] and resync.duplicates == 3
    assert len(after.new_ids) == 1
    rows = await _email_rows(db, reader.account.name)
    assert len(rows) == 4 and rows[-1][1] == new_validity


async def test_two_pollers_on_one_account_ingest_each_message_once(
    db: Database, dovecot: Dovecot, mail_user: MailUser
) -> None:
    _append(dovecot, mail_user, DEMO[:30])
    one, two = _reader(dovecot, mail_user, fetch_batch=4), _reader(dovecot, mail_user, fetch_batch=4)
    try:
        a, b = await asyncio.gather(
            sync_folder(db, one, "INBOX", queue="mailspine"), sync_folder(db, two, "INBOX", queue="mailspine")
        )
    finally:
        one.close()
        two.close()
    assert len(a.new_ids) + len(b.new_ids) == 30
    assert not set(a.new_ids) & set(b.new_ids)
    assert len(await _email_rows(db, one.account.name)) == 30


async def test_same_message_in_two_folders_is_ingested_once(
    db: Database, dovecot: Dovecot, mail_user: MailUser
) -> None:
    _append(dovecot, mail_user, DEMO[:1], "INBOX")
    _append(dovecot, mail_user, DEMO[:1], "Archive")
    reader = _reader(dovecot, mail_user, folders=["INBOX", "Archive"])
    try:
        inbox = await sync_folder(db, reader, "INBOX", queue="mailspine")
        archive = await sync_folder(db, reader, "Archive", queue="mailspine")
    finally:
        reader.close()
    assert (len(inbox.new_ids), len(archive.new_ids), archive.duplicates) == (1, 0, 1)


async def test_oversized_message_is_stored_headers_only(
    db: Database, dovecot: Dovecot, mail_user: MailUser
) -> None:
    big = _unique(DEMO[0].read_bytes(), mail_user.name) + b"\r\n" + b"x" * 5000 + b"\r\n"
    dovecot.append(mail_user.name, mail_user.password, "INBOX", big)
    reader = ImapReader(imap_account(dovecot, mail_user.name, mail_user.password), max_bytes=4000)
    reader.open()
    try:
        report = await sync_folder(db, reader, "INBOX", queue="mailspine")
    finally:
        reader.close()
    from app.repo.emails import get_email

    async with db.transaction() as session:
        row = await get_email(session, email_id=report.new_ids[0])
    assert row is not None and b"X-Mailspine-Truncated: original size" in row.raw and len(row.raw) < 4000


async def test_backfill_ingests_older_messages_without_moving_the_cursor(
    db: Database, dovecot: Dovecot, mail_user: MailUser
) -> None:
    _append(dovecot, mail_user, DEMO[:4])
    reader = _reader(dovecot, mail_user)
    seen: list[tuple[int, int]] = []
    try:
        report = await backfill(
            db,
            reader,
            "INBOX",
            since=date(2000, 1, 1),
            queue="mailspine",
            progress=lambda done, total: seen.append((done, total)),
        )
        again = await backfill(db, reader, "INBOX", since=date(2000, 1, 1), queue="mailspine")
        synced = await sync_folder(db, reader, "INBOX", queue="mailspine")
    finally:
        reader.close()
    assert len(report.new_ids) == 4 and seen[-1] == (4, 4)
    assert again.new_ids == [] and synced.new_ids == []  # the poller sees them as already stored


def _settings(dovecot: Dovecot, user: MailUser) -> Settings:
    account = imap_account(dovecot, user.name, user.password)
    return Settings(env="test", imap_accounts=[account], _env_file=None)  # type: ignore[call-arg]


async def _wait_for_rows(db: Database, account: str, count: int, timeout_s: float = 30) -> None:
    for _ in range(int(timeout_s / 0.2)):
        if len(await _email_rows(db, account)) >= count:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{account}: fewer than {count} emails after {timeout_s}s")


async def test_idle_delivers_new_mail_and_survives_a_server_restart(
    db: Database, dovecot: Dovecot, mail_user: MailUser
) -> None:
    settings = _settings(dovecot, mail_user)
    account = settings.imap_accounts[0]
    stop = asyncio.Event()
    task = asyncio.create_task(poll_account(db, account, settings, stop))
    try:
        await asyncio.sleep(1.0)  # connected and idling
        await asyncio.to_thread(_append, dovecot, mail_user, DEMO[:1])
        await _wait_for_rows(db, account.name, 1)
        await asyncio.to_thread(dovecot.restart)  # the IDLE connection drops
        await asyncio.to_thread(_append, dovecot, mail_user, DEMO[1:3])
        await _wait_for_rows(db, account.name, 3, timeout_s=60)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
    assert len(await _email_rows(db, account.name)) == 3


def test_check_reports_capabilities_and_clear_errors(dovecot: Dovecot, mail_user: MailUser) -> None:
    _append(dovecot, mail_user, DEMO[:2])
    dovecot.create_folder(mail_user.name, mail_user.password, "Sent")
    ok = check_account(imap_account(dovecot, mail_user.name, mail_user.password), max_bytes=LIMIT)
    assert ok.ok and "IDLE" in ok.capabilities
    assert [(f.name, f.messages) for f in ok.folders] == [("INBOX", 2), ("Sent", 0)]
    bad = check_account(imap_account(dovecot, mail_user.name, "wrong"), max_bytes=LIMIT)
    assert not bad.ok and bad.error and "password" not in bad.error.lower().replace("wrong password", "")
    dead = check_account(imap_account(dovecot, mail_user.name, mail_user.password, port=1), max_bytes=LIMIT)
    assert not dead.ok and dead.error and "127.0.0.1:1" in dead.error


async def test_only_one_poller_per_account_is_active(
    db: Database, dovecot: Dovecot, mail_user: MailUser
) -> None:
    from sqlalchemy import text

    settings = _settings(dovecot, mail_user)
    account = settings.imap_accounts[0]
    _append(dovecot, mail_user, DEMO[:6])
    stop = asyncio.Event()
    tasks = [asyncio.create_task(poll_account(db, account, settings, stop)) for _ in range(2)]
    try:
        await _wait_for_rows(db, account.name, 6)
        async with db.transaction() as session:
            holders = (
                await session.execute(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                        "AND objid = hashtext(:k)::oid"
                    ),
                    {"k": f"mailspine.poller:{account.name}"},
                )
            ).scalar_one()
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
    assert holders == 1
    assert len(await _email_rows(db, account.name)) == 6
