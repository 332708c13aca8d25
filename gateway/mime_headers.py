"""Header values to text: RFC 2047 encoded-words, addresses and dates, leniently and never raising.

Header values arrive already unfolded and decoded from raw bytes (see ``mime_tree``); what is left
is the RFC 2047 layer, which mail software gets wrong in many ways (split multi-byte characters,
unknown charsets, bad base64, missing ``?=``).
"""

from __future__ import annotations

import binascii
import re
from datetime import datetime
from email.message import Message
from email.utils import parsedate_to_datetime

from gateway.mime_payload import decode_base64_lenient
from gateway.mime_text import clean, decode_text

_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,75})\?([bBqQ])\?([^?]*)\?=")
_LEFTOVER = re.compile(r"=\?[^?\s]{1,75}\?[bBqQ]\?")
_SPACES = re.compile(r"[\t\n ]+")
# Tokens of an address list: quoted string, (comment), <address>, comma, anything else. Own parser:
# email.utils.getaddresses recurses once per nested "(" and raises RecursionError on hostile input.
_ADDRESS_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|\((?:[^()\\]|\\.)*\)?|<[^<>]*>?|,|[^",(<]+', re.DOTALL)
_ESCAPED = re.compile(r"\\(.)")


def _word_bytes(encoding: str, text: str) -> tuple[bytes, bool]:
    data = text.encode("utf-8")
    if encoding in "bB":
        return decode_base64_lenient(data)
    return binascii.a2b_qp(data, header=True), False


def decode_words(value: str, defects: list[str], where: str) -> str:
    """Decode RFC 2047 encoded-words; adjacent words in one charset are joined before decoding so a
    character split across two words survives."""
    pieces: list[tuple[str | None, str | bytes]] = []  # (charset, bytes) or (None, literal text)
    pos = 0
    bad_base64 = False
    for match in _ENCODED_WORD.finditer(value):
        literal = value[pos : match.start()]
        between_words = bool(pieces) and pieces[-1][0] is not None and not literal.strip()
        if literal and not between_words:
            pieces.append((None, literal))
        charset = match.group(1).split("*")[0].lower()  # RFC 2231 adds "*language"
        data, repaired = _word_bytes(match.group(2), match.group(3))
        bad_base64 = bad_base64 or repaired
        last = pieces[-1] if pieces else None
        if last and last[0] == charset and isinstance(last[1], bytes):
            pieces[-1] = (charset, last[1] + data)
        else:
            pieces.append((charset, data))
        pos = match.end()
    if pos < len(value):
        pieces.append((None, value[pos:]))
    if bad_base64:
        defects.append(f"invalid base64 in an encoded-word in {where}: decoded leniently")
    out: list[str] = []
    for charset, chunk in pieces:
        if isinstance(chunk, bytes):
            out.append(decode_text(chunk, charset or None, defects, where))
        else:
            if _LEFTOVER.search(chunk):
                defects.append(f"malformed encoded-word in {where}: left as is")
            out.append(chunk)
    return "".join(out)


def _raw(msg: Message, name: str) -> str | None:
    try:
        value = msg.get(name)
    except Exception:  # compat32 keeps raw strings, but stay safe against any policy
        return None
    return value if isinstance(value, str) else None


def text_header(msg: Message, name: str, defects: list[str]) -> str | None:
    """The decoded single-line text of header ``name``, or None when absent."""
    raw = _raw(msg, name)
    if raw is None:
        return None
    return _SPACES.sub(" ", clean(decode_words(raw, defects, f"{name!r} header"))).strip()


def _address(tokens: list[str]) -> tuple[str, str]:
    angle = [t for t in tokens if t.startswith("<")]
    words = "".join(t for t in tokens if not t.startswith(("<", "(")))
    comment = " ".join(t.strip("()") for t in tokens if t.startswith("("))
    if angle:
        address, display = angle[-1].strip("<>"), words
    else:
        address, display = ("" if "@" not in words else words), ("" if "@" in words else words) or comment
    address = re.sub(r"\s", "", address.rsplit(":", 1)[-1]).strip(";").lower()  # "Group: a@b;"
    display = _ESCAPED.sub(r"\1", display.strip().strip('"'))
    return display, address if "@" in address else ""


def address_header(msg: Message, name: str, defects: list[str]) -> list[tuple[str, str]]:
    """(display name, lower-case address or "") pairs; names are decoded after splitting, so an
    encoded comma in a name cannot split an address."""
    raw = _raw(msg, name)
    groups: list[list[str]] = [[]]
    for match in _ADDRESS_TOKEN.finditer(clean(raw or "")):
        if match.group(0) == ",":
            groups.append([])
        else:
            groups[-1].append(match.group(0))
    out = []
    for tokens in groups:
        display, address = _address(tokens)
        display = _SPACES.sub(" ", clean(decode_words(display, defects, f"{name!r} header"))).strip()
        if address or display:
            out.append((display, address))
    return out


def date_header(msg: Message, defects: list[str]) -> datetime | None:
    raw = _raw(msg, "Date")
    if not raw or not raw.strip():
        return None
    try:
        return parsedate_to_datetime(clean(raw).strip())
    except Exception:  # ValueError, TypeError, OverflowError, IndexError on odd dates
        defects.append("unparseable 'Date' header: date ignored")
        return None


def id_header(msg: Message, name: str) -> str | None:
    raw = _raw(msg, name)
    value = _SPACES.sub(" ", clean(raw)).strip() if raw else ""
    return value or None
