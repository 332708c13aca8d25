"""A real provider by three variables: the demo mailbox through worker processes that talk to the
local OpenAI-compatible server over HTTP, with faults on the wire that the runtime absorbs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.integration.test_pipeline import LOGS, settle
from tests.support import openai_server as fake
from tests.support.offline_responder import offline_responder
from tests.support.stack import DEMO_MAILBOX, Stack, running_stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def provider_run(pg_server_url: str) -> Iterator[tuple[Stack, fake.OpenAIServer, list[int]]]:
    with fake.OpenAIServer(responder=offline_responder) as server:
        # Early trouble, spread over the first calls of the run: each is retried by the runtime.
        server.script(fake.rate_limit(0.2), fake.server_error(), fake.malformed_json(), fake.hang(3.0))
        env = {  # the three variables of the README, plus a short timeout for the hang
            "MAILSPINE_MODEL_PROVIDER": "openai",
            "MAILSPINE_OPENAI_BASE_URL": server.base_url,
            "MAILSPINE_MODEL": "mailspine-test",
            "MAILSPINE_MODEL_TIMEOUT_S": "1.5",
            "MAILSPINE_LLM__RETRY_BASE_S": "0.1",
        }
        with running_stack(pg_server_url, LOGS / "provider", env=env) as stack:
            stack.start_worker()
            ids = stack.ingest(DEMO_MAILBOX)
            settle(stack, ids, timeout_s=240)
            yield stack, server, ids


def test_every_demo_email_settles_through_the_provider(
    provider_run: tuple[Stack, fake.OpenAIServer, list[int]],
) -> None:
    stack, server, ids = provider_run
    statuses = dict(stack.sql("SELECT status, count(*) FROM emails WHERE id = ANY(%s) GROUP BY status", ids))
    assert statuses.get("failed", 0) == 0, statuses
    assert sum(statuses.values()) == len(ids)
    assert statuses.get("done", 0) >= 10 and statuses.get("review", 0) >= 3, statuses
    assert server.pending_faults() == []  # every scripted fault was met, and survived


def test_usage_and_every_request_are_recorded(
    provider_run: tuple[Stack, fake.OpenAIServer, list[int]],
) -> None:
    stack, server, ids = provider_run
    ((tokens, runs),) = stack.sql(
        "SELECT sum(input_tokens + output_tokens), count(*) FROM runs WHERE email_id = ANY(%s)", ids
    )
    assert runs > 0 and tokens > 0
    recorded = dict(stack.sql("SELECT status, count(*) FROM model_calls GROUP BY status"))
    completed = len(server.completed_calls())
    assert recorded.get("ok", 0) + recorded.get("invalid", 0) == completed
    assert recorded.get("transient", 0) >= 4  # the scripted faults
    assert {r[0] for r in stack.sql("SELECT DISTINCT model FROM model_calls")} == {"mailspine-test"}


def test_a_rejected_key_fails_emails_clearly_and_retry_finishes_them(pg_server_url: str) -> None:
    from app.db import Database
    from app.requeue import requeue_failed

    few = sorted(DEMO_MAILBOX.glob("0[1-3]-*.eml"))
    with fake.OpenAIServer(responder=offline_responder) as server:
        server.script(*(fake.unauthorized() for _ in few))  # the key is "expired" for the first calls
        env = {
            "MAILSPINE_MODEL_PROVIDER": "openai",
            "MAILSPINE_OPENAI_BASE_URL": server.base_url,
            "MAILSPINE_MODEL": "mailspine-test",
            "MAILSPINE_WORKER_CONCURRENCY": "1",
        }
        with running_stack(pg_server_url, LOGS / "provider-401", env=env) as stack:
            mailbox = LOGS / "provider-401" / "mailbox"
            mailbox.mkdir(parents=True, exist_ok=True)
            for path in few:
                (mailbox / path.name).write_bytes(path.read_bytes())
            stack.start_worker()
            ids = stack.ingest(mailbox)
            settle(stack, ids, timeout_s=120)
            failed = stack.sql(
                "SELECT id, status_detail FROM emails WHERE id = ANY(%s) AND status = 'failed'", ids
            )
            assert len(failed) == len(few), failed
            assert all("ModelRejected" in d and "HTTP 401" in d for _, d in failed), failed
            assert len(server.calls()) == len(few)  # fail fast: no retries of a 401

            async def retry() -> list[int]:
                db = Database(stack.url)
                try:
                    return await requeue_failed(db, queue="mailspine", actor="test")
                finally:
                    await db.dispose()

            assert sorted(asyncio.run(retry())) == sorted(ids)
            settle(stack, ids, timeout_s=120)
            statuses = stack.sql("SELECT status FROM emails WHERE id = ANY(%s)", ids)
            assert {s for (s,) in statuses} <= {"done", "review"}, statuses
