"""Runs explorer: search emails and their runs (``GET /v1/runs``), then one email's timeline
(``GET /v1/emails/{id}/timeline``) as a table, a bar chart of node durations, cost and tokens.

Picking a run stores its trace id under ``TRACE_KEY`` for the Traces page. Sender and subject are
hostile data: they appear only as plain text (table cells and the picker's options), never as
markdown or HTML.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import streamlit as st

from dashboard.client import GatewayError
from dashboard.session import explain, require_client

# The email lifecycle (see DESIGN.md), as the route's ``status`` filter accepts it.
STATUSES = ["queued", "processing", "review", "done", "rejected", "quarantined", "failed"]
ALL = "(all)"
INTENT = re.compile(r"^[a-z_]{1,64}$")  # the route's pattern for ``intent``
PICK_KEY = "runs_pick"
TRACE_KEY = "trace_handover"  # read by views/traces.py


def _day_start(day: date | None, *, plus_days: int = 0) -> str | None:
    """Midnight UTC at the start of ``day`` (plus some days) as ISO 8601, or None."""
    if day is None:
        return None
    return (datetime.combine(day, time.min, tzinfo=UTC) + timedelta(days=plus_days)).isoformat()


def _filters() -> dict[str, Any] | None:
    """The query parameters of the search, or None (with a warning shown) when one is invalid."""
    top = st.columns(3)
    sender = top[0].text_input("Sender contains", key="runs_sender").strip()
    intent = top[1].text_input("Intent", key="runs_intent", placeholder="e.g. refund_request").strip()
    status = top[2].selectbox("Email status", [ALL, *STATUSES], key="runs_status")
    bottom = st.columns(3)
    since = bottom[0].date_input("Received from (UTC)", value=None, key="runs_from")
    until = bottom[1].date_input("Received up to and including (UTC)", value=None, key="runs_to")
    limit = int(bottom[2].number_input("How many", min_value=1, max_value=500, value=50, key="runs_limit"))
    if intent and not INTENT.fullmatch(intent):
        st.warning("An intent is lowercase letters and underscores only, e.g. refund_request.")
        return None
    first = since if isinstance(since, date) else None
    last = until if isinstance(until, date) else None
    if first is not None and last is not None and last < first:
        st.warning("The end date is before the start date.")
        return None
    return {
        "sender": sender or None,
        "intent": intent or None,
        "status": None if status == ALL else status,
        "from": _day_start(first),
        "to": _day_start(last, plus_days=1),  # the route's ``to`` is exclusive
        "limit": limit,
    }


def _runs_table(items: list[dict[str, Any]]) -> None:
    rows = [
        {
            "email": r["email_id"],
            "received": r["received_at"],
            "sender": r.get("sender") or "",
            "subject": r.get("subject") or "",
            "status": r["email_status"],
            "intent": r.get("intent") or "",
            "route": r.get("route") or "",
            "run": r.get("run_status") or "(no run)",
            "cost USD": r["cost_usd"],
            "tokens in": r["input_tokens"],
            "tokens out": r["output_tokens"],
            "worker": r.get("worker") or "",
        }
        for r in items
    ]
    st.dataframe(rows, hide_index=True, width="stretch")


def _label(row: dict[str, Any]) -> str:
    subject = str(row.get("subject") or "(no subject)")[:80]
    return f"#{row['email_id']} · {row.get('sender') or '?'} · {subject}"


def _timeline(timeline: dict[str, Any]) -> None:
    st.subheader(f"Email #{timeline['email_id']}")
    cost, tokens_in, tokens_out, status = st.columns(4)
    cost.metric("cost USD", f"{timeline['cost_usd']:.6f}")
    tokens_in.metric("input tokens", timeline["input_tokens"])
    tokens_out.metric("output tokens", timeline["output_tokens"])
    status.metric("status", timeline["status"])
    st.text(f"Route: {timeline.get('route') or '-'}    Trace: {timeline.get('trace_id') or '-'}")
    events: list[dict[str, Any]] = timeline["events"]
    rows = [
        {
            "at": e.get("at"),
            "kind": e["kind"],
            "name": e["name"],
            "status": e.get("status") or "",
            "duration ms": e.get("duration_ms"),
            "tokens in": e.get("input_tokens"),
            "tokens out": e.get("output_tokens"),
            "cost USD": e.get("cost_usd"),
            "actor": e.get("actor") or "",
            "attempts": e.get("attempts"),
        }
        for e in events
    ]
    st.dataframe(rows, hide_index=True, width="stretch")
    nodes = [e for e in events if e["kind"] == "node" and e.get("duration_ms") is not None]
    if nodes:
        st.markdown("**Node durations (ms)**")
        # A numbered label keeps the nodes in run order and apart when a node ran twice.
        labels = [f"{i:02d} {e['name']}" for i, e in enumerate(nodes, start=1)]
        st.bar_chart(
            {"node": labels, "duration ms": [float(e["duration_ms"]) for e in nodes]},
            x="node",
            y="duration ms",
        )
    else:
        st.info("No graph node spans are stored for this email.")


client = require_client()
st.title("Runs")
params = _filters()
if params is None:
    st.stop()
try:
    page = client.get("/v1/runs", **params)
except GatewayError as exc:
    st.error(explain(exc))
    st.stop()

items: list[dict[str, Any]] = page["items"]
st.caption(f"{page['total']} matching, showing {len(items)}, newest first.")
if not items:
    st.info("No runs match the search.")
    st.stop()
_runs_table(items)
by_id = {r["email_id"]: r for r in items}
if st.session_state.get(PICK_KEY) not in by_id:
    st.session_state.pop(PICK_KEY, None)
picked = st.selectbox(
    "Open an email's timeline",
    list(by_id),
    index=None,
    format_func=lambda i: _label(by_id[i]),
    key=PICK_KEY,
)
if picked is not None:
    try:
        detail = client.get(f"/v1/emails/{int(picked)}/timeline")
    except GatewayError as exc:
        st.error(explain(exc))
    else:
        if detail.get("trace_id"):
            st.session_state[TRACE_KEY] = detail["trace_id"]
            st.caption("Its trace id is filled in on the Traces page.")
        _timeline(detail)
