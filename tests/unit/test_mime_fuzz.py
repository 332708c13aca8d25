"""Property tests: ``parse_message`` returns or raises ``MessageRejected``, for any bytes.

The last-resort handler in ``parse_message`` turns an unexpected exception into a rejection that
says "could not be parsed"; these tests treat that as a failure, so parser bugs surface here.
"""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.errors import MessageRejected
from gateway.mime import ParsedEmail, parse_message

DEMO = Path(__file__).resolve().parents[2] / "infra" / "demo" / "mailbox"
DEMO_FILES = {p.name: p.read_bytes() for p in sorted(DEMO.glob("*.eml"))}
LIMIT = 1024 * 1024
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BASE64_LINE = re.compile(rb"^[A-Za-z0-9+/=]{40,}\r?$", re.MULTILINE)
# Base64 lines of attachments (not of text bodies) in the demo mailbox: never allowed in the text.
ATTACHMENT_BASE64 = {
    line.strip().decode()
    for raw in DEMO_FILES.values()
    for part in raw.split(b"\n--")
    if b"attachment" in part.split(b"\n\n")[0]
    for line in BASE64_LINE.findall(part)
}
CHARSETS = [
    "utf-8", "x-foo", "", "utf-16", "utf-7", "base64", "zlib", "bz2", "undefined", "idna", "rot13",
    "unicode_escape", "cp-1252", '"', "iso-2022-jp", "utf-32", "ks_c_5601-1987", "x-\x00", "é", "a" * 300,
]  # fmt: skip
ENCODINGS = ["base64", "quoted-printable", "x-uuencode", "8bit", "", "b64", "BASE64; x=1"]
CONTENT_TYPES = [
    "multipart/mixed", "multipart/alternative", "multipart/related", "multipart/digest", "text/plain",
    "text/html", "message/rfc822", "text/calendar", "application/pdf", "garbage", "multipart/",
]  # fmt: skip


def _parse(raw: bytes) -> ParsedEmail | None:
    try:
        parsed = parse_message(raw, max_bytes=LIMIT)
    except MessageRejected as exc:
        assert "could not be parsed" not in str(exc), str(exc)  # the parser's own safety net fired
        return None
    for text in (parsed.text, parsed.quoted_text, parsed.signature, parsed.subject, parsed.hidden_text):
        assert isinstance(text, str) and "\x00" not in text
    assert not any(line in parsed.text for line in ATTACHMENT_BASE64)
    assert all(a.size_bytes >= 0 and len(a.sha256) == 64 for a in parsed.attachments)
    assert all(isinstance(d, str) and d for d in parsed.defects)
    return parsed


@FUZZ
@given(st.binary(max_size=3000))
def test_arbitrary_bytes(raw: bytes) -> None:
    _parse(raw)
    _parse(b"From: a@b.example\r\n" + raw)
    _parse(b"Content-Type: multipart/mixed; boundary=x\n\n--x\n" + raw)


_header_value = st.one_of(
    st.text(max_size=80).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.binary(max_size=80),
    st.builds(
        lambda cs, enc, txt: f"=?{cs}?{enc}?{txt}?=".encode("utf-8", "surrogatepass"),
        st.sampled_from(CHARSETS),
        st.sampled_from(["q", "B", "x", ""]),
        st.text(max_size=30),
    ),
    st.builds(
        lambda ct, cs, b: f'{ct}; charset="{cs}"; boundary="{b}"; name*=utf-8\'\'%E2%82%AC.pdf'.encode(),
        st.sampled_from(CONTENT_TYPES),
        st.sampled_from(CHARSETS),
        st.sampled_from(["x", "", "--", "a b", '"']),
    ),
)
_header = st.tuples(
    st.sampled_from(
        [
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "Content-Type",
            "Content-Transfer-Encoding",
            "Content-Disposition",
            "References",
            "X-Junk",
            "Sender",
        ]
    ),
    _header_value,
).map(lambda h: h[0].encode() + b": " + h[1])
_body_piece = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        [
            b"--x\n",
            b"--x--\n",
            b"\n\n",
            b"Content-Type: text/html\n\n",
            b"Content-Type: message/rfc822\n\n",
            b"Content-Transfer-Encoding: base64\n\n",
            b"QUJD!!RA=\n",
            b"<a",
            b"<!--",
            b"<![CDATA[",
            b"> quoted\n",
            b"On Mon, Ann wrote:\n",
            b"-- \n",
            b"Best regards,\n",
            b"BEGIN:VEVENT\nDTSTART:2025\n",
            b"=?utf-8?b?w6",
            b"\x00",
            b"=ZZ=\n",
            b"From: x\nSent: y\nTo: z\nSubject: w\n",
            b"Content-Type: multipart/mixed; boundary=x\n\n",
        ]
    ),
)


@FUZZ
@given(st.lists(_header, min_size=1, max_size=8), st.lists(_body_piece, max_size=20), st.booleans())
def test_header_block_with_random_body(headers: list[bytes], body: list[bytes], crlf: bool) -> None:
    newline = b"\r\n" if crlf else b"\n"
    _parse(newline.join(headers) + newline + newline + b"".join(body))


@st.composite
def _mutated_demo(draw: st.DrawFn) -> bytes:
    raw = DEMO_FILES[draw(st.sampled_from(sorted(DEMO_FILES)))]
    for op in draw(st.lists(st.sampled_from(["cut", "flip", "dup", "drop", "charset", "cte"]), max_size=4)):
        if op == "cut":
            raw = raw[: draw(st.integers(0, len(raw)))]
        elif op == "flip" and raw:
            at = draw(st.integers(0, len(raw) - 1))
            raw = raw[:at] + bytes([raw[at] ^ draw(st.integers(1, 255))]) + raw[at + 1 :]
        elif op in ("dup", "drop"):
            lines = raw.split(b"\n")
            boundaries = [i for i, line in enumerate(lines) if line.startswith(b"--")]
            if boundaries:
                i = draw(st.sampled_from(boundaries))
                lines[i : i + 1] = [lines[i]] * (2 if op == "dup" else 0)
            raw = b"\n".join(lines)
        elif op == "charset":
            name = draw(st.sampled_from(CHARSETS)).encode("utf-8", "surrogatepass")
            raw = re.sub(rb'charset="?[\w-]+"?', lambda _, name=name: b'charset="' + name + b'"', raw)
        elif op == "cte":
            cte = draw(st.sampled_from(ENCODINGS)).encode()
            raw = re.sub(
                rb"(?i)(Content-Transfer-Encoding:) *[\w-]+", lambda m, cte=cte: m.group(1) + b" " + cte, raw
            )
    return raw


@FUZZ
@given(_mutated_demo())
def test_mutated_demo_mailbox(raw: bytes) -> None:
    _parse(raw)


def test_unmutated_demo_mailbox_meets_the_same_properties() -> None:
    assert ATTACHMENT_BASE64  # the invoice PDF of the demo mailbox
    for raw in DEMO_FILES.values():
        assert _parse(raw) is not None
