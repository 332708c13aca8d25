"""Content-Transfer-Encoding: decode leniently, and hash attachments in one streaming pass.

Bodies are ``(buf, start, end)`` slices of one shared buffer, so a 25 MB attachment is never
copied whole: base64 is decoded 1 MiB at a time straight into SHA-256.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from collections.abc import Iterator

_CHUNK = 1 << 20
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_NOT_ALPHABET = bytes(sorted(set(range(256)) - set(_ALPHABET)))
_RAW = {"", "7bit", "8bit", "binary", "7-bit", "8-bit", "none"}
_BAD_QP = re.compile(rb"=(?![0-9A-Fa-f]{2}|[ \t]*\r?\n|[ \t]*$)")
_BASE64_CHARS = re.compile(rb"[A-Za-z0-9+/=\s]+")
_BASE64_RUN = re.compile(rb"[A-Za-z0-9+/]{40}")


def _base64_chunks(buf: bytes, start: int, end: int, defects: list[str], where: str) -> Iterator[bytes]:
    carry = b""
    garbage = False
    for offset in range(start, end, _CHUNK):
        piece = buf[offset : min(end, offset + _CHUNK)]
        garbage = garbage or bool(piece.translate(None, _ALPHABET + b"= \t\r\n"))
        # Padding is dropped with the rest and restored from the length below, which gives the
        # exact bytes for well-formed input and a best effort for '=' in the middle.
        data = carry + piece.translate(None, _NOT_ALPHABET)
        usable = len(data) // 4 * 4
        carry = data[usable:]
        if usable:
            yield binascii.a2b_base64(data[:usable])
    if len(carry) == 1:
        defects.append(f"base64 in {where} ends in a stray character: dropped")
    elif carry:
        yield binascii.a2b_base64(carry + b"=" * (4 - len(carry)))
    if garbage:
        defects.append(f"base64 in {where} contains invalid characters: ignored")


def normalise_cte(value: str | None) -> str:
    token = (value or "").strip().strip("\"'").split(";")[0].strip().lower()
    return token.split()[0] if token else ""


def iter_decoded(
    buf: bytes, start: int, end: int, cte: str, defects: list[str], where: str
) -> Iterator[bytes]:
    """The decoded body in pieces; unknown encodings are passed through (or base64 if it looks so)."""
    if cte == "base64":
        yield from _base64_chunks(buf, start, end, defects, where)
        return
    if cte == "quoted-printable":
        body = buf[start:end]
        if _BAD_QP.search(body):
            defects.append(f"quoted-printable in {where} has invalid '=' escapes: kept as-is")
        yield binascii.a2b_qp(body)
        return
    if cte not in _RAW:
        looks = bool(_BASE64_CHARS.fullmatch(buf, start, end) and _BASE64_RUN.search(buf, start, end))
        how = "it looked like base64 and was decoded" if looks else "read as 8bit"
        defects.append(f"unknown content-transfer-encoding {cte[:40]!r} in {where}: {how}")
        if looks:
            yield from _base64_chunks(buf, start, end, defects, where)
            return
    for offset in range(start, end, _CHUNK):
        yield buf[offset : min(end, offset + _CHUNK)]


def decode_body(buf: bytes, start: int, end: int, cte: str, defects: list[str], where: str) -> bytes:
    return b"".join(iter_decoded(buf, start, end, cte, defects, where))


def digest(buf: bytes, start: int, end: int, cte: str, defects: list[str], where: str) -> tuple[int, str]:
    """Size and SHA-256 of the decoded body, without holding it in memory."""
    sha = hashlib.sha256()
    size = 0
    for piece in iter_decoded(buf, start, end, cte, defects, where):
        sha.update(piece)
        size += len(piece)
    return size, sha.hexdigest()


def decode_base64_lenient(data: bytes) -> tuple[bytes, bool]:
    """Decode a small base64 string (an encoded-word); the flag says whether repairs were needed."""
    clean = data.translate(None, _NOT_ALPHABET)
    bad = bool(data.translate(None, _ALPHABET + b"=")) or len(clean) % 4 == 1
    clean = clean[: len(clean) // 4 * 4 + (len(clean) % 4 if len(clean) % 4 > 1 else 0)]
    return binascii.a2b_base64(clean + b"=" * (-len(clean) % 4)), bad
