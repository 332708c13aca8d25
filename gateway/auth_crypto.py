"""Secrets at rest: argon2id for passwords, SHA-256 for random tokens and key secrets.

A password is low-entropy, so it gets a slow, salted hash. Refresh tokens and API-key secrets are
256 random bits: a fast digest is enough and keeps per-request key checks cheap.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

KEY_PREFIX = "msk_"
REFRESH_PREFIX = "msr_"
_KEY_RE = re.compile(r"^msk_([0-9]{1,18})_([A-Za-z0-9_-]{20,200})$")

_hasher = PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) parameters
# Verified against when the e-mail is unknown, so an unknown account costs as much time as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_refresh_token() -> str:
    return REFRESH_PREFIX + secrets.token_urlsafe(32)


def new_key_secret() -> str:
    return secrets.token_urlsafe(32)


def format_key(key_id: int, secret: str) -> str:
    return f"{KEY_PREFIX}{key_id}_{secret}"


@dataclass(frozen=True)
class ParsedKey:
    key_id: int
    secret: str


def parse_key(value: str) -> ParsedKey | None:
    match = _KEY_RE.match(value)
    return ParsedKey(int(match.group(1)), match.group(2)) if match else None


def same_digest(secret: str, stored: str) -> bool:
    return hmac.compare_digest(digest(secret), stored)
