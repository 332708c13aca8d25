"""MIME parsing that never crashes the pipeline.

``parse_message`` either returns a ``ParsedEmail`` (possibly with ``defects`` noting what was
repaired: a broken charset, an unterminated multipart, ...) or raises ``MessageRejected`` with a
reason a person can act on (empty input, no header block, over the size limit).
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

from agent.inputs import Attachment
from app.errors import MessageRejected
from gateway.html_text import html_to_text

_HEADER_LINE = re.compile(rb"^[!-9;-~]+:", re.MULTILINE)  # RFC 5322 field name then ':'
_QUOTE_INTRO = re.compile(
    r"^(On .{0,200} wrote:|Am .{0,200} schrieb .{0,200}:|Le .{0,200} a écrit ?:|El .{0,200} escribió:|"
    r"-{2,} ?(Original Message|Forwarded message|Ursprüngliche Nachricht|Message d'origine) ?-{2,})\s*$",
    re.IGNORECASE | re.MULTILINE,
)


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
    text: str  # new text, visible part only
    quoted_text: str
    hidden_text: str  # text hidden by HTML/CSS: never shown to the model, only scanned
    html_comments: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    list_unsubscribe: bool = False


def _header(msg: Message, name: str) -> str | None:
    try:
        value = msg.get(name)
    except Exception:  # a header the policy cannot parse: fall back to the raw value
        raw = msg.get_all(name, failobj=[None])
        value = raw[0] if raw else None
    return None if value is None else str(value).strip()


def _decode_part(part: Message, defects: list[str]) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset)
    except LookupError:
        defects.append(f"unknown charset {charset!r}: decoded as utf-8 with replacement")
    except UnicodeDecodeError:
        defects.append(f"bytes invalid for declared charset {charset!r}: repaired")
        try:
            return payload.decode("cp1252")  # the usual truth behind a wrong 'utf-8' label
        except UnicodeDecodeError:
            pass
    return payload.decode("utf-8", errors="replace")


def _split_quoted(text: str) -> tuple[str, str]:
    match = _QUOTE_INTRO.search(text)
    lines = text.splitlines()
    if match:
        head = text[: match.start()]
        return head.rstrip(), text[match.start() :].strip()
    new = [ln for ln in lines if not ln.startswith(">")]
    quoted = [ln for ln in lines if ln.startswith(">")]
    return "\n".join(new).strip(), "\n".join(quoted).strip()


def parse_message(raw: bytes, *, max_bytes: int) -> ParsedEmail:
    if not raw.strip():
        raise MessageRejected("empty message (0 bytes of content)")
    if len(raw) > max_bytes:
        raise MessageRejected(f"message is {len(raw)} bytes, over the {max_bytes}-byte limit")
    if not _HEADER_LINE.match(raw.lstrip()):
        raise MessageRejected("no RFC 5322 header block: not an email message")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    defects = [type(d).__name__ for d in msg.defects]
    plain: list[str] = []
    html: list[str] = []
    attachments: list[Attachment] = []
    for part in msg.walk():
        defects.extend(type(d).__name__ for d in part.defects)
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        disposition = (part.get_content_disposition() or "").lower()
        if disposition == "attachment" or (part.get_filename() and ctype not in ("text/plain", "text/html")):
            body = part.get_payload(decode=True)
            data = body if isinstance(body, bytes) else b""
            attachments.append(
                Attachment(
                    filename=part.get_filename(),
                    content_type=ctype,
                    size_bytes=len(data),
                    sha256=hashlib.sha256(data).hexdigest(),
                )
            )
        elif ctype == "text/plain":
            plain.append(_decode_part(part, defects))
        elif ctype == "text/html":
            html.append(_decode_part(part, defects))
    hidden, comments = "", []
    if html:
        rendered = html_to_text("\n".join(html))
        hidden, comments = rendered.hidden_text, rendered.comments
        body_text = "\n".join(plain) if plain else rendered.text
    else:
        body_text = "\n".join(plain)
    text, quoted = _split_quoted(body_text.replace("\r\n", "\n"))
    name, address = parseaddr(_header(msg, "From") or "")
    try:
        sent_at = parsedate_to_datetime(_header(msg, "Date") or "")
    except (TypeError, ValueError):
        sent_at = None
    refs = (_header(msg, "References") or "").split()
    return ParsedEmail(
        message_id=_header(msg, "Message-ID"),
        subject=_header(msg, "Subject") or "",
        sender_address=address.lower() or None,
        sender_name=name or None,
        to=[a.lower() for _, a in getaddresses([_header(msg, "To") or ""]) if a],
        sent_at=sent_at,
        in_reply_to=_header(msg, "In-Reply-To"),
        references=refs,
        text=text,
        quoted_text=quoted,
        hidden_text=hidden,
        html_comments=comments,
        attachments=attachments,
        defects=sorted(set(defects)),
        list_unsubscribe=_header(msg, "List-Unsubscribe") is not None,
    )
