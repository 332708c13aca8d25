"""Raw bytes to a tree of MIME entities, tolerant of every structural error seen in the wild.

Own splitter instead of ``email.feedparser``: bodies stay ``(start, end)`` offsets into the one
input buffer (no per-line copies of a 25 MB attachment), depth and part counts are capped before
recursion can run away, and each repair is recorded in words a person can act on.
Headers are decoded from bytes here (utf-8, else cp1252) and kept in a compat32 ``Message``, whose
raw-string storage never raises on access; only its parameter helpers are used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message
from itertools import pairwise

from gateway.mime_payload import decode_body, normalise_cte
from gateway.mime_text import header_bytes_to_str

MAX_DEPTH = 20
MAX_PARTS = 500
MAX_HEADER_BYTES = 1 << 20
MAX_CONTENT_HEADER = 4096  # email.message's parameter parser is quadratic in some inputs
_FIELD = re.compile(rb"([!-9;-~]+)[ \t]*:")
_GUESS_BOUNDARY = re.compile(rb"^--([!-~]{1,200}?)(?:--)?[ \t]*\r?$", re.MULTILINE)
_MIME_IN_BODY = re.compile(rb"^--[!-~]{1,200}[ \t]*\r?\n[!-9;-~]+[ \t]*:", re.MULTILINE)


@dataclass
class Entity:
    headers: Message
    buf: bytes
    start: int  # body offsets in buf
    end: int
    content_type: str
    children: list[Entity] = field(default_factory=list)
    structure_lost: bool = False  # a multipart whose parts could not be found: body read as text


@dataclass
class _Budget:
    defects: list[str]
    parts: int = 0


def content_type(headers: Message, default: str) -> str:
    try:
        raw = headers.get("content-type")
    except Exception:
        raw = None
    if not isinstance(raw, str) or not raw.strip():
        return default
    ctype = re.sub(r"\(.*?\)|\s", "", raw.split(";")[0]).strip("\"'").lower()
    return ctype if re.fullmatch(r"[!-~]+/[!-~]+", ctype) else "text/plain"


def _headers(buf: bytes, pos: int, end: int, budget: _Budget) -> tuple[Message, int]:
    """Parse the header block at ``pos``; returns the headers and where the body starts."""
    fields: list[tuple[bytes, bytearray]] = []
    limit = min(end, pos + MAX_HEADER_BYTES)
    while pos < end:
        newline = buf.find(b"\n", pos, limit)
        if newline < 0 and limit < end:
            budget.defects.append("header block over 1 MiB: the rest read as body")
            break
        line_end = end if newline < 0 else newline + 1
        line = buf[pos:line_end].rstrip(b"\r\n")
        if not line.strip():
            pos = line_end  # the blank line that ends the header block
            break
        match = _FIELD.match(line)
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1][1].extend(line)  # folded line: unfolding only removes the line break
        elif match:
            fields.append((match.group(1), bytearray(line[match.end() :])))
        elif fields and _FIELD.match(buf, line_end, end):  # one damaged line among headers
            budget.defects.append("malformed header line ignored")
        else:
            if fields:
                budget.defects.append("header block not ended by a blank line: the rest read as body")
            break
        pos = line_end
    headers = Message()
    for name_bytes, value in fields:
        name = name_bytes.decode("ascii")
        text, guessed = header_bytes_to_str(bytes(value))
        if guessed:
            budget.defects.append(f"raw 8-bit bytes in {name!r} header are not utf-8: decoded as {guessed}")
        if name.lower().startswith("content-") and len(text) > MAX_CONTENT_HEADER:
            budget.defects.append(f"{name!r} header over {MAX_CONTENT_HEADER} characters: truncated")
            text = text[:MAX_CONTENT_HEADER]
        headers[name] = text.strip()
    return headers, pos


def _delimiters(buf: bytes, start: int, end: int, boundary: bytes) -> list[tuple[int, int, bool]]:
    """(line start, next line start, is the close delimiter) for each delimiter line."""
    pattern = re.compile(rb"^--" + re.escape(boundary) + rb"(--)?[ \t]*\r?$", re.MULTILINE)
    found: list[tuple[int, int, bool]] = []
    for match in pattern.finditer(buf, start, end):
        after = match.end() + 1 if match.end() < end else end
        found.append((match.start(), after, match.group(1) is not None))
        if match.group(1) is not None or len(found) > MAX_PARTS:
            break
    return found


Marks = list[tuple[int, int, bool]]


def _boundary(headers: Message, buf: bytes, start: int, end: int, budget: _Budget) -> Marks:
    """The delimiter lines of a multipart body, using a boundary guessed from the body when the
    declared one is missing or never occurs."""
    try:
        declared = headers.get_param("boundary", header="content-type")
    except Exception:
        declared = None
    text = declared[2] if isinstance(declared, tuple) else declared
    if isinstance(text, str) and text.strip():
        marks = _delimiters(buf, start, end, text.strip().encode("utf-8", "replace")[:200])
        if marks:
            return marks
        what = f"multipart boundary {text.strip()[:40]!r} not found"
    else:
        what = "multipart without a boundary parameter"
    guess = _GUESS_BOUNDARY.search(buf, start, end)
    if guess and guess.group(1).strip(b"-"):
        found = guess.group(1).decode("latin-1")[:40]
        budget.defects.append(f"{what}: split on {found!r} found in the body")
        return _delimiters(buf, start, end, guess.group(1))
    budget.defects.append(f"{what}: body read as plain text")
    return []


def _split(buf: bytes, end: int, marks: Marks, budget: _Budget) -> list[tuple[int, int]]:
    """The (start, end) of each part."""
    spans = []
    for (_, body_start, _), (next_line, _, _) in pairwise(marks):
        # The line break before a delimiter belongs to the delimiter.
        body_end = next_line - (2 if buf[max(0, next_line - 2) : next_line] == b"\r\n" else 1)
        spans.append((body_start, max(body_start, body_end)))
    if marks and not marks[-1][2] and len(marks) <= MAX_PARTS:
        budget.defects.append("multipart boundary never closed: last part read to the end")
        spans.append((marks[-1][1], end))
    return spans


def _entity(buf: bytes, start: int, end: int, depth: int, budget: _Budget, default: str) -> Entity:
    budget.parts += 1
    headers, body = _headers(buf, start, end, budget)
    ctype = content_type(headers, default)
    if ctype == "text/plain" and headers.get("content-type") is None and _MIME_IN_BODY.search(buf, body, end):
        # A damaged or lost Content-Type above MIME parts: better parts than raw base64 as text.
        budget.defects.append("no Content-Type header, but the body is MIME: read as multipart/mixed")
        ctype = "multipart/mixed"
    node = Entity(headers, buf, body, end, ctype)
    if (ctype.startswith("multipart/") or ctype == "message/rfc822") and depth >= MAX_DEPTH:
        budget.defects.append(f"MIME nesting deeper than {MAX_DEPTH} levels: inner parts ignored")
        return node
    if ctype == "message/rfc822":
        cte = normalise_cte(headers.get("content-transfer-encoding"))
        if cte in ("", "7bit", "8bit", "binary"):
            node.children.append(_entity(buf, body, end, depth + 1, budget, "text/plain"))
        else:  # not allowed by RFC 2046, but seen: decode, then parse the copy
            inner = decode_body(buf, body, end, cte, budget.defects, "an attached message")
            node.children.append(_entity(inner, 0, len(inner), depth + 1, budget, "text/plain"))
    elif ctype.startswith("multipart/"):
        marks = _boundary(headers, buf, body, end, budget)
        spans = _split(buf, end, marks, budget)
        node.structure_lost = not marks
        child_default = "message/rfc822" if ctype == "multipart/digest" else "text/plain"
        for child_start, child_end in spans:
            if budget.parts >= MAX_PARTS:
                budget.defects.append(f"more than {MAX_PARTS} MIME parts: the rest ignored")
                break
            node.children.append(_entity(buf, child_start, child_end, depth + 1, budget, child_default))
    return node


def parse_tree(raw: bytes, start: int, defects: list[str]) -> Entity:
    """Parse the message that starts at ``raw[start:]`` (past leading blank space)."""
    if raw.startswith(b"From ", start):  # mbox envelope line: not a header
        newline = raw.find(b"\n", start)
        start = len(raw) if newline < 0 else newline + 1
    return _entity(raw, start, len(raw), 0, _Budget(defects), "text/plain")
