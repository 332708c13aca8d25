"""Rendering a review's proposed plan, with an editable body for each drafted reply, and the history
the agent planned with.

Everything in a plan or a history summary came from hostile email (or a model that read it), so it is
shown as plain text only.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import streamlit as st

JSON = dict[str, Any]


def age(created_at: str, now: datetime | None = None) -> str:
    """``"3d 4h"``, ``"2h 5m"``, ``"7m"`` since an ISO timestamp."""
    created = datetime.fromisoformat(created_at)
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    minutes = max(0, int(((now or datetime.now(UTC)) - created).total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {mins}m" if hours else f"{mins}m"


HISTORY_COLUMNS = ("source", "via", "ref", "summary")


def history_rows(payload: JSON) -> list[dict[str, str]] | None:
    """The history items of a review payload as table rows of strings (columns ``HISTORY_COLUMNS``).

    ``None`` when the payload has no history: reviews created before the review node recorded it.
    An empty list means the agent looked and found nothing, which the page must say differently.
    """
    items = payload.get("history")
    if not isinstance(items, list):
        return None
    return [
        {column: str(item.get(column) or "") for column in HISTORY_COLUMNS}
        for item in items
        if isinstance(item, dict)
    ]


def body_key(review_id: int, index: int) -> str:
    return f"reply_body_{review_id}_{index}"


def render_plan(review_id: int, plan: JSON) -> None:
    """Show each action, with an editable text area for the body of every ``draft_reply``."""
    st.text(f"Rationale: {plan.get('rationale', '')}")
    for index, action in enumerate(plan.get("actions", [])):
        kind = str(action.get("kind", "?"))
        with st.container(border=True):
            st.text(f"{index + 1}. {kind}")
            if kind == "draft_reply":
                st.text(f"To: {action.get('to', '')}\nSubject: {action.get('subject', '')}")
                st.text_area(
                    "Reply body (you may edit it before approving)",
                    value=str(action.get("body", "")),
                    key=body_key(review_id, index),
                    height=200,
                )
            else:
                fields = {k: v for k, v in action.items() if k != "kind" and v not in (None, "", [], {})}
                st.code("\n".join(f"{k}: {v}" for k, v in fields.items()), language=None, wrap_lines=True)


def current_bodies(review_id: int, plan: JSON) -> dict[int, str]:
    """The reply bodies as the reviewer left them in the text areas, by action index."""
    return {
        index: str(st.session_state.get(body_key(review_id, index), action.get("body", "")))
        for index, action in enumerate(plan.get("actions", []))
        if action.get("kind") == "draft_reply"
    }


def edited_plan(plan: JSON, bodies: dict[int, str]) -> JSON | None:
    """The plan with the reviewer's reply bodies, or ``None`` when nothing was changed."""
    actions = plan.get("actions", [])
    if all(actions[i].get("body") == body for i, body in bodies.items()):
        return None
    result = copy.deepcopy(plan)
    for index, body in bodies.items():
        result["actions"][index]["body"] = body
    return result
