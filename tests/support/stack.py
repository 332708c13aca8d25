"""A real mailspine stack for integration tests: its own database, CRM, worker(s) and API as processes."""

from __future__ import annotations

import secrets
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from app.crm_admin import AGENT_SCOPES, create_crm_token
from app.db import drop_database, fresh_database
from app.migrate import upgrade
from app.processes import ProcessGroup
from app.settings import REPO_ROOT
from gateway.auth_crypto import hash_password
from tools.crm import READER_SCOPES

DEMO_MAILBOX = REPO_ROOT / "infra" / "demo" / "mailbox"
BAD_MAILBOX = REPO_ROOT / "tests" / "data" / "bad"
REVIEWER = "reviewer@mailspine.test"
ADMIN = "admin@mailspine.test"  # role 'admin': every scope, so the dashboard shows it every page
TOKEN_REUSE_S = 600.0  # sign in again well before the 15-minute access token runs out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    url: str
    group: ProcessGroup
    crm_port: int
    api_port: int
    crm_tokens: dict[str, str] = field(default_factory=dict)  # credential name -> token (write, read)
    reviewer_password: str = ""
    admin_password: str = ""
    # user e-mail -> (access token, when it was issued); reused so tests stay under the login rate limit
    _tokens: dict[str, tuple[str, float]] = field(default_factory=dict, repr=False)

    @property
    def api(self) -> httpx.Client:
        """A client signed in as the stack's reviewer user (``POST /v1/auth/login``, bearer token)."""
        return self.client_for(REVIEWER, self.reviewer_password)

    @property
    def admin_api(self) -> httpx.Client:
        """A client signed in as the stack's admin user (every scope)."""
        return self.client_for(ADMIN, self.admin_password)

    def client_for(self, email: str, password: str) -> httpx.Client:
        """A client signed in as ``email``; the access token is reused while it is fresh."""
        base = f"http://127.0.0.1:{self.api_port}"
        cached = self._tokens.get(email)
        if cached is None or time.monotonic() - cached[1] > TOKEN_REUSE_S:
            credentials = {"email": email, "password": password}
            answer = httpx.post(f"{base}/v1/auth/login", json=credentials, timeout=10)
            assert answer.status_code == 200, f"sign-in as {email}: {answer.text}"
            cached = self._tokens[email] = (answer.json()["access_token"], time.monotonic())
        return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {cached[0]}"}, timeout=10)

    def start_worker(self, name: str = "worker") -> None:
        self.group.start(name, ["worker", "--concurrency", "4"])

    def start_api(self) -> None:
        self.group.start("api", ["api"])
        self.group.wait_http("api", f"http://127.0.0.1:{self.api_port}/health")

    def ingest(self, mailbox: Path, *, timeout_s: float = 120.0) -> list[int]:
        """Run ``mailspine mailbox ingest`` (a real process with its own telemetry); return new email ids."""
        before = self.sql("SELECT coalesce(max(id), 0) FROM emails")[0][0]
        proc = self.group.start("ingest", ["mailbox", "ingest", "--directory", str(mailbox)])
        assert proc.wait(timeout_s) == 0, f"ingest failed; see {self.group.log_dir / 'ingest.log'}"
        self.group.children.pop("ingest", None)
        return [i for (i,) in self.sql("SELECT id FROM emails WHERE id > %s ORDER BY id", before)]

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url) as conn:
            return conn.execute(query, params).fetchall()


@contextmanager
def running_stack(pg_server_url: str, log_dir: Path, *, env: dict[str, str] | None = None) -> Iterator[Stack]:
    from infra.crm.migrate import upgrade as crm_upgrade

    name = f"mailspine_stack_{uuid.uuid4().hex[:8]}"
    url = fresh_database(pg_server_url, name)
    upgrade(url)
    crm_upgrade(url)
    token = create_crm_token(url, name="test-agent", scopes=list(AGENT_SCOPES))
    read_token = create_crm_token(url, name="test-agent-reader", scopes=list(READER_SCOPES))
    password, admin_password = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    with psycopg.connect(url) as conn:  # what `mailspine users create --role <role>` stores
        for email, role, secret in ((REVIEWER, "reviewer", password), (ADMIN, "admin", admin_password)):
            conn.execute(
                "INSERT INTO users (email, password_hash, role, active) VALUES (%s, %s, %s, true)",
                (email, hash_password(secret), role),
            )
    crm_port, api_port = free_port(), free_port()
    base_env = {
        "DATABASE_URL": url,
        "MAILSPINE_ENV": "test",
        "MAILSPINE_TOOLS__CREDENTIALS__CRM_WRITE": token,
        "MAILSPINE_TOOLS__CREDENTIALS__CRM_READ": read_token,
        "MAILSPINE_CRM_PORT": str(crm_port),
        "MAILSPINE_CRM_BASE_URL": f"http://127.0.0.1:{crm_port}",
        "MAILSPINE_API_PORT": str(api_port),
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "MAILSPINE_LOG_LEVEL": "INFO",
    }
    group = ProcessGroup(log_dir, {**base_env, **(env or {})})
    try:
        group.start("crm", ["crm", "serve"])
        group.wait_http("crm", f"http://127.0.0.1:{crm_port}/health")
        yield Stack(
            url=url,
            group=group,
            crm_port=crm_port,
            api_port=api_port,
            reviewer_password=password,
            admin_password=admin_password,
            crm_tokens={"crm_write": token, "crm_read": read_token},
        )
    finally:
        group.stop_all()
        drop_database(pg_server_url, name)
