"""Many distinct emails made from the demo mailbox: the multi-worker test's and the scale-out
benchmark's mailbox (``write_mailbox``)."""

from __future__ import annotations

import re
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from tests.support.stack import DEMO_MAILBOX

SAME_SENDER_EVERY = 10  # every tenth email comes from the sender of the one before


def write_mailbox(mailbox: Path, count: int) -> None:
    """``count`` emails made from the demo mailbox's 39, in turn, each a new message: its own
    Message-ID (a reply keeps pointing at its original's copy), sender address, subject and a
    reference line opening its text (the chaos checks map each model call back to its email by
    the start of the text, so no two may share it). Every ``SAME_SENDER_EVERY``-th comes from the
    previous email's sender: two threads then write the same CRM contact at about the same time."""
    templates = sorted(DEMO_MAILBOX.glob("*.eml"))
    previous_sender = ""
    for i in range(count):
        template = templates[i % len(templates)]
        message = BytesParser(policy=policy.default).parsebytes(template.read_bytes())
        assert isinstance(message, EmailMessage)
        sender = previous_sender if i % SAME_SENDER_EVERY == SAME_SENDER_EVERY - 1 else _sender(message, i)
        _rewrite(message, copy=i // len(templates), ref=f"MS{i:04d}", sender=sender)
        (mailbox / f"{i:03d}-{template.name}").write_bytes(message.as_bytes())
        previous_sender = sender


def _sender(message: EmailMessage, i: int) -> str:
    address = message["From"].addresses[0]
    return str(Address(address.display_name, f"{address.username}.{i}", address.domain))


def _rewrite(message: EmailMessage, *, copy: int, ref: str, sender: str) -> None:
    for name in ("Message-ID", "In-Reply-To", "References"):
        if message[name] is not None:
            value = re.sub(r"<([^@<>]+)@", rf"<\1.c{copy}@", str(message[name]))
            message.replace_header(name, value)
    message.replace_header("From", sender)
    message.replace_header("Subject", f"{message['Subject']} [{ref}]")
    for part in message.walk():
        if part.get_content_maintype() != "text" or part.is_attachment():
            continue
        text, subtype = part.get_content(), part.get_content_subtype()
        if subtype == "html":
            body = re.search(r"<body[^>]*>", text, re.IGNORECASE)
            at = body.end() if body else 0
            text = f"{text[:at]}<p>[{ref}]</p>{text[at:]}"
        else:
            text = f"[{ref}]\n{text}"
        part.set_content(text, subtype=subtype, charset="utf-8")
