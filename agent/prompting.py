"""Spotlighting: untrusted email text always enters a prompt wrapped as data."""

from __future__ import annotations

import re

from agent.inputs import GuardedEmail

BEGIN, END = "<<<EMAIL_DATA>>>", "<<<END_EMAIL_DATA>>>"
_MARKERS = re.compile(r"<<<\s*/?\s*(END_)?EMAIL_DATA\s*>>>", re.IGNORECASE)
_FIELD = re.compile(r"^(From|Subject): (.*)$", re.MULTILINE)
MAX_BODY_CHARS = 12_000


def _clean(text: str) -> str:
    return _MARKERS.sub("[marker removed]", text)


def email_block(email: GuardedEmail) -> str:
    sender = email.sender_address or "unknown"
    if email.sender_name:
        sender = f'"{_clean(email.sender_name)}" <{sender}>'
    body = _clean(email.text)[:MAX_BODY_CHARS]
    if email.signature:  # kept apart by the gateway; still the sender's words (company, name)
        body += "\n-- \n" + _clean(email.signature)[:1000]
    return f"{BEGIN}\nFrom: {sender}\nSubject: {_clean(email.subject)}\n\n{body}\n{END}"


def unwrap_email_block(prompt: str) -> tuple[str | None, str, str]:
    """(sender, subject, body) back out of a prompt; used by the offline model."""
    start, end = prompt.find(BEGIN), prompt.rfind(END)
    if start < 0 or end < 0:
        return None, "", prompt
    block = prompt[start + len(BEGIN) : end].strip("\n")
    head, _, body = block.partition("\n\n")
    fields = dict(_FIELD.findall(head))
    return fields.get("From"), fields.get("Subject", ""), body
