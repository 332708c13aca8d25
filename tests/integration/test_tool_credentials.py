"""Per-tool credentials against the real reference CRM over HTTP (a separate process), and
``mailspine tools list`` checking them: the read token cannot write, each tool's credential is
reported configured and valid (or not), and no secret is ever printed."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.errors import ToolAuthError
from app.settings import get_settings
from infra.mail.smtp_sink import SmtpSink
from tests.integration.test_pipeline import LOGS
from tests.support.stack import Stack, running_stack
from tools.actions import CrmAddNote, CrmUpsertContact
from tools.crm import CrmClient
from tools.registry import CRM_READ_SCOPES

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(pg_server_url: str) -> Iterator[Stack]:
    with running_stack(pg_server_url, LOGS / "tool-credentials") as running:
        yield running


def base_url(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.crm_port}"


def client(stack: Stack, credential: str) -> CrmClient:
    return CrmClient(base_url=base_url(stack), token=stack.crm_tokens[credential], timeout_s=10)


async def test_the_read_token_gets_403_when_it_tries_to_write(stack: Stack) -> None:
    address = f"reader-{secrets.token_hex(4)}@example.com"
    reader = client(stack, "crm_read")
    try:
        with pytest.raises(ToolAuthError, match="403"):
            await reader.upsert_contact(
                CrmUpsertContact(email=address), idempotency_key=secrets.token_hex(16)
            )
        # The same write on the wire, to see the CRM's own answer.
        response = await reader._http.post(
            "/crm/v3/objects/contacts", json={"properties": {"email": address}}
        )
        assert response.status_code == 403
        assert response.json()["category"] == "MISSING_SCOPES"
        assert await reader.lookup_contact(address) == {"contact_id": None}  # reading is allowed
    finally:
        await reader.aclose()
    assert stack.sql("SELECT count(*) FROM crm.contacts WHERE email = %s", address) == [(0,)]


async def test_the_write_token_writes_and_the_read_token_then_reads_it(stack: Stack) -> None:
    address = f"writer-{secrets.token_hex(4)}@example.com"
    writer, reader = client(stack, "crm_write"), client(stack, "crm_read")
    try:
        created = await writer.upsert_contact(
            CrmUpsertContact(email=address), idempotency_key=secrets.token_hex(16)
        )
        note = CrmAddNote(contact_email=address, body="hello")
        await writer.add_note(note, idempotency_key=secrets.token_hex(16), timestamp="2026-12-01T10:00:00Z")
        assert await reader.lookup_contact(address) == {"contact_id": created["contact_id"]}
        with pytest.raises(ToolAuthError, match="403"):  # nor may it add notes
            await reader.add_note(
                note, idempotency_key=secrets.token_hex(16), timestamp="2026-12-01T10:00:00Z"
            )
    finally:
        await writer.aclose()
        await reader.aclose()


async def test_token_introspection_describes_only_real_tokens(stack: Stack) -> None:
    reader = client(stack, "crm_read")
    try:
        info = await reader.token_info()
        assert info is not None and sorted(info["scopes"]) == sorted(CRM_READ_SCOPES)
    finally:
        await reader.aclose()
    url = f"{base_url(stack)}/oauth/v2/private-apps/get/access-token-info"
    async with httpx.AsyncClient(timeout=10) as http:
        refused = await http.post(url, json={"tokenKey": "crm_pat_" + secrets.token_urlsafe(32)})
    assert refused.status_code == 401


# --- mailspine tools list ------------------------------------------------------------------
def tools_list(env: dict[str, str | None]) -> tuple[int, dict[str, dict[str, Any]], str]:
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["tools", "list", "--json"], env=env)
    finally:
        get_settings.cache_clear()
    rows = {row["name"]: row for row in json.loads(result.stdout)} if result.stdout.startswith("[") else {}
    return result.exit_code, rows, result.output


def base_env(stack: Stack, **credentials: str) -> dict[str, str | None]:
    """The CLI's environment: this stack's CRM, and only the given credentials (None unsets)."""
    env: dict[str, str | None] = {
        "MAILSPINE_ENV": "test",
        "MAILSPINE_CRM_BASE_URL": base_url(stack),
        "MAILSPINE_CRM_TOKEN": None,
        "MAILSPINE_SMTP": None,
        "MAILSPINE_TOOLS__CREDENTIALS__CRM_WRITE": None,
        "MAILSPINE_TOOLS__CREDENTIALS__CRM_READ": None,
        "MAILSPINE_TOOLS__CREDENTIALS__SMTP": None,
    }
    env.update(
        {f"MAILSPINE_TOOLS__CREDENTIALS__{name.upper()}": value for name, value in credentials.items()}
    )
    return env


def test_tools_list_shows_configured_and_valid_credentials(stack: Stack) -> None:
    code, rows, output = tools_list(base_env(stack, **stack.crm_tokens))
    assert code == 0, output
    for tool in ("crm_upsert_contact", "crm_add_note", "crm_find_contact"):
        assert (rows[tool]["configured"], rows[tool]["valid"]) == ("yes", "yes"), rows[tool]
    assert rows["crm_upsert_contact"]["nodes"] == ["act"] and rows["crm_find_contact"]["nodes"] == ["history"]
    assert rows["crm_find_contact"]["credential"] == "crm_read"
    assert (rows["draft_reply"]["configured"], rows["draft_reply"]["valid"]) == ("n/a", "n/a")
    assert (rows["send_reply"]["configured"], rows["send_reply"]["valid"]) == ("no", "n/a")
    assert all(token not in output for token in stack.crm_tokens.values())


def test_tools_list_reports_a_bad_or_underscoped_token_as_invalid(stack: Stack) -> None:
    bogus = "crm_pat_" + secrets.token_urlsafe(32)
    code, rows, output = tools_list(base_env(stack, crm_write=stack.crm_tokens["crm_write"], crm_read=bogus))
    assert code == 1
    assert (rows["crm_find_contact"]["configured"], rows["crm_find_contact"]["valid"]) == ("yes", "no")
    assert rows["crm_upsert_contact"]["valid"] == "yes"
    assert bogus not in output
    # The read-only token in the write tools' place: real, but without their scopes.
    code, rows, _ = tools_list(base_env(stack, crm_write=stack.crm_tokens["crm_read"]))
    assert code == 1
    assert rows["crm_upsert_contact"]["valid"] == "no"
    assert "crm.objects.contacts.write" in rows["crm_upsert_contact"]["detail"]
    assert (rows["crm_find_contact"]["configured"], rows["crm_find_contact"]["valid"]) == ("no", "n/a")


def test_tools_list_falls_back_to_the_legacy_crm_token(stack: Stack) -> None:
    env = base_env(stack) | {"MAILSPINE_CRM_TOKEN": stack.crm_tokens["crm_write"]}
    code, rows, _ = tools_list(env)
    assert code == 0 and rows["crm_add_note"]["valid"] == "yes"


def test_tools_list_logs_in_to_smtp_with_the_tools_own_credential(stack: Stack, smtp_sink: SmtpSink) -> None:
    account = {
        "host": smtp_sink.host,
        "port": smtp_sink.port,
        "security": "none",
        "username": smtp_sink.username,
        "password": smtp_sink.password,
        "from_address": "support@mailspine.test",
    }
    env = base_env(stack) | {"MAILSPINE_SMTP": json.dumps(account)}
    code, rows, output = tools_list(env)
    assert code == 0, output
    assert (rows["send_reply"]["configured"], rows["send_reply"]["valid"]) == ("yes", "yes")
    # The provider's smtp credential replaces the configured password: a wrong one is invalid.
    wrong = "wrong-" + secrets.token_hex(6)
    code, rows, output = tools_list(env | {"MAILSPINE_TOOLS__CREDENTIALS__SMTP": wrong})
    assert code == 1
    assert rows["send_reply"]["valid"] == "no"
    assert wrong not in output and str(smtp_sink.password) not in output
