"""`mailspine users ...` and `mailspine keys ...` as an operator runs them (real processes, real Postgres)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from app.settings import REPO_ROOT, Settings
from tests.integration.test_auth_flows import auth_settings, gateway, login

pytestmark = pytest.mark.integration


def _mailspine(database_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MAILSPINE_ENV": "test",
        "MAILSPINE_LOG_LEVEL": "WARNING",
    }
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )


async def test_users_and_keys_commands(test_settings: Settings, database_url: str) -> None:
    email = f"cli-{uuid.uuid4().hex[:8]}@mailspine.test"
    password = "a long enough passphrase"
    created = _mailspine(
        database_url,
        "users",
        "create",
        "--email",
        email,
        "--role",
        "reviewer",
        "--password-stdin",
        stdin=password,
    )
    assert created.returncode == 0, created.stderr
    weak = _mailspine(
        database_url,
        "users",
        "create",
        "--email",
        "x" + email,
        "--role",
        "admin",
        "--password-stdin",
        stdin="short",
    )
    assert weak.returncode == 1 and "at least 12 characters" in weak.stderr
    taken = _mailspine(
        database_url,
        "users",
        "create",
        "--email",
        email,
        "--role",
        "admin",
        "--password-stdin",
        stdin=password,
    )
    assert taken.returncode == 1 and "already exists" in taken.stderr
    assert email in _mailspine(database_url, "users", "list").stdout

    made = _mailspine(
        database_url, "keys", "create", "--name", "relay", "--scope", "ingest", "--scope", "stats:read"
    )
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()  # the key alone on stdout, so scripts can capture it
    key_id = key.split("_")[1]
    listed = _mailspine(database_url, "keys", "list").stdout
    assert f"{key_id}\trelay\tingest,stats:read\tactive" in listed and key not in listed
    bad_scope = _mailspine(database_url, "keys", "create", "--name", "x", "--scope", "root")
    assert bad_scope.returncode == 1 and "unknown scope" in bad_scope.stderr

    async with gateway(auth_settings(test_settings), database_url) as client:
        await login(client, email, password)
        assert (await client.get("/v1/stats", headers={"X-API-Key": key})).status_code == 200
        assert _mailspine(database_url, "keys", "revoke", key_id).returncode == 0
        assert (await client.get("/v1/stats", headers={"X-API-Key": key})).status_code == 401
        assert _mailspine(database_url, "users", "disable", "--email", email).returncode == 0
        refused = await client.post("/v1/auth/login", json={"email": email, "password": password})
        assert refused.status_code == 401
