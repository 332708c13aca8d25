"""The walking skeleton end to end: real Postgres, CRM over HTTP, worker and API processes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.db import Database
from app.demo import wait_settled
from app.queue import RESUME_REVIEW
from app.settings import REPO_ROOT
from tests.support.stack import BAD_MAILBOX, DEMO_MAILBOX, Stack, running_stack

pytestmark = pytest.mark.integration
NODES = {"extract", "history", "plan", "risk", "review", "act", "finalize"}
LOGS = REPO_ROOT / "var" / "test" / "logs"


def settle(stack: Stack, ids: list[int], timeout_s: float = 180) -> dict[str, int]:
    async def run() -> dict[str, int]:
        db = Database(stack.url)
        try:
            return await wait_settled(db, ids, timeout_s=timeout_s, progress=False)
        finally:
            await db.dispose()

    return asyncio.run(run())


def wait_for(predicate, timeout_s: float = 60, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


def email_status(stack: Stack, email_id: int) -> str:
    return str(stack.sql("SELECT status FROM emails WHERE id = %s", email_id)[0][0])


def crm_notes_for(stack: Stack, address: str) -> int:
    rows = stack.sql(
        "SELECT count(*) FROM crm.associations a JOIN crm.contacts c ON c.id = a.to_id "
        "WHERE a.from_type = 'notes' AND a.to_type = 'contacts' AND c.email = %s",
        address.lower(),
    )
    return int(rows[0][0])


def pending_review_with_crm_write(stack: Stack) -> dict:  # type: ignore[type-arg]
    for review in stack.api.get("/v1/reviews").json():
        kinds = {a["kind"] for a in review["payload"]["plan"]["actions"]}
        if "crm_add_note" in kinds:
            return review
    raise AssertionError("no pending review proposes a CRM note")


@pytest.fixture(scope="module")
def stack(pg_server_url: str) -> Iterator[Stack]:
    with running_stack(pg_server_url, LOGS / "pipeline") as s:
        s.start_worker()
        s.start_api()
        yield s


def test_demo_mailbox_end_to_end_with_one_approval(stack: Stack) -> None:
    new_ids = stack.ingest(DEMO_MAILBOX)
    assert len(new_ids) == len(list(DEMO_MAILBOX.glob("*.eml"))) >= 30
    counts = settle(stack, new_ids)
    assert counts.get("failed", 0) == 0, counts
    assert counts.get("review", 0) >= 3, counts
    assert counts.get("quarantined", 0) >= 1, counts

    # Each review keeps the history the agent planned with, and the intent the queue filters by.
    pending = stack.api.get("/v1/reviews").json()
    assert all(isinstance(r["payload"]["history"], list) for r in pending), pending
    assert any(r["intent"] for r in pending), pending  # an unsure extraction has none
    items = [item for r in pending for item in r["payload"]["history"]]
    assert items and all({"source", "ref", "summary", "via"} <= set(item) for item in items), items

    review = pending_review_with_crm_write(stack)
    address = review["sender"]
    assert crm_notes_for(stack, address) == 0  # nothing was written before the approval
    answer = stack.api.post(
        f"/v1/reviews/{review['id']}/decision",
        json={"decision": "approve", "payload_hash": review["payload_hash"]},
    )
    assert answer.status_code == 200, answer.text
    wait_for(lambda: email_status(stack, review["email_id"]) == "done", what="resumed thread to finish")
    assert crm_notes_for(stack, address) == 1

    # A second reviewer deciding the same item gets a clear conflict, and nothing runs again.
    again = stack.api.post(
        f"/v1/reviews/{review['id']}/decision",
        json={"decision": "approve", "payload_hash": review["payload_hash"]},
    )
    assert again.status_code == 409 and "already approved" in again.json()["detail"]

    # A duplicate delivery of the resume job (at-least-once queue) must not write twice.
    stack.sql(
        "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW('mailspine', %s, 0, %s, NULL, %s::jsonb, NULL)"
        "::procrastinate_job_to_defer_v1])",
        RESUME_REVIEW,
        review["thread_id"],
        f'{{"review_id": {review["id"]}}}',
    )
    wait_for(
        lambda: not stack.sql("SELECT 1 FROM procrastinate_jobs WHERE status IN ('todo','doing')"),
        what="duplicate job to run",
    )
    assert crm_notes_for(stack, address) == 1
    effects = stack.sql(
        "SELECT action, status, attempts FROM side_effects WHERE thread_id = %s", review["thread_id"]
    )
    assert sorted(a for a, _, _ in effects) == ["crm_add_note", "crm_upsert_contact", "draft_reply"]
    assert all(status == "succeeded" and attempts == 1 for _, status, attempts in effects)

    # Every node of the approved thread left a span in the email's one trace.
    trace_id = stack.sql("SELECT trace_id FROM emails WHERE id = %s", review["email_id"])[0][0]

    def node_spans() -> set[str]:
        rows = stack.sql("SELECT name FROM spans WHERE trace_id = %s", trace_id)
        return {name.removeprefix("node ") for (name,) in rows if name.startswith("node ")}

    wait_for(lambda: node_spans() >= NODES, timeout_s=20, what=f"node spans, have {node_spans()}")
    names = {n for (n,) in stack.sql("SELECT name FROM spans WHERE trace_id = %s", trace_id)}
    assert {"ingest", "apply_guardrail gateway", "execute_tool crm_add_note", "review decision"} <= names
    assert any(n.startswith("chat ") for n in names)
    usage = stack.sql("SELECT attributes FROM spans WHERE trace_id = %s AND name LIKE 'chat %%'", trace_id)
    assert all(a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.operation.name"] == "chat" for (a,) in usage)


def test_bad_emails_get_a_clear_status_and_do_not_stop_the_batch(stack: Stack, tmp_path: Path) -> None:
    for path in [*BAD_MAILBOX.glob("*.eml"), *sorted(DEMO_MAILBOX.glob("*.eml"))[:3]]:
        (tmp_path / path.name).write_bytes(
            path.read_bytes() + b"\n" if path.parent == DEMO_MAILBOX else path.read_bytes()
        )
    new_ids = stack.ingest(tmp_path)
    counts = settle(stack, new_ids)
    assert sum(counts.values()) == len(new_ids)
    rows = stack.sql("SELECT source_ref, status, status_detail FROM emails WHERE id = ANY(%s)", new_ids)
    by_ref = {ref: (status, detail) for ref, status, detail in rows}
    assert by_ref["empty.eml"] == ("failed", "rejected by gateway: empty message (0 bytes of content)")
    assert (
        by_ref["no-headers.eml"][0] == "failed" and "no RFC 5322 header block" in by_ref["no-headers.eml"][1]
    )
    for ref in ("undecodable-charset.eml", "truncated-multipart.eml", "wrong-charset.eml"):
        assert by_ref[ref][0] in ("done", "review"), by_ref[ref]
    verdict = stack.sql("SELECT verdict FROM emails WHERE source_ref = 'undecodable-charset.eml'")[0][0]
    assert any("charset" in r for r in verdict["reasons"])
    good = [
        status
        for ref, (status, _) in by_ref.items()
        if not ref.endswith(tuple(p.name for p in BAD_MAILBOX.iterdir()))
    ]
    assert good and all(s in ("done", "review", "quarantined") for s in good)
