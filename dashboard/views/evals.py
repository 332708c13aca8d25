"""Evals: offline eval runs over time (``GET /v1/evals/runs``) as a table and a line chart of their
headline metrics, one run's metrics and gate report (``GET /v1/evals/runs/{id}``), and the per-case
diff of two runs of the same dataset (``GET /v1/evals/diff``) with the prompt versions each had.

Everything is rendered as plain text, tables or code blocks: case ids and reports are never markdown.
"""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from dashboard.client import GatewayError
from dashboard.session import explain, require_client

JSON = dict[str, Any]
# Headline metrics on a 0..1 scale share one chart; counts and cost would flatten it.
CHARTED = ("pass_rate", "intent_accuracy", "route_accuracy", "high_stakes_recall")


def _gate(run: JSON) -> str:
    passed = run.get("passed_gate")
    return "not judged" if passed is None else ("passed" if passed else "failed")


def _label(run: JSON) -> str:
    return f"#{run['id']} · {run['started_at']} · {run['model']} · gate {_gate(run)}"


def _side(side: JSON) -> str:
    passed = side.get("passed")
    verdict = "?" if passed is None else ("pass" if passed else "fail")
    return f"{verdict} / {side.get('route') or '-'} / {side.get('intent') or '-'}"


def _prompts_compared(run_a: JSON, run_b: JSON) -> None:
    """Which prompt versions each run had in effect, changed ones first: what a diff is explained by."""
    pa, pb = run_a.get("prompts") or {}, run_b.get("prompts") or {}
    rows = [
        {
            "prompt": name,
            "A": pa.get(name, "-"),
            "B": pb.get(name, "-"),
            "changed": pa.get(name) != pb.get(name),
        }
        for name in sorted(set(pa) | set(pb))
    ]
    rows.sort(key=lambda r: not r["changed"])
    changed = sum(r["changed"] for r in rows)
    st.text(f"Prompt versions: {changed} of {len(rows)} differ between run A and run B.")
    if rows:
        st.dataframe(rows, hide_index=True, width="stretch", key="evals_prompts_compared")


client = require_client()
st.title("Evals")
limit = st.slider("How many runs", min_value=10, max_value=500, value=50, step=10, key="evals_limit")
try:
    runs: list[JSON] = client.get("/v1/evals/runs", limit=limit)
except GatewayError as exc:
    st.error(explain(exc))
    st.stop()

if not runs:
    st.info("No eval runs yet. Run `mailspine eval run` to record one.")
    st.stop()

oldest_first = list(reversed(runs))
table = [
    {
        "id": r["id"],
        "started": r["started_at"],
        "dataset": r["dataset_path"],
        "dataset sha": str(r["dataset_sha256"])[:12],
        "provider": r["provider"],
        "model": r["model"],
        "gate": _gate(r),
        **{name: value for name, value in r.get("headline", {}).items()},
    }
    for r in runs
]
st.dataframe(table, hide_index=True, width="stretch")

st.subheader("Headline metrics per run")
chart = [{"run": r["id"], **{m: r.get("headline", {}).get(m) for m in CHARTED}} for r in oldest_first]
st.line_chart(chart, x="run", y=list(CHARTED))

st.subheader("Run detail")
by_label = {_label(r): r for r in runs}
picked = st.selectbox("Run", list(by_label), key="evals_run")
if picked is not None:
    try:
        detail: JSON = client.get(f"/v1/evals/runs/{by_label[picked]['id']}")
    except GatewayError as exc:
        st.error(explain(exc))
    else:
        columns = st.columns(3)
        columns[0].metric("gate", _gate(detail))
        columns[1].metric("cases", detail.get("cases", 0))
        columns[2].metric("pass rate", detail.get("headline", {}).get("pass_rate"))
        st.text("Prompts: " + (", ".join(f"{k} {v}" for k, v in sorted(detail["prompts"].items())) or "-"))
        st.text("Gate report")
        if detail.get("gate_report") is None:
            st.text("No gate has judged this run yet (mailspine eval gate).")
        else:
            st.code(json.dumps(detail["gate_report"], indent=2, sort_keys=True), language="json")
        with st.expander("All metrics"):
            st.code(json.dumps(detail.get("metrics", {}), indent=2, sort_keys=True), language="json")

st.subheader("Compare two runs")
labels = list(by_label)
left, right = st.columns(2)
a_label = left.selectbox("Run A (before)", labels, index=min(1, len(labels) - 1), key="evals_diff_a")
b_label = right.selectbox("Run B (after)", labels, index=0, key="evals_diff_b")
if a_label is not None and b_label is not None:
    run_a, run_b = by_label[a_label], by_label[b_label]
    if run_a["id"] != run_b["id"]:
        _prompts_compared(run_a, run_b)
    if run_a["id"] == run_b["id"]:
        st.info("Pick two different runs to compare.")
    elif run_a["dataset_sha256"] != run_b["dataset_sha256"]:
        st.info("These runs used different datasets; only runs of one dataset can be compared.")
    else:
        try:
            diff: JSON = client.get("/v1/evals/diff", a=run_a["id"], b=run_b["id"])
        except GatewayError as exc:
            st.error(explain(exc))
        else:
            st.text(
                f"{diff['compared']} cases in both runs, {len(diff['changed'])} changed; "
                f"{len(diff['only_in_a'])} only in A, {len(diff['only_in_b'])} only in B."
            )
            if diff["changed"]:
                st.dataframe(
                    [
                        {
                            "case": c["id"],
                            "changed": ", ".join(c["changed"]),
                            "A (pass / route / intent)": _side(c["a"]),
                            "B (pass / route / intent)": _side(c["b"]),
                        }
                        for c in diff["changed"]
                    ],
                    hide_index=True,
                    width="stretch",
                    key="evals_diff_table",
                )
            if diff["only_in_a"] or diff["only_in_b"]:
                st.text("Only in A: " + (", ".join(diff["only_in_a"]) or "-"))
                st.text("Only in B: " + (", ".join(diff["only_in_b"]) or "-"))
