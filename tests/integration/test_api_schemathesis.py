"""Property-based API test: schemathesis generates requests from the app's own OpenAPI document and
runs them in-process (ASGI) as a seeded admin, against a database of its own.

Every answer must be documented (status, content type, body schema) and none may be a 5xx.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.db import Database, drop_database, fresh_database
from app.migrate import upgrade
from app.settings import REPO_ROOT, Settings
from app.settings_auth import AuthSettings
from gateway import auth_accounts
from gateway.api import create_app
from tests.integration.test_auth_flows import NO_LIMITS, PASSWORD
from tests.integration.test_auth_matrix import EXPECTED

pytestmark = pytest.mark.integration

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
ADMIN = "admin@schemathesis.test"
EXAMPLES = 12


@schemathesis.serializer("message/rfc822")
def _rfc822(ctx: Any, value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


@dataclass
class Admin:
    app: Any
    user_id: int = 0
    token: str = ""

    def sign_in(self) -> None:
        with asgi.get_client(self.app) as client:
            answer = client.post("/v1/auth/login", json={"email": ADMIN, "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        self.token = answer.json()["access_token"]


async def _seed(url: str) -> int:
    db = Database(url)
    try:
        async with db.transaction() as session:
            user = await auth_accounts.create_user(
                session, AuthSettings(), email=ADMIN, role="admin", password=PASSWORD, actor="test"
            )
            return user.id
    finally:
        await db.dispose()


@pytest.fixture(scope="module")
def admin(pg_server_url: str) -> Iterator[Admin]:
    name = f"mailspine_st_{uuid.uuid4().hex[:8]}"
    url = fresh_database(pg_server_url, name)
    try:
        upgrade(url)
        user_id = asyncio.run(_seed(url))
        config = Settings(env="test", database_url=url, var_dir=REPO_ROOT / "var" / "test", _env_file=None)  # type: ignore[call-arg]
        # Generated logins from one client must not lock the admin out: only per-account lockouts here.
        auth = AuthSettings(**NO_LIMITS, ip_lockout_threshold=1_000_000)
        app = create_app(settings=config.model_copy(update={"auth": auth}), database_url=url)
        seeded = Admin(app=app, user_id=user_id)
        seeded.sign_in()
        yield seeded
    finally:
        asgi.shutdown_lifespans()
        drop_database(pg_server_url, name)


@pytest.fixture(scope="module")
def api_schema(admin: Admin) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", admin.app)


# The operations, by the matrix's table (the lazy ``schemathesis.pytest`` loader does not run on pytest 9).
OPERATIONS = sorted(EXPECTED)


def test_schema_lists_every_operation(api_schema: Any) -> None:
    found = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert found == set(OPERATIONS) | {("GET", "/health")}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_api_conforms_to_its_schema(
    method: str, path: str, mode: GenerationMode, api_schema: Any, admin: Admin
) -> None:
    operation = api_schema[path][method]
    codes: list[int] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: Any) -> None:
        own_account = path == "/v1/admin/users/{user_id}" and str(case.path_parameters.get("user_id")) == str(
            admin.user_id
        )
        if own_account:  # disabling or demoting the admin would turn the rest of the run into 401/403s
            return
        response = case.call_and_validate(headers={"Authorization": f"Bearer {admin.token}"}, checks=CHECKS)
        codes.append(response.status_code)
        if path == "/v1/auth/logout":
            admin.sign_in()  # that ended the admin's session

    run()
    if mode == GenerationMode.POSITIVE and path not in ("/v1/auth/login", "/v1/auth/refresh"):  # random creds
        assert any(c not in (401, 403) for c in codes), f"the admin was never let in: {codes}"
