"""What the agent accepts: only a ``GuardedEmail`` the gateway produced.

The text fields are untrusted data. They were scanned and cleaned, but may still say anything;
prompts always wrap them as data (see ``agent/prompting.py``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Decision = Literal["pass", "flag", "quarantine"]


class Attachment(BaseModel):
    model_config = ConfigDict(frozen=True)

    filename: str | None
    content_type: str
    size_bytes: int
    sha256: str


class CalendarEvent(BaseModel):
    """A calendar invite carried by the email (parsed minimally; never the raw ICS)."""

    model_config = ConfigDict(frozen=True)

    method: str | None
    summary: str
    start: datetime | None
    end: datetime | None
    organizer: str | None
    location: str = ""


class ScannerResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    decision: Decision
    score: float = Field(ge=0.0, le=1.0)
    latency_ms: float
    reasons: list[str] = Field(default_factory=list)


class Verdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    decision: Decision
    reasons: list[str] = Field(default_factory=list)
    scanners: list[ScannerResult] = Field(default_factory=list)
    # Scanners that were configured but could not run (e.g. no local model); visible on purpose.
    degraded: list[str] = Field(default_factory=list)


class GuardedEmail(BaseModel):
    model_config = ConfigDict(frozen=True)

    email_id: int
    message_id: str
    subject: str
    sender_address: str | None
    sender_name: str | None
    to: list[str] = Field(default_factory=list)
    sent_at: datetime | None = None
    in_reply_to: str | None = None
    references: list[str] = Field(default_factory=list)
    text: str = Field(description="The new text of the message, cleaned (untrusted)")
    quoted_text: str = Field(default="", description="Quoted history below the new text (untrusted)")
    signature: str = Field(default="", description="The sender's signature block (untrusted)")
    forwarded: bool = False  # the message forwards another one: its author is not the sender
    # Why the sender's address cannot receive mail (syntax, a reserved domain such as .test), or None.
    sender_problem: str | None = None
    attachments: list[Attachment] = Field(default_factory=list)
    calendar: list[CalendarEvent] = Field(default_factory=list)
    verdict: Verdict
