"""Access tokens: short-lived HS256 JWTs (``sub``, ``role``, ``sid``, ``jti``, ``iat``, ``exp``).

Verification pins the algorithm (no ``alg=none``, no key confusion), requires every claim, and
checks issuer and type. The gateway still loads the user and the session on each request, so
signing out, disabling a user or changing a role takes effect at once, not at ``exp``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from app.settings_auth import AuthSettings

ALGORITHM = "HS256"
TOKEN_TYPE = "access"
_REQUIRED = ["exp", "iat", "sub", "jti", "role", "sid", "iss", "typ"]
LEEWAY_S = 5


class InvalidToken(Exception):
    """Expired, tampered, wrongly signed or malformed; the message is safe to show."""


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    role: str
    session_id: str
    jti: str
    expires_at: datetime


def issue_access_token(
    settings: AuthSettings, *, user_id: int, role: str, session_id: str, now: datetime | None = None
) -> tuple[str, AccessClaims]:
    now = now or datetime.now(UTC)
    expires = now + timedelta(seconds=settings.access_token_ttl_s)
    claims = AccessClaims(user_id, role, session_id, uuid.uuid4().hex, expires)
    payload = {
        "iss": settings.jwt_issuer,
        "sub": str(user_id),
        "role": role,
        "sid": session_id,
        "jti": claims.jti,
        "typ": TOKEN_TYPE,
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
    }
    return jwt.encode(payload, settings.jwt_secret.get_secret_value(), algorithm=ALGORITHM), claims


def verify_access_token(settings: AuthSettings, token: str) -> AccessClaims:
    try:
        payload = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=[ALGORITHM],
            issuer=settings.jwt_issuer,
            leeway=LEEWAY_S,
            options={"require": _REQUIRED},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("access token expired") from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken("invalid access token") from exc
    if payload["typ"] != TOKEN_TYPE or not str(payload["sub"]).isdigit():
        raise InvalidToken("invalid access token")
    return AccessClaims(
        user_id=int(payload["sub"]),
        role=str(payload["role"]),
        session_id=str(payload["sid"]),
        jti=str(payload["jti"]),
        expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC),
    )
