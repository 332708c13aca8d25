"""The history node against the real reference CRM over HTTP (a ``mailspine crm serve`` process):
the CRM timeline with its sources, degrading on a token without read scopes, and a history that
reaches the planner with placeholders only."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from langgraph.runtime import Runtime

from agent.context import Context
from agent.models.factory import build_models
from agent.nodes.history import history, history_block
from agent.state import HistoryItem
from app.crm_admin import create_crm_token
from app.db import Database
from app.repo import emails, pii_vault
from app.settings import REPO_ROOT, Settings
from gateway.pii import redact_email
from gateway.scan import scan_raw
from tests.integration.test_history_semantic import mime, store_processed
from tests.support.stack import Stack, running_stack
from tools.crm import CrmClient
from tools.history_budget import approx_tokens

pytestmark = pytest.mark.integration
LOGS = REPO_ROOT / "var" / "test" / "logs" / "history"
READ_SCOPES = [
    "crm.objects.contacts.read",
    "crm.objects.notes.read",
    "tickets",
    "crm.objects.deals.read",
    "crm.objects.companies.read",
]
WRITE_SCOPES = [
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.objects.notes.write",
    "crm.objects.deals.read",
    "crm.objects.deals.write",
    "crm.objects.companies.write",
    "tickets",
]
CAROL = "carol.smith@acme-history.example"


@dataclass
class CrmStack:
    stack: Stack
    base_url: str
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def crm_stack(pg_server_url: str) -> Iterator[CrmStack]:
    with running_stack(pg_server_url, LOGS) as stack:
        tokens = {
            "reader": create_crm_token(stack.url, name="history-reader", scopes=READ_SCOPES),
            "writer": create_crm_token(stack.url, name="history-writer", scopes=WRITE_SCOPES),
            # Reads notes but not contacts: the contact lookup is refused (403).
            "no_contacts": create_crm_token(
                stack.url, name="history-notes", scopes=["crm.objects.notes.read"]
            ),
            # Reads contacts and notes only: tickets and deals are refused (403).
            "notes_only": create_crm_token(
                stack.url,
                name="history-partial",
                scopes=["crm.objects.contacts.read", "crm.objects.notes.read"],
            ),
        }
        yield CrmStack(stack=stack, base_url=f"http://127.0.0.1:{stack.crm_port}", tokens=tokens)


async def _create(http: httpx.AsyncClient, kind: str, properties: dict[str, Any], assoc: list[Any]) -> str:
    answer = await http.post(
        f"/crm/v3/objects/{kind}", json={"properties": properties, "associations": assoc}
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def _to(contact_id: str, type_id: int) -> list[dict[str, Any]]:
    return [
        {
            "to": {"id": contact_id},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
        }
    ]


@dataclass
class Seeded:
    note: str
    ticket: str
    deal: str
    other_ticket: str


@pytest.fixture(scope="module")
async def seeded(crm_stack: CrmStack) -> Seeded:
    headers = {"Authorization": f"Bearer {crm_stack.tokens['writer']}"}
    async with httpx.AsyncClient(base_url=crm_stack.base_url, headers=headers, timeout=10) as http:
        carol = await _create(
            http, "contacts", {"email": CAROL, "firstname": "Carol", "lastname": "Smith"}, []
        )
        dave = await _create(http, "contacts", {"email": "dave@elsewhere-history.example"}, [])
        note = await _create(
            http,
            "notes",
            {
                "hs_note_body": "<p>Carol Smith called from +44 20 7946 0958 about the double charge.</p>",
                "hs_timestamp": "2026-10-01T09:00:00Z",
            },
            _to(carol, 202),
        )
        ticket = await _create(
            http,
            "tickets",
            {
                "subject": "Carol Smith: duplicate charge",
                "hs_pipeline_stage": "3",
                "hs_ticket_priority": "HIGH",
            },
            _to(carol, 16),
        )
        deal = await _create(
            http,
            "deals",
            {"dealname": "Acme renewal 2027", "dealstage": "contractsent", "amount": "1750"},
            _to(carol, 3),
        )
        other_ticket = await _create(
            http, "tickets", {"subject": "Dave's ticket", "hs_pipeline_stage": "1"}, _to(dave, 16)
        )
    return Seeded(note=note, ticket=ticket, deal=deal, other_ticket=other_ticket)


@pytest.fixture
async def env(crm_stack: CrmStack) -> AsyncIterator[tuple[Database, Settings]]:
    settings = Settings(
        env="test", database_url=crm_stack.stack.url, crm_base_url=crm_stack.base_url, _env_file=None
    )  # type: ignore[call-arg]
    db = Database(crm_stack.stack.url)
    yield db, settings
    await db.dispose()


async def run_history(
    db: Database, settings: Settings, crm_base: str, token: str | None, email_id: int
) -> list[HistoryItem]:
    reader = CrmClient(base_url=crm_base, token=token, timeout_s=10) if token else None
    crm = CrmClient(base_url=crm_base, token=None, timeout_s=10)
    ctx = Context(db=db, models=build_models(settings), crm=crm, settings=settings, crm_reader=reader)
    try:
        # The node's own input: the email as the agent sees it, with placeholders.
        async with db.transaction() as session:
            row = await emails.get_email(session, email_id=email_id)
            assert row is not None
            raw = row.raw
        _, guarded = scan_raw(raw, email_id=email_id, max_bytes=settings.max_email_bytes)
        seen, _ = redact_email(guarded)
        out = await history({"email": seen}, Runtime(context=ctx))
        return list(out["history"])
    finally:
        await crm.aclose()
        if reader is not None:
            await reader.aclose()


async def carols_emails(db: Database, settings: Settings) -> int:
    """An earlier email and the current one from Carol; returns the current one's id."""
    tag = uuid.uuid4().hex[:6]
    await store_processed(
        db,
        settings,
        mime(
            CAROL,
            "Carol Smith",
            "Charge",
            f"Hi, Carol Smith here ({CAROL}), call me on +44 20 7946 0958 about the double charge {tag}.",
            message_id="<auto>",
        ),
        embed=False,
    )
    return await store_processed(
        db,
        settings,
        mime(
            CAROL,
            "Carol Smith",
            "Charge again",
            "I was charged twice again, please refund the double charge.",
            message_id="<auto>",
        ),
        embed=False,
    )


async def vault_values(db: Database, settings: Settings, email_ids: list[int]) -> set[str]:
    values: set[str] = set()
    async with db.transaction() as session:
        for email_id in email_ids:
            entries = await pii_vault.load(
                session, email_id=email_id, key=settings.pii.vault_key.get_secret_value()
            )
            values |= {v for _, v in entries.values()}
    return values


async def test_crm_timeline_notes_tickets_and_deals_with_sources_and_placeholders_only(
    crm_stack: CrmStack, seeded: Seeded, env: tuple[Database, Settings]
) -> None:
    db, settings = env
    current = await carols_emails(db, settings)
    items = await run_history(db, settings, crm_stack.base_url, crm_stack.tokens["reader"], current)

    by_source = {(i.source, i.ref) for i in items}
    assert ("crm.notes", f"note:{seeded.note}") in by_source
    assert ("crm.tickets", f"ticket:{seeded.ticket}") in by_source
    assert ("crm.deals", f"deal:{seeded.deal}") in by_source
    assert ("mailspine.emails", f"email:{current - 1}") in by_source
    assert f"ticket:{seeded.other_ticket}" not in {i.ref for i in items}, "another contact's ticket"
    ticket = next(i for i in items if i.source == "crm.tickets")
    assert "waiting on us" in ticket.summary and "priority high" in ticket.summary
    deal = next(i for i in items if i.source == "crm.deals")
    assert "contractsent" in deal.summary and "1750" in deal.summary

    # Placeholders only: no value from either email's vault, nor the CRM's own copy of them.
    secrets = await vault_values(db, settings, [current - 1, current]) | {CAROL, "Carol", "Smith", "7946"}
    assert {"Carol Smith", CAROL} <= secrets
    text = " ".join(i.summary for i in items) + history_block(items)
    assert sorted(s for s in secrets if s in text) == []
    note = next(i for i in items if i.source == "crm.notes")
    assert (
        note.summary.startswith("2026-10-01, note:")
        and "[PERSON_1]" in note.summary
        and "[PHONE]" in note.summary
    )

    # The same history under a tight budget: cut to fit, with the marker saying what was left out.
    tight = settings.model_copy(update={"history": settings.history.model_copy(update={"token_budget": 100})})
    small = await run_history(db, tight, crm_stack.base_url, crm_stack.tokens["reader"], current)
    lines = history_block(small).splitlines()
    assert len(small) < len(items) and small[-1].ref == "budget"
    assert sum(approx_tokens(line) for line in lines) <= 100
    assert small[0].source == "crm.tickets", "the open ticket ranks before the sender's emails and notes"


async def test_a_token_without_read_scopes_degrades_to_no_crm_history(
    crm_stack: CrmStack, seeded: Seeded, env: tuple[Database, Settings], caplog: pytest.LogCaptureFixture
) -> None:
    db, settings = env
    current = await carols_emails(db, settings)
    with caplog.at_level(logging.WARNING, logger="tools.history_crm"):
        items = await run_history(db, settings, crm_stack.base_url, crm_stack.tokens["no_contacts"], current)
    assert not [i for i in items if i.source.startswith("crm.")]
    assert [i.source for i in items if i.source == "mailspine.emails"], "the email history still comes"
    assert any(
        "CRM history unavailable (contact lookup: ToolAuthError)" in r.getMessage() for r in caplog.records
    )
    assert all(CAROL not in r.getMessage() for r in caplog.records)

    # Missing only the ticket and deal scopes: the notes still come, the rest degrades per type.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tools.history_crm"):
        partial = await run_history(db, settings, crm_stack.base_url, crm_stack.tokens["notes_only"], current)
    assert {i.source for i in partial if i.source.startswith("crm.")} == {"crm.notes"}
    assert {r.getMessage().split("(")[1].split(":")[0] for r in caplog.records} == {"tickets", "deals"}


async def test_no_reader_and_an_unreachable_crm_mean_no_crm_history(
    crm_stack: CrmStack, seeded: Seeded, env: tuple[Database, Settings]
) -> None:
    db, settings = env
    current = await carols_emails(db, settings)
    unset = await run_history(db, settings, crm_stack.base_url, None, current)
    down = await run_history(db, settings, "http://127.0.0.1:9", crm_stack.tokens["reader"], current)
    for items in (unset, down):
        assert not [i for i in items if i.source.startswith("crm.")]
        assert any(i.source == "mailspine.emails" for i in items)


async def test_a_free_mail_sender_gets_the_company_the_crm_associates_with_the_contact(
    crm_stack: CrmStack, env: tuple[Database, Settings]
) -> None:
    db, settings = env
    tag = uuid.uuid4().hex[:6]
    jane, colleague, stranger = (
        f"jane.{tag}@gmail.com",
        f"kim.{tag}@zeta-{tag}.example",
        f"lee.{tag}@gmail.com",
    )
    headers = {"Authorization": f"Bearer {crm_stack.tokens['writer']}"}
    async with httpx.AsyncClient(base_url=crm_stack.base_url, headers=headers, timeout=10) as http:
        contact = await _create(http, "contacts", {"email": jane}, [])
        await _create(http, "companies", {"name": "Zeta", "domain": f"zeta-{tag}.example"}, _to(contact, 280))
    from_colleague = await store_processed(
        db,
        settings,
        mime(colleague, "Kim Kay", "Q", "Please update our billing contact.", message_id="<auto>"),
        embed=False,
    )
    await store_processed(
        db, settings, mime(stranger, "Lee Lo", "Q", "Another gmail user.", message_id="<auto>"), embed=False
    )
    current = await store_processed(
        db, settings, mime(jane, "Jane Jo", "Q", "Is order 55 shipped yet?", message_id="<auto>"), embed=False
    )
    items = await run_history(db, settings, crm_stack.base_url, crm_stack.tokens["reader"], current)
    company = [(i.source, i.via, i.ref) for i in items if i.via == "company"]
    assert company == [("mailspine.emails", "company", f"email:{from_colleague}")]
    assert all(i.ref != f"email:{current - 1}" for i in items), "another gmail user is not the same company"

    # Without a CRM reader a free-mail sender has no company history at all.
    alone = await run_history(db, settings, crm_stack.base_url, None, current)
    assert [i for i in alone if i.via == "company"] == []
