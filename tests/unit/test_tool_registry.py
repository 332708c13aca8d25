"""The tool contract: one registry, node bindings that refuse, models shown only bound tools."""

from __future__ import annotations

import json
import logging

import pytest
from procrastinate.jobs import Job
from pydantic import ValidationError

from app.errors import ConfigurationError, ToolUnavailable
from app.settings_tools import ToolRate
from app.tasks import TRANSIENT
from tools.actions import Plan
from tools.base import RateLimited, ToolNotAllowed
from tools.registry import NODE_TOOLS, TOOLS, ToolBox, get, plan_schema


def test_every_tool_is_registered_once_with_a_full_contract() -> None:
    names = [t.name for t in TOOLS]
    assert len(names) == len(set(names))
    assert {
        "crm_upsert_contact",
        "crm_add_note",
        "draft_reply",
        "send_reply",
        "sender_history",
        "crm_find_contact",
    } <= set(names)
    for spec in TOOLS:
        assert spec.input_model is not None and spec.output_model is not None, spec.name
        assert spec.description and spec.scopes and spec.timeout_s > 0, spec.name


def test_crm_tools_use_separate_credentials_for_reading_and_writing() -> None:
    assert get("crm_upsert_contact").credential == get("crm_add_note").credential == "crm_write"
    assert get("crm_find_contact").credential == "crm_read"
    assert get("crm_find_contact").access == "read"
    assert get("send_reply").credential == "smtp"


def test_default_bindings_keep_writes_in_act_only() -> None:
    box = ToolBox()
    writes = {t.name for t in TOOLS if t.access == "write"}
    for node in NODE_TOOLS:
        bound = box.for_node(node).allowed
        assert not (bound & writes) or node == "act", node
    assert writes <= box.for_node("act").allowed
    assert box.for_node("extract").allowed == frozenset()
    assert box.for_node("plan").allowed == frozenset()
    assert box.for_node("no-such-node").allowed == frozenset()


async def test_a_read_only_node_is_refused_a_write_tool(caplog: pytest.LogCaptureFixture) -> None:
    history = ToolBox().for_node("history")
    called = []

    async def write() -> None:
        called.append(1)

    with caplog.at_level(logging.WARNING), pytest.raises(ToolNotAllowed) as refused:
        await history.call("crm_upsert_contact", write)
    assert called == []
    assert (refused.value.node, refused.value.tool) == ("history", "crm_upsert_contact")
    assert "crm_upsert_contact" in caplog.text and "history" in caplog.text
    with pytest.raises(ToolNotAllowed):
        history.effect("send_reply", lambda key, attempt: write())  # type: ignore[arg-type,return-value]


async def test_a_bound_node_calls_its_tool() -> None:
    act = ToolBox().for_node("act")

    async def upsert() -> str:
        return "ok"

    assert await act.call("crm_upsert_contact", upsert) == "ok"


def test_models_see_only_the_tools_bound_to_their_node() -> None:
    box = ToolBox(bindings={"act": ["draft_reply"]})
    assert [t["function"]["name"] for t in box.for_node("act").model_tools()] == ["draft_reply"]
    history = {t["function"]["name"] for t in box.for_node("history").model_tools()}
    assert {"sender_history", "crm_find_contact"} <= history
    assert all(get(name).access == "read" for name in history)
    assert box.for_node("extract").model_tools() == []
    draft = box.for_node("act").model_tools()[0]["function"]
    assert draft["description"] == get("draft_reply").description
    assert set(draft["parameters"]["properties"]) >= {"to", "subject", "body"}


def test_binding_overrides_replace_a_node_and_refuse_unknown_tools() -> None:
    box = ToolBox(bindings={"act": ["draft_reply"]})
    assert box.for_node("act").allowed == frozenset({"draft_reply"})
    assert box.nodes_for("crm_upsert_contact") == []
    assert box.nodes_for("draft_reply") == ["act"]
    with pytest.raises(ConfigurationError, match="crm_delete_everything"):
        ToolBox(bindings={"act": ["crm_delete_everything"]})


def test_rates_come_from_the_spec_unless_overridden() -> None:
    spec = get("crm_upsert_contact")
    rate = ToolBox().rate(spec)
    assert rate is not None and (rate.per_s, rate.burst) == (spec.rate_per_s, spec.burst)
    override = ToolBox(rates={"crm_upsert_contact": ToolRate(rate_per_s=0.5, burst=2)}).rate(spec)
    assert override is not None and (override.per_s, override.burst) == (0.5, 2)
    assert ToolBox().rate(get("draft_reply")) is None  # mailspine's own table: not limited by default


def test_rate_limited_is_retried_and_not_allowed_is_not() -> None:
    job = Job(id=1, queue="q", lock=None, queueing_lock=None, task_name="t", attempts=0, task_kwargs={})
    limited = RateLimited(tool="crm_add_note", retry_after_s=40.0)
    assert isinstance(limited, ToolUnavailable)
    decision = TRANSIENT.get_retry_decision(exception=limited, job=job)
    assert decision is not None  # retried, no sooner than the next token is due
    assert TRANSIENT.get_retry_decision(exception=ToolNotAllowed(node="history", tool="x"), job=job) is None


def test_the_planner_is_shown_only_the_actions_act_is_bound_to() -> None:
    everything = ToolBox().for_node("act").allowed
    assert plan_schema(everything) is Plan
    drafts_only = plan_schema(frozenset({"draft_reply"}))
    assert drafts_only.__name__ == "Plan"  # the name the model sees stays the same
    shown = json.dumps(drafts_only.model_json_schema())
    assert "draft_reply" in shown and "crm_upsert_contact" not in shown and "crm_add_note" not in shown
    reply = {"kind": "draft_reply", "to": "a@example.com", "subject": "s", "body": "b"}
    ok = drafts_only.model_validate({"actions": [reply], "rationale": "r"})
    assert Plan.model_validate(ok.model_dump()).actions[0].kind == "draft_reply"
    with pytest.raises(ValidationError):
        drafts_only.model_validate(
            {"actions": [{"kind": "crm_upsert_contact", "email": "a@example.com"}], "rationale": "r"}
        )
    read_only = plan_schema(frozenset({"crm_find_contact"}))
    assert read_only.model_validate({"actions": [], "rationale": "r"})
    with pytest.raises(ValidationError):
        read_only.model_validate({"actions": [reply], "rationale": "r"})
