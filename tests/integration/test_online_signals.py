"""The CRM's verdict as an implicit signal: a write the CRM rejects scores the run 0, unsampled."""

from __future__ import annotations

import dataclasses
import json
import uuid

import httpx
import pytest

from app.ingest import ingest_messages
from app.pipeline import process_email
from app.repo import online_eval
from app.settings import Settings
from evals.online import after_run
from evals.sandbox import SANDBOX_CRM_URL, sandbox_services
from gateway.guards.pipeline import configure_default_pipeline
from tests.support.stack import DEMO_MAILBOX
from tools.crm import CrmClient
from tools.mailbox_dir import MailboxMessage

pytestmark = pytest.mark.integration


def _rejecting(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/contacts/batch/upsert"):
        return httpx.Response(400, json={"message": "Property values were not valid"})
    return httpx.Response(200, json={"results": []})


async def test_a_crm_rejection_records_a_zero_without_sampling(
    test_settings: Settings, database_url: str
) -> None:
    guard = test_settings.guard.model_copy(update={"llm_guard_enabled": False, "semantic_enabled": False})
    settings = test_settings.model_copy(update={"guard": guard})
    assert settings.online.rate(settings.env) == 0.0  # MAILSPINE_ENV=test: nothing is sampled
    configure_default_pipeline(settings, database_url=None)
    raw = (DEMO_MAILBOX / "01-order-status-tent.eml").read_bytes()
    raw = raw.replace(b"Message-ID: <", f"Message-ID: <crm-{uuid.uuid4().hex[:8]}.".encode(), 1)
    crm = CrmClient(
        base_url=SANDBOX_CRM_URL, token="t", timeout_s=1, transport=httpx.MockTransport(_rejecting)
    )
    async with sandbox_services(settings, database_url=database_url) as sandbox:
        services = dataclasses.replace(sandbox, ctx=dataclasses.replace(sandbox.ctx, crm=crm))
        report = await ingest_messages(
            services.db, [MailboxMessage(ref="crm.eml", raw=raw)], account="online-test", queue="online-test"
        )
        [email_id] = report.new_ids
        assert await process_email(services, email_id=email_id) == "failed"
        assert await after_run(services, email_id=email_id) == []  # no job: only the signal
        assert await after_run(services, email_id=email_id) == []  # a second follow-up stores nothing new
        async with services.db.transaction() as session:
            scores = await online_eval.scores_for_email(session, email_id=email_id)
    await crm.aclose()
    assert [(s.name, s.value) for s in scores] == [("crm_write", 0.0)]
    assert scores[0].details == {"rejected": 1, "writes": 1}
    assert "Property values" not in json.dumps(scores[0].details)
