"""Review queue: pending high-stakes plans, oldest first, with their age against the review SLA
(``MAILSPINE_REVIEW_SLA_HOURS``) and filters by intent, sender and reason; approve (optionally
edited) or reject. Without the ``review:write`` scope (auditors) the page is read-only. The detail
shows the email, the gateway verdict, the extraction, the history the agent used, the plan and the
email's trace id with a link opening it on the Traces page (``?trace=<id>``).

The email and everything derived from it is hostile data: it is rendered as plain text only.
"""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from app.settings import get_settings
from dashboard import review_queue
from dashboard.client import GatewayClient, GatewayError
from dashboard.nav import DECIDE_SCOPE, visible_pages
from dashboard.plan_view import (
    HISTORY_COLUMNS,
    JSON,
    age,
    current_bodies,
    edited_plan,
    history_rows,
    render_plan,
)
from dashboard.session import explain, notify, require_client

PICK_KEY = "review_pick"
TRACES_PAGE = "views/traces.py"
TRACE_PARAM = "trace"  # the query parameter views/traces.py reads (a page module: not imported)


def _label(review: JSON) -> str:
    subject = str(review.get("subject") or "(no subject)")[:80]
    return f"#{review['id']} · {review.get('sender') or '?'} · {subject}"


def _filters(reviews: list[JSON]) -> review_queue.QueueFilter:
    intents, reasons = review_queue.choices(reviews)
    columns = iter(st.columns(3 if intents else 2))
    picked_intents: list[str] = []
    if intents:  # shown only when the gateway's rows carry an intent
        picked_intents = next(columns).multiselect("Intent", intents, key="queue_intent")
    picked_reasons = next(columns).multiselect("Reason", reasons, key="queue_reason")
    sender = next(columns).text_input("Sender contains", key="queue_sender")
    return review_queue.QueueFilter(
        intents=frozenset(picked_intents), reasons=frozenset(picked_reasons), sender=sender
    )


def _queue(reviews: list[JSON], *, sla_hours: float, now: datetime) -> None:
    with_intent = any(r.get("intent") for r in reviews)
    rows = [
        {
            "id": r["id"],
            "age": age(r["created_at"], now),
            "SLA": "overdue" if review_queue.overdue(r, sla_hours=sla_hours, now=now) else "ok",
            "sender": r.get("sender") or "",
            "subject": r.get("subject") or "",
            **({"intent": r.get("intent") or ""} if with_intent else {}),
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


def _trace(review: JSON, scopes: frozenset[str]) -> None:
    """The email's trace id as text, and a link opening it in the trace viewer if this person may."""
    trace_id = review.get("trace_id")
    if not trace_id:
        st.text("Trace: none recorded for this email.")
        return
    st.text(f"Trace id: {trace_id}")
    # A link to a page this person cannot use is not registered, and st.page_link would fail.
    if any(page.path == TRACES_PAGE for page in visible_pages(scopes)):
        st.page_link(
            TRACES_PAGE,
            label="Open the trace",
            icon=":material/account_tree:",
            query_params={TRACE_PARAM: trace_id},
        )


def _history(review: JSON) -> None:
    """The history the agent planned with, so the reviewer judges the plan with the same context."""
    st.markdown("**History the agent used**")
    rows = history_rows(review["payload"])
    if rows is None:
        st.text("Not recorded for this review (it was created before reviews kept the agent's history).")
    elif not rows:
        st.text("The agent found no history for this email.")
    else:  # data frame cells are plain text: summaries are the sender's words
        st.dataframe(rows, hide_index=True, width="stretch", column_order=HISTORY_COLUMNS)


def _detail(client: GatewayClient, review: JSON, *, can_decide: bool) -> None:
    st.subheader(f"Review #{review['id']}")
    st.text("Why it needs review:\n" + "\n".join(f"- {r}" for r in review.get("reasons", [])))
    _trace(review, client.scopes)
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
    _history(review)
    st.markdown("**Proposed plan**")
    render_plan(review["id"], review["payload"]["plan"])
    if not can_decide:
        st.info(f"Read-only: deciding a review needs the {DECIDE_SCOPE} scope (a reviewer or admin account).")
        return
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

sla_hours = get_settings().review_sla_hours
now = datetime.now(UTC)
late = sum(review_queue.overdue(r, sla_hours=sla_hours, now=now) for r in pending)
waiting, over = st.columns(2)
waiting.metric("pending", len(pending))
over.metric(f"older than the {sla_hours:g} h SLA", late)
shown = review_queue.apply(pending, _filters(pending))
if not shown:
    st.info(f"None of the {len(pending)} pending reviews match the filters.")
    st.stop()
_queue(shown, sla_hours=sla_hours, now=now)
by_id = {r["id"]: r for r in shown}
gone = st.session_state.get(PICK_KEY)
if gone is not None and gone not in by_id:
    if all(r["id"] != gone for r in pending):
        st.info(f"Review #{gone} is no longer pending: it was decided elsewhere.")
    st.session_state.pop(PICK_KEY, None)
if st.session_state.get(PICK_KEY) not in by_id:
    # Set the pick explicitly: with only the key removed, the browser kept showing the label of the
    # review just decided while the page opened the next one (seen in the browser test).
    st.session_state[PICK_KEY] = next(iter(by_id))
picked = st.selectbox("Open a review", list(by_id), format_func=lambda i: _label(by_id[i]), key=PICK_KEY)
if picked is not None:
    try:
        detail = client.get_review(picked)
    except GatewayError as exc:
        st.error(explain(exc))
    else:
        _detail(client, detail, can_decide=DECIDE_SCOPE in client.scopes)
