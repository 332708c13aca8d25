"""The provider path against a real HTTP server: ``ChatOpenAI`` → the local OpenAI-compatible server.

Every behaviour of ``agent.llm.structured_call`` that depends on a provider misbehaving is shown
here with the fault on the wire: retries on 429 (with Retry-After) / 500 / a hang past the timeout /
malformed JSON, fail-fast on 401 and 400, the circuit breaker, the fallback model, the repair
attempt, the content filter, and the budgets (per email and per day, from ``model_calls``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from agent.llm import CallScope, StructuredResult, structured_call
from agent.models.factory import build_models
from agent.prompting import email_block
from agent.prompts import load_prompt
from agent.resilience import reset_breakers
from agent.schemas import Extraction
from agent.state import Usage
from app.db import Database
from app.errors import CircuitOpen, ModelRejected, ModelUnavailable
from app.settings import Settings
from app.settings_llm import LlmSettings
from tests.support import openai_server as fake
from tests.support.offline_responder import offline_responder
from tests.unit.test_policy import _email

pytestmark = pytest.mark.integration

FAST = {
    "retry_base_s": 0.01,
    "retry_max_wait_s": 2.0,
    "max_attempts": 3,
    "circuit_failure_threshold": 5,
    "circuit_reset_s": 30.0,
    "prices": {"mailspine-test": {"input": "1.00", "output": "2.00"}},
}


@pytest.fixture(scope="module")
def server() -> Iterator[fake.OpenAIServer]:
    with fake.OpenAIServer(responder=offline_responder) as srv:
        yield srv


@pytest.fixture(autouse=True)
def clean(server: fake.OpenAIServer) -> Iterator[None]:
    server.reset()
    reset_breakers()
    yield
    reset_breakers()


def settings_for(server: fake.OpenAIServer, **llm: Any) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        env="test",
        model_provider="openai",
        openai_base_url=server.base_url,
        model="mailspine-test",
        model_timeout_s=1.0,
        llm=LlmSettings(**{**FAST, **llm}),
    )


async def extract(
    settings: Settings, *, spent: Usage | None = None, db: Database | None = None
) -> StructuredResult[Extraction]:
    prompt = load_prompt("extract")
    email = _email().model_copy(
        update={
            "subject": "Order NW-48213",
            "text": "When will my order NW-48213 arrive? I still have no tracking number.",
        }
    )
    return await structured_call(
        build_models(settings),
        tier="fast",
        schema=Extraction,
        prompt=prompt,
        scope=CallScope(
            thread_id="email-test",
            node="extract",
            llm=settings.llm,
            spent=spent or Usage(),
            timeout_s=settings.model_timeout_s,
            db=db,
        ),
        email_block=email_block(email),
    )


def statuses(server: fake.OpenAIServer) -> list[str | None]:
    return [c.fault for c in server.calls()]


async def test_a_structured_call_over_http_returns_the_typed_value_usage_and_cost(
    server: fake.OpenAIServer,
) -> None:
    result = await extract(settings_for(server))
    assert isinstance(result.value, Extraction)
    assert result.value.intent.value == "order_status" and "NW-48213" in result.value.order_ids
    assert result.usage.model_calls == 1 and result.usage.input_tokens > 0 and result.usage.output_tokens > 0
    # 1 USD / 2 USD per million tokens = 1 / 2 micro-USD per token.
    assert result.usage.cost_micro_usd == result.usage.input_tokens + 2 * result.usage.output_tokens
    (call,) = server.calls()
    assert call.completed and call.has_tools and call.schema_name == "Extraction"


@pytest.mark.parametrize(
    "fault",
    [fake.rate_limit(0.05), fake.server_error(), fake.malformed_json(), fake.hang(3.0)],
    ids=["429", "500", "malformed-json", "hang-past-timeout"],
)
async def test_transient_faults_are_retried_and_the_email_gets_its_answer(
    server: fake.OpenAIServer, fault: fake.Fault
) -> None:
    server.script(fault)
    result = await extract(settings_for(server))
    assert isinstance(result.value, Extraction)
    assert [c.completed for c in server.calls()] == [False, True]
    assert result.usage.model_calls == 2  # both requests count towards the step limit


async def test_retry_after_is_honoured(server: fake.OpenAIServer) -> None:
    server.script(fake.rate_limit(0.6))
    started = time.monotonic()
    result = await extract(settings_for(server))
    assert isinstance(result.value, Extraction)
    assert time.monotonic() - started >= 0.6  # the backoff alone would be ~0.01 s


async def test_persistent_failure_raises_model_unavailable_after_max_attempts(
    server: fake.OpenAIServer,
) -> None:
    server.script(*(fake.server_error() for _ in range(3)))
    with pytest.raises(ModelUnavailable, match="after 3 attempt"):
        await extract(settings_for(server))
    assert len(server.calls()) == 3


async def test_401_and_400_fail_fast_with_a_typed_error(server: fake.OpenAIServer) -> None:
    server.script(fake.unauthorized())
    with pytest.raises(ModelRejected) as auth:
        await extract(settings_for(server))
    assert auth.value.kind == "auth" and auth.value.status == 401
    server.script(fake.bad_request())
    with pytest.raises(ModelRejected) as bad:
        await extract(settings_for(server))
    assert bad.value.kind == "bad_request"
    assert len(server.calls()) == 2  # never retried


async def test_content_filter_is_an_unsure_result_for_review(server: fake.OpenAIServer) -> None:
    server.script(fake.content_filter())
    result = await extract(settings_for(server))
    assert result.value is None and result.unsure == "refused" and "content filter" in (result.error or "")
    server.script(fake.content_filter(as_http_400=True))
    result = await extract(settings_for(server))
    assert result.value is None and result.unsure == "refused"
    assert len(server.calls()) == 2


async def test_invalid_output_gets_one_repair_attempt_then_unsure(server: fake.OpenAIServer) -> None:
    server.script(fake.invalid_output())
    repaired = await extract(settings_for(server))
    assert isinstance(repaired.value, Extraction) and repaired.usage.model_calls == 2
    assert server.calls()[1].message_count == server.calls()[0].message_count + 1  # the error was sent

    server.reset()
    server.script(fake.invalid_output(), fake.invalid_output())
    unsure = await extract(settings_for(server))
    assert unsure.value is None and unsure.unsure == "invalid" and unsure.error
    assert len(server.calls()) == 2


async def test_the_breaker_opens_after_consecutive_failures_and_then_sends_nothing(
    server: fake.OpenAIServer,
) -> None:
    settings = settings_for(server, circuit_failure_threshold=2, circuit_reset_s=0.5)
    server.script(fake.server_error(), fake.server_error())
    with pytest.raises(ModelUnavailable):
        await extract(settings)
    with pytest.raises(CircuitOpen) as opened:
        await extract(settings)
    assert len(server.calls()) == 2  # the open breaker sent nothing
    assert opened.value.retry_after_s is not None and 0 < opened.value.retry_after_s <= 0.5
    await asyncio.sleep(0.6)  # half-open: one probe goes out, succeeds and closes the breaker
    assert isinstance((await extract(settings)).value, Extraction)
    assert isinstance((await extract(settings)).value, Extraction)


async def test_the_fallback_model_answers_when_the_primary_is_unavailable(server: fake.OpenAIServer) -> None:
    settings = settings_for(server, fallback_model="mailspine-test-strong", max_attempts=2)
    server.script(fake.server_error(), fake.server_error())
    result = await extract(settings)
    assert isinstance(result.value, Extraction)
    assert [c.model for c in server.calls()] == ["mailspine-test", "mailspine-test", "mailspine-test-strong"]


async def test_email_budgets_stop_before_calling_the_model(server: fake.OpenAIServer) -> None:
    settings = settings_for(server, email_max_model_calls=4, email_max_tokens=1000)
    steps = await extract(settings, spent=Usage(model_calls=4))
    assert steps.value is None and steps.unsure == "budget" and "step limit" in (steps.error or "")
    tokens = await extract(settings, spent=Usage(input_tokens=900, output_tokens=100))
    assert tokens.unsure == "budget" and "token budget" in (tokens.error or "")
    cost = await extract(settings_for(server, email_max_cost_usd="0.01"), spent=Usage(cost_micro_usd=10_000))
    assert cost.unsure == "budget" and "cost budget" in (cost.error or "")
    assert server.calls() == []


async def test_retries_count_towards_the_step_limit(server: fake.OpenAIServer) -> None:
    server.script(fake.server_error(), fake.server_error())
    result = await extract(settings_for(server, email_max_model_calls=2))
    assert result.unsure == "budget" and len(server.calls()) == 2


async def test_calls_are_recorded_and_the_daily_budget_reads_them(
    server: fake.OpenAIServer, db: Database
) -> None:
    server.script(fake.rate_limit(0.01))
    settings = settings_for(server)
    assert isinstance((await extract(settings, db=db)).value, Extraction)
    async with db.transaction() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT status, cost_micro_usd, input_tokens FROM model_calls "
                    "WHERE thread_id = 'email-test' ORDER BY id"
                )
            )
        ).all()
    assert [r[0] for r in rows] == ["transient", "ok"]
    assert rows[1][1] > 0 and rows[1][2] > 0

    async with db.transaction() as session:
        await session.execute(
            text(
                "INSERT INTO model_calls (thread_id, node, provider, model, status, cost_micro_usd) "
                "VALUES ('email-other', 'plan', 'openai', 'mailspine-test', 'ok', 2000000)"
            )
        )
    capped = settings_for(server, daily_max_cost_usd=Decimal("1.00"))
    result = await extract(capped, db=db)
    assert result.unsure == "budget" and "daily budget" in (result.error or "")
    assert len(server.calls()) == 2  # the capped call sent nothing
