"""A 25 MB message, nearly all of it one base64 attachment: parsed whole, hashed in one pass."""

from __future__ import annotations

import base64
import hashlib
import random
import tracemalloc

from gateway.mime import parse_message

MIB = 1024 * 1024


def _message(payload: bytes) -> bytes:
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    return (
        b"From: Big Sender <big@customer.example>\r\nTo: support@northwind.example\r\n"
        b"Subject: Photos for NW-77777\r\nMessage-ID: <big@customer.example>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="big-boundary"\r\n\r\n'
        b"--big-boundary\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        b"Hi, the photos of the damaged tent from NW-77777 are attached.\r\n\r\n"
        b"--big-boundary\r\nContent-Type: application/zip\r\n"
        b'Content-Disposition: attachment; filename="photos.zip"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + encoded
        + b"--big-boundary--\r\n"
    )


def test_25_mb_message_with_one_big_attachment() -> None:
    payload = random.Random(7).randbytes(18 * MIB + 12345)
    raw = _message(payload)
    assert 24 * MIB < len(raw) < 26 * MIB

    tracemalloc.start()
    try:
        parsed = parse_message(raw, max_bytes=26 * MIB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert parsed.text == "Hi, the photos of the damaged tent from NW-77777 are attached."
    (attachment,) = parsed.attachments
    assert (attachment.filename, attachment.content_type) == ("photos.zip", "application/zip")
    assert attachment.size_bytes == len(payload)
    assert attachment.sha256 == hashlib.sha256(payload).hexdigest()
    assert parsed.defects == []
    # Decoded in 1 MiB chunks straight into the hash: no copy of the payload is ever held.
    assert peak < 8 * MIB, f"peak {peak / MIB:.1f} MiB while parsing"
