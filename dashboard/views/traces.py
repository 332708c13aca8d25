"""Trace viewer: one trace's spans (``GET /v1/traces/{id}``) as an indented tree table with
duration, tokens, cost, prompt version and guardrail decision, and a bar chart of span durations.

The trace id is prefilled from the link that opened the page (``?trace=<id>``, the review page's
link), else with the one the Runs page stored last (``TRACE_KEY``). Attribute
values come from the gateway's allowlist and are still shown only as plain text (table cells and
chart labels), never as markdown or HTML.
"""

from __future__ import annotations

import re
from typing import Any

import streamlit as st

from dashboard.client import GatewayError
from dashboard.session import explain, require_client

TRACE_KEY = "trace_handover"  # set by views/runs.py (a page module: not imported)
TRACE_PARAM = "trace"  # the query parameter of views/reviews.py's link
INPUT_KEY = "trace_input"
APPLIED_KEY = "trace_handover_applied"  # the handed-over id already copied into the input
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
INDENT = "\u2003"  # an em space: a data frame cell keeps it, unlike leading ASCII spaces


def _prefill() -> None:
    """Copy a trace id newly handed over into the input (once, so typing wins): the link's query
    parameter is the newest choice while it is in the URL, else the one the Runs page stored.
    Either is only prefilled: the id is validated below like a typed one."""
    handed = st.query_params.get(TRACE_PARAM) or st.session_state.get(TRACE_KEY)
    if isinstance(handed, str) and handed != st.session_state.get(APPLIED_KEY):
        st.session_state[INPUT_KEY] = handed
        st.session_state[APPLIED_KEY] = handed


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _row(span: dict[str, Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = span.get("attributes") or {}
    depth = int(span["depth"])
    micro = _number(attrs.get("mailspine.model.cost_micro_usd"))
    decision = attrs.get("mailspine.guardrail.decision") or attrs.get("mailspine.review.decision")
    return {
        "span": INDENT * 2 * depth + ("└ " if depth else "") + str(span["name"]),
        "duration ms": float(span["duration_ms"]),
        "status": span["status"],
        "tokens in": _number(attrs.get("gen_ai.usage.input_tokens")),
        "tokens out": _number(attrs.get("gen_ai.usage.output_tokens")),
        "cost USD": micro / 1_000_000 if micro is not None else None,
        "model": str(attrs.get("gen_ai.request.model") or ""),
        "prompt version": str(attrs.get("mailspine.prompt") or ""),
        "guardrail": str(decision or ""),
        "service": span.get("service") or "",
    }


client = require_client()
st.title("Traces")
_prefill()
trace_id = st.text_input("Trace id (32 hex digits)", key=INPUT_KEY).strip().lower()
if not trace_id:
    st.info("Enter a trace id, or pick an email on the Runs page to fill it in.")
    st.stop()
if not TRACE_ID.fullmatch(trace_id):
    st.warning("A trace id is exactly 32 hexadecimal digits (0-9, a-f).")
    st.stop()
try:
    trace = client.get(f"/v1/traces/{trace_id}")
except GatewayError as exc:
    st.error(explain(exc))
    st.stop()

spans: list[dict[str, Any]] = trace["spans"]
rows = [_row(s) for s in spans]
total_in = sum(r["tokens in"] or 0 for r in rows)
total_out = sum(r["tokens out"] or 0 for r in rows)
total_cost = sum(r["cost USD"] or 0 for r in rows)
count, tokens_in, tokens_out, cost = st.columns(4)
count.metric("spans", len(spans))
tokens_in.metric("input tokens", int(total_in))
tokens_out.metric("output tokens", int(total_out))
cost.metric("cost USD", f"{total_cost:.6f}")
st.dataframe(rows, hide_index=True, width="stretch")
st.markdown("**Span durations (ms)**")
# Numbered labels keep the tree order on the axis and keep spans of the same name apart.
labels = [f"{i:03d} {s['name']}" for i, s in enumerate(spans, start=1)]
st.bar_chart(
    {"span": labels, "duration ms": [float(s["duration_ms"]) for s in spans]}, x="span", y="duration ms"
)
