"""Quality and cost: online score means over time with the current rolling means against their
thresholds and open drift alarms (``GET /v1/quality/online``); tokens and cost per day and model
with today's spend against the daily budget (``GET /v1/quality/cost``); and the job queue, review
backlog, workers and what is known of circuit breakers (``GET /v1/quality/ops``).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard.client import GatewayError
from dashboard.session import explain, require_client

JSON = dict[str, Any]


def _usd(value: float | None) -> str:
    return "no cap" if value is None else f"${value:,.4f}"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes = int(seconds // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


client = require_client()
st.title("Quality and cost")
days = st.slider("Days back", min_value=1, max_value=90, value=14, key="quality_days")
try:
    online: JSON = client.get("/v1/quality/online", days=days, bucket="day")
    cost: JSON = client.get("/v1/quality/cost", days=days)
    ops: JSON = client.get("/v1/quality/ops")
except GatewayError as exc:
    st.error(explain(exc))
    st.stop()

# --- Online quality -------------------------------------------------------------------------------
st.subheader("Online scores")
alarms: list[JSON] = online["alarms"]
if alarms:
    st.warning(f"{len(alarms)} drift alarm(s) open.")
    st.dataframe(
        [
            {
                "score": a["name"],
                "rolling mean": a["window_mean"],
                "window": a["window_size"],
                "threshold": a["threshold"],
                "raised": a["raised_at"],
            }
            for a in alarms
        ],
        hide_index=True,
        width="stretch",
    )
else:
    st.text("No drift alarm is open.")

current: list[JSON] = online["current"]
st.caption(f"Rolling means over the last {online['window']} scores of each name.")
if current:
    st.dataframe(
        [
            {
                "score": w["name"],
                "rolling mean": w["mean"],
                "scores": w["count"],
                "threshold": w["threshold"],
                "below threshold": w["mean"] is not None
                and w["threshold"] is not None
                and w["mean"] < w["threshold"],
            }
            for w in current
        ],
        hide_index=True,
        width="stretch",
    )
buckets: list[JSON] = online["buckets"]
if buckets:
    per_day: dict[str, JSON] = {}
    for b in buckets:
        per_day.setdefault(str(b["start"])[:10], {"day": str(b["start"])[:10]})[b["name"]] = b["mean"]
    names = sorted({str(b["name"]) for b in buckets})
    st.line_chart([per_day[d] for d in sorted(per_day)], x="day", y=names)
else:
    st.info("No online scores in this period.")
feedback: list[JSON] = online["feedback"]
if feedback:
    st.caption("Reviewer decisions per day")
    st.bar_chart(
        [{"day": str(f["day"])[:10], "approved": f["approved"], "rejected": f["rejected"]} for f in feedback],
        x="day",
        y=["approved", "rejected"],
    )

# --- Cost -----------------------------------------------------------------------------------------
st.subheader("Tokens and cost")
budget: JSON = cost["budget"]
columns = list(st.columns(3))
columns[0].metric("spent today", _usd(budget["today_usd"]))
columns[1].metric("daily budget", _usd(budget["daily_max_usd"]))
columns[2].metric(
    "remaining today", "-" if budget["remaining_usd"] is None else _usd(budget["remaining_usd"])
)
if budget["exceeded"]:
    st.error("Today's model spend has reached the daily budget: new model calls are refused until tomorrow.")
spend: list[JSON] = cost["days"]
if spend:
    by_day: dict[str, JSON] = {}
    for row in spend:
        day = str(row["day"])[:10]
        model = f"{row['provider']}/{row['model']}"
        entry = by_day.setdefault(day, {"day": day})
        entry[model] = entry.get(model, 0.0) + row["cost_usd"]
    models = sorted({f"{r['provider']}/{r['model']}" for r in spend})
    st.bar_chart([{**dict.fromkeys(models, 0.0), **by_day[d]} for d in sorted(by_day)], x="day", y=models)
    st.dataframe(
        [
            {
                "day": str(r["day"])[:10],
                "provider": r["provider"],
                "model": r["model"],
                "calls": r["calls"],
                "input tokens": r["input_tokens"],
                "output tokens": r["output_tokens"],
                "cost (USD)": r["cost_usd"],
            }
            for r in spend
        ],
        hide_index=True,
        width="stretch",
    )
else:
    st.info("No model calls in this period.")

# --- Operations -----------------------------------------------------------------------------------
st.subheader("Operations")
queue: dict[str, int] = ops["queue"]
columns = list(st.columns(4))
columns[0].metric("jobs waiting", queue.get("todo", 0))
columns[1].metric("jobs running", queue.get("doing", 0))
columns[2].metric("reviews pending", ops["reviews_pending"])
columns[3].metric("oldest pending review", _age(ops["oldest_pending_review_age_s"]))
st.text("Processing queue: " + (", ".join(f"{s} {n}" for s, n in sorted(queue.items())) or "empty"))
maintenance: dict[str, int] = ops["maintenance_queue"]
st.text("Maintenance queue: " + (", ".join(f"{s} {n}" for s, n in sorted(maintenance.items())) or "empty"))
workers: list[JSON] | None = ops["workers"]
if workers is None:
    st.text("Worker heartbeats are not available (procrastinate keeps no worker table here).")
elif not workers:
    st.warning("No worker has a heartbeat: nothing is processing the queue.")
else:
    stalled = sum(1 for w in workers if w["stalled"])
    if stalled:
        st.warning(f"{stalled} worker(s) stalled (no heartbeat for over {ops['stalled_after_s']:.0f} s).")
    st.dataframe(
        [
            {
                "worker": w["id"],
                "last heartbeat": w["last_heartbeat"],
                "heartbeat age (s)": round(w["heartbeat_age_s"], 1),
                "running jobs": w["running_jobs"],
                "stalled": w["stalled"],
            }
            for w in workers
        ],
        hide_index=True,
        width="stretch",
    )
breakers: JSON = ops["circuit_breakers"]
st.caption("Circuit breakers")
st.text(breakers["note"])
st.text(
    f"Calls refused by an open breaker in the last hour: {breakers['circuit_open_calls_last_hour']}"
    + (f" (last at {breakers['last_circuit_open_at']})" if breakers["last_circuit_open_at"] else "")
)
