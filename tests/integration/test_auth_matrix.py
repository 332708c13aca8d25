"""The authorization matrix: every route x every kind of caller -> 401, 403 or allowed.

The expected permission of each route is written out here (not read from the code under test),
and the test fails if the app has a route this table does not list.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from app.db import Database
from app.settings import DEV_GATEWAY_API_KEY, DEV_REVIEWER_API_KEY, Settings
from gateway.auth_scopes import ROLE_SCOPES, SCOPES
from tests.integration.test_auth_flows import (
    PASSWORD,
    auth_settings,
    bearer,
    gateway,
    login,
    make_key,
    make_user,
)

pytestmark = pytest.mark.integration

PUBLIC, ANY, USER = "public", "any authenticated", "signed-in user"
EML = b"From: a@b.example\r\nTo: c@d.example\r\nSubject: matrix\r\nMessage-ID: <%s@matrix>\r\n\r\nhi\r\n"

# (method, path) -> the scope it needs, or PUBLIC / ANY / USER.
EXPECTED: dict[tuple[str, str], str] = {
    ("POST", "/v1/auth/login"): PUBLIC,
    ("POST", "/v1/auth/refresh"): PUBLIC,
    ("POST", "/v1/auth/oidc"): PUBLIC,
    ("POST", "/v1/auth/logout"): USER,
    ("GET", "/v1/auth/me"): ANY,
    ("GET", "/v1/reviews"): "review:read",
    ("GET", "/v1/reviews/{review_id}"): "review:read",
    ("POST", "/v1/reviews/{review_id}/decision"): "review:write",
    ("GET", "/v1/emails"): "emails:read",
    ("GET", "/v1/stats"): "stats:read",
    ("POST", "/v1/messages"): "ingest",
    ("GET", "/v1/admin/users"): "admin",
    ("POST", "/v1/admin/users"): "admin",
    ("PATCH", "/v1/admin/users/{user_id}"): "admin",
    ("GET", "/v1/admin/keys"): "admin",
    ("POST", "/v1/admin/keys"): "admin",
    ("DELETE", "/v1/admin/keys/{key_id}"): "admin",
    # The dashboard API (gateway/routes_runs.py, routes_traces, routes_evals, routes_prompts, routes_quality).
    ("GET", "/v1/runs"): "emails:read",
    ("GET", "/v1/emails/{email_id}/timeline"): "emails:read",
    ("GET", "/v1/traces/{trace_id}"): "emails:read",
    ("GET", "/v1/evals/runs"): "stats:read",
    ("GET", "/v1/evals/runs/{eval_run_id}"): "stats:read",
    ("GET", "/v1/evals/diff"): "stats:read",
    ("GET", "/v1/prompts"): "stats:read",
    ("GET", "/v1/prompts/{name}/diff"): "stats:read",
    ("GET", "/v1/prompts/{name}/{version}"): "stats:read",
    ("POST", "/v1/prompts/{name}/drafts"): "admin",
    ("POST", "/v1/prompts/{name}/promote"): "admin",
    ("POST", "/v1/prompts/{name}/rollback"): "admin",
    ("GET", "/v1/prompts/{name}/{version}/evals"): "stats:read",
    ("POST", "/v1/prompts/{name}/{version}/evals"): "admin",
    ("GET", "/v1/quality/online"): "stats:read",
    ("GET", "/v1/quality/cost"): "stats:read",
    ("GET", "/v1/quality/ops"): "stats:read",
    ("GET", "/metrics"): "stats:read",
}
NOT_CHECKED = {"/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


class Caller:
    def __init__(self, name: str, kind: str, scopes: frozenset[str], headers: dict[str, str]) -> None:
        self.name, self.kind, self.scopes, self.headers = name, kind, scopes, headers


async def _callers(client: httpx.AsyncClient, db: Database) -> list[Caller]:
    callers = [Caller("anonymous", "none", frozenset(), {})]
    for role in ("reviewer", "admin", "auditor"):
        token = (await login(client, await make_user(db, role)))["access_token"]
        callers.append(Caller(f"user:{role}", "user", frozenset(ROLE_SCOPES[role]), bearer(token)))  # type: ignore[index]
    for scope in SCOPES:
        callers.append(
            Caller(f"key:{scope}", "key", frozenset({scope}), {"X-API-Key": await make_key(db, scope)})
        )
    callers.append(
        Caller(
            "bootstrap:reviewer",
            "key",
            frozenset(ROLE_SCOPES["reviewer"]),
            {"X-API-Key": DEV_REVIEWER_API_KEY},
        )
    )
    callers.append(
        Caller("bootstrap:gateway", "key", frozenset({"ingest"}), {"X-API-Key": DEV_GATEWAY_API_KEY})
    )
    return callers


async def _request(
    client: httpx.AsyncClient, db: Database, method: str, path: str, caller: Caller
) -> httpx.Response:
    """One harmless, well-formed request per route (allowed ones answer 2xx or 404)."""
    headers = dict(caller.headers)
    body: dict[str, Any] = {}
    if path == "/v1/auth/login":
        body["json"] = {"email": await make_user(db, "auditor"), "password": PASSWORD}
    elif path == "/v1/auth/refresh":
        body["json"] = {
            "refresh_token": (await login(client, await make_user(db, "auditor")))["refresh_token"]
        }
    elif path == "/v1/auth/oidc":
        body["json"] = {"id_token": "a.b.c"}
    elif path == "/v1/auth/logout" and caller.kind == "user":
        # A session of its own: logging out must not end the caller's session used by the other rows.
        token = (await login(client, await make_user(db, caller.name.split(":")[1])))["access_token"]
        headers = bearer(token)
    elif path.endswith("/decision"):
        body["json"] = {"decision": "reject", "payload_hash": "0" * 64, "reason": "matrix"}
    elif path == "/v1/messages":
        body["content"] = EML % uuid.uuid4().hex.encode()
        headers["Content-Type"] = "message/rfc822"
    elif path == "/v1/admin/users" and method == "POST":
        body["json"] = {"email": f"new-{uuid.uuid4().hex[:8]}@mailspine.test", "role": "auditor"}
    elif method == "PATCH":
        body["json"] = {"active": True}
    elif path == "/v1/admin/keys" and method == "POST":
        body["json"] = {"name": "matrix", "scopes": ["stats:read"]}
    elif path == "/v1/evals/diff":
        body["params"] = {"a": 999999999, "b": 999999998}
    elif path == "/v1/prompts/{name}/diff":
        body["params"] = {"v1": "1.0.0", "v2": "1.0.0"}
    elif path.endswith("/drafts"):  # an unknown base version: 404 once let in, nothing stored
        body["json"] = {"base_version": "999.0.0", "content": {"name": "plan"}}
    elif path.endswith("/promote"):  # no such eval run: refused (409) once let in, nothing moves
        body["json"] = {"version": "1.0.0", "label": "staging", "eval_run_id": 999999999}
    elif path.endswith("/rollback"):  # no staging label to roll back: 400 once let in
        body["json"] = {"label": "staging"}
    concrete = path.replace("{review_id}", "999999999").replace("{user_id}", "999999999")
    concrete = concrete.replace("{key_id}", "999999999").replace("{email_id}", "999999999")
    concrete = concrete.replace("{eval_run_id}", "999999999").replace("{trace_id}", "0" * 32)
    # An unknown version for the eval request: 404 once let in, so no eval job is queued.
    version = "999.0.0" if path.endswith("/evals") else "1.0.0"
    concrete = concrete.replace("{name}", "plan").replace("{version}", version)
    return await client.request(method, concrete, headers=headers, **body)


def _expected(permission: str, caller: Caller) -> str:
    if permission == PUBLIC:
        return "allowed"
    if caller.kind == "none":
        return "401"
    if permission == ANY:
        return "allowed"
    if permission == USER:
        return "allowed" if caller.kind == "user" else "403"
    return "allowed" if permission in caller.scopes else "403"


def _outcome(response: httpx.Response) -> str:
    if response.status_code in (401, 403):
        return str(response.status_code)
    assert response.status_code < 500, response.text
    return "allowed"


async def test_authorization_matrix(test_settings: Settings, database_url: str, db: Database) -> None:
    async with gateway(auth_settings(test_settings), database_url) as client:
        routes = {
            (method, r.path)
            for r in client.app.routes  # type: ignore[attr-defined]
            if isinstance(r, APIRoute) and r.path not in NOT_CHECKED
            for method in r.methods
        }
        assert routes == set(EXPECTED), "a route is missing from (or stale in) the matrix"
        callers = await _callers(client, db)
        mismatches = []
        for (method, path), permission in sorted(EXPECTED.items()):
            for caller in callers:
                got = _outcome(await _request(client, db, method, path, caller))
                want = _expected(permission, caller)
                if got != want:
                    mismatches.append(f"{method} {path} as {caller.name}: got {got}, expected {want}")
    assert mismatches == []
    assert len(EXPECTED) * len(callers) >= 17 * 12
