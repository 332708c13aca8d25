"""Integration tests of the reference CRM's companies, tickets, deals, associations and paging.

Real PostgreSQL (a fresh migrated database per test) and the CRM app over HTTP (in-process ASGI),
like ``test_crm.py``.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import create_async_engine

from app.db import drop_database, fresh_database
from infra.crm.app import create_app
from infra.crm.dburl import to_sqlalchemy_url
from infra.crm.migrate import upgrade
from infra.crm.scopes import (
    ALL_SCOPES,
    COMPANIES_READ,
    COMPANIES_WRITE,
    CONTACTS_READ,
    CONTACTS_WRITE,
    DEALS_READ,
    DEALS_WRITE,
    NOTES_READ,
    TICKETS,
)
from infra.crm.tokens import create_token

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

V3 = "/crm/v3/objects"
V4 = "/crm/v4/objects"


@pytest.fixture
def crm_db_url(pg_server_url: str) -> Iterator[str]:
    """A migrated, empty CRM database on the session's Postgres server."""
    name = f"crm_objects_test_{secrets.token_hex(6)}"
    url = fresh_database(pg_server_url, name)
    try:
        upgrade(url)
        yield url
    finally:
        drop_database(pg_server_url, name)


@dataclass
class Crm:
    client: httpx.AsyncClient
    url: str
    tokens: dict[str, str]

    def auth(self, token: str = "all", **headers: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[token]}", **headers}

    async def count(self, table: str) -> int:
        async with await psycopg.AsyncConnection.connect(self.url) as connection:
            row = await (await connection.execute(f"SELECT count(*) FROM crm.{table}")).fetchone()
        assert row is not None
        return int(row[0])

    async def create(self, kind: str, properties: dict[str, Any], *, token: str = "all", **body: Any) -> str:
        response = await self.client.post(
            f"{V3}/{kind}", headers=self.auth(token), json={"properties": properties, **body}
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])


TOKENS = {
    "all": sorted(ALL_SCOPES),
    # Reads everything except tickets (HubSpot has no read-only ticket scope), writes nothing.
    "reader": [CONTACTS_READ, COMPANIES_READ, DEALS_READ, NOTES_READ],
    "contacts": [CONTACTS_READ, CONTACTS_WRITE],
    "tickets": [TICKETS, CONTACTS_READ],
    "deals": [DEALS_READ, DEALS_WRITE, CONTACTS_READ],
    "companies": [COMPANIES_READ, COMPANIES_WRITE],
}


@pytest_asyncio.fixture
async def crm(crm_db_url: str) -> AsyncIterator[Crm]:
    engine = create_async_engine(to_sqlalchemy_url(crm_db_url))
    try:
        tokens = {
            name: await create_token(bind=engine, name=name, scopes=scopes) for name, scopes in TOKENS.items()
        }
    finally:
        await engine.dispose()
    app = create_app(database_url=crm_db_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://crm.test") as client:
            yield Crm(client=client, url=crm_db_url, tokens=tokens)


def _assoc(to_id: str, type_id: int) -> dict[str, Any]:
    return {
        "to": {"id": to_id},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
    }


def _eq(name: str, value: str, operator: str = "EQ") -> dict[str, Any]:
    return {"filterGroups": [{"filters": [{"propertyName": name, "operator": operator, "value": value}]}]}


def _assert_error(response: httpx.Response, status: int, category: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "error" and body["category"] == category
    assert body["message"] and len(body["correlationId"]) == 36
    return dict(body)


SAMPLES: dict[str, dict[str, Any]] = {
    "companies": {"name": "Acme Analytics", "domain": "acme.example"},
    "tickets": {"subject": "Printer on fire", "hs_pipeline_stage": "1"},
    "deals": {"dealname": "Acme renewal", "dealstage": "qualifiedtobuy", "amount": "1200"},
}


async def test_company_crud_and_search(crm: Crm) -> None:
    created = await crm.client.post(
        f"{V3}/companies",
        headers=crm.auth(),
        json={"properties": {"name": "Acme Analytics", "domain": "HTTPS://Acme.Example/", "employees": 40}},
    )
    assert created.status_code == 201
    company = created.json()
    props = company["properties"]
    assert props["domain"] == "acme.example" and props["employees"] == "40"
    assert props["hs_object_id"] == company["id"]
    assert props["createdate"].endswith("Z") and props["hs_lastmodifieddate"].endswith("Z")
    await crm.create("companies", {"name": "Globex", "domain": "globex.example"})

    fetched = await crm.client.get(
        f"{V3}/companies/{company['id']}?properties=name", headers=crm.auth("reader")
    )
    assert fetched.status_code == 200
    assert fetched.json()["properties"]["name"] == "Acme Analytics"
    assert "domain" not in fetched.json()["properties"]

    patched = await crm.client.patch(
        f"{V3}/companies/{company['id']}",
        headers=crm.auth(),
        json={"properties": {"city": "Berlin", "employees": None}},
    )
    assert patched.status_code == 200
    assert (
        patched.json()["properties"].items()
        >= {"city": "Berlin", "employees": "", "name": "Acme Analytics"}.items()
    )
    assert patched.json()["updatedAt"] >= company["updatedAt"]

    async def search(body: dict[str, Any]) -> list[str]:
        response = await crm.client.post(f"{V3}/companies/search", headers=crm.auth("reader"), json=body)
        assert response.status_code == 200, response.text
        assert response.json()["total"] == len(response.json()["results"])
        return [item["properties"]["name"] for item in response.json()["results"]]

    assert await search(_eq("domain", "ACME.example")) == ["Acme Analytics"]
    assert await search(_eq("name", "analytics", "CONTAINS_TOKEN")) == ["Acme Analytics"]
    assert await search(_eq("name", "analy", "CONTAINS_TOKEN")) == [], "a token is a whole word"
    assert await search(_eq("domain", "*.example", "CONTAINS_TOKEN")) == ["Acme Analytics", "Globex"]
    in_filter = {"propertyName": "name", "operator": "IN", "values": ["globex", "nobody"]}
    assert await search({"filterGroups": [{"filters": [in_filter]}]}) == ["Globex"]

    _assert_error(await crm.client.get(f"{V3}/companies/999999", headers=crm.auth()), 404, "OBJECT_NOT_FOUND")
    _assert_error(await crm.client.get(f"{V3}/companies/abc", headers=crm.auth()), 404, "OBJECT_NOT_FOUND")
    missing = await crm.client.patch(
        f"{V3}/companies/999999", headers=crm.auth(), json={"properties": {"name": "x"}}
    )
    _assert_error(missing, 404, "OBJECT_NOT_FOUND")
    nameless = await crm.client.post(
        f"{V3}/companies", headers=crm.auth(), json={"properties": {"city": "Oslo"}}
    )
    _assert_error(nameless, 400, "VALIDATION_ERROR")
    read_only = await crm.client.post(
        f"{V3}/companies", headers=crm.auth(), json={"properties": {"name": "X", "hs_object_id": "7"}}
    )
    _assert_error(read_only, 400, "VALIDATION_ERROR")


async def test_ticket_lifecycle_with_contact(crm: Crm) -> None:
    contact_id = await crm.create("contacts", {"email": "ann@tickets.example"})
    created = await crm.client.post(
        f"{V3}/tickets",
        headers=crm.auth("tickets"),
        json={
            "properties": {"subject": "Refund request", "content": "Order 17", "hs_pipeline_stage": 1},
            "associations": [_assoc(contact_id, 16)],
        },
    )
    assert created.status_code == 201, created.text
    ticket = created.json()
    assert ticket["properties"].items() >= {"hs_pipeline": "0", "hs_pipeline_stage": "1"}.items()

    closed = await crm.client.patch(
        f"{V3}/tickets/{ticket['id']}",
        headers=crm.auth("tickets"),
        json={"properties": {"hs_pipeline_stage": "4"}},
    )
    assert closed.status_code == 200
    assert (
        closed.json()["properties"].items() >= {"hs_pipeline_stage": "4", "subject": "Refund request"}.items()
    )

    fetched = (
        await crm.client.get(
            f"{V3}/tickets/{ticket['id']}?associations=contacts", headers=crm.auth("tickets")
        )
    ).json()
    assert fetched["properties"]["hs_pipeline_stage"] == "4"
    assert fetched["associations"] == {
        "contacts": {"results": [{"id": contact_id, "type": "ticket_to_contact"}]}
    }

    by_stage = await crm.client.post(
        f"{V3}/tickets/search", headers=crm.auth("tickets"), json=_eq("hs_pipeline_stage", "4")
    )
    assert [item["id"] for item in by_stage.json()["results"]] == [ticket["id"]]

    for bad in ({"hs_pipeline_stage": "9"}, {"hs_pipeline": "other"}, {"hs_pipeline_stage": None}):
        response = await crm.client.patch(
            f"{V3}/tickets/{ticket['id']}", headers=crm.auth("tickets"), json={"properties": bad}
        )
        _assert_error(response, 400, "VALIDATION_ERROR")
    no_subject = await crm.client.post(
        f"{V3}/tickets", headers=crm.auth("tickets"), json={"properties": {"hs_pipeline_stage": "1"}}
    )
    _assert_error(no_subject, 400, "VALIDATION_ERROR")
    assert await crm.count("tickets") == 1


async def test_deal_lifecycle_with_contact_and_company(crm: Crm) -> None:
    contact_id = await crm.create("contacts", {"email": "bob@deals.example"})
    company_id = await crm.create("companies", {"name": "Initech"})
    created = await crm.client.post(
        f"{V3}/deals",
        headers=crm.auth(),
        json={
            "properties": {
                "dealname": "Initech seats",
                "dealstage": "appointmentscheduled",
                "amount": 1500.5,
            },
            "associations": [_assoc(contact_id, 3), _assoc(company_id, 341)],
        },
    )
    assert created.status_code == 201, created.text
    deal = created.json()
    assert deal["properties"].items() >= {"amount": "1500.5", "pipeline": "default"}.items()

    won = await crm.client.patch(
        f"{V3}/deals/{deal['id']}",
        headers=crm.auth("deals"),
        json={"properties": {"dealstage": "closedwon", "amount": "1750", "closedate": "2024-06-30"}},
    )
    assert won.status_code == 200
    expected = {"dealstage": "closedwon", "amount": "1750", "closedate": "2024-06-30T00:00:00.000Z"}
    assert won.json()["properties"].items() >= expected.items()

    fetched = await crm.client.get(
        f"{V3}/deals/{deal['id']}?associations=contacts,companies", headers=crm.auth()
    )
    associations = fetched.json()["associations"]
    assert associations["contacts"]["results"] == [{"id": contact_id, "type": "deal_to_contact"}]
    assert associations["companies"]["results"] == [{"id": company_id, "type": "deal_to_company"}]
    company_deals = await crm.client.get(
        f"{V4}/companies/{company_id}/associations/deals", headers=crm.auth()
    )
    assert company_deals.json()["results"] == [
        {
            "toObjectId": int(deal["id"]),
            "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 342, "label": None}],
        }
    ]

    for bad in ({"amount": "lots"}, {"dealstage": "won"}, {"closedate": "someday"}):
        response = await crm.client.patch(
            f"{V3}/deals/{deal['id']}", headers=crm.auth(), json={"properties": bad}
        )
        _assert_error(response, 400, "VALIDATION_ERROR")
    unnamed = await crm.client.post(
        f"{V3}/deals", headers=crm.auth(), json={"properties": {"dealstage": "closedwon"}}
    )
    _assert_error(unnamed, 400, "VALIDATION_ERROR")


@pytest.mark.parametrize("kind", ["companies", "tickets", "deals", "contacts", "notes"])
async def test_list_and_search_pages_walk_every_item_once(crm: Crm, kind: str) -> None:
    for index in range(7):
        if kind == "contacts":
            properties: dict[str, Any] = {"email": f"walk{index}@paging.example"}
        elif kind == "notes":
            properties = {"hs_note_body": f"note {index}", "hs_timestamp": "2024-05-01T10:00:00Z"}
        else:
            properties = dict(SAMPLES[kind])
        await crm.create(kind, properties)

    seen: list[str] = []
    after: str | None = None
    for _ in range(10):
        params = {"limit": "3", **({"after": after} if after else {})}
        page = await crm.client.get(f"{V3}/{kind}", params=params, headers=crm.auth())
        assert page.status_code == 200, page.text
        seen += [item["id"] for item in page.json()["results"]]
        if "paging" not in page.json():
            break
        after = page.json()["paging"]["next"]["after"]
    assert len(seen) == 7 and len(set(seen)) == 7 and seen == sorted(seen, key=int)

    searched: list[str] = []
    search_after: str | None = None
    for _ in range(10):
        body: dict[str, Any] = {"limit": 2, **({"after": search_after} if search_after else {})}
        page = await crm.client.post(f"{V3}/{kind}/search", headers=crm.auth(), json=body)
        assert page.status_code == 200, page.text
        assert page.json()["total"] == 7
        searched += [item["id"] for item in page.json()["results"]]
        if "paging" not in page.json():
            break
        search_after = page.json()["paging"]["next"]["after"]
    assert searched == seen


async def test_association_listing_pages_and_batch_read(crm: Crm) -> None:
    contact_id = await crm.create("contacts", {"email": "many@tickets.example"})
    ticket_ids = [
        await crm.create(
            "tickets", {**SAMPLES["tickets"], "subject": f"t{index}"}, associations=[_assoc(contact_id, 16)]
        )
        for index in range(5)
    ]
    await crm.create("tickets", SAMPLES["tickets"])  # not associated

    listed: list[int] = []
    after: str | None = None
    for _ in range(5):
        params = {"limit": "2", **({"after": after} if after else {})}
        page = await crm.client.get(
            f"{V4}/contacts/{contact_id}/associations/tickets", params=params, headers=crm.auth()
        )
        assert page.status_code == 200, page.text
        listed += [item["toObjectId"] for item in page.json()["results"]]
        assert all(item["associationTypes"][0]["typeId"] == 15 for item in page.json()["results"])
        if "paging" not in page.json():
            break
        after = page.json()["paging"]["next"]["after"]
    assert listed == [int(ticket_id) for ticket_id in ticket_ids]

    batch = await crm.client.post(
        f"{V3}/tickets/batch/read",
        headers=crm.auth("tickets"),
        json={"inputs": [{"id": ticket_ids[1]}, {"id": ticket_ids[0]}], "properties": ["subject"]},
    )
    assert batch.status_code == 200
    assert batch.json()["status"] == "COMPLETE" and "errors" not in batch.json()
    results = batch.json()["results"]
    assert [item["id"] for item in results] == [ticket_ids[1], ticket_ids[0]]
    assert results[0]["properties"]["subject"] == "t1"

    partial = await crm.client.post(
        f"{V3}/tickets/batch/read",
        headers=crm.auth(),
        json={"inputs": [{"id": ticket_ids[2]}, {"id": "999999"}]},
    )
    assert partial.status_code == 207
    assert [item["id"] for item in partial.json()["results"]] == [ticket_ids[2]]
    assert partial.json()["numErrors"] == 1
    assert partial.json()["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert partial.json()["errors"][0]["context"] == {"ids": ["999999"]}

    by_email = await crm.client.post(
        f"{V3}/contacts/batch/read",
        headers=crm.auth("reader"),
        json={"idProperty": "email", "inputs": [{"id": "MANY@tickets.example"}]},
    )
    assert [item["id"] for item in by_email.json()["results"]] == [contact_id]


async def test_timeline_of_a_contact(crm: Crm) -> None:
    """What a history tool reads: a contact's notes, tickets and deals, through its associations."""
    contact_id = await crm.create("contacts", {"email": "carol@timeline.example", "firstname": "Carol"})
    other_id = await crm.create("contacts", {"email": "dave@timeline.example"})
    note_id = await crm.create(
        "notes",
        {"hs_note_body": "Called about the invoice", "hs_timestamp": "2024-05-01T10:00:00Z"},
        associations=[_assoc(contact_id, 202)],
    )
    ticket_id = await crm.create("tickets", SAMPLES["tickets"], associations=[_assoc(contact_id, 16)])
    deal_id = await crm.create("deals", SAMPLES["deals"])
    await crm.create("tickets", SAMPLES["tickets"], associations=[_assoc(other_id, 16)])

    linked = await crm.client.put(
        f"{V4}/deal/{deal_id}/associations/default/contact/{contact_id}", headers=crm.auth("deals")
    )
    assert linked.status_code == 200, linked.text
    specs = {
        (item["from"]["id"], item["to"]["id"], item["associationSpec"]["associationTypeId"])
        for item in linked.json()["results"]
    }
    assert specs == {(deal_id, contact_id, 3), (contact_id, deal_id, 4)}
    note_to_ticket = await crm.client.put(
        f"{V4}/notes/{note_id}/associations/default/tickets/{ticket_id}", headers=crm.auth()
    )
    assert note_to_ticket.status_code == 200

    timeline: dict[str, list[dict[str, Any]]] = {}
    for kind, type_id in (("notes", 201), ("tickets", 15), ("deals", 4)):
        listed = await crm.client.get(f"{V4}/contacts/{contact_id}/associations/{kind}", headers=crm.auth())
        assert listed.status_code == 200, listed.text
        assert {item["associationTypes"][0]["typeId"] for item in listed.json()["results"]} == {type_id}
        inputs = [{"id": str(item["toObjectId"])} for item in listed.json()["results"]]
        read = await crm.client.post(f"{V3}/{kind}/batch/read", headers=crm.auth(), json={"inputs": inputs})
        assert read.status_code == 200
        timeline[kind] = read.json()["results"]
    assert [item["id"] for item in timeline["notes"]] == [note_id]
    assert timeline["notes"][0]["properties"]["hs_note_body"] == "Called about the invoice"
    assert [item["id"] for item in timeline["tickets"]] == [ticket_id]
    assert [item["id"] for item in timeline["deals"]] == [deal_id]

    embedded = await crm.client.get(
        f"{V3}/contacts/{contact_id}?associations=notes,tickets,deals,companies", headers=crm.auth()
    )
    assert embedded.json()["associations"] == {
        "notes": {"results": [{"id": note_id, "type": "contact_to_note"}]},
        "tickets": {"results": [{"id": ticket_id, "type": "contact_to_ticket"}]},
        "deals": {"results": [{"id": deal_id, "type": "contact_to_deal"}]},
    }
    plain = await crm.client.get(f"{V3}/contacts/{contact_id}", headers=crm.auth())
    assert "associations" not in plain.json()
    ticket_notes = await crm.client.get(f"{V4}/tickets/{ticket_id}/associations/notes", headers=crm.auth())
    assert [item["toObjectId"] for item in ticket_notes.json()["results"]] == [int(note_id)]
    legacy = await crm.client.get(f"{V3}/contacts/{contact_id}/associations/notes", headers=crm.auth())
    assert legacy.json()["results"][0]["toObjectId"] == note_id, "the v3 path keeps string ids"


async def test_association_changes_and_errors(crm: Crm) -> None:
    contact_id = await crm.create("contacts", {"email": "erin@assoc.example"})
    company_id = await crm.create("companies", {"name": "Umbrella"}, associations=[_assoc(contact_id, 280)])
    listed = await crm.client.get(f"{V4}/contact/{contact_id}/associations/company", headers=crm.auth())
    assert [item["toObjectId"] for item in listed.json()["results"]] == [int(company_id)]
    assert listed.json()["results"][0]["associationTypes"][0]["typeId"] == 279
    by_type_id = await crm.client.get(f"{V4}/0-1/{contact_id}/associations/0-2", headers=crm.auth())
    assert by_type_id.json() == listed.json()

    again = await crm.client.put(
        f"{V4}/companies/{company_id}/associations/default/contacts/{contact_id}", headers=crm.auth()
    )
    assert again.status_code == 200
    assert await crm.count("associations") == 2, "re-associating is a no-op"

    removed = await crm.client.delete(
        f"{V4}/contacts/{contact_id}/associations/companies/{company_id}", headers=crm.auth()
    )
    assert removed.status_code == 204
    assert await crm.count("associations") == 0
    company_contacts = await crm.client.get(
        f"{V4}/companies/{company_id}/associations/contacts", headers=crm.auth()
    )
    assert company_contacts.json() == {"results": []}

    cases = [
        (f"{V4}/widgets/1/associations/default/contacts/{contact_id}", 400, "VALIDATION_ERROR"),
        (f"{V4}/contacts/{contact_id}/associations/default/contacts/{contact_id}", 400, "VALIDATION_ERROR"),
        (f"{V4}/contacts/{contact_id}/associations/default/companies/999999", 404, "OBJECT_NOT_FOUND"),
        (f"{V4}/contacts/999999/associations/default/companies/{company_id}", 404, "OBJECT_NOT_FOUND"),
    ]
    for path, status, category in cases:
        _assert_error(await crm.client.put(path, headers=crm.auth()), status, category)
    missing_from = await crm.client.get(f"{V4}/contacts/999999/associations/tickets", headers=crm.auth())
    _assert_error(missing_from, 404, "OBJECT_NOT_FOUND")

    wrong_type = await crm.client.post(
        f"{V3}/tickets",
        headers=crm.auth(),
        json={"properties": SAMPLES["tickets"], "associations": [_assoc(contact_id, 202)]},
    )
    _assert_error(wrong_type, 400, "VALIDATION_ERROR")
    assert "16 (ticket to contact)" in wrong_type.json()["message"]
    orphan = await crm.client.post(
        f"{V3}/deals",
        headers=crm.auth(),
        json={"properties": SAMPLES["deals"], "associations": [_assoc("424242", 3), _assoc(company_id, 341)]},
    )
    body = _assert_error(orphan, 404, "OBJECT_NOT_FOUND")
    assert "424242" in body["message"] and body["errors"][0]["context"] == {"id": ["424242"]}
    assert await crm.count("deals") == 0 and await crm.count("associations") == 0

    contact_with_company = await crm.client.post(
        f"{V3}/contacts",
        headers=crm.auth(),
        json={"properties": {"email": "frank@assoc.example"}, "associations": [_assoc(company_id, 279)]},
    )
    assert contact_with_company.status_code == 201
    assert await crm.count("associations") == 2


async def test_concurrent_links_from_both_sides_do_not_deadlock(crm: Crm) -> None:
    contact_id = await crm.create("contacts", {"email": "gina@race.example"})
    ticket_id = await crm.create("tickets", SAMPLES["tickets"])
    paths = [
        f"{V4}/contacts/{contact_id}/associations/default/tickets/{ticket_id}",
        f"{V4}/tickets/{ticket_id}/associations/default/contacts/{contact_id}",
    ] * 4
    responses = await asyncio.gather(*(crm.client.put(path, headers=crm.auth()) for path in paths))
    assert {response.status_code for response in responses} == {200}
    assert await crm.count("associations") == 2


@pytest.mark.parametrize(
    ("token", "method", "path", "required"),
    [
        # a reader token writing
        ("reader", "POST", "/crm/v3/objects/companies", COMPANIES_WRITE),
        ("reader", "PATCH", "/crm/v3/objects/companies/1", COMPANIES_WRITE),
        ("reader", "POST", "/crm/v3/objects/deals", DEALS_WRITE),
        ("reader", "PATCH", "/crm/v3/objects/deals/1", DEALS_WRITE),
        ("reader", "POST", "/crm/v3/objects/tickets", TICKETS),
        ("reader", "PATCH", "/crm/v3/objects/tickets/1", TICKETS),
        # reading without the read scope
        ("reader", "GET", "/crm/v3/objects/tickets", TICKETS),
        ("reader", "GET", "/crm/v3/objects/tickets/1", TICKETS),
        ("reader", "POST", "/crm/v3/objects/tickets/search", TICKETS),
        ("reader", "POST", "/crm/v3/objects/tickets/batch/read", TICKETS),
        ("contacts", "GET", "/crm/v3/objects/companies", COMPANIES_READ),
        ("contacts", "GET", "/crm/v3/objects/deals/1", DEALS_READ),
        ("contacts", "POST", "/crm/v3/objects/deals/search", DEALS_READ),
        ("contacts", "POST", "/crm/v3/objects/companies/batch/read", COMPANIES_READ),
        ("contacts", "GET", "/crm/v3/objects/notes", NOTES_READ),
        ("tickets", "GET", "/crm/v3/objects/deals", DEALS_READ),
        ("companies", "POST", "/crm/v3/objects/contacts/batch/read", CONTACTS_READ),
        # associations: reads need both read scopes, writes the from-type's write scope
        ("contacts", "GET", "/crm/v4/objects/contacts/1/associations/tickets", TICKETS),
        ("contacts", "GET", "/crm/v3/objects/contacts/1?associations=deals", DEALS_READ),
        ("reader", "PUT", "/crm/v4/objects/contacts/1/associations/default/companies/1", CONTACTS_WRITE),
        ("deals", "PUT", "/crm/v4/objects/deals/1/associations/default/companies/1", COMPANIES_READ),
        ("reader", "DELETE", "/crm/v4/objects/deals/1/associations/contacts/1", DEALS_WRITE),
    ],
)
async def test_missing_scope_is_403(crm: Crm, token: str, method: str, path: str, required: str) -> None:
    bodies = {
        "POST": {"properties": {"name": "x"}, "inputs": [{"id": "1"}]},
        "PATCH": {"properties": {"name": "x"}},
    }
    response = await crm.client.request(method, path, headers=crm.auth(token), json=bodies.get(method))
    body = _assert_error(response, 403, "MISSING_SCOPES")
    assert body["errors"][0]["context"] == {"requiredScopes": [required]}
    assert sum([await crm.count(table) for table in ("companies", "deals", "tickets", "associations")]) == 0


async def test_scoped_tokens_can_do_their_job(crm: Crm) -> None:
    contact_id = await crm.create("contacts", {"email": "hal@scopes.example"}, token="contacts")
    ticket_id = await crm.create(
        "tickets", SAMPLES["tickets"], token="tickets", associations=[_assoc(contact_id, 16)]
    )
    assert (await crm.client.get(f"{V3}/tickets/{ticket_id}", headers=crm.auth("tickets"))).status_code == 200
    listed = await crm.client.get(
        f"{V4}/tickets/{ticket_id}/associations/contacts", headers=crm.auth("tickets")
    )
    assert listed.status_code == 200
    company_id = await crm.create("companies", {"name": "Hooli"}, token="companies")
    assert (
        await crm.client.get(f"{V3}/companies/{company_id}", headers=crm.auth("reader"))
    ).status_code == 200


@pytest.mark.parametrize("kind", ["companies", "tickets", "deals"])
async def test_idempotent_create(crm: Crm, kind: str) -> None:
    headers = crm.auth(**{"Idempotency-Key": f"create-{kind}"})
    payload = {"properties": SAMPLES[kind]}
    first = await crm.client.post(f"{V3}/{kind}", headers=headers, json=payload)
    second = await crm.client.post(f"{V3}/{kind}", headers=headers, json=payload)
    assert first.status_code == second.status_code == 201
    assert "idempotent-replayed" not in first.headers
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert await crm.count(kind) == 1

    changed = {"properties": {**SAMPLES[kind], "hs_custom": "different"}}
    reused = await crm.client.post(f"{V3}/{kind}", headers=headers, json=changed)
    _assert_error(reused, 422, "VALIDATION_ERROR")
    assert "Idempotency-Key" in reused.json()["message"]
    assert await crm.count(kind) == 1

    update_headers = crm.auth(**{"Idempotency-Key": f"update-{kind}"})
    update = {"properties": {"hs_custom": "v2"}}
    for _ in range(2):
        patched = await crm.client.patch(
            f"{V3}/{kind}/{first.json()['id']}", headers=update_headers, json=update
        )
        assert patched.status_code == 200
    assert patched.headers["Idempotent-Replayed"] == "true"


async def test_idempotent_association_and_concurrent_creates(crm: Crm) -> None:
    contact_id = await crm.create("contacts", {"email": "ivy@idem.example"})
    headers = crm.auth(**{"Idempotency-Key": "ticket-race"})
    body = {"properties": SAMPLES["tickets"], "associations": [_assoc(contact_id, 16)]}
    responses = await asyncio.gather(
        *(crm.client.post(f"{V3}/tickets", headers=headers, json=body) for _ in range(5))
    )
    assert {response.status_code for response in responses} == {201}
    assert len({response.json()["id"] for response in responses}) == 1
    assert await crm.count("tickets") == 1 and await crm.count("associations") == 2

    ticket_id = responses[0].json()["id"]
    put_headers = crm.auth(**{"Idempotency-Key": "link-once"})
    path = f"{V4}/contacts/{contact_id}/associations/default/tickets/{ticket_id}"
    first = await crm.client.put(path, headers=put_headers)
    replay = await crm.client.put(path, headers=put_headers)
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.json() == first.json()
    other = await crm.client.put(
        f"{V4}/tickets/{ticket_id}/associations/default/contacts/{contact_id}", headers=put_headers
    )
    _assert_error(other, 422, "VALIDATION_ERROR")


async def test_openapi_documents_the_objects(crm: Crm) -> None:
    spec = (await crm.client.get("/openapi.json")).json()
    paths = spec["paths"]
    for kind in ("companies", "tickets", "deals"):
        assert {"get", "post"} <= paths[f"{V3}/{kind}"].keys()
        assert "post" in paths[f"{V3}/{kind}/search"] and "post" in paths[f"{V3}/{kind}/batch/read"]
    assert "put" in paths[f"{V4}/{{from_type}}/{{from_id}}/associations/default/{{to_type}}/{{to_id}}"]
    schemas = spec["components"]["schemas"]
    assert {
        "TicketCreate",
        "DealCreate",
        "CompanyCreate",
        "V4AssociationsPage",
        "BatchReadResponse",
    } <= schemas.keys()
    assert schemas["TicketProperties"]["properties"]["hs_pipeline_stage"]["anyOf"][0]["enum"] == [
        "1",
        "2",
        "3",
        "4",
    ]
    assert "HTTPValidationError" not in schemas, "validation errors are documented as 400, as served"
    ticket_create = paths[f"{V3}/tickets"]["post"]
    assert ticket_create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/TicketCreate"
    )
    assert ticket_create["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/SimplePublicObject"
    )
