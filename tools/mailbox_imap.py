"""Read-only IMAP access for ingestion: EXAMINE, UID SEARCH, BODY.PEEK fetches in batches, IDLE.

The reader never changes mailbox state: folders are opened with EXAMINE (``readonly=True``) and
bodies fetched with ``BODY.PEEK[]``, so ``\\Seen`` flags stay as the team left them. Messages over the
size limit are fetched headers-only and marked (``tools.mailbox_dir.headers_only``).
IMAP calls block: async callers run them with ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import imaplib
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from app.errors import MailboxError, MailboxUnavailable
from app.settings import ImapAccount
from tools.base import ToolSpec, tool_span
from tools.imap_connect import connect_imap
from tools.mailbox_dir import MailboxMessage, headers_only

IMAP_READ = ToolSpec(
    name="imap_read",
    description="Read new messages from a mailbox folder (read-only).",
    access="read",
    scopes=("mail.read",),
)


@dataclass(frozen=True)
class FolderState:
    folder: str
    uidvalidity: int
    exists: int
    uidnext: int | None


@contextmanager
def _mapped_errors(account: ImapAccount) -> Iterator[None]:
    where = f"{account.host}:{account.port}"
    try:
        yield
    except (TimeoutError, OSError, ssl.SSLError, imaplib.IMAP4.abort) as exc:
        raise MailboxUnavailable(f"IMAP connection to {where} lost: {type(exc).__name__}: {exc}") from exc
    except IMAPClientError as exc:
        raise MailboxError(f"IMAP error from {where}: {exc}") from exc


class ImapReader:
    def __init__(
        self,
        account: ImapAccount,
        *,
        max_bytes: int,
        connect: Callable[[ImapAccount], IMAPClient] = connect_imap,
    ) -> None:
        self.account = account
        self.max_bytes = max_bytes
        self._connect = connect
        self._client: IMAPClient | None = None
        self.capabilities: frozenset[str] = frozenset()

    @property
    def client(self) -> IMAPClient:
        if self._client is None:
            raise MailboxUnavailable(f"IMAP reader for {self.account.name} is not connected")
        return self._client

    def open(self) -> None:
        self._client = self._connect(self.account)
        with _mapped_errors(self.account):
            self.capabilities = frozenset(c.decode().upper() for c in self.client.capabilities())

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):  # a dead connection cannot log out; nothing is lost
                self._client.logout()
            self._client = None

    def examine(self, folder: str) -> FolderState:
        with _mapped_errors(self.account):
            info: dict[bytes, Any] = self.client.select_folder(folder, readonly=True)
        return FolderState(
            folder=folder,
            uidvalidity=int(info[b"UIDVALIDITY"]),
            exists=int(info.get(b"EXISTS", 0)),
            uidnext=int(info[b"UIDNEXT"]) if b"UIDNEXT" in info else None,
        )

    def uids_after(self, last_uid: int) -> list[int]:
        # "n:*" always matches the highest UID, even when it is below n: filter.
        with _mapped_errors(self.account):
            uids = self.client.search(["UID", f"{last_uid + 1}:*"])
        return sorted(u for u in uids if u > last_uid)

    def uids_since(self, since: date) -> list[int]:
        with _mapped_errors(self.account):
            return sorted(self.client.search(["SINCE", since]))

    def fetch(self, state: FolderState, uids: list[int]) -> list[MailboxMessage]:
        if not uids:
            return []
        with tool_span(IMAP_READ) as span, _mapped_errors(self.account):
            span.set_attribute("mailspine.imap.batch", len(uids))
            sizes = {
                uid: int(d[b"RFC822.SIZE"]) for uid, d in self.client.fetch(uids, ["RFC822.SIZE"]).items()
            }
            small = [u for u in uids if sizes.get(u, 0) <= self.max_bytes]
            large = [u for u in uids if u in sizes and sizes[u] > self.max_bytes]
            raws = (
                {u: d[b"BODY[]"] for u, d in self.client.fetch(small, ["BODY.PEEK[]"]).items()}
                if small
                else {}
            )
            if large:
                span.set_attribute("mailspine.imap.oversized", len(large))
                heads = self.client.fetch(large, ["BODY.PEEK[HEADER]"])
                raws |= {u: headers_only(d[b"BODY[HEADER]"], size=sizes[u]) for u, d in heads.items()}
        return [
            MailboxMessage(
                ref=f"imap:{self.account.name}/{state.folder}/{state.uidvalidity}/{uid}",
                raw=raws[uid],
                folder=state.folder,
                uidvalidity=state.uidvalidity,
                uid=uid,
            )
            for uid in uids
            if uid in raws  # a message expunged between SEARCH and FETCH is simply gone
        ]

    def wait_for_changes(self, timeout_s: float) -> bool:
        """Block until the selected folder changes (IDLE) or ``timeout_s`` passes (polling fallback)."""
        if not (self.account.idle and "IDLE" in self.capabilities):
            time.sleep(timeout_s)
            return True
        with _mapped_errors(self.account):
            self.client.idle()
            try:
                responses = self.client.idle_check(timeout=timeout_s)
            finally:
                self.client.idle_done()
        return any(r[1] in (b"EXISTS", b"RECENT") for r in responses if len(r) > 1)
