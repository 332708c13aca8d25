"""The audit log's pure parts: the hash formulas, canonical JSON, settings fingerprints and the
per-process credential-use notes (no database here)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from pydantic import SecretStr

from app.models import AuditEntry
from app.repo import audit
from app.settings import ImapAccount, Settings


def _entry(**changes: Any) -> AuditEntry:
    fields: dict[str, Any] = {
        "id": 7,
        "at": datetime(2026, 12, 4, 10, 0, 0, 123456, tzinfo=UTC),
        "actor": "reviewer@mailspine.test",
        "action": "review.approve",
        "subject_type": "review",
        "subject_id": "3",
        "details": {"edited": False, "shown_hash": "ab" * 32},
        "prev_hash": "cd" * 32,
        "trace_id": "0af7651916cd43dd8448eb211c80319c",
        "payload_sha256": "ab" * 32,
        "hash_version": 2,
        **changes,
    }
    return AuditEntry(**fields)


def test_every_field_of_a_version_2_row_is_inside_its_hash() -> None:
    base = audit.row_hash(_entry())
    changed = {
        "id": 8,
        "at": datetime(2026, 12, 4, 10, 0, 0, 123457, tzinfo=UTC),
        "actor": "someone@else.test",
        "action": "review.reject",
        "subject_type": "email",
        "subject_id": "4",
        "details": {"edited": True, "shown_hash": "ab" * 32},
        "prev_hash": "ce" * 32,
        "trace_id": None,
        "payload_sha256": "ac" * 32,
    }
    assert all(audit.row_hash(_entry(**{name: value})) != base for name, value in changed.items())


def test_the_time_is_hashed_as_an_instant_whatever_the_time_zone() -> None:
    utc = _entry()
    assert utc.at is not None
    berlin = _entry(at=utc.at.astimezone(timezone(timedelta(hours=1))))
    assert audit.row_hash(utc) == audit.row_hash(berlin)


def test_version_1_keeps_the_formula_rows_were_written_with_before_migration_0013() -> None:
    row = _entry(hash_version=1)
    body = [row.prev_hash, row.actor, row.action, row.subject_type, row.subject_id, row.details]
    assert (
        audit.row_hash(row)
        == hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    )
    assert audit.row_hash(_entry(hash_version=9)) is None  # an unknown version never verifies


def test_canonical_json_is_what_jsonb_reads_back() -> None:
    # Postgres prints 1e20 in JSONB as an integer; the hash must not depend on that.
    assert audit.canonical_json({"b": 1e20, "a": [1.0, 0.5]}) == audit.canonical_json(
        json.loads('{"a": [1, 0.5], "b": 100000000000000000000}')
    )
    assert audit.canonical_json({"b": 1, "a": "é"}) == '{"a":"\\u00e9","b":1}'


def _settings(**changes: Any) -> Settings:
    return Settings(env="test", _env_file=None, **changes)  # type: ignore[call-arg]


def test_settings_fingerprints_name_every_setting_and_never_hold_a_secret() -> None:
    password, database_password = "imap-pass-" + "x" * 12, "db-pass-" + "y" * 12
    account = ImapAccount(
        name="support", host="imap.example.com", username="s@example.com", password=password
    )
    settings = _settings(
        imap_accounts=[account], database_url=f"postgresql://app:{database_password}@db/mailspine"
    )
    prints = audit.settings_fingerprints(settings, key=b"k")
    assert prints["imap_accounts[support].password"].startswith("secret:")
    assert prints["database_url"].startswith("secret:")
    assert prints["auth.jwt_secret"].startswith("secret:") and prints["pii.vault_key"].startswith("secret:")
    assert not prints["worker_concurrency"].startswith("secret:")
    # A dict of secrets (tools.credentials) is walked per entry, so each one's change shows.
    with_tool = audit.settings_fingerprints(
        _settings(tools={"credentials": {"crm_write": "pat-" + "z" * 20}}), key=b"k"
    )
    assert with_tool["tools.credentials[crm_write]"].startswith("secret:")
    assert "pat-" + "z" * 20 not in json.dumps(with_tool)
    text = json.dumps(prints)
    assert password not in text and database_password not in text
    # Secrets' fingerprints depend on the key: without it, a guess cannot be checked.
    other = audit.settings_fingerprints(settings, key=b"other")
    assert other["database_url"] != prints["database_url"]
    assert other["worker_concurrency"] == prints["worker_concurrency"]


def test_a_changed_setting_changes_only_its_own_fingerprint() -> None:
    before = audit.settings_fingerprints(_settings(), key=b"k")
    after = audit.settings_fingerprints(
        _settings(openai_api_key=SecretStr("sk-new"), worker_concurrency=9), key=b"k"
    )
    assert sorted(k for k in before if before[k] != after[k]) == ["openai_api_key", "worker_concurrency"]


def test_a_credential_is_noted_once_per_process() -> None:
    name = "unit-test-credential"
    audit._recorded.discard(("crm", name))
    audit._pending.pop(("crm", name), None)
    for _ in range(3):
        audit.note_credential_use(tool="crm", credential_name=name, actor="agent")
    assert [key for key in audit._pending if key == ("crm", name)] == [("crm", name)]
    audit._recorded.add(("crm", name))  # as after its entry was committed
    audit._pending.pop(("crm", name))
    audit.note_credential_use(tool="crm", credential_name=name, actor="agent")
    assert ("crm", name) not in audit._pending
    audit._recorded.discard(("crm", name))
