"""A real provider by three variables: the demo mailbox through worker processes that talk to the
local OpenAI-compatible server over HTTP, with faults on the wire that the runtime absorbs."""

from __future__ import annotations

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
