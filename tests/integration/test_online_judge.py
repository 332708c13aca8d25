"""The LLM judge of online evaluation against the local OpenAI-compatible server, in process.

One demo email runs through ``app.pipeline.process_email`` (gateway, PII vault, the graph; the
eval sandbox's in-memory CRM) with the ``openai`` provider pointed at the local server; then
``after_run`` and the ``online_eval`` job's body score it. The judge's answer is stored per run,
with the run's trace id; the judge saw placeholders only; a second scoring pays for nothing.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from sqlalchemy import text

from app.ingest import ingest_messages
from app.pipeline import process_email
from app.repo import online_eval
from app.settings import Settings
from evals.online import ONLINE_EVAL, after_run, score_email
from evals.sandbox import sandbox_services
from gateway.guards.pipeline import configure_default_pipeline
from tests.support import openai_server as fake
from tests.support.offline_responder import offline_responder
from tests.support.stack import DEMO_MAILBOX
from tools.mailbox_dir import MailboxMessage

pytestmark = pytest.mark.integration
SENDER = b"jonas.whitfield@fernmail.example"


def _settings(base: Settings, server_url: str) -> Settings:
    guard = base.guard.model_copy(update={"llm_guard_enabled": False, "semantic_enabled": False})
    online = base.online.model_copy(update={"sample_rate": 1.0})
    return base.model_copy(
        update={
            "model_provider": "openai",
            "openai_base_url": server_url,
            "model": "mailspine-test",
            "model_fast": "mailspine-test",
            "model_strong": "mailspine-test",
            "guard": guard,
            "online": online,
        }
    )


async def test_the_judge_scores_a_live_run_once(test_settings: Settings, database_url: str) -> None:
    judge_requests: list[dict[str, Any]] = []

    def responder(request: dict[str, Any]) -> str | fake.ToolCall:
        if fake.tool_to_call(request) == "JudgeVerdict":
            judge_requests.append(request)
            return fake.ToolCall("JudgeVerdict", {"score": 0.75, "reasons": ["answers the order question"]})
        return offline_responder(request)

    raw = (DEMO_MAILBOX / "01-order-status-tent.eml").read_bytes()
    raw = raw.replace(b"Message-ID: <", f"Message-ID: <judge-{uuid.uuid4().hex[:8]}.".encode(), 1)
    with fake.OpenAIServer(responder=responder) as server:
        settings = _settings(test_settings, server.base_url)
        configure_default_pipeline(settings, database_url=None)
        async with sandbox_services(settings, database_url=database_url) as services:
            report = await ingest_messages(
                services.db,
                [MailboxMessage(ref="judge.eml", raw=raw)],
                account="online-test",
                queue="online-test",
            )
            [email_id] = report.new_ids
            assert await process_email(services, email_id=email_id) == "done"
            assert await after_run(services, email_id=email_id) == [ONLINE_EVAL]

            stored = await score_email(services, email_id=email_id)
            assert set(stored) == {
                "schema_valid",
                "policy_consistent",
                "reply_no_foreign_data",
                "reply_language",
                "judge",
            }
            calls = len(server.completed_calls())
            assert await score_email(services, email_id=email_id) == []  # a retried job stores nothing
            assert len(server.completed_calls()) == calls  # and asks the judge nothing again

            async with services.db.transaction() as session:
                scores = {s.name: s for s in await online_eval.scores_for_email(session, email_id=email_id)}
                run_trace = (
                    await session.execute(
                        text("SELECT trace_id FROM runs WHERE email_id = :e"), {"e": email_id}
                    )
                ).scalar_one()
                judge_calls = (
                    await session.execute(
                        text(
                            "SELECT count(*) FROM model_calls"
                            " WHERE thread_id = :t AND node = 'judge' AND status = 'ok'"
                        ),
                        {"t": f"online:email-{email_id}"},
                    )
                ).scalar_one()

    judge = scores["judge"]
    assert judge.value == pytest.approx(0.75)
    assert (
        judge.details["reasons"] == ["answers the order question"]
        and judge.details["prompt"] == "judge@1.0.0"
    )
    assert all(s.trace_id == run_trace for s in scores.values())
    assert scores["crm_write"].value == 1.0  # the implicit signal of the run's (sandbox) CRM writes
    assert scores["schema_valid"].value == 1.0 and scores["policy_consistent"].value == 1.0
    assert scores["reply_no_foreign_data"].value == 1.0 and scores["reply_language"].value == 1.0
    assert judge_calls == 1 and len(judge_requests) == 1
    sent = json.dumps(judge_requests[0]["messages"]).encode()
    assert SENDER not in sent and b"Jonas" not in sent  # the judge sees placeholders, never the customer
    assert b"NW-48213" in sent  # but does see the email it judges
