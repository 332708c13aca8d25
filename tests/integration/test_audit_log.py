"""The audit log as an attacker and an operator meet it: tampering is reported row by row,
rolled-back and concurrent appends are not, the app's role cannot rewrite it, and configuration
and credential use are recorded without their values.

Tampering is simulated as the test's superuser (the owner's rights): the append-only trigger is
disabled for the edit, as someone holding the owner's credentials could do.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from alembic import command
from pydantic import SecretStr

from app.db import Database, drop_database, fresh_database
from app.migrate import alembic_config, upgrade
from app.repo import audit
from app.settings import REPO_ROOT, Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def fresh_url(pg_server_url: str) -> Iterator[str]:
    """A database of its own: tampering must not reach the session's shared one."""
    name = f"mailspine_audit_{uuid.uuid4().hex[:10]}"
    url = fresh_database(pg_server_url, name)
    upgrade(url)
    yield url
    drop_database(pg_server_url, name)


async def _append(url: str, n: int, *, tag: str = "t") -> None:
    db = Database(url)
    try:
        for i in range(n):
            async with db.transaction() as session:
                await audit.append_audit(
                    session, actor="tester", action="test.entry", subject_type="test", subject_id=f"{tag}{i}"
                )
    finally:
        await db.dispose()


async def _report(url: str) -> audit.AuditReport:
    db = Database(url)
    try:
        async with db.transaction() as session:
            return await audit.verify_log(session)
    finally:
        await db.dispose()


def _tamper(url: str, statement: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        conn.execute(statement)
        conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")


def _verify_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url, "MAILSPINE_ENV": "test", "MAILSPINE_LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "audit", "verify", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )


def _problems(answer: subprocess.CompletedProcess[str]) -> list[tuple[Any, str]]:
    return [(p["row"], p["kind"]) for p in json.loads(answer.stdout)["problems"]]


def test_rows_written_before_the_migration_still_verify(pg_server_url: str) -> None:
    """Version 1 rows (the formula before migration 0013, restated here) verify alongside new rows,
    and a change to one of them is still caught."""
    name = f"mailspine_legacy_{uuid.uuid4().hex[:10]}"
    url = fresh_database(pg_server_url, name)
    try:
        command.upgrade(alembic_config(url), "0009")
        prev = audit.GENESIS
        with psycopg.connect(url) as conn:
            for i in range(3):
                details = {"n": i, "note": "written by the old code"}
                body = [prev, "legacy", "test.old", "test", str(i), details]
                digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
                conn.execute(
                    "INSERT INTO audit_log (actor, action, subject_type, subject_id, details, prev_hash, "
                    "hash) VALUES ('legacy', 'test.old', 'test', %s, %s, %s, %s)",
                    (str(i), json.dumps(details), prev, digest),
                )
                prev = digest
        upgrade(url)
        asyncio.run(_append(url, 2))
        report = asyncio.run(_report(url))
        assert report.problems == [] and report.rows == 5
        with psycopg.connect(url) as conn:
            versions = [v for (v,) in conn.execute("SELECT hash_version FROM audit_log ORDER BY id")]
        assert versions == [1, 1, 1, 2, 2]
        _tamper(url, "UPDATE audit_log SET actor = 'someone else' WHERE id = 2")
        assert [(p.row, p.kind) for p in asyncio.run(_report(url)).problems] == [(2, "modified")]
    finally:
        drop_database(pg_server_url, name)


def test_verify_names_a_modified_row(fresh_url: str) -> None:
    asyncio.run(_append(fresh_url, 5))
    intact = _verify_cli(fresh_url)
    assert intact.returncode == 0, intact.stderr
    assert "intact: 5 rows" in intact.stdout
    _tamper(fresh_url, """UPDATE audit_log SET details = '{"approved": true}' WHERE id = 3""")
    broken = _verify_cli(fresh_url)
    assert broken.returncode == 1
    assert broken.stderr.strip().splitlines() == ["row 3: modified: its content does not match its hash"]


def test_verify_catches_a_removed_middle_row(fresh_url: str) -> None:
    asyncio.run(_append(fresh_url, 5))
    _tamper(fresh_url, "DELETE FROM audit_log WHERE id = 3")
    answer = _verify_cli(fresh_url, "--json")
    assert answer.returncode == 1
    assert _problems(answer) == [(4, "removed"), (None, "removed")]  # the broken link; the anchor's count
    assert "does not link to row 2" in json.loads(answer.stdout)["problems"][0]["detail"]


def test_verify_catches_removed_last_rows(fresh_url: str) -> None:
    asyncio.run(_append(fresh_url, 5))
    _tamper(fresh_url, "DELETE FROM audit_log WHERE id >= 4")  # the chain of rows 1-3 stays valid
    answer = _verify_cli(fresh_url, "--json")
    assert answer.returncode == 1
    assert _problems(answer) == [(5, "removed"), (None, "removed")]
    assert "the log ends at row 3" in json.loads(answer.stdout)["problems"][0]["detail"]


def test_verify_catches_swapped_rows(fresh_url: str) -> None:
    asyncio.run(_append(fresh_url, 4))
    _tamper(fresh_url, "UPDATE audit_log SET id = 100 WHERE id = 2")
    _tamper(fresh_url, "UPDATE audit_log SET id = 2 WHERE id = 3")
    _tamper(fresh_url, "UPDATE audit_log SET id = 3 WHERE id = 100")
    report = asyncio.run(_report(fresh_url))
    assert (2, "reordered") in [(p.row, p.kind) for p in report.problems]


def test_rolled_back_appends_are_not_removals(fresh_url: str) -> None:
    async def run() -> None:
        db = Database(fresh_url)
        try:
            for followed in (True, False):  # one in the middle (a row follows it), one at the tail
                with pytest.raises(RuntimeError):
                    async with db.transaction() as session:
                        await audit.append_audit(
                            session, actor="tester", action="test.lost", subject_type="test", subject_id="x"
                        )
                        raise RuntimeError("the caller's transaction fails after the append")
                if followed:
                    await _append(fresh_url, 1, tag="after")
        finally:
            await db.dispose()

    asyncio.run(_append(fresh_url, 2))
    asyncio.run(run())
    with psycopg.connect(fresh_url) as conn:
        ids = [i for (i,) in conn.execute("SELECT id FROM audit_log ORDER BY id")]
        last_value = conn.execute("SELECT last_value FROM audit_log_id_seq").fetchone()
    assert ids == [1, 2, 4]  # the rolled-back appends took ids 3 and 5
    assert last_value == (5,)
    report = asyncio.run(_report(fresh_url))
    assert report.problems == [] and report.rows == 3


def test_concurrent_appends_from_several_connections_keep_one_chain(fresh_url: str) -> None:
    async def run() -> None:
        await asyncio.gather(*(_append(fresh_url, 15, tag=f"c{n}-") for n in range(4)))

    asyncio.run(run())
    with psycopg.connect(fresh_url) as conn:
        rows, links = conn.execute(
            "SELECT count(*), count(DISTINCT prev_hash) FROM audit_log"
        ).fetchone() or (0, 0)
    assert rows == links == 60  # no two rows link to the same predecessor: no fork
    report = asyncio.run(_report(fresh_url))
    assert report.problems == [] and report.rows == 60


def test_the_applications_role_cannot_update_delete_or_truncate(pg_server_url: str) -> None:
    """A role granted everything before the migration (a careless GRANT ALL) loses UPDATE, DELETE
    and TRUNCATE on the audit tables, yet appends through the application's code."""
    name = f"mailspine_role_{uuid.uuid4().hex[:10]}"
    role = f"audit_probe_{uuid.uuid4().hex[:8]}"
    url = fresh_database(pg_server_url, name)
    try:
        command.upgrade(alembic_config(url), "0009")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'CREATE ROLE "{role}" NOLOGIN')
            conn.execute(f'GRANT ALL ON ALL TABLES IN SCHEMA public TO "{role}"')
            conn.execute(f'GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO "{role}"')
        upgrade(url)

        async def append_as_role() -> None:
            db = Database(url)
            try:
                async with db.transaction() as session:
                    from sqlalchemy import text

                    await session.execute(text(f'SET LOCAL ROLE "{role}"'))
                    await audit.append_audit(
                        session, actor="app", action="test.entry", subject_type="test", subject_id="1"
                    )
            finally:
                await db.dispose()

        asyncio.run(append_as_role())
        refused = []
        for statement in (
            "UPDATE audit_log SET actor = 'x'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
            "UPDATE audit_anchor SET row_count = 0",
            "TRUNCATE audit_anchor",
        ):
            with psycopg.connect(url) as conn:
                conn.execute(f'SET ROLE "{role}"')
                with pytest.raises(psycopg.errors.InsufficientPrivilege) as err:
                    conn.execute(statement)
                refused.append(str(err.value).split("\n")[0])
        assert refused == [
            "permission denied for table audit_log",
            "permission denied for table audit_log",
            "permission denied for table audit_log",
            "permission denied for table audit_anchor",
            "permission denied for table audit_anchor",
        ]
        # ... and even the owner's TRUNCATE meets the statement trigger.
        with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute("TRUNCATE audit_log")
        assert asyncio.run(_report(url)).problems == []
    finally:
        drop_database(pg_server_url, name)
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def _settings(**changes: Any) -> Settings:
    return Settings(env="test", _env_file=None, **changes)  # type: ignore[call-arg]


async def test_a_configuration_change_is_recorded_once_per_change(db: Database) -> None:
    component = f"worker-{uuid.uuid4().hex[:6]}"
    key_before, key_after = "sk-" + uuid.uuid4().hex, "sk-" + uuid.uuid4().hex
    starts = [
        _settings(openai_api_key=SecretStr(key_before)),
        _settings(openai_api_key=SecretStr(key_before)),  # a restart with the same configuration
        _settings(openai_api_key=SecretStr(key_before), worker_concurrency=9),
        _settings(openai_api_key=SecretStr(key_after), worker_concurrency=9),
        _settings(openai_api_key=SecretStr(key_after), worker_concurrency=9),
    ]
    for settings in starts:
        async with db.transaction() as session:
            await audit.record_config(session, component=component, settings=settings, secret_key="k")
    async with db.transaction() as session:
        from sqlalchemy import select

        from app.models import AuditEntry

        rows = (
            await session.execute(
                select(AuditEntry).where(
                    AuditEntry.action == "config.change", AuditEntry.subject_id == component
                )
            )
        ).scalars()
        entries = [(r.details, r.payload_sha256, r.hash_version) for r in rows]
    assert [d["first"] for d, _, _ in entries] == [True, False, False]  # five starts, three records
    assert {"worker_concurrency", "openai_api_key", "auth.jwt_secret"} <= set(entries[0][0]["changed"])
    assert [(d["changed"], d["secrets_changed"]) for d, _, _ in entries[1:]] == [
        (["worker_concurrency"], []),
        (["openai_api_key"], ["openai_api_key"]),
    ]
    assert all(digest == d["settings_sha256"] and version == 2 for d, digest, version in entries)
    stored = json.dumps([d for d, _, _ in entries])
    assert key_before not in stored and key_after not in stored


async def test_credential_use_is_recorded_once_per_process_and_survives_a_rollback(db: Database) -> None:
    name = f"probe_{uuid.uuid4().hex[:8]}"
    audit.note_credential_use(tool="crm", credential_name=name)
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            await audit.append_audit(
                session, actor="t", action="test.lost", subject_type="test", subject_id="x"
            )
            raise RuntimeError("rolled back: the note must be written by the next append")
    for _ in range(3):
        audit.note_credential_use(tool="crm", credential_name=name)
        async with db.transaction() as session:
            await audit.append_audit(
                session, actor="t", action="test.entry", subject_type="test", subject_id="y"
            )
    async with db.transaction() as session:
        await audit.record_credential_use(session, tool="crm", credential_name=name)
    async with db.transaction() as session:
        from sqlalchemy import select

        from app.models import AuditEntry

        rows = list(
            (
                await session.execute(select(AuditEntry).where(AuditEntry.subject_id == f"crm:{name}"))
            ).scalars()
        )
    assert [(r.action, r.details["tool"], r.details["credential"]) for r in rows] == [
        ("credential.use", "crm", name)
    ]
