"""Emails: counts by status and queue depth from ``/v1/stats``, and a filterable table of recent mail."""

from __future__ import annotations

import streamlit as st

from dashboard.client import GatewayError
from dashboard.session import explain, require_client

# The email lifecycle (see DESIGN.md); statuses the gateway reports are added to these.
STATUSES = ["queued", "processing", "review", "done", "rejected", "quarantined", "failed"]
ALL = "(all)"

client = require_client()
st.title("Emails")
try:
    stats = client.stats()
except GatewayError as exc:
    st.error(explain(exc))
    st.stop()

counts: dict[str, int] = stats.get("emails", {})
metrics = [("pending reviews", stats.get("pending_reviews", 0))]
metrics += [(status, counts.get(status, 0)) for status in STATUSES]
metrics += [(s, n) for s, n in counts.items() if s not in STATUSES]
for column, (label, value) in zip(st.columns(len(metrics)), metrics, strict=True):
    column.metric(label, value)
queue: dict[str, int] = stats.get("queue", {})
if queue:
    st.caption("Job queue: " + ", ".join(f"{state} {n}" for state, n in sorted(queue.items())))

options = [ALL, *STATUSES, *(s for s in counts if s not in STATUSES)]
choice = st.selectbox("Status", options, key="email_status")
limit = st.slider("How many", min_value=10, max_value=500, value=100, step=10, key="email_limit")
try:
    rows = client.list_emails(status=None if choice == ALL else choice, limit=limit)
except GatewayError as exc:
    st.error(explain(exc))
    st.stop()

if not rows:
    st.info("No emails match.")
else:
    table = [
        {
            "id": r["id"],
            "received": r["received_at"],
            "sender": r.get("sender") or "",
            "subject": r.get("subject") or "",
            "status": r["status"],
            "detail": r.get("status_detail") or "",
        }
        for r in rows
    ]
    st.dataframe(table, hide_index=True, width="stretch")
