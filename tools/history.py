"""Read tool: the sender's earlier emails, bounded and labelled with where each item came from."""

from __future__ import annotations

from app.db import Database
from app.models import Email
from app.repo import emails
from tools.base import ToolSpec, tool_span

SENDER_HISTORY = ToolSpec(
    name="sender_history",
    description="Earlier emails from the sender or in the same conversation (subject, date, outcome).",
    access="read",
    scopes=("mail.history.read",),
)


async def sender_history(db: Database, *, before_id: int, limit: int = 5) -> list[dict[str, str]]:
    """History of the email ``before_id``: its sender's and its conversation's earlier emails."""
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
    # No subject or text: those are the sender's words and may carry personal data; the history
    # reaches the planner's prompt, which must see placeholders only.
    day = f"{row.sent_at:%Y-%m-%d}" if row.sent_at else "undated"
    return f"{day}: an earlier email, now {row.status}"
