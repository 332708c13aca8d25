"""Shadow runs: the candidate's form, the disarmed context, the graph without act, the comparison."""

from __future__ import annotations

import httpx
import pytest

from agent.context import Context
from agent.models.factory import build_models
from app.db import Database
from app.errors import ConfigurationError, ToolAuthError, ToolError
from app.settings import REPO_ROOT, Settings, SmtpAccount
from evals.shadow import _RefusingTransport, build_shadow_graph, compare, parse_candidate, shadow_context
from tools.actions import CrmUpsertContact
from tools.crm import CrmClient

SENDER = "pii-email-1@redacted.example"


def test_candidate_forms() -> None:
    assert parse_candidate("plan@1.0.0") == ("plan", "1.0.0")
    assert parse_candidate(" extract@staging ") == ("extract", "staging")
    assert parse_candidate("plan@1.1.1-draft.2") == ("plan", "1.1.1-draft.2")
    for bad in ("plan", "plan@latest", "judge@1.0.0", "Plan@1.0.0"):
        with pytest.raises(ConfigurationError):
            parse_candidate(bad)


async def test_the_shadow_context_cannot_reach_the_crm_or_send() -> None:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"results": [{"id": "1"}]})

    settings = Settings(  # type: ignore[call-arg]
        env="test",
        _env_file=None,
        var_dir=REPO_ROOT / "var" / "test",
        smtp=SmtpAccount(
            host="127.0.0.1", username="agent", password="secret", from_address="support@example.com"
        ),
    )
    crm = CrmClient(
        base_url="http://crm.test", token="real-token", timeout_s=1, transport=httpx.MockTransport(record)
    )
    reader = CrmClient(
        base_url="http://crm.test", token="read-token", timeout_s=1, transport=httpx.MockTransport(record)
    )
    db = Database("postgresql://nobody@127.0.0.1:1/none")  # never connected: only its identity matters
    ctx = Context(db=db, models=build_models(settings), crm=crm, settings=settings, crm_reader=reader)
    await crm.upsert_contact(CrmUpsertContact(email=SENDER), idempotency_key="k0")
    assert len(seen) == 1  # the production client does reach its CRM

    shadow = shadow_context(ctx)
    assert shadow.db is ctx.db and shadow.models is ctx.models
    assert shadow.settings.smtp is None and shadow.settings.imap_accounts == []
    assert shadow.crm is not crm and shadow.crm_reader is not reader
    with pytest.raises(ToolAuthError):
        await shadow.crm.upsert_contact(CrmUpsertContact(email=SENDER), idempotency_key="k1")
    assert shadow.crm_reader is not None
    with pytest.raises(ToolAuthError):
        await shadow.crm_reader.find_contact_id(SENDER)
    assert len(seen) == 1  # nothing more reached the CRM
    # Even a client with a credential refuses every request on the shadow transport.
    armed = CrmClient(base_url="http://crm.test", token="t", timeout_s=1, transport=_RefusingTransport())
    with pytest.raises(ToolError, match="shadow runs have no CRM"):
        await armed.upsert_contact(CrmUpsertContact(email=SENDER), idempotency_key="k2")
    for client in (crm, reader, armed, shadow.crm, shadow.crm_reader):
        await client.aclose()
    await db.dispose()


def test_the_shadow_graph_has_no_review_act_or_finalize() -> None:
    nodes = set(build_shadow_graph(None).get_graph().nodes)
    assert nodes == {"__start__", "extract", "plan", "risk", "__end__"}


def _output(intent: str, route: str, kinds: list[str], order_ids: list[str]) -> dict[str, object]:
    actions = [{"kind": k, "to": SENDER, "email": SENDER, "contact_email": SENDER} for k in kinds]
    return {
        "intent": intent,
        "route": route,
        "extraction": {"intent": intent, "order_ids": order_ids, "sender_email": SENDER, "language": "en"},
        "plan": {"actions": actions},
    }


def test_compare_reports_agreement_and_field_diffs() -> None:
    production = _output("order_status", "auto", ["crm_upsert_contact", "draft_reply"], ["NW-48213"])
    same = compare(
        production, _output("order_status", "auto", ["draft_reply", "crm_upsert_contact"], ["NW-48213"])
    )
    assert same == {"intent_agrees": True, "route_agrees": True, "actions_agree": True, "field_diffs": {}}
    other = compare(production, _output("complaint", "review", ["crm_upsert_contact"], []))
    assert not (other["intent_agrees"] or other["route_agrees"] or other["actions_agree"])
    assert other["field_diffs"] == {"order_ids": {"production": ["NW-48213"], "candidate": []}}
