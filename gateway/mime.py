"""MIME parsing that never crashes the pipeline.

``parse_message`` either returns a ``ParsedEmail`` (possibly with ``defects`` noting what was
repaired: a broken charset, an unterminated multipart, ...) or raises ``MessageRejected`` with a
reason a person can act on (empty input, no header block, over the size limit). It raises nothing
else, for any bytes.

The work is split by concept: ``mime_tree`` (bytes to MIME entities), ``mime_payload`` (transfer
encodings, hashing), ``mime_text`` (charsets), ``mime_headers`` (RFC 2047, addresses, dates),
``mime_collect`` (which part is text, attachment, invite or forwarded message), ``quoting`` and
``signature`` (what of the text is new), ``ics`` (calendar invites), ``html_text`` (HTML).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from agent.inputs import Attachment
from app.errors import MessageRejected
from gateway.ics import CalendarInvite
from gateway.mime_collect import collect
from gateway.mime_headers import address_header, date_header, id_header, text_header
from gateway.mime_text import clean
from gateway.mime_tree import parse_tree
from gateway.quoting import split_history
from gateway.signature import split_signature

__all__ = ["CalendarInvite", "ParsedEmail", "parse_message"]

_BLANK = re.compile(rb"\s*")
_LEADING = re.compile(rb"(?:\xef\xbb\xbf)?\s*(?:From [^\n]*\n)?")  # BOM, blank lines, mbox "From "
_HEADER_LINE = re.compile(rb"[!-9;-~]+[ \t]*:")  # RFC 5322 field name then ':'


@dataclass
class ParsedEmail:
    message_id: str | None
    subject: str
    sender_address: str | None
    sender_name: str | None
    to: list[str]
    sent_at: datetime | None
    in_reply_to: str | None
    references: list[str]
    text: str  # new text, visible part only, without quoted history and signature
    quoted_text: str  # quoted replies and forwarded messages (inline or attached message/rfc822)
    hidden_text: str  # text hidden by HTML/CSS: never shown to the model, only scanned
    alternative_text: str = ""  # visible text of the multipart/alternative parts not chosen: only scanned
    html_comments: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    list_unsubscribe: bool = False
    signature: str = ""  # the sender's signature block (name, phone, address), not content
    calendar: list[CalendarInvite] = field(default_factory=list)
    forwarded: bool = False  # the message forwards another one: its author is not the sender


def _check(raw: bytes, max_bytes: int) -> int:
    """Reject unusable input; returns where the header block starts."""
    if _BLANK.fullmatch(raw):
        raise MessageRejected("empty message (0 bytes of content)")
    if len(raw) > max_bytes:
        raise MessageRejected(f"message is {len(raw)} bytes, over the {max_bytes}-byte limit")
    match = _LEADING.match(raw)
    start = match.end() if match else 0
    if not _HEADER_LINE.match(raw, start):
        raise MessageRejected("no RFC 5322 header block: not an email message")
    return start


def _parse(raw: bytes, start: int) -> ParsedEmail:
    defects: list[str] = []
    root = parse_tree(raw, start, defects)
    found = collect(root, defects)
    headers = root.headers
    history = split_history(clean("\n\n".join(found.body)), subject=text_header(headers, "Subject", []) or "")
    text, signature = split_signature(history.new)
    senders = address_header(headers, "From", defects) or address_header(headers, "Sender", defects)
    name, address = senders[0] if senders else ("", "")
    return ParsedEmail(
        message_id=id_header(headers, "Message-ID"),
        subject=text_header(headers, "Subject", defects) or "",
        sender_address=address or None,
        sender_name=name or None,
        to=[a for _, a in address_header(headers, "To", defects) if a],
        sent_at=date_header(headers, defects),
        in_reply_to=id_header(headers, "In-Reply-To"),
        references=(id_header(headers, "References") or "").split(),
        text=text.strip(),
        quoted_text="\n\n".join(part for part in (history.history, *found.forwarded) if part),
        hidden_text="\n".join(part for part in found.hidden if part),
        alternative_text="\n\n".join(found.alternatives),
        html_comments=found.comments,
        attachments=found.attachments,
        defects=list(dict.fromkeys(defects)),
        list_unsubscribe=text_header(headers, "List-Unsubscribe", defects) is not None,
        signature=signature,
        calendar=found.calendar,
        forwarded=history.forwarded or bool(found.forwarded),
    )


def parse_message(raw: bytes, *, max_bytes: int) -> ParsedEmail:
    start = _check(raw, max_bytes)
    try:
        return _parse(raw, start)
    except MessageRejected:
        raise
    except Exception as exc:
        # Last line of defence: the parser is built not to get here (the fuzz tests check that),
        # but a bug must cost one message, not the pipeline.
        detail = f"{type(exc).__name__}: {exc}"[:200]
        raise MessageRejected(
            f"message could not be parsed ({detail}); keep the raw file for a bug report"
        ) from exc
