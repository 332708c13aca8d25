"""A worker with more job slots than Postgres connections (``MAILSPINE_WORKER_DB_CONNECTIONS``):
jobs wait for a connection instead of opening one each, and every email still settles."""

from __future__ import annotations

import pytest

from app.settings import REPO_ROOT
from tests.integration.test_pipeline import settle
from tests.support.stack import DEMO_MAILBOX, running_stack

pytestmark = pytest.mark.integration

LOGS = REPO_ROOT / "var" / "test" / "logs" / "worker-db-budget"


def test_sixteen_slots_share_four_connections(pg_server_url: str) -> None:
    env = {"MAILSPINE_WORKER_DB_CONNECTIONS": "4"}
    with running_stack(pg_server_url, LOGS, env=env) as stack:
        stack.group.start("worker", ["worker", "--concurrency", "16", "--no-poll"])
        ids = stack.ingest(DEMO_MAILBOX)
        counts = settle(stack, ids)
    assert sum(counts.values()) == len(ids), counts
    assert counts.get("failed", 0) == 0, f"{counts}; see {LOGS / 'worker.log'}"
    assert counts.get("done", 0) and counts.get("review", 0), counts
