"""Mailbox cursors: the highest UID ingested per (account, folder), locked while a batch commits."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import MailboxCursor


async def lock_cursor(session: AsyncSession, *, account: str, folder: str, uidvalidity: int) -> MailboxCursor:
    """The cursor row, created if new, locked FOR UPDATE until the caller's transaction ends.

    Two pollers (or a poller and a backfill) on one folder serialise here, so each message's
    job is enqueued by exactly one of them.
    """
    await session.execute(
        insert(MailboxCursor)
        .values(account=account, folder=folder, uidvalidity=uidvalidity, last_uid=0)
        .on_conflict_do_nothing()
    )
    stmt = (
        select(MailboxCursor)
        .where(MailboxCursor.account == account, MailboxCursor.folder == folder)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one()


async def get_cursor(session: AsyncSession, *, account: str, folder: str) -> MailboxCursor | None:
    return await session.get(MailboxCursor, (account, folder))


async def record_error(session: AsyncSession, *, account: str, folder: str, error: str | None) -> None:
    await session.execute(
        update(MailboxCursor)
        .where(MailboxCursor.account == account, MailboxCursor.folder == folder)
        .values(last_error=error, updated_at=func.now())
    )
