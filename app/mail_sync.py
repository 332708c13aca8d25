"""IMAP folder sync, backfill and account checks: the reader (tools) driven into ingest (data).

Memory stays flat however large the folder: UIDs are listed (integers only) and messages are
fetched, stored and released one batch at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from app.db import Database
from app.errors import MailboxError
from app.ingest import IngestReport, ingest_batch
from app.repo import cursors
from app.settings import ImapAccount
from tools.mailbox_imap import FolderState, ImapReader

Progress = Callable[[int, int], None]  # (done, total)


def _merge(total: IngestReport, part: IngestReport) -> None:
    total.new_ids += part.new_ids
    total.duplicates += part.duplicates
    total.skipped_below_cursor += part.skipped_below_cursor
    total.resynced = total.resynced or part.resynced


async def _ingest_uids(
    db: Database,
    reader: ImapReader,
    state: FolderState,
    uids: list[int],
    *,
    queue: str,
    advance_cursor: bool,
    progress: Progress | None,
) -> IngestReport:
    report = IngestReport()
    batch = reader.account.fetch_batch
    for start in range(0, len(uids), batch):
        messages = await asyncio.to_thread(reader.fetch, state, uids[start : start + batch])
        part = await ingest_batch(
            db,
            messages,
            account=reader.account.name,
            folder=state.folder,
            uidvalidity=state.uidvalidity,
            queue=queue,
            advance_cursor=advance_cursor,
        )
        _merge(report, part)
        if progress:
            progress(min(start + batch, len(uids)), len(uids))
    return report


async def sync_folder(db: Database, reader: ImapReader, folder: str, *, queue: str) -> IngestReport:
    """Ingest everything above the folder's cursor (everything, after a UIDVALIDITY change)."""
    state = await asyncio.to_thread(reader.examine, folder)
    async with db.transaction() as session:
        cursor = await cursors.get_cursor(session, account=reader.account.name, folder=folder)
    last = cursor.last_uid if cursor is not None and cursor.uidvalidity == state.uidvalidity else 0
    uids = await asyncio.to_thread(reader.uids_after, last)
    if not uids and (cursor is None or cursor.uidvalidity != state.uidvalidity):
        # An empty (or rebuilt) folder: record its UIDVALIDITY so a later change is recognised.
        return await ingest_batch(
            db, [], account=reader.account.name, folder=folder, uidvalidity=state.uidvalidity, queue=queue
        )
    return await _ingest_uids(db, reader, state, uids, queue=queue, advance_cursor=True, progress=None)


async def backfill(
    db: Database,
    reader: ImapReader,
    folder: str,
    *,
    since: date,
    queue: str,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest messages since ``since`` that are not stored yet; the cursor is left alone."""
    state = await asyncio.to_thread(reader.examine, folder)
    uids = await asyncio.to_thread(reader.uids_since, since)
    return await _ingest_uids(db, reader, state, uids, queue=queue, advance_cursor=False, progress=progress)


@dataclass
class FolderReport:
    name: str
    messages: int
    unseen: int
    uidvalidity: int


@dataclass
class AccountReport:
    name: str
    ok: bool
    capabilities: list[str] = field(default_factory=list)
    folders: list[FolderReport] = field(default_factory=list)
    error: str | None = None


def check_account(account: ImapAccount, *, max_bytes: int) -> AccountReport:
    """Connect with the account's own credential and report what the server offers."""
    reader = ImapReader(account, max_bytes=max_bytes)
    try:
        reader.open()
        wanted = ("IDLE", "MOVE", "CONDSTORE", "UIDPLUS", "QRESYNC")
        report = AccountReport(
            name=account.name, ok=True, capabilities=[c for c in wanted if c in reader.capabilities]
        )
        listed = {name for _, _, name in reader.client.list_folders()}
        for folder in [*account.folders, account.sent_folder]:
            if folder not in listed:
                report.ok = False
                report.error = (
                    f"folder {folder!r} does not exist (server has: {', '.join(sorted(listed)[:20])})"
                )
                continue
            status = reader.client.folder_status(folder, [b"MESSAGES", b"UNSEEN", b"UIDVALIDITY"])
            report.folders.append(
                FolderReport(
                    folder, int(status[b"MESSAGES"]), int(status[b"UNSEEN"]), int(status[b"UIDVALIDITY"])
                )
            )
        return report
    except MailboxError as exc:
        return AccountReport(name=account.name, ok=False, error=str(exc))
    finally:
        reader.close()
