"""The embedded demo mailbox: a directory of ``.eml`` files, or a Maildir (``cur/`` + ``new/``).

Read-only: files are never moved or flagged. Each message is identified by its path relative to
the mailbox root; the ingest layer de-duplicates by Message-ID plus content hash.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from app.errors import MailboxError


@dataclass(frozen=True)
class MailboxMessage:
    """One message as read from any mailbox; IMAP fills in folder, UIDVALIDITY and UID."""

    ref: str
    raw: bytes
    folder: str | None = None
    uidvalidity: int | None = None
    uid: int | None = None


def iter_directory_mailbox(root: Path, *, max_bytes: int) -> Iterator[MailboxMessage]:
    if not root.is_dir():
        raise MailboxError(f"mailbox directory not found: {root}")
    maildir = (root / "cur").is_dir() or (root / "new").is_dir()
    paths = (
        sorted(
            p
            for sub in ("cur", "new")
            if (root / sub).is_dir()
            for p in (root / sub).iterdir()
            if p.is_file()
        )
        if maildir
        else sorted(root.glob("*.eml"))
    )
    for path in paths:
        size = path.stat().st_size
        # Oversized messages are still ingested, headers only, so they stay visible (and rejected later).
        raw = path.read_bytes() if size <= max_bytes else headers_only(_read_header(path), size=size)
        yield MailboxMessage(ref=str(path.relative_to(root)), raw=raw)


def _read_header(path: Path) -> bytes:
    head = bytearray()
    with path.open("rb") as fh:
        for line in fh:
            if line in (b"\r\n", b"\n") or len(head) > 256 * 1024:
                break
            head += line
    return bytes(head)


TRUNCATED_HEADER = "X-Mailspine-Truncated"


def headers_only(header: bytes, *, size: int) -> bytes:
    """The stored form of an oversized message: its header block plus a marker the gateway rejects."""
    header = header.rstrip(b"\r\n") + b"\r\n"
    return header + f"{TRUNCATED_HEADER}: original size {size} bytes; body not stored\r\n\r\n".encode()
