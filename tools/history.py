"""History read tools: what the planner may know about the sender's past, labelled by source.

The tools (one ``ToolSpec`` and one ``execute_tool`` span each):

- ``history_thread``, ``sender_history``, ``history_company`` (``tools/history_emails.py``): earlier
  emails in the same conversation, from the same address, from the same company domain;
- ``history_similar`` (``tools/history_semantic.py``): earlier emails of that sender or company
  whose text is closest in meaning (pgvector, numpy or full-text search);
- ``history_crm_timeline`` (``tools/history_crm.py``): the CRM contact's notes, tickets and deals,
  with a read-only token.

Every item says where it came from (``source``, ``via``) and what it is (``ref``). Summaries are
built from redacted text only, because the history reaches the planner's prompt, which must see
placeholders only: the subject is never used (it is stored unredacted), an email's text is the
redacted ``emails.text_body``, and CRM text is redacted on the way in (``tools/history_redact.py``).
``tools/history_budget.py`` bounds the whole list in tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from app.db import Database
from app.models import Email
from app.repo import emails
from tools.base import ToolSpec, tool_span
from tools.history_freemail import company_domain

SENDER_HISTORY = ToolSpec(
    name="sender_history",
    description="Earlier emails from the sender or in the same conversation (date, outcome, excerpt).",
    access="read",
    scopes=("mail.history.read",),
)


class HistoryEntry(BaseModel):
    """One item of history as a tool returns it."""

    model_config = ConfigDict(frozen=True)

    source: str  # mailspine.emails | semantic | crm.notes | crm.tickets | crm.deals | mailspine.history
    ref: str  # email:<id>, note:<id>, ticket:<id>, deal:<id>
    summary: str  # placeholders only; see the module docstring
    via: str | None = None  # how it was found: thread, sender, company, pgvector, numpy, fulltext
    at: datetime | None = None  # when it happened (for callers; not shown to the planner)


@dataclass(frozen=True)
class Subject:
    """The email whose history is wanted, with the real keys the tools search by. Never put into
    the graph state, a span or a log line: ``sender`` is a real address."""

    email_id: int
    sender: str | None  # lowercased real address
    domain: str | None  # the sender's company domain; None for free-mail domains (gmail.com, ...)
    conversation_id: str | None
    text: str  # the email's redacted text (the full-text fallback's query)


async def load_subject(
    db: Database, *, email_id: int, extra_free_mail: frozenset[str] = frozenset()
) -> Subject | None:
    """The stored email ``email_id`` as the history tools need it; None when it is not stored."""
    async with db.transaction() as session:
        row = await emails.get_email(session, email_id=email_id)
    if row is None:
        return None
    sender = row.sender_address.strip().lower() if row.sender_address else None
    return Subject(
        email_id=email_id,
        sender=sender or None,
        domain=company_domain(sender, extra=extra_free_mail),
        conversation_id=row.conversation_id,
        text=row.text_body or "",
    )


async def sender_history(db: Database, *, before_id: int, limit: int = 5) -> list[dict[str, str]]:
    """History of the email ``before_id``: its sender's and its conversation's earlier emails
    (the first history tool; kept for callers that want plain dicts without excerpts)."""
    with tool_span(SENDER_HISTORY) as span:
        async with db.transaction() as session:
            current = await emails.get_email(session, email_id=before_id)
            conversation = current.conversation_id if current else None
            if not (current and current.sender_address) and not conversation:
                return []
            # Look up by the real address stored on the email, not the placeholder the agent holds.
            address = current.sender_address if current else None
            rows = await emails.past_emails_from(
                session,
                sender_address=address or "",
                before_id=before_id,
                limit=limit,
                conversation_id=conversation,
            )
        span.set_attribute("mailspine.history.items", len(rows))
        return [
            {"source": "mailspine.emails", "ref": f"email:{row.id}", "summary": _summary(row)} for row in rows
        ]


def _summary(row: Email) -> str:
    # No subject or text: those are the sender's words and may carry personal data.
    day = f"{row.sent_at:%Y-%m-%d}" if row.sent_at else "undated"
    return f"{day}: an earlier email, now {row.status}"
