"""The dashboard API against a real stack: worker, API and the reference CRM as processes, three
demo emails processed through the real graph (offline model), online scoring on.

Eval runs are seeded as ``mailspine eval run`` and ``mailspine eval gate`` store them; prompts come
from the registry the migration synced. One stack for the whole module.
"""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.auth_crypto import hash_password
from gateway.routes_traces import SHOWN, SHOWN_PATTERN
from tests.integration.test_pipeline import LOGS, settle, wait_for
from tests.support.stack import DEMO_MAILBOX, Stack, running_stack

pytestmark = pytest.mark.integration

EMAILS = ("03-order-status-signature-phone.eml", "06-refund-large-eur.eml", "18-newsletter-industry.eml")
# Personal data in 03's signature: the gateway vaults it; no dashboard answer may carry it.
PII = ("555-0142", "555-0199", "Alder Street", "104522")


@dataclass
class World:
    stack: Stack
    ids: list[int]
    reviewer: httpx.Client
    admin: httpx.Client
    admin_email: str
    auditor: httpx.Client


def _user(stack: Stack, role: str) -> tuple[str, httpx.Client]:
    email, password = f"{role}-{secrets.token_hex(4)}@mailspine.test", secrets.token_urlsafe(16)
    stack.sql(
        "INSERT INTO users (email, password_hash, role, active) VALUES (%s, %s, %s, true) RETURNING id",
        email,
        hash_password(password),
        role,
    )
    base = f"http://127.0.0.1:{stack.api_port}"
    answer = httpx.post(f"{base}/v1/auth/login", json={"email": email, "password": password}, timeout=10)
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    return email, httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)


@pytest.fixture(scope="module")
def world(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    mailbox = tmp_path_factory.mktemp("dashboard-api-mailbox")
    for name in EMAILS:
        shutil.copy(DEMO_MAILBOX / name, mailbox / name)
    env = {"MAILSPINE_ONLINE__SAMPLE_RATE": "1"}
    with running_stack(pg_server_url, LOGS / "dashboard_api", env=env) as stack:
        stack.start_worker()
        stack.start_api()
        ids = stack.ingest(Path(mailbox))
        settle(stack, ids)
        # Online scoring jobs run after the runs finish; wait until the queue is idle.
        wait_for(
            lambda: not stack.sql("SELECT 1 FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"),
            timeout_s=120,
            what="idle queue",
        )
        admin_email, admin = _user(stack, "admin")
        _, auditor = _user(stack, "auditor")
        reviewer = stack.api
        try:
            yield World(stack, ids, reviewer, admin, admin_email, auditor)
        finally:
            for client in (reviewer, admin, auditor):
                client.close()


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _no_pii(*responses: httpx.Response) -> None:
    for response in responses:
        for value in PII:
            assert value not in response.text, f"{value!r} in {response.request.url}"


# --- runs and timelines ---


def test_runs_lists_every_email_newest_first_with_its_run(world: World) -> None:
    page = _ok(world.reviewer.get("/v1/runs"))
    assert page["total"] == len(world.ids) and page["limit"] == 50 and page["offset"] == 0
    assert [r["email_id"] for r in page["items"]] == sorted(world.ids, reverse=True)
    stored = {
        i: (sender, subject, status, intent, route, float(cost), tin, tout, trace)
        for i, sender, subject, status, intent, route, cost, tin, tout, trace in world.stack.sql(
            "SELECT e.id, e.sender_address, e.subject, e.status, r.extraction->>'intent', r.route,"
            " coalesce(r.cost_usd, 0), coalesce(r.input_tokens, 0), coalesce(r.output_tokens, 0), e.trace_id"
            " FROM emails e LEFT JOIN runs r ON r.email_id = e.id"
        )
    }
    for row in page["items"]:
        assert (
            row["sender"],
            row["subject"],
            row["email_status"],
            row["intent"],
            row["route"],
            row["cost_usd"],
            row["input_tokens"],
            row["output_tokens"],
            row["trace_id"],
        ) == stored[row["email_id"]]
    assert any(r["input_tokens"] > 0 for r in page["items"])
    assert {r["email_status"] for r in page["items"]} >= {"review"}


def test_runs_filters_and_pagination(world: World) -> None:
    api, ids = world.reviewer, sorted(world.ids, reverse=True)
    second = _ok(api.get("/v1/runs", params={"limit": 1, "offset": 1}))
    assert second["total"] == len(ids) and [r["email_id"] for r in second["items"]] == [ids[1]]
    assert _ok(api.get("/v1/runs", params={"offset": len(ids)}))["items"] == []

    review = _ok(api.get("/v1/runs", params={"status": "review"}))
    in_review = [i for (i,) in world.stack.sql("SELECT id FROM emails WHERE status = 'review'")]
    assert review["total"] == len(in_review) >= 1
    assert {r["email_id"] for r in review["items"]} == set(in_review)

    sender, intent = world.stack.sql(
        "SELECT e.sender_address, r.extraction->>'intent' FROM emails e JOIN runs r ON r.email_id = e.id"
        " WHERE e.id = %s",
        in_review[0],
    )[0]
    part = sender.split("@")[0][1:].upper()  # a case-insensitive substring
    by_sender = _ok(api.get("/v1/runs", params={"sender": part}))
    assert in_review[0] in {r["email_id"] for r in by_sender["items"]}
    assert all(part.lower() in r["sender"].lower() for r in by_sender["items"])
    by_intent = _ok(api.get("/v1/runs", params={"intent": intent}))
    assert by_intent["total"] >= 1 and all(r["intent"] == intent for r in by_intent["items"])
    assert _ok(api.get("/v1/runs", params={"sender": "%"}))["total"] == 0  # LIKE wildcards are literal

    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert _ok(api.get("/v1/runs", params={"from": tomorrow}))["total"] == 0
    assert _ok(api.get("/v1/runs", params={"from": yesterday, "to": tomorrow}))["total"] == len(ids)
    assert _ok(api.get("/v1/runs", params={"to": yesterday}))["total"] == 0
    assert api.get("/v1/runs", params={"status": "nonsense"}).status_code == 422


def _done_with_effects(world: World) -> int:
    rows = world.stack.sql(
        "SELECT e.id FROM emails e JOIN runs r ON r.email_id = e.id"
        " WHERE e.status = 'done' AND EXISTS (SELECT 1 FROM side_effects s WHERE s.thread_id = r.thread_id)"
        " ORDER BY e.id"
    )
    assert rows, world.stack.sql("SELECT id, status FROM emails")
    return int(rows[0][0])


def test_timeline_of_a_finished_email(world: World) -> None:
    email_id = _done_with_effects(world)
    answer = world.auditor.get(f"/v1/emails/{email_id}/timeline")
    timeline = _ok(answer)
    kinds = [e["kind"] for e in timeline["events"]]
    assert kinds[0] == "ingested" and kinds[-1] == "finished"
    assert "scanned" in kinds and kinds.index("scanned") < kinds.index("node")
    scanned = next(e for e in timeline["events"] if e["kind"] == "scanned")
    verdict = world.stack.sql("SELECT verdict->>'decision' FROM emails WHERE id = %s", email_id)[0][0]
    assert scanned["status"] == verdict and scanned["span_id"] and scanned["duration_ms"] >= 0
    nodes = [e["name"] for e in timeline["events"] if e["kind"] == "node"]
    assert {"extract", "plan", "act", "finalize"} <= set(nodes)
    assert all(e["duration_ms"] is not None for e in timeline["events"] if e["kind"] == "node")
    effects = [(e["name"], e["status"], e["attempts"]) for e in timeline["events"] if e["kind"] == "effect"]
    stored = world.stack.sql(
        "SELECT s.action, s.status, s.attempts FROM side_effects s JOIN runs r ON r.thread_id = s.thread_id"
        " WHERE r.email_id = %s ORDER BY s.id",
        email_id,
    )
    assert effects == [tuple(r) for r in stored]
    tokens, cost = world.stack.sql(
        "SELECT input_tokens + output_tokens, cost_usd FROM runs WHERE email_id = %s", email_id
    )[0]
    assert timeline["input_tokens"] + timeline["output_tokens"] == tokens and timeline["cost_usd"] == float(
        cost
    )
    node_tokens = sum(
        e["input_tokens"] + e["output_tokens"] for e in timeline["events"] if e["kind"] == "node"
    )
    assert 0 < node_tokens <= tokens  # model calls are attributed to the node that made them
    stamps = [e["at"] for e in timeline["events"] if e["at"] is not None]
    assert stamps == sorted(stamps)
    _no_pii(answer)


def test_timeline_of_an_email_waiting_for_review(world: World) -> None:
    email_id = world.stack.sql("SELECT id FROM emails WHERE status = 'review' ORDER BY id")[0][0]
    timeline = _ok(world.reviewer.get(f"/v1/emails/{email_id}/timeline"))
    kinds = [e["kind"] for e in timeline["events"]]
    assert "review_created" in kinds and "review_decided" not in kinds and "finished" not in kinds
    review_node = [e for e in timeline["events"] if e["kind"] == "node" and e["name"] == "review"]
    assert review_node and review_node[-1]["status"] == "interrupted"
    assert world.reviewer.get("/v1/emails/999999999/timeline").status_code == 404


# --- traces ---


def test_trace_is_a_tree_with_selected_attributes_only(world: World) -> None:
    email_id = _done_with_effects(world)
    trace_id = world.stack.sql("SELECT trace_id FROM emails WHERE id = %s", email_id)[0][0]
    count = "SELECT count(*) FROM spans WHERE trace_id = %s"
    before = world.stack.sql(count, trace_id)[0][0]
    answer = world.reviewer.get(f"/v1/traces/{trace_id}")
    trace = _ok(answer)
    spans = trace["spans"]
    after = world.stack.sql(count, trace_id)[0][0]  # a span exported late may land in between
    assert trace["trace_id"] == trace_id and before <= len(spans) <= after and len(spans) > 5
    by_id = {s["span_id"]: s for s in spans}
    for position, span in enumerate(spans):  # depth first: a child comes after its parent
        if span["depth"] > 0:
            parent = by_id[span["parent_span_id"]]
            assert parent["depth"] == span["depth"] - 1 and spans.index(parent) < position
        for key in span["attributes"]:
            assert key in SHOWN or SHOWN_PATTERN.match(key), key
    names = {s["name"] for s in spans}
    assert "process_email" in names and "node extract" in names and "apply_guardrail gateway" in names
    chats = [s for s in spans if s["name"].startswith("chat ")]
    assert chats and all("mailspine.prompt" in s["attributes"] for s in chats)
    assert any(s["attributes"].get("gen_ai.usage.input_tokens", 0) > 0 for s in chats)
    guard = next(s for s in spans if s["name"] == "apply_guardrail gateway")
    assert guard["attributes"]["mailspine.guardrail.decision"] in ("pass", "flag")
    assert "status_message" not in spans[0] and "events" not in spans[0]
    _no_pii(answer)
    assert world.reviewer.get(f"/v1/traces/{'f' * 32}").status_code == 404
    assert world.reviewer.get("/v1/traces/not-a-trace").status_code == 422


# --- evals ---


def _eval_run(
    stack: Stack, *, sha: str, prompts: dict[str, str], passed: bool | None, cases: list[Any]
) -> int:
    metrics = {"pass_rate": 0.5, "intent_accuracy": 0.75, "cases": len(cases), "cost_usd": {"total": 0.0}}
    gate = None if passed is None else {"passed": passed, "metrics": [], "hard_rules": []}
    now = datetime.now(UTC)
    return int(
        stack.sql(
            "INSERT INTO eval_runs (started_at, finished_at, dataset_path, dataset_sha256, prompts, provider,"
            " model, metrics, cases, passed_gate, gate_report) VALUES (%s, %s, 'evals/datasets/golden.jsonl',"
            " %s, %s::jsonb, 'offline', 'offline', %s::jsonb, %s::jsonb, %s, %s::jsonb) RETURNING id",
            now,
            now,
            sha,
            json.dumps(prompts),
            json.dumps(metrics),
            json.dumps(cases),
            passed,
            json.dumps(gate) if gate is not None else None,
        )[0][0]
    )


def _case(case_id: str, passed: bool, route: str, intent: str) -> dict[str, Any]:
    return {"id": case_id, "passed": passed, "actual": {"route": route, "intent": intent, "status": "done"}}


def test_eval_runs_detail_and_diff(world: World) -> None:
    sha = secrets.token_hex(32)
    a = _eval_run(
        world.stack,
        sha=sha,
        prompts={"plan": "1.1.0"},
        passed=True,
        cases=[
            _case("c1", True, "auto", "order_status"),
            _case("c2", True, "review", "refund"),
            _case("c3", True, "auto", "x"),
        ],
    )
    b = _eval_run(
        world.stack,
        sha=sha,
        prompts={"plan": "1.1.0"},
        passed=None,
        cases=[
            _case("c1", True, "auto", "order_status"),
            _case("c2", False, "auto", "refund"),
            _case("c4", True, "auto", "x"),
        ],
    )
    other = _eval_run(world.stack, sha=secrets.token_hex(32), prompts={}, passed=False, cases=[])
    listed = _ok(world.auditor.get("/v1/evals/runs", params={"dataset_sha256": sha}))
    assert [r["id"] for r in listed] == [b, a]  # newest first
    assert listed[1]["passed_gate"] is True and listed[0]["passed_gate"] is None
    assert listed[1]["headline"]["pass_rate"] == 0.5 and listed[1]["headline"]["route_accuracy"] is None
    assert listed[1]["headline"]["cases"] == 3 and listed[1]["prompts"] == {"plan": "1.1.0"}
    everything = _ok(world.auditor.get("/v1/evals/runs", params={"limit": 2}))
    assert [r["id"] for r in everything] == [other, b]

    detail = _ok(world.auditor.get(f"/v1/evals/runs/{a}"))
    assert detail["cases"] == 3 and detail["metrics"]["intent_accuracy"] == 0.75
    assert detail["gate_report"]["passed"] is True
    assert world.auditor.get("/v1/evals/runs/999999999").status_code == 404

    diff = _ok(world.auditor.get("/v1/evals/diff", params={"a": a, "b": b}))
    assert diff["compared"] == 2 and diff["only_in_a"] == ["c3"] and diff["only_in_b"] == ["c4"]
    assert [(c["id"], c["changed"]) for c in diff["changed"]] == [("c2", ["passed", "route"])]
    assert diff["changed"][0]["a"] == {"passed": True, "route": "review", "intent": "refund"}
    different = world.auditor.get("/v1/evals/diff", params={"a": a, "b": other})
    assert different.status_code == 400 and "different datasets" in different.json()["detail"]


# --- prompts ---


def test_prompts_are_readable_by_every_role(world: World) -> None:
    for client in (world.reviewer, world.auditor, world.admin):
        prompts = {p["name"]: p for p in _ok(client.get("/v1/prompts"))}
        assert {"extract", "plan"} <= set(prompts)
        assert "1.0.0" in [v["version"] for v in prompts["plan"]["versions"]]
        assert any(lb["label"] == "production" for lb in prompts["plan"]["labels"])
    one = _ok(world.auditor.get("/v1/prompts/plan/1.0.0"))
    assert one["name"] == "plan" and one["source"] == "file" and one["content"]["version"] == "1.0.0"
    assert "name: plan" in one["yaml"]
    diff = _ok(world.reviewer.get("/v1/prompts/plan/diff", params={"v1": "1.0.0", "v2": "1.1.0"}))
    assert diff["diff"].startswith("--- plan@1.0.0")
    assert world.auditor.get("/v1/prompts/plan/9.9.9").status_code == 404
    assert world.auditor.get("/v1/prompts/nope/1.0.0").status_code == 404


def test_draft_promote_and_rollback_as_admin(world: World) -> None:
    base = _ok(world.admin.get("/v1/prompts/plan/1.1.0"))["content"]
    edited = {**base, "description": f"{base.get('description', '')} (edited {secrets.token_hex(3)})"}
    body = {"base_version": "1.1.0", "content": edited}
    for client in (world.reviewer, world.auditor):
        assert client.post("/v1/prompts/plan/drafts", json=body).status_code == 403
    created = world.admin.post("/v1/prompts/plan/drafts", json=body)
    assert created.status_code == 201, created.text
    draft = created.json()["version"]
    assert draft.startswith("1.1.1-draft.")
    shown = _ok(world.reviewer.get(f"/v1/prompts/plan/{draft}"))
    assert shown["source"] == "draft" and shown["derived_from"] == "1.1.0"
    assert shown["created_by"] == world.admin_email
    diff = _ok(world.reviewer.get("/v1/prompts/plan/diff", params={"v1": "1.1.0", "v2": draft}))
    assert "(edited" in diff["diff"]
    same = world.admin.post("/v1/prompts/plan/drafts", json={"base_version": "1.1.0", "content": base})
    assert same.status_code == 400 and "nothing to draft" in same.json()["detail"]

    sha = secrets.token_hex(32)
    failed = _eval_run(world.stack, sha=sha, prompts={"plan": draft}, passed=False, cases=[])
    other_version = _eval_run(world.stack, sha=sha, prompts={"plan": "1.1.0"}, passed=True, cases=[])
    passing = _eval_run(world.stack, sha=sha, prompts={"plan": draft}, passed=True, cases=[])
    promote = {"version": draft, "label": "staging"}
    for run_id, reason in ((failed, "failed the gate"), (other_version, "not plan@")):
        refused = world.admin.post("/v1/prompts/plan/promote", json={**promote, "eval_run_id": run_id})
        assert refused.status_code == 409 and reason in refused.json()["detail"], refused.text
    assert (
        world.reviewer.post("/v1/prompts/plan/promote", json={**promote, "eval_run_id": passing}).status_code
        == 403
    )
    labels = {
        lb["label"] for p in _ok(world.admin.get("/v1/prompts")) if p["name"] == "plan" for lb in p["labels"]
    }
    assert "staging" not in labels  # nothing moved yet

    moved = _ok(world.admin.post("/v1/prompts/plan/promote", json={**promote, "eval_run_id": passing}))
    assert moved == {
        "name": "plan",
        "label": "staging",
        "version": draft,
        "previous": None,
        "percentage": None,
    }
    plan = next(p for p in _ok(world.auditor.get("/v1/prompts")) if p["name"] == "plan")
    assert {"label": "staging", "version": draft, "percentage": None} in plan["labels"]
    audit = world.stack.sql(
        "SELECT actor, details->>'eval_run_id' FROM audit_log"
        " WHERE action = 'prompt.promote' AND subject_id = %s",
        f"plan@{draft}",
    )
    assert audit == [(world.admin_email, str(passing))]

    assert world.auditor.post("/v1/prompts/plan/rollback", json={"label": "staging"}).status_code == 403
    back = _ok(world.admin.post("/v1/prompts/plan/rollback", json={"label": "staging"}))
    assert back["version"] is None and back["previous"] == draft
    rolled = world.stack.sql("SELECT actor FROM audit_log WHERE action = 'prompt.rollback' ORDER BY id")
    assert rolled[-1] == (world.admin_email,)
    again = world.admin.post("/v1/prompts/plan/rollback", json={"label": "staging"})
    assert again.status_code == 400 and "no staging label" in again.json()["detail"]


# --- quality and cost ---


def test_cost_per_day_and_model_matches_model_calls(world: World) -> None:
    cost = _ok(world.auditor.get("/v1/quality/cost", params={"days": 7}))
    calls, tokens_in, micro = world.stack.sql(
        "SELECT count(*), coalesce(sum(input_tokens), 0)::bigint, coalesce(sum(cost_micro_usd), 0)::bigint"
        " FROM model_calls"
    )[0]
    assert calls > 0 and sum(r["calls"] for r in cost["days"]) == calls
    assert sum(r["input_tokens"] for r in cost["days"]) == tokens_in
    assert sum(r["cost_usd"] for r in cost["days"]) == pytest.approx(micro / 1e6)
    models = {m for (m,) in world.stack.sql("SELECT DISTINCT model FROM model_calls")}
    assert {r["model"] for r in cost["days"]} == models
    budget = cost["budget"]
    assert budget["today_usd"] == pytest.approx(micro / 1e6)  # everything ran today
    assert budget["daily_max_usd"] is None and budget["remaining_usd"] is None and budget["exceeded"] is False


def test_online_scores_alarms_and_feedback(world: World) -> None:
    online = _ok(world.reviewer.get("/v1/quality/online", params={"bucket": "hour"}))
    names = {n for (n,) in world.stack.sql("SELECT DISTINCT name FROM online_scores")}
    assert names and {b["name"] for b in online["buckets"]} == names
    scored = world.stack.sql("SELECT count(value) FROM online_scores")[0][0]
    assert sum(b["count"] for b in online["buckets"]) == scored
    assert {c["name"] for c in online["current"]} == names and online["window"] >= 1
    open_alarms = world.stack.sql("SELECT id FROM drift_alarms WHERE cleared_at IS NULL")
    assert sorted(a["id"] for a in online["alarms"]) == sorted(i for (i,) in open_alarms)
    decided = world.stack.sql("SELECT count(*) FROM reviews WHERE decided_at IS NOT NULL")[0][0]
    assert sum(f["approved"] + f["rejected"] for f in online["feedback"]) == decided


def test_ops_queue_backlog_workers_and_breakers(world: World) -> None:
    # A job scheduled for tomorrow: it waits as 'todo' and no worker takes it during the test.
    (job,) = world.stack.sql(
        "SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[ROW('mailspine', 'dashboard_probe', 0, NULL, NULL,"
        " '{}'::jsonb, now() + interval '1 day')::procrastinate_job_to_defer_v1]))"
    )[0]
    try:
        ops = _ok(world.auditor.get("/v1/quality/ops"))
    finally:
        world.stack.sql("DELETE FROM procrastinate_jobs WHERE id = %s RETURNING id", job)
    assert ops["queue"].get("todo", 0) >= 1
    depth = world.stack.sql("SELECT count(*) FROM procrastinate_jobs WHERE queue_name = 'mailspine'")[0][0]
    assert sum(ops["queue"].values()) == depth + 1  # the probe, deleted since
    pending, oldest = world.stack.sql(
        "SELECT count(*), min(created_at) FROM reviews WHERE status = 'pending'"
    )[0]
    assert ops["reviews_pending"] == pending >= 1
    assert datetime.fromisoformat(ops["oldest_pending_review_at"]) == oldest
    assert ops["oldest_pending_review_age_s"] >= 0
    workers = {i for (i,) in world.stack.sql("SELECT id FROM procrastinate_workers")}
    assert ops["workers"] is not None and {w["id"] for w in ops["workers"]} == workers and workers
    breakers = ops["circuit_breakers"]
    assert breakers["state_known"] is False and "memory" in breakers["note"]
    assert breakers["circuit_open_calls_last_hour"] == 0


def test_routes_by_role(world: World) -> None:
    """The matrix test covers every caller kind; here, the three roles on the live stack."""
    for client in (world.reviewer, world.auditor, world.admin):
        for path in ("/v1/runs", "/v1/evals/runs", "/v1/prompts", "/v1/quality/ops"):
            assert client.get(path).status_code == 200, path
    anonymous = httpx.get(f"http://127.0.0.1:{world.stack.api_port}/v1/runs", timeout=10)
    assert anonymous.status_code == 401
