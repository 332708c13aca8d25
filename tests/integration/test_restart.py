"""A thread paused for review survives its worker: a new worker process resumes it."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from app.settings import REPO_ROOT
from tests.integration.test_pipeline import crm_notes_for, email_status, wait_for
from tests.support.stack import DEMO_MAILBOX, running_stack

pytestmark = pytest.mark.integration


def test_new_worker_resumes_thread_after_the_first_one_is_killed(pg_server_url: str, tmp_path: Path) -> None:
    large_refund = next(p for p in sorted(DEMO_MAILBOX.glob("*.eml")) if "refund-large" in p.name)
    (tmp_path / large_refund.name).write_bytes(large_refund.read_bytes())
    with running_stack(pg_server_url, REPO_ROOT / "var" / "test" / "logs" / "restart") as stack:
        stack.start_api()
        stack.start_worker("worker-a")
        [email_id] = stack.ingest(tmp_path)
        wait_for(lambda: email_status(stack, email_id) == "review", what="thread to reach its interrupt")
        stack.group.stop("worker-a", sig=signal.SIGKILL)

        review = stack.api.get("/v1/reviews").json()[0]
        assert review["email_id"] == email_id
        answer = stack.api.post(
            f"/v1/reviews/{review['id']}/decision",
            json={"decision": "approve", "payload_hash": review["payload_hash"]},
        )
        assert answer.status_code == 200, answer.text
        assert email_status(stack, email_id) == "review"  # nobody is running it yet

        stack.start_worker("worker-b")
        wait_for(lambda: email_status(stack, email_id) == "done", what="worker-b to resume and finish")
        assert crm_notes_for(stack, review["sender"]) == 1
        [(outcome,)] = stack.sql("SELECT outcome FROM runs WHERE email_id = %s", email_id)
        assert outcome.startswith("approved by reviewer")
