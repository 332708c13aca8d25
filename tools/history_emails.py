"""Read tools over mailspine's own mail: the same conversation, the same sender, the same company.

Each returns the newest ``limit`` earlier emails of its scope as ``HistoryEntry`` items
(``source="mailspine.emails"``, ``via`` the scope), with an excerpt of the redacted text of
emails the gateway passed; a flagged or quarantined email shows its date and status only, so an
attack that was stopped once cannot reach the planner through the history.
"""

from __future__ import annotations

from app.db import Database
from app.models import Email
from app.repo import email_embeddings as repo
from tools.base import ToolSpec, tool_span
from tools.history import SENDER_HISTORY, HistoryEntry, Subject
from tools.history_redact import excerpt, neutralise

THREAD_HISTORY = ToolSpec(
    name="history_thread",
    description="Earlier emails in the same conversation (date, outcome, redacted excerpt).",
    access="read",
    scopes=("mail.history.read",),
)
COMPANY_HISTORY = ToolSpec(
    name="history_company",
    description="Earlier emails from other people at the sender's company domain (not free-mail).",
    access="read",
    scopes=("mail.history.read",),
)
SPECS: dict[repo.Scope, ToolSpec] = {
    "thread": THREAD_HISTORY,
    "sender": SENDER_HISTORY,
    "company": COMPANY_HISTORY,
}


async def email_history(
    db: Database, subject: Subject, *, scope: repo.Scope, limit: int, excerpt_chars: int
) -> list[HistoryEntry]:
    with tool_span(SPECS[scope]) as span:
        async with db.transaction() as session:
            rows = await repo.related(
                session,
                scope=scope,
                before_id=subject.email_id,
                limit=limit,
                conversation_id=subject.conversation_id,
                sender=subject.sender,
                domain=subject.domain,
            )
        span.set_attribute("mailspine.history.items", len(rows))
        return [email_entry(row, via=scope, excerpt_chars=excerpt_chars) for row in rows]


def email_entry(
    row: Email, *, via: str, excerpt_chars: int, source: str = "mailspine.emails"
) -> HistoryEntry:
    return HistoryEntry(
        source=source,
        ref=f"email:{row.id}",
        summary=email_summary(row, excerpt_chars),
        via=via,
        at=row.sent_at,
    )


def email_summary(row: Email, excerpt_chars: int) -> str:
    """Date, status and, for an email the gateway passed, the start of its redacted text. Never the
    subject: it is stored as received, with whatever personal data it carries."""
    day = f"{row.sent_at:%Y-%m-%d}" if row.sent_at else "undated"
    head = f"{day}, {row.status}"
    decision = (row.verdict or {}).get("decision")
    if decision != "pass":
        return f"{head} (text withheld: the gateway's verdict was {decision or 'missing'})"
    text = excerpt(neutralise(row.text_body or ""), excerpt_chars)
    return f'{head}: "{text}"' if text else head
