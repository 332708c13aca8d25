"""Push ingestion (``POST /v1/messages``): exactly once, like the pollers; scope, type and size checks."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from app.db import Database, libpq_url
from app.settings import DEV_GATEWAY_API_KEY, DEV_REVIEWER_API_KEY, Settings
from tests.integration.test_auth_flows import auth_settings, gateway, make_key

pytestmark = pytest.mark.integration
RFC822 = {"Content-Type": "message/rfc822"}


def _message(tag: str, body: str = "Please call me back.") -> bytes:
    return (
        f"From: Ada <ada@customer.example>\r\nTo: support@mailspine.test\r\nSubject: push {tag}\r\n"
        f"Message-ID: <{tag}@customer.example>\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\n\r\n{body}\r\n"
    ).encode()


def _rows(database_url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq_url(database_url)) as conn:
        return conn.execute(sql, args).fetchall()


def _jobs_for(database_url: str, email_id: int) -> int:
    rows = _rows(
        database_url,
        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'process_email'"
        " AND (args->>'email_id')::bigint = %s",
        email_id,
    )
    return int(rows[0][0])


async def test_new_then_duplicate_delivery(test_settings: Settings, database_url: str, db: Database) -> None:
    key = await make_key(db, "ingest")
    raw = _message(uuid.uuid4().hex)
    async with gateway(auth_settings(test_settings), database_url) as client:
        first = await client.post("/v1/messages", content=raw, headers={**RFC822, "X-API-Key": key})
        assert first.status_code == 202, first.text
        email_id = first.json()["email_id"]
        assert first.json() == {"email_id": email_id, "duplicate": False}
        again = await client.post(
            "/v1/messages?account=relay", content=raw, headers={**RFC822, "X-API-Key": key}
        )
        assert again.status_code == 200 and again.json() == {"email_id": email_id, "duplicate": True}
    [(account, status, stored, ref)] = _rows(
        database_url, "SELECT account, status, raw, source_ref FROM emails WHERE id = %s", email_id
    )
    assert (account, status, bytes(stored)) == ("push", "queued", raw)
    assert ref.startswith("push:key:")
    assert _jobs_for(database_url, email_id) == 1  # stored and queued once


async def test_account_parameter_and_bootstrap_gateway_key(
    test_settings: Settings, database_url: str
) -> None:
    async with gateway(auth_settings(test_settings), database_url) as client:
        answer = await client.post(
            "/v1/messages?account=relay-1",
            content=_message(uuid.uuid4().hex),
            headers={**RFC822, "X-API-Key": DEV_GATEWAY_API_KEY},
        )
        bad_account = await client.post(
            "/v1/messages?account=../etc",
            content=_message(uuid.uuid4().hex),
            headers={**RFC822, "X-API-Key": DEV_GATEWAY_API_KEY},
        )
    assert answer.status_code == 202
    assert _rows(database_url, "SELECT account FROM emails WHERE id = %s", answer.json()["email_id"]) == [
        ("relay-1",)
    ]
    assert bad_account.status_code == 422


async def test_wrong_scope_anonymous_and_wrong_type_are_refused(
    test_settings: Settings, database_url: str, db: Database
) -> None:
    tag = uuid.uuid4().hex
    reader = await make_key(db, "review:read", "emails:read")
    ingest = await make_key(db, "ingest")
    async with gateway(auth_settings(test_settings), database_url) as client:
        anonymous = await client.post("/v1/messages", content=_message(tag), headers=RFC822)
        wrong_scope = await client.post(
            "/v1/messages", content=_message(tag), headers={**RFC822, "X-API-Key": reader}
        )
        reviewer = await client.post(
            "/v1/messages", content=_message(tag), headers={**RFC822, "X-API-Key": DEV_REVIEWER_API_KEY}
        )
        as_text = await client.post(
            "/v1/messages", content=_message(tag), headers={"Content-Type": "text/plain", "X-API-Key": ingest}
        )
        empty = await client.post("/v1/messages", content=b"  \r\n", headers={**RFC822, "X-API-Key": ingest})
    assert anonymous.status_code == 401
    assert wrong_scope.status_code == reviewer.status_code == 403
    assert as_text.status_code == 415
    assert empty.status_code == 400
    assert (
        _rows(database_url, "SELECT id FROM emails WHERE message_id = %s", f"<{tag}@customer.example>") == []
    )


async def test_oversized_push_is_refused_and_large_one_stored_headers_only(
    test_settings: Settings, database_url: str, db: Database
) -> None:
    key = await make_key(db, "ingest")
    settings = auth_settings(test_settings, max_ingest_bytes=64 * 1024, max_request_bytes=4096)
    settings = settings.model_copy(update={"max_email_bytes": 8 * 1024})
    tag = uuid.uuid4().hex
    async with gateway(settings, database_url) as client:
        huge = await client.post(
            "/v1/messages", content=_message(tag, "x" * 70_000), headers={**RFC822, "X-API-Key": key}
        )
        # Over the app-wide 4 KiB but under the route's 64 KiB, and over max_email_bytes: kept, headers only.
        large = await client.post(
            "/v1/messages", content=_message(tag, "y" * 20_000), headers={**RFC822, "X-API-Key": key}
        )
    assert huge.status_code == 413
    assert large.status_code == 202, large.text
    [(stored,)] = _rows(database_url, "SELECT raw FROM emails WHERE id = %s", large.json()["email_id"])
    assert b"X-Mailspine-Truncated: original size" in bytes(stored) and b"yyyy" not in bytes(stored)
