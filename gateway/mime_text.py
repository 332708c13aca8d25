"""Bytes to clean text: charset resolution with guesses for missing, unknown and wrong labels.

Nothing here raises on any input. Each guess or repair appends one sentence to ``defects``.
"""

from __future__ import annotations

import codecs
import re

# Labels seen in real mail that Python does not know, or knows under a narrower meaning.
# None means "a label that says nothing": guess as if no charset had been declared.
_ALIASES: dict[str, str | None] = {
    "iso-8859-1": "cp1252",  # as browsers do: mail labelled latin-1 is nearly always cp1252
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "ascii",
    "windows-874": "cp874",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "iso-8859-8-i": "iso8859_8",
    "x-sjis": "shift_jis",
    "gb2312": "gb18030",  # supersets decode what mislabelled senders really used
    "gbk": "gb18030",
    "x-unknown": None,
    "unknown": None,
    "unknown-8bit": None,
    "x-user-defined": None,
    "default": None,
}
# Python codecs that are not charsets, or that must never see untrusted input.
_REFUSED = {"undefined", "unicode_escape", "raw_unicode_escape", "idna", "punycode", "mbcs", "oem"}
_WINDOWS = re.compile(r"^(?:x-)?(?:windows|win|cp)[-_ ]?(125\d|874|1258)$")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_B64_LINE = re.compile(r"[A-Za-z0-9+/]+={0,2}")


def resolve_charset(label: str) -> str | None:
    """The Python codec for a MIME charset label, or None when nothing usable matches."""
    name = label.strip().strip("\"'").strip().lower()
    if name in _ALIASES:
        return _ALIASES[name]
    windows = _WINDOWS.match(name)
    for candidate in (name, name.removeprefix("x-"), f"cp{windows.group(1)}" if windows else ""):
        try:
            info = codecs.lookup(candidate)
        except (LookupError, ValueError, TypeError):
            continue
        if getattr(info, "_is_text_encoding", True) and info.name.replace("-", "_") not in _REFUSED:
            return "utf-8-sig" if info.name == "utf-8" else info.name
    return None


def _guess(data: bytes) -> tuple[str, str]:
    # utf-8 is strict enough that a successful decode is almost certainly right; cp1252 next;
    # latin-1 decodes anything (only five cp1252 byte values are undefined).
    for codec, label in (("utf-8-sig", "utf-8"), ("cp1252", "cp1252")):
        try:
            return data.decode(codec), label
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"


def decode_text(data: bytes, label: str | None, defects: list[str], where: str = "text") -> str:
    """Decode ``data`` declared as charset ``label`` (None: not declared)."""
    if not data:
        return ""
    name = (label or "").strip()[:40]
    codec = resolve_charset(name) if name else None
    if codec is None:
        if data.isascii():
            return data.decode("ascii")
        text, used = _guess(data)
        if name:
            defects.append(f"unknown charset {name!r} in {where}: decoded as {used}")
        else:
            defects.append(f"no charset declared for 8-bit {where}: decoded as {used}")
        return text
    try:
        return data.decode(codec)
    except Exception:  # UnicodeDecodeError, or a codec that misbehaves on this input
        pass
    if codec in ("utf-8-sig", "ascii") or codec.startswith(("cp125", "iso8859")):
        text, used = _guess(data)  # western labels: the bytes are usually utf-8 or cp1252
    else:
        try:
            text, used = data.decode("utf-8-sig"), "utf-8"
        except UnicodeDecodeError:
            text, used = data.decode(codec, errors="replace"), f"{codec} with replacement"
    defects.append(f"bytes invalid for declared charset {name!r} in {where}: decoded as {used} (repaired)")
    return text


def header_bytes_to_str(raw: bytes) -> tuple[str, str | None]:
    """Decode a raw header value (RFC 6532 allows utf-8); also returns the codec when that was a
    guess other than utf-8."""
    if raw.isascii():
        return raw.decode("ascii"), None
    text, used = _guess(raw)
    return text.lstrip("\ufeff"), None if used == "utf-8" else used


def clean(text: str) -> str:
    """Normalise line ends and drop control characters (NUL, ESC, ...), keeping tabs and newlines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", text)


def _base64_like(line: str, min_length: int) -> bool:
    line = line.strip()
    return (
        len(line) >= min_length
        and _B64_LINE.fullmatch(line) is not None
        and not line.islower()
        and not line.isupper()  # hex digests and shouted words are single-case
        and (min_length < 48 or any(ch.isdigit() for ch in line))
    )


def drop_base64_blocks(text: str) -> tuple[str, int]:
    """Remove base64 that no person wrote: a run of two or more base64 lines (40+ characters, mixed
    case), or one line of 48+ such characters with digits. It is a lost attachment's body (MIME damaged on the
    way) or an encoded payload meant for a model; either way not text for the agent."""
    lines = text.split("\n")
    keep: list[str] = []
    removed = 0
    i = 0
    while i < len(lines):
        j = i
        while j < len(lines) and _base64_like(lines[j], 40):
            j += 1
        if j - i >= 2 or (j - i == 1 and _base64_like(lines[i], 48)):
            removed += j - i
            i = j
            continue
        keep.append(lines[i])
        i += 1
    return "\n".join(keep), removed
