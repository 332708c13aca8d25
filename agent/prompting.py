"""Spotlighting: untrusted email text always enters a prompt wrapped as data, and datamarked.

- Delimiters: the data sits between ``<<<EMAIL_DATA>>>`` and ``<<<END_EMAIL_DATA>>>``; look-alike
  markers inside the text are neutralised so it cannot close the block early.
- Datamarking: every space inside the block becomes ``DATAMARK`` (U+02C6), so instructions in the
  data never look like the prompt's own text; the system prompts say so. (Spotlighting, Hines et
  al. 2024.) Characters equal to the mark are removed from the data first.
"""

from __future__ import annotations

import re

from agent.inputs import GuardedEmail

BEGIN, END = "<<<EMAIL_DATA>>>", "<<<END_EMAIL_DATA>>>"
DATAMARK = "\u02c6"
_MARKERS = re.compile(r"<<<\s*/?\s*(END_)?EMAIL_DATA\s*>>>", re.IGNORECASE)
_FIELD = re.compile(r"^(From|Subject): (.*)$", re.MULTILINE)
MAX_BODY_CHARS = 12_000


def _clean(text: str) -> str:
    return _MARKERS.sub("[marker removed]", text.replace(DATAMARK, ""))


def _mark(text: str) -> str:
    return text.replace(" ", DATAMARK)


def email_block(email: GuardedEmail) -> str:
    sender = email.sender_address or "unknown"
    if email.sender_name:
        sender = f'"{_clean(email.sender_name)}" <{sender}>'
    body = _clean(email.text)[:MAX_BODY_CHARS]
    if email.signature:  # kept apart by the gateway; still the sender's words (company, name)
        body += "\n-- \n" + _clean(email.signature)[:1000]
    data = f"From: {sender}\nSubject: {_clean(email.subject)}\n\n{body}"
    return f"{BEGIN}\n{_mark(data)}\n{END}"


def unwrap_email_block(prompt: str) -> tuple[str | None, str, str]:
    """(sender, subject, body) back out of a prompt, datamarks removed; used by the offline model.

    The block is the last ``BEGIN`` before the last ``END``: a system prompt may name the markers
    in its own text, and the data itself cannot contain them (``_clean`` neutralises look-alikes)."""
    end = prompt.rfind(END)
    start = prompt.rfind(BEGIN, 0, end) if end >= 0 else -1
    if start < 0 or end < 0:
        return None, "", prompt
    block = prompt[start + len(BEGIN) : end].strip("\n").replace(DATAMARK, " ")
    head, _, body = block.partition("\n\n")
    fields = dict(_FIELD.findall(head))
    return fields.get("From"), fields.get("Subject", ""), body
