"""Secrets at rest: password hashes, key format, digests."""

from __future__ import annotations

import pytest

from gateway.auth_crypto import (
    digest,
    format_key,
    hash_password,
    new_key_secret,
    new_refresh_token,
    parse_key,
    same_digest,
    verify_password,
)
from gateway.auth_scopes import ROLE_SCOPES, SCOPES, parse_scopes, roles_with


def test_password_hash_is_argon2id_salted_and_verifies() -> None:
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first.startswith("$argon2id$") and first != second
    assert verify_password("correct horse", first)
    assert not verify_password("correct hors", first)
    assert not verify_password("anything", None)  # unknown user: checked against a dummy hash
    assert not verify_password("x", "not-a-hash")


def test_key_format_round_trip() -> None:
    secret = new_key_secret()
    key = format_key(42, secret)
    assert key.startswith("msk_42_")
    parsed = parse_key(key)
    assert parsed is not None and (parsed.key_id, parsed.secret) == (42, secret)
    assert same_digest(secret, digest(secret)) and not same_digest(secret + "x", digest(secret))


@pytest.mark.parametrize(
    "value", ["", "msk_", "msk_x_" + "a" * 40, "msk_1_short", "key_1_" + "a" * 40, "msk_1_a b"]
)
def test_malformed_keys_do_not_parse(value: str) -> None:
    assert parse_key(value) is None


def test_refresh_tokens_are_random_and_prefixed() -> None:
    tokens = {new_refresh_token() for _ in range(100)}
    assert len(tokens) == 100 and all(t.startswith("msr_") and len(t) > 40 for t in tokens)


def test_roles_and_scopes() -> None:
    assert ROLE_SCOPES["admin"] == frozenset(SCOPES)
    assert "review:write" not in ROLE_SCOPES["auditor"] and "ingest" not in ROLE_SCOPES["reviewer"]
    assert roles_with("review:write") == ["reviewer", "admin"]
    assert parse_scopes(["stats:read", "ingest", "ingest"]) == ["ingest", "stats:read"]
    with pytest.raises(ValueError, match="root"):
        parse_scopes(["root"])
