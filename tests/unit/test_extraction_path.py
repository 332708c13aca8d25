"""The whole extraction path on every demo email: gateway parse + guard → prompt → offline model.

The offline rules are tested on raw text elsewhere; this checks that what the gateway hands the
agent (new text, signature kept apart, quoted history removed) still carries the facts.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from agent.models.offline import OfflineChatModel
from agent.prompting import email_block
from agent.prompts import load_prompt
from agent.schemas import Extraction
from app.settings import REPO_ROOT
from gateway.mime import parse_message
from gateway.scan import guard

EXPECTED = json.loads((REPO_ROOT / "infra" / "demo" / "expected.json").read_text())
MODEL = OfflineChatModel().with_structured_output(Extraction)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_demo_email_facts_survive_the_gateway(name: str) -> None:
    raw = (REPO_ROOT / "infra" / "demo" / "mailbox" / name).read_bytes()
    email = guard(parse_message(raw, max_bytes=25 * 1024 * 1024), email_id=1)
    if email.verdict.decision == "quarantine":
        pytest.skip("quarantined by the gateway: never reaches a model")
    got = MODEL.invoke(load_prompt("extract").render(email_block=email_block(email)))
    assert isinstance(got, Extraction)
    want = EXPECTED[name]
    assert got.intent.value == want["intent"]
    assert got.order_ids == want["order_ids"]
    assert [(m.value, m.currency) for m in got.amounts] == [
        (Decimal(a["value"]), a["currency"]) for a in want["amounts"]
    ]
    assert got.language == want["language"]
    assert got.legal_threat == want["legal_threat"]
