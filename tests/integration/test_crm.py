"""Integration tests of the reference CRM (infra/crm) against a real PostgreSQL."""

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
from infra.crm.app import TITLE, create_app
from infra.crm.dburl import to_sqlalchemy_url
from infra.crm.migrate import head_revision, upgrade
from infra.crm.scopes import ALL_SCOPES, CONTACTS_READ, CONTACTS_WRITE, NOTES_READ
from infra.crm.tokens import create_token, revoke_token

pytestmark = pytest.mark.integration

CONTACTS = "/crm/v3/objects/contacts"
NOTES = "/crm/v3/objects/notes"


@pytest.fixture
def crm_db_url(pg_server_url: str) -> Iterator[str]:
    """A migrated, empty CRM database on the session's Postgres server."""
    name = f"crm_test_{secrets.token_hex(6)}"
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

    async def scalar(self, query: str, *params: Any) -> Any:
        async with await psycopg.AsyncConnection.connect(self.url) as connection:
            row = await (await connection.execute(query, params)).fetchone()
        assert row is not None
        return row[0]


@pytest_asyncio.fixture
async def crm(crm_db_url: str) -> AsyncIterator[Crm]:
    engine = create_async_engine(to_sqlalchemy_url(crm_db_url))
    try:
        tokens = {
            "all": await create_token(bind=engine, name="all", scopes=sorted(ALL_SCOPES)),
            "contacts_read": await create_token(bind=engine, name="reader", scopes=[CONTACTS_READ]),
            "notes_read": await create_token(bind=engine, name="notes", scopes=[NOTES_READ, CONTACTS_WRITE]),
        }
    finally:
        await engine.dispose()
    app = create_app(database_url=crm_db_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://crm.test") as client:
            yield Crm(client=client, url=crm_db_url, tokens=tokens)


def _note(body: str, *contact_ids: str) -> dict[str, Any]:
    return {
        "properties": {"hs_note_body": body, "hs_timestamp": "2024-05-01T10:00:00Z"},
        "associations": [
            {
                "to": {"id": contact_id},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202}],
            }
            for contact_id in contact_ids
        ],
    }


async def _create_contact(
    crm: Crm, email: str, *, headers: dict[str, str] | None = None, **properties: str
) -> httpx.Response:
    body = {"properties": {"email": email, **properties}}
    return await crm.client.post(CONTACTS, headers=headers or crm.auth(), json=body)


def _assert_hubspot_error(body: dict[str, Any], category: str) -> None:
    assert body["status"] == "error"
    assert body["category"] == category
    assert body["message"]
    assert len(body["correlationId"]) == 36
    assert isinstance(body["errors"], list)


def test_database_url_conversion() -> None:
    assert to_sqlalchemy_url("postgresql://u@h:5432/db") == "postgresql+psycopg://u@h:5432/db"
    assert to_sqlalchemy_url("postgresql://postgres:@/db?host=/run/pg").startswith("postgresql+psycopg://")
    with pytest.raises(ValueError):
        to_sqlalchemy_url("mysql://u@h/db")


@pytest.mark.asyncio
async def test_health_docs_and_unauthenticated(crm: Crm) -> None:
    assert (await crm.client.get("/health")).json() == {"status": "ok"}
    assert (await crm.client.get("/openapi.json")).json()["info"]["title"] == TITLE
    assert TITLE == "mailspine reference CRM (HubSpot v3 subset)"
    bad: tuple[dict[str, str], ...] = (
        {},
        {"Authorization": "Bearer crm_pat_not-a-real-token"},
        {"Authorization": "Basic eDp5"},
    )
    for headers in bad:
        response = await crm.client.get(f"{CONTACTS}/1", headers=headers)
        assert response.status_code == 401
        _assert_hubspot_error(response.json(), "INVALID_AUTHENTICATION")


@pytest.mark.asyncio
async def test_revoked_token_is_rejected(crm: Crm) -> None:
    assert (await crm.client.get(CONTACTS, headers=crm.auth("contacts_read"))).status_code == 200
    engine = create_async_engine(to_sqlalchemy_url(crm.url))
    try:
        assert await revoke_token(bind=engine, token=crm.tokens["contacts_read"]) is True
        assert await revoke_token(bind=engine, token=crm.tokens["contacts_read"]) is False
    finally:
        await engine.dispose()
    assert (await crm.client.get(CONTACTS, headers=crm.auth("contacts_read"))).status_code == 401
    stored = await crm.scalar("SELECT count(*) FROM crm.tokens WHERE token_sha256 = %s", crm.tokens["all"])
    assert stored == 0, "only the SHA-256 of a token is stored"


@pytest.mark.asyncio
async def test_missing_scope_is_403_with_hubspot_body(crm: Crm) -> None:
    response = await crm.client.post(
        CONTACTS, json={"properties": {"email": "x@y.example"}}, headers=crm.auth("contacts_read")
    )
    assert response.status_code == 403
    body = response.json()
    _assert_hubspot_error(body, "MISSING_SCOPES")
    assert body["errors"][0]["context"] == {"requiredScopes": [CONTACTS_WRITE]}
    notes = await crm.client.get(f"{NOTES}/1", headers=crm.auth("contacts_read"))
    assert notes.status_code == 403


@pytest.mark.asyncio
async def test_contact_create_get_patch(crm: Crm) -> None:
    created = await crm.client.post(
        CONTACTS,
        headers=crm.auth(),
        json={
            "properties": {"email": "Ada@Example.COM", "firstname": "Ada", "lastname": "L", "company": "AE"}
        },
    )
    assert created.status_code == 201
    contact = created.json()
    assert contact["properties"]["email"] == "ada@example.com"
    assert contact["archived"] is False and contact["createdAt"].endswith("Z")
    contact_id = contact["id"]

    fetched = await crm.client.get(f"{CONTACTS}/{contact_id}", headers=crm.auth("contacts_read"))
    assert fetched.json()["properties"]["company"] == "AE"
    by_email = await crm.client.get(f"{CONTACTS}/ADA@example.com?idProperty=email", headers=crm.auth())
    assert by_email.json()["id"] == contact_id

    patched = await crm.client.patch(
        f"{CONTACTS}/{contact_id}",
        headers=crm.auth(),
        json={"properties": {"company": "Analytical Engines", "phone": 123}},
    )
    assert patched.status_code == 200
    expected = {"company": "Analytical Engines", "phone": "123", "firstname": "Ada"}
    assert patched.json()["properties"].items() >= expected.items()

    duplicate = await _create_contact(crm, "ada@example.com")
    assert duplicate.status_code == 409
    _assert_hubspot_error(duplicate.json(), "CONFLICT")
    assert f"Existing ID: {contact_id}" in duplicate.json()["message"]

    other = (await _create_contact(crm, "b@e.example")).json()
    clash = await crm.client.patch(
        f"{CONTACTS}/{other['id']}", headers=crm.auth(), json={"properties": {"email": "ada@example.com"}}
    )
    assert clash.status_code == 409

    missing = await crm.client.get(f"{CONTACTS}/999999", headers=crm.auth())
    assert missing.status_code == 404
    _assert_hubspot_error(missing.json(), "OBJECT_NOT_FOUND")
    invalid = await crm.client.post(CONTACTS, headers=crm.auth(), json={"properties": {"email": "nope"}})
    assert invalid.status_code == 400
    _assert_hubspot_error(invalid.json(), "VALIDATION_ERROR")


@pytest.mark.asyncio
async def test_search_and_list_paging(crm: Crm) -> None:
    for index in range(5):
        properties = {"email": f"p{index}@search.example", "company": "Acme" if index % 2 else "Other"}
        response = await crm.client.post(CONTACTS, headers=crm.auth(), json={"properties": properties})
        assert response.status_code == 201

    def eq(name: str, value: str) -> dict[str, Any]:
        return {"filterGroups": [{"filters": [{"propertyName": name, "operator": "EQ", "value": value}]}]}

    by_email = (
        await crm.client.post(
            f"{CONTACTS}/search",
            headers=crm.auth("contacts_read"),
            json={**eq("email", "P3@Search.Example"), "limit": 10},
        )
    ).json()
    assert by_email["total"] == 1
    assert by_email["results"][0]["properties"]["email"] == "p3@search.example"
    by_company = (
        await crm.client.post(
            f"{CONTACTS}/search", headers=crm.auth(), json={**eq("company", "acme"), "limit": 1}
        )
    ).json()
    assert by_company["total"] == 2 and len(by_company["results"]) == 1
    assert by_company["paging"]["next"]["after"] == "1"

    seen: list[str] = []
    after: str | None = None
    while True:
        params = {"limit": "2", **({"after": after} if after else {})}
        page = (await crm.client.get(CONTACTS, params=params, headers=crm.auth())).json()
        seen += [item["id"] for item in page["results"]]
        if "paging" not in page:
            break
        after = page["paging"]["next"]["after"]
    assert len(seen) == 5 and len(set(seen)) == 5 and seen == sorted(seen, key=int)


@pytest.mark.asyncio
async def test_batch_upsert_creates_then_merges(crm: Crm) -> None:
    first = await crm.client.post(
        f"{CONTACTS}/batch/upsert",
        headers=crm.auth(),
        json={
            "inputs": [
                {
                    "idProperty": "email",
                    "id": "Up@Sert.example",
                    "properties": {"firstname": "Up", "company": "A"},
                },
                {"idProperty": "email", "id": "two@sert.example", "properties": {"firstname": "Two"}},
            ]
        },
    )
    assert first.status_code == 200
    body = first.json()
    assert body["status"] == "COMPLETE"
    assert [item["new"] for item in body["results"]] == [True, True]
    upsert_id = body["results"][0]["id"]

    second = await crm.client.post(
        f"{CONTACTS}/batch/upsert",
        headers=crm.auth(),
        json={
            "inputs": [
                {
                    "idProperty": "email",
                    "id": "up@sert.example",
                    "properties": {"company": "B", "lastname": "Sert"},
                },
            ]
        },
    )
    merged = second.json()["results"][0]
    assert merged["new"] is False and merged["id"] == upsert_id
    expected = {"firstname": "Up", "company": "B", "lastname": "Sert", "email": "up@sert.example"}
    assert merged["properties"].items() >= expected.items()
    assert await crm.scalar("SELECT count(*) FROM crm.contacts") == 2


@pytest.mark.asyncio
async def test_note_with_association(crm: Crm) -> None:
    contact_id = (await _create_contact(crm, "n@notes.example")).json()["id"]
    created = await crm.client.post(NOTES, headers=crm.auth(), json=_note("Called about invoice", contact_id))
    assert created.status_code == 201
    note = created.json()
    assert note["properties"]["hs_note_body"] == "Called about invoice"
    assert note["properties"]["hs_timestamp"] == "2024-05-01T10:00:00.000Z"

    fetched = await crm.client.get(f"{NOTES}/{note['id']}", headers=crm.auth("notes_read"))
    assert fetched.status_code == 200 and fetched.json()["id"] == note["id"]
    listed = await crm.client.get(
        f"{CONTACTS}/{contact_id}/associations/notes", headers=crm.auth("notes_read")
    )
    assert listed.status_code == 200
    [association] = listed.json()["results"]
    assert association["toObjectId"] == note["id"]
    assert association["associationTypes"][0]["typeId"] == 201

    unknown = await crm.client.post(NOTES, headers=crm.auth(), json=_note("orphan", "987654"))
    assert unknown.status_code == 404
    _assert_hubspot_error(unknown.json(), "OBJECT_NOT_FOUND")
    assert "987654" in unknown.json()["message"]
    assert await crm.scalar("SELECT count(*) FROM crm.notes") == 1


@pytest.mark.asyncio
async def test_idempotent_replay_writes_once(crm: Crm) -> None:
    headers = crm.auth(**{"Idempotency-Key": "create-once"})
    payload = {"properties": {"email": "once@idem.example", "firstname": "Once"}}
    first = await crm.client.post(CONTACTS, headers=headers, json=payload)
    second = await crm.client.post(CONTACTS, headers=headers, json=payload)
    assert first.status_code == second.status_code == 201
    assert "idempotent-replayed" not in first.headers
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert await crm.scalar("SELECT count(*) FROM crm.contacts") == 1

    contact_id = first.json()["id"]
    note_headers = crm.auth(**{"Idempotency-Key": "note-once"})
    for _ in range(3):
        response = await crm.client.post(NOTES, headers=note_headers, json=_note("once", contact_id))
        assert response.status_code == 201
    assert await crm.scalar("SELECT count(*) FROM crm.notes") == 1


@pytest.mark.asyncio
async def test_idempotency_key_with_different_request_is_422(crm: Crm) -> None:
    headers = crm.auth(**{"Idempotency-Key": "reused"})
    first = await _create_contact(crm, "a@reuse.example", headers=headers)
    assert first.status_code == 201
    other = await _create_contact(crm, "b@reuse.example", headers=headers)
    assert other.status_code == 422
    _assert_hubspot_error(other.json(), "VALIDATION_ERROR")
    assert "Idempotency-Key" in other.json()["message"]
    assert await crm.scalar("SELECT count(*) FROM crm.contacts") == 1

    await crm.scalar("UPDATE crm.idempotency_keys SET created_at = now() - interval '25 hours' RETURNING 1")
    expired = await _create_contact(crm, "b@reuse.example", headers=headers)
    assert expired.status_code == 201, "keys older than 24h are reclaimed"


@pytest.mark.asyncio
async def test_concurrent_duplicates_write_once(crm: Crm) -> None:
    contact_id = (await _create_contact(crm, "c@race.example")).json()["id"]
    headers = crm.auth(**{"Idempotency-Key": "race"})
    responses = await asyncio.gather(
        *(crm.client.post(NOTES, headers=headers, json=_note("race", contact_id)) for _ in range(6))
    )
    assert {response.status_code for response in responses} == {201}
    assert len({response.json()["id"] for response in responses}) == 1
    assert sum("idempotent-replayed" not in response.headers for response in responses) == 1
    assert await crm.scalar("SELECT count(*) FROM crm.notes") == 1


@pytest.mark.asyncio
async def test_migrations_rerun_is_noop(crm: Crm) -> None:
    assert (await _create_contact(crm, "keep@mig.example")).status_code == 201
    await asyncio.to_thread(upgrade, crm.url)
    assert await crm.scalar("SELECT string_agg(version_num, ',') FROM crm.alembic_version") == head_revision()
    assert await crm.scalar("SELECT count(*) FROM crm.contacts") == 1
