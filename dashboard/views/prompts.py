"""Prompt console (admins): every prompt's versions and labels, a diff of two versions, a new draft
edited from any version, the eval gate run on a version, and promotion or rollback of a label.

Everything goes through the gateway (``gateway/routes_prompts.py``), which leaves the rules to the
registry: a promotion needs an eval run that passed the gate with that exact version, so the console
offers only passing runs and shows the gate's verdict for the run picked. "Run the eval gate" queues
a job that a worker runs (``app/prompt_evals.py``, about half a minute offline); "Refresh" shows the
verdict once it is stored.
"""

from __future__ import annotations

from typing import Any

import streamlit as st
import yaml

from dashboard.client import GatewayClient, GatewayError
from dashboard.session import explain, notify, require_client

JSON = dict[str, Any]
LABELS = ("production", "staging", "canary")


def _gate(run: JSON) -> str:
    passed = run.get("passed_gate")
    return "not judged" if passed is None else ("passed" if passed else "failed")


def _versions_table(prompt: JSON) -> None:
    on: dict[str, list[str]] = {}
    for lb in prompt["labels"]:
        share = f" {lb['percentage']}%" if lb.get("percentage") is not None else ""
        on.setdefault(lb["version"], []).append(lb["label"] + share)
    st.dataframe(
        [
            {
                "version": v["version"],
                "labels": ", ".join(on.get(v["version"], [])),
                "source": v["source"],
                "derived from": v.get("derived_from") or "",
                "created by": v.get("created_by") or "",
                "created": v["created_at"],
                "sha256": str(v["sha256"])[:12],
            }
            for v in reversed(prompt["versions"])
        ],
        hide_index=True,
        width="stretch",
        key="prompt_versions_table",
    )


def _diff(client: GatewayClient, name: str, versions: list[str]) -> None:
    st.subheader("Compare two versions")
    left, right = st.columns(2)
    older = left.selectbox("From", versions, index=max(0, len(versions) - 2), key="prompt_diff_v1")
    newer = right.selectbox("To", versions, index=len(versions) - 1, key="prompt_diff_v2")
    if older is None or newer is None:
        return
    if older == newer:
        st.info("Pick two different versions to compare.")
        return
    try:
        diff: JSON = client.get(f"/v1/prompts/{name}/diff", v1=older, v2=newer)
    except GatewayError as exc:
        st.error(explain(exc))
        return
    st.code(diff["diff"] or "(no difference)", language="diff")


def _create_draft(client: GatewayClient, name: str, base: str, text_key: str) -> None:
    try:
        content = yaml.safe_load(str(st.session_state.get(text_key, "")))
    except yaml.YAMLError as exc:
        notify("error", f"The draft is not valid YAML: {exc}")
        return
    if not isinstance(content, dict):
        notify("error", "The draft must be a YAML mapping (the prompt's fields).")
        return
    content.pop("version", None)  # the registry numbers drafts itself
    try:
        out = client.post(f"/v1/prompts/{name}/drafts", {"base_version": base, "content": content})
    except GatewayError as exc:
        notify("error", f"Draft not saved: {explain(exc)}")
        return
    notify("success", f"Saved {name}@{out['version']} (a draft from {base}). Run the eval gate on it next.")
    st.session_state["prompt_version"] = out["version"]


def _draft(client: GatewayClient, name: str, version: str, detail: JSON) -> None:
    st.subheader("New draft")
    st.caption(
        f"Edit {name}@{version} and save it as a draft. Its version number is chosen by the "
        "registry; the placeholders it uses must stay the same."
    )
    text_key = f"draft_text_{name}_{version}"
    st.text_area("Prompt (YAML)", value=detail["yaml"], height=320, key=text_key)
    st.button(
        "Save as draft", key="draft_save", on_click=_create_draft, args=(client, name, version, text_key)
    )


def _request_eval(client: GatewayClient, name: str, version: str) -> None:
    try:
        out = client.post(f"/v1/prompts/{name}/{version}/evals", {})
    except GatewayError as exc:
        notify("warning" if exc.conflict else "error", f"Eval not queued: {explain(exc)}")
        return
    notify(
        "success", f"Eval gate for {name}@{version} queued (job {out['job_id']}); refresh for the verdict."
    )


def _evals(client: GatewayClient, name: str, version: str) -> list[JSON]:
    st.subheader(f"Eval gate for {version}")
    try:
        evals: JSON = client.get(f"/v1/prompts/{name}/{version}/evals")
    except GatewayError as exc:
        st.error(explain(exc))
        return []
    run_col, refresh_col = st.columns(2)
    run_col.button(
        "Run the eval gate",
        type="primary",
        key="eval_request",
        on_click=_request_eval,
        args=(client, name, version),
    )
    refresh_col.button("Refresh", key="eval_refresh")
    for job in evals["jobs"]:
        text = f"Eval job {job['id']} ({job.get('requested_by') or '?'}): {job['status']}"
        if job["status"] == "failed":
            st.error(text + ". The worker log has the reason (the gate exited with an error).")
        else:
            st.info(text + ("; waiting for a worker" if job["status"] == "todo" else "; running"))
    runs: list[JSON] = evals["runs"]
    if not runs:
        st.text(f"No eval run has used {name}@{version} yet.")
        return []
    st.dataframe(
        [
            {
                "eval run": r["id"],
                "started": r["started_at"],
                "model": r["model"],
                "gate": _gate(r),
                "pass rate": r["headline"].get("pass_rate"),
                "intent": r["headline"].get("intent_accuracy"),
                "route": r["headline"].get("route_accuracy"),
                "high-stakes recall": r["headline"].get("high_stakes_recall"),
            }
            for r in runs
        ],
        hide_index=True,
        width="stretch",
        key="prompt_eval_runs",
    )
    return runs


def _num(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) and not isinstance(value, bool) else "-"


def _verdict(client: GatewayClient, run_id: int) -> None:
    """The gate's report for one run, in words: regressions and hard-rule failures first."""
    try:
        detail: JSON = client.get(f"/v1/evals/runs/{run_id}")
    except GatewayError as exc:
        st.error(explain(exc))
        return
    report = detail.get("gate_report") or {}
    lines = [f"Gate verdict for eval run {run_id}: {_gate(detail)}"]
    lines += [f"  regression: {m}" for m in report.get("regressions", [])]
    lines += [f"  hard rule broken: {r}" for r in report.get("hard_failures", [])]
    for metric in report.get("metrics", []):
        lines.append(
            f"  {metric.get('metric')}: {metric.get('verdict')} "
            f"(baseline {_num(metric.get('baseline'))}, this run {_num(metric.get('run'))})"
        )
    st.code("\n".join(lines), language=None)


def _promote(
    client: GatewayClient, name: str, version: str, run_id: int, label: str, share: int | None
) -> None:
    body: JSON = {"version": version, "label": label, "eval_run_id": run_id}
    if label == "canary":
        body["percentage"] = share
    try:
        out = client.post(f"/v1/prompts/{name}/promote", body)
    except GatewayError as exc:
        notify("error", f"Not promoted: {explain(exc)}")
        return
    notify(
        "success",
        f"{name} {out['label']} now points at {out['version']} (was {out.get('previous') or 'none'}).",
    )


def _rollback(client: GatewayClient, name: str, label: str) -> None:
    try:
        out = client.post(f"/v1/prompts/{name}/rollback", {"label": label})
    except GatewayError as exc:
        notify("error", f"Not rolled back: {explain(exc)}")
        return
    notify(
        "success",
        f"{name} {out['label']} rolled back to {out.get('version') or 'nothing'} "
        f"(was {out.get('previous')}).",
    )


def _labels(client: GatewayClient, name: str, version: str, runs: list[JSON]) -> None:
    st.subheader("Promote or roll back")
    passing = [r for r in runs if r.get("passed_gate")]
    label = st.selectbox("Label", LABELS, key="promote_label")
    share = (
        st.slider("Canary share (%)", min_value=1, max_value=100, value=10, key="promote_share")
        if label == "canary"
        else None
    )
    if passing:
        by_label = {f"#{r['id']} · {r['started_at']} · {r['model']}": r["id"] for r in passing}
        picked = st.selectbox("Eval run that passed the gate", list(by_label), key="promote_run")
        run_id = by_label[picked] if picked is not None else passing[0]["id"]
        _verdict(client, run_id)
        st.button(
            f"Promote {version} to {label}",
            type="primary",
            key="promote",
            on_click=_promote,
            args=(client, name, version, run_id, label, share),
        )
    else:
        if runs:
            _verdict(client, runs[0]["id"])
        st.info(f"{version} cannot be promoted yet: no eval run with it has passed the gate.")
    st.button(f"Roll back {label}", key="rollback", on_click=_rollback, args=(client, name, label))


client = require_client()
st.title("Prompts")
try:
    prompts: list[JSON] = client.get("/v1/prompts")
except GatewayError as exc:
    st.error(explain(exc))
    st.stop()
if not prompts:
    st.info("The registry has no prompts yet: a worker or `mailspine prompts sync` stores them.")
    st.stop()

by_name = {p["name"]: p for p in prompts}
name = st.selectbox("Prompt", list(by_name), key="prompt_name")
if name is None:
    st.stop()
prompt = by_name[name]
versions = [v["version"] for v in prompt["versions"]]
st.text(
    "Labels: "
    + (
        ", ".join(
            f"{lb['label']} → {lb['version']}"
            + (f" ({lb['percentage']}%)" if lb.get("percentage") is not None else "")
            for lb in prompt["labels"]
        )
        or "none"
    )
)
_versions_table(prompt)
_diff(client, name, versions)

st.divider()
if st.session_state.get("prompt_version") not in versions:
    st.session_state.pop("prompt_version", None)
version = st.selectbox("Work on version", list(reversed(versions)), key="prompt_version")
if version is None:
    st.stop()
try:
    detail: JSON = client.get(f"/v1/prompts/{name}/{version}")
except GatewayError as exc:
    st.error(explain(exc))
    st.stop()
with st.expander(f"{name}@{version} as YAML"):
    st.code(detail["yaml"], language="yaml")
runs = _evals(client, name, version)
_labels(client, name, version, runs)
st.divider()
_draft(client, name, version, detail)
