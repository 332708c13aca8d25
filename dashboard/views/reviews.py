"""Review queue: pending high-stakes plans, oldest first; approve (optionally edited) or reject.

The email and everything derived from it is hostile data: it is rendered as plain text only.
"""

from __future__ import annotations

import streamlit as st

from dashboard.client import GatewayClient, GatewayError
from dashboard.plan_view import JSON, age, current_bodies, edited_plan, render_plan
from dashboard.session import explain, notify, require_client

PICK_KEY = "review_pick"


def _label(review: JSON) -> str:
    subject = str(review.get("subject") or "(no subject)")[:80]
    return f"#{review['id']} · {review.get('sender') or '?'} · {subject}"


def _queue(reviews: list[JSON]) -> None:
    rows = [
        {
            "id": r["id"],
            "age": age(r["created_at"]),
            "sender": r.get("sender") or "",
            "subject": r.get("subject") or "",
            "reasons": ", ".join(r.get("reasons", [])),
        }
        for r in reviews
    ]
    st.dataframe(rows, hide_index=True, width="stretch")


def _send(
    client: GatewayClient, review: JSON, decision: str, *, reason: str | None = None, plan: JSON | None = None
) -> None:
    try:
        out = client.decide(review["id"], decision, review["payload_hash"], reason=reason, plan=plan)
    except GatewayError as exc:
        notify("warning" if exc.conflict else "error", f"Review #{review['id']}: {explain(exc)}")
    else:
        edited = " (with your edits)" if plan is not None else ""
        notify("success", f"Review #{out['review_id']} {out['status']}{edited}; job {out['job_id']} queued.")
    st.session_state.pop(PICK_KEY, None)


# Decisions run as button callbacks: Streamlit calls them at the start of the next run even if the
# review has meanwhile left the queue, so the gateway (not a stale page) says "already decided".
def _approve(client: GatewayClient, review: JSON) -> None:
    plan: JSON = review["payload"]["plan"]
    _send(client, review, "approve", plan=edited_plan(plan, current_bodies(review["id"], plan)))


def _reject(client: GatewayClient, review: JSON) -> None:
    reason = str(st.session_state.get(_reason_key(review["id"]), "")).strip()
    if not reason:
        notify("error", f"Review #{review['id']}: a rejection needs a reason.")
        return
    _send(client, review, "reject", reason=reason)


def _reason_key(review_id: int) -> str:
    return f"reject_reason_{review_id}"


def _detail(client: GatewayClient, review: JSON) -> None:
    st.subheader(f"Review #{review['id']}")
    st.text("Why it needs review:\n" + "\n".join(f"- {r}" for r in review.get("reasons", [])))
    left, right = st.columns(2)
    with left:
        st.markdown("**Email** (plain text, untrusted)")
        st.text(f"From: {review.get('sender') or '?'}\nSubject: {review.get('subject') or ''}")
        st.code(review.get("text") or "(no text)", language=None, wrap_lines=True)
    with right:
        st.markdown("**Gateway verdict**")
        st.json(review.get("verdict") or {}, expanded=False)
        st.markdown("**Extraction**")
        st.json(review.get("extraction") or {}, expanded=False)
    st.markdown("**Proposed plan**")
    render_plan(review["id"], review["payload"]["plan"])
    approve_col, reject_col = st.columns(2)
    approve_col.button("Approve", type="primary", key="approve", on_click=_approve, args=(client, review))
    reject_col.text_input("Reason for rejecting", key=_reason_key(review["id"]))
    reject_col.button("Reject", key="reject", on_click=_reject, args=(client, review))


client = require_client()
st.title("Review queue")
try:
    pending = sorted(client.list_reviews("pending"), key=lambda r: (r["created_at"], r["id"]))
except GatewayError as exc:
    st.error(explain(exc))
    st.stop()

if not pending:
    st.info("No reviews are waiting. 🎉")
    st.stop()

_queue(pending)
by_id = {r["id"]: r for r in pending}
gone = st.session_state.get(PICK_KEY)
if gone is not None and gone not in by_id:
    st.info(f"Review #{gone} is no longer pending: it was decided elsewhere.")
    st.session_state.pop(PICK_KEY, None)
picked = st.selectbox("Open a review", list(by_id), format_func=lambda i: _label(by_id[i]), key=PICK_KEY)
if picked is not None:
    try:
        detail = client.get_review(picked)
    except GatewayError as exc:
        st.error(explain(exc))
    else:
        _detail(client, detail)
