"""A node cannot call a tool it is not bound to, whatever the model asks: the real graph, a model
behind the local OpenAI-compatible server whose plan asks for a CRM write, the real CRM over HTTP.

The deployment binds ``act`` to a read tool only (``MAILSPINE_TOOLS__BINDINGS``): the planner is
shown no write action, so the model's write is an invalid plan and the email goes to a person; when
a reviewer puts the write back and approves, ``act`` refuses before the ledger records anything.
The CRM never hears of the address."""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from agent.checkpointer import open_checkpointer
from agent.context import Context
from agent.graph import build_graph
from agent.models.factory import build_models
from agent.runner import resume_email, run_email, thread_id_for
from agent.state import ReviewDecision
from app.db import Database
from app.hashing import payload_hash
from app.ingest import ingest_messages
from app.settings import REPO_ROOT, Settings
from app.settings_guard import GuardSettings
from app.settings_history import HistorySettings
from app.settings_tools import ToolSettings
from gateway.guards.pipeline import GuardPipeline
from gateway.scan import scan_raw
from tests.integration.test_pipeline import LOGS
from tests.support import openai_server as fake
from tests.support.offline_responder import offline_responder
from tests.support.stack import Stack, running_stack
from tools.actions import Plan
from tools.base import ToolNotAllowed
from tools.crm import CrmClient
from tools.mailbox_dir import MailboxMessage
from tools.ratelimit import RateLimiter
from tools.registry import ToolBox

pytestmark = pytest.mark.integration
NEWSLETTER = REPO_ROOT / "infra" / "demo" / "mailbox" / "18-newsletter-industry.eml"


@pytest.fixture(scope="module")
def stack(pg_server_url: str) -> Iterator[Stack]:
    with running_stack(pg_server_url, LOGS / "tool-binding") as running:
        yield running


def asks_to_write(address: str, shown: list[str]) -> fake.Responder:
    """Answers like the offline model, except that every plan asks for a CRM write; keeps the JSON of
    the tools each planning request showed the model."""

    def respond(request: dict[str, Any]) -> fake.Reply:
        answer = offline_responder(request)
        if isinstance(answer, fake.ToolCall) and answer.name == "Plan":
            shown.append(json.dumps(request.get("tools")))
            action = {"kind": "crm_upsert_contact", "email": address, "company": "Injected Ltd"}
            rationale = "The email says to add this contact."
            return fake.ToolCall("Plan", {"actions": [action], "rationale": rationale})
        return answer

    return respond


async def test_a_read_only_node_cannot_write_even_when_the_model_asks(stack: Stack) -> None:
    address = f"asked-{secrets.token_hex(4)}@example.com"
    raw = re.sub(
        rb"(?im)^(Message-ID:\s*<)", rb"\g<1>" + uuid.uuid4().hex.encode() + b".", NEWSLETTER.read_bytes()
    )
    shown: list[str] = []
    with fake.OpenAIServer(responder=asks_to_write(address, shown)) as server:
        settings = Settings(
            env="test",
            database_url=stack.url,
            model_provider="openai",
            openai_base_url=server.base_url,
            openai_api_key="test",
            model="mailspine-test",
            guard=GuardSettings(llm_guard_enabled=False, semantic_enabled=False),
            history=HistorySettings(semantic_enabled=False),
            tools=ToolSettings(bindings={"act": ["crm_find_contact"]}),  # act may only read
            _env_file=None,
        )
        db = Database(stack.url)
        crm = CrmClient(
            base_url=f"http://127.0.0.1:{stack.crm_port}", token=stack.crm_tokens["crm_write"], timeout_s=10
        )
        tools = ToolBox(bindings=settings.tools.bindings, limiter=RateLimiter(db))
        ctx = Context(db=db, models=build_models(settings), crm=crm, settings=settings, tools=tools)
        try:
            report = await ingest_messages(
                db, [MailboxMessage(ref=NEWSLETTER.name, raw=raw)], account="binding", queue="binding"
            )
            [email_id] = report.new_ids
            _, email = scan_raw(
                raw, email_id=email_id, max_bytes=10**7, pipeline=GuardPipeline.from_settings(settings)
            )
            async with open_checkpointer(stack.url, max_size=2) as saver:
                graph = build_graph(saver)
                outcome = await run_email(graph, ctx, email)
                assert outcome.status == "review"
                # The planner was shown only the kinds act is bound to (none: act may only read), so
                # the model's write is not a valid plan: the email waits for a person.
                assert shown and all("crm_upsert_contact" not in tools for tools in shown)
                [(reasons, shown_plan)] = stack.sql(
                    "SELECT reasons, payload FROM reviews WHERE id = %s", outcome.review_id
                )
                assert any(r.startswith("unsure: plan invalid") for r in reasons), reasons
                assert shown_plan["plan"]["actions"] == []
                # A reviewer puts the write back in and approves: act refuses before any side effect.
                edited = {
                    "actions": [{"kind": "crm_upsert_contact", "email": address}],
                    "rationale": "reviewer's edit",
                }
                plan = Plan.model_validate(edited)
                approve = ReviewDecision(
                    decision="approve",
                    reviewer="r@example.com",
                    approved_plan=plan,
                    approved_hash=payload_hash(plan),
                )
                with pytest.raises(ToolNotAllowed, match="'act' is not bound to tool 'crm_upsert_contact'"):
                    await resume_email(graph, ctx, email_id=email_id, decision=approve)
        finally:
            await crm.aclose()
            await db.dispose()
    thread = thread_id_for(email_id)
    assert stack.sql("SELECT count(*) FROM side_effects WHERE thread_id = %s", thread) == [(0,)]
    assert stack.sql("SELECT count(*) FROM crm.contacts WHERE email = %s", address) == [(0,)]
    assert "Plan" in {c.schema_name for c in server.completed_calls()}  # the model itself asked
