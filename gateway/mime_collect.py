"""Walk a MIME tree and sort its leaves into text, forwarded messages, attachments and invites.

Rules: text/plain is preferred to text/html inside multipart/alternative, but every HTML part is
still rendered so hidden text and comments reach the scanners, and the visible text of every
unchosen alternative goes to ``alternatives`` so the scanners can compare what a person's mail
client shows with what the model reads (an attacker can put different words in each).
Attachments are only described (name, type, size, SHA-256): their content never reaches the
text. An attached message/rfc822 is forwarded content and goes to ``forwarded``, never to the new
text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import Message

from agent.inputs import Attachment
from gateway.html_text import html_to_text
from gateway.ics import CalendarInvite, parse_ics
from gateway.mime_headers import address_header, decode_words, text_header
from gateway.mime_payload import decode_body, digest, normalise_cte
from gateway.mime_text import clean, decode_text, drop_base64_blocks
from gateway.mime_tree import Entity

MAX_TEXT_BYTES = 2 << 20  # per text part, as sent (encoded)
MAX_HTML_BYTES = 1 << 20  # html.parser renders about 1 MiB/s of tag-dense HTML
MAX_CALENDAR_BYTES = 1 << 20
_TEXT = ("text/plain", "text/html")
_CALENDAR = ("text/calendar", "application/ics")


@dataclass
class Collected:
    body: list[str] = field(default_factory=list)
    forwarded: list[str] = field(default_factory=list)
    hidden: list[str] = field(default_factory=list)
    alternatives: list[str] = field(default_factory=list)  # visible text of unchosen alternatives
    comments: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    calendar: list[CalendarInvite] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)


def _param(headers: Message, name: str, header: str, out: Collected) -> str | None:
    try:
        value = headers.get_param(name, header=header)
    except Exception:
        return None
    if isinstance(value, tuple):  # RFC 2231: (charset, language, percent-decoded latin-1 text)
        charset, _, text = value
        try:
            data = text.encode("latin-1")
        except UnicodeEncodeError:
            data = text.encode("utf-8")
        value = decode_text(data, charset or "utf-8", out.defects, f"{name!r} parameter")
    if not isinstance(value, str):
        return None
    return clean(decode_words(value, out.defects, f"{name!r} parameter")).strip() or None


def _filename(part: Entity, out: Collected) -> str | None:
    return _param(part.headers, "filename", "content-disposition", out) or _param(
        part.headers, "name", "content-type", out
    )


def _text(part: Entity, out: Collected) -> str:
    cte = normalise_cte(part.headers.get("content-transfer-encoding"))
    where = part.content_type + " part"
    end, limit = part.end, MAX_HTML_BYTES if part.content_type == "text/html" else MAX_TEXT_BYTES
    if end - part.start > limit:
        out.defects.append(f"{where} over {limit >> 20} MiB: only the first {limit >> 20} MiB were read")
        end = part.start + limit
    data = decode_body(part.buf, part.start, end, cte, out.defects, where)
    return clean(decode_text(data, _param(part.headers, "charset", "content-type", out), out.defects, where))


def _attach(part: Entity, name: str | None, out: Collected) -> None:
    cte = normalise_cte(part.headers.get("content-transfer-encoding"))
    size, sha = digest(part.buf, part.start, part.end, cte, out.defects, f"attachment {name or ''}".strip())
    out.attachments.append(
        Attachment(filename=name, content_type=part.content_type, size_bytes=size, sha256=sha)
    )


def _forwarded(part: Entity, out: Collected) -> None:
    """An attached message: its text, under its own From/Date/Subject/To, goes to ``forwarded``."""
    slot = len(out.forwarded)
    out.forwarded.append("")  # reserved, so nested forwards follow their parent in document order
    inner = Collected(defects=out.defects)
    message = part.children[0]
    _visit(message, inner, as_body=True)
    lines = ["---------- Forwarded message ----------"]
    for name in ("From", "Date", "Subject", "To"):
        if name in ("From", "To"):
            pairs = address_header(message.headers, name, out.defects)
            value = ", ".join(f"{d} <{a}>" if d and a else d or a for d, a in pairs)
        else:
            value = text_header(message.headers, name, out.defects) or ""
        if value:
            lines.append(f"{name}: {value}")
    out.forwarded[slot] = "\n".join([*lines, "", *inner.body]).strip()
    out.forwarded.extend(inner.forwarded)
    out.hidden.extend(inner.hidden)
    out.alternatives.extend(inner.alternatives)
    out.comments.extend(inner.comments)
    out.attachments.extend(inner.attachments)
    out.calendar.extend(inner.calendar)


def _alternative_choice(part: Entity) -> Entity | None:
    """The child of a multipart/alternative that is read as text: plain (if not empty), else a
    nested multipart (related HTML), else HTML."""
    children = [c for c in part.children if _disposition(c) != "attachment"]
    for wanted in ("text/plain", "multipart/", "text/html"):
        for child in children:
            if child.content_type.startswith(wanted) and (
                wanted != "text/plain" or _text(child, Collected()).strip()
            ):
                return child
    return children[0] if children else None


def _disposition(part: Entity) -> str:
    try:
        raw = part.headers.get("content-disposition")
    except Exception:
        return ""
    return raw.split(";")[0].strip().lower() if isinstance(raw, str) else ""


def _visit(part: Entity, out: Collected, *, as_body: bool) -> None:
    """Sort ``part``; with ``as_body`` False its text is only scanned (an unchosen alternative)."""
    ctype = part.content_type
    if ctype.startswith("multipart/") and not part.structure_lost:
        chosen = _alternative_choice(part) if ctype == "multipart/alternative" else None
        for child in part.children:
            _visit(child, out, as_body=as_body and (chosen is None or child is chosen))
        return
    if ctype == "message/rfc822" and part.children:
        if _disposition(part) == "attachment" or _filename(part, out):
            _attach(part, _filename(part, out), out)
        _forwarded(part, out)
        return
    name = _filename(part, out)
    if ctype in _CALENDAR or (name or "").lower().endswith(".ics"):
        size = part.end - part.start
        if size > MAX_CALENDAR_BYTES:
            out.defects.append(f"calendar part over {MAX_CALENDAR_BYTES >> 20} MiB: not read")
        else:
            out.calendar.extend(parse_ics(_text(part, out)))
        if name or _disposition(part) == "attachment":
            _attach(part, name, out)
        return
    # A multipart whose parts were not found is read as text (structure_lost), unless named.
    if _disposition(part) == "attachment" or (ctype not in _TEXT and (name or not part.structure_lost)):
        _attach(part, name, out)
        return
    text = _text(part, out)
    if ctype == "text/html":
        rendered = html_to_text(text)
        out.hidden.append(rendered.hidden_text)
        out.comments.extend(rendered.comments)
        text = rendered.text
    text, removed = drop_base64_blocks(text)
    if removed:
        out.defects.append(f"{removed} base64 lines removed from the text")
    if not text.strip():
        return
    if as_body:
        out.body.append(text)
    else:
        out.alternatives.append(text)


def collect(root: Entity, defects: list[str]) -> Collected:
    out = Collected(defects=defects)
    _visit(root, out, as_body=True)
    return out
