"""Authentication (who is calling) and authorization (may they call this route).

Credentials, one per request:
- ``Authorization: Bearer <access token>``: a user signed in through ``POST /v1/auth/login`` (or OIDC);
- ``X-API-Key: msk_<id>_<secret>`` (or ``Authorization: Bearer msk_...``): a service key with scopes;
- ``X-API-Key: <MAILSPINE_REVIEWER_API_KEY | MAILSPINE_GATEWAY_API_KEY>``: the static bootstrap keys,
  in dev and test only (unless ``MAILSPINE_AUTH__BOOTSTRAP_KEYS_OUTSIDE_DEV``).

Every route declares what it needs through one of the ``Annotated`` aliases at the bottom; each
checks one scope (a user's role stands for a fixed set of scopes, ``gateway.auth_scopes``). A test
walks the route table and fails on any route without one (health and the docs aside). ``Public``
marks the sign-in routes: they resolve the caller (to rate-limit and to refuse bad credentials)
but let anonymous callers through.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from app.repo import api_keys, users
from app.settings import Settings
from gateway.auth_crypto import KEY_PREFIX, parse_key, same_digest
from gateway.auth_scopes import (
    BOOTSTRAP_GATEWAY_SCOPES,
    BOOTSTRAP_REVIEWER_SCOPES,
    ROLE_SCOPES,
    SCOPES,
    Role,
    Scope,
    roles_with,
)
from gateway.auth_tokens import InvalidToken, verify_access_token
from gateway.ratelimit import enforce, too_many
from gateway.routes_deps import client_ip, get_db, get_limits, get_settings

_bearer = HTTPBearer(auto_error=False, description="An access token from POST /v1/auth/login")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="A service key msk_<id>_<secret>")


@dataclass(frozen=True)
class Principal:
    id: str  # users: their e-mail; keys: "key:<id>"; bootstrap keys: "reviewer" / "service"
    kind: Literal["user", "key"]
    role: Role | None = None  # users
    scopes: frozenset[Scope] = field(default_factory=frozenset)  # keys: as granted; users: of the role
    name: str = ""  # key name (users: the e-mail)
    session_id: str | None = None  # users: the sign-in session (logout revokes it)


class Unauthenticated(Exception):
    pass


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"})


async def _from_access_token(request: Request, token: str) -> Principal:
    try:
        claims = verify_access_token(get_settings(request).auth, token)
    except InvalidToken as exc:
        raise Unauthenticated(str(exc)) from exc
    async with get_db(request).transaction() as session:
        found = await users.get_session_user(session, session_id=claims.session_id, user_id=claims.user_id)
    if found is None or found[0].revoked_at is not None:
        raise Unauthenticated("session ended; sign in again")
    user = found[1]
    if not user.active:
        raise Unauthenticated("account disabled")
    role: Role = user.role  # type: ignore[assignment]  # checked by the table's constraint
    return Principal(
        id=user.email,
        kind="user",
        role=role,
        scopes=ROLE_SCOPES[role],
        name=user.email,
        session_id=claims.session_id,
    )


async def _from_service_key(request: Request, value: str) -> Principal:
    parsed = parse_key(value)
    if parsed is None:
        raise Unauthenticated("invalid API key")
    async with get_db(request).transaction() as session:
        row = await api_keys.get_key(session, key_id=parsed.key_id)
    if row is None or row.revoked_at is not None or not same_digest(parsed.secret, row.secret_hash):
        raise Unauthenticated("invalid or revoked API key")
    granted = frozenset(s for s in SCOPES if s in row.scopes)
    return Principal(id=f"key:{row.id}", kind="key", scopes=granted, name=row.name)


def _from_bootstrap_key(settings: Settings, value: str) -> Principal:
    if settings.env in ("dev", "test") or settings.auth.bootstrap_keys_outside_dev:
        candidates = [
            (settings.reviewer_api_key, Principal("reviewer", "key", scopes=BOOTSTRAP_REVIEWER_SCOPES)),
            (settings.gateway_api_key, Principal("service", "key", scopes=BOOTSTRAP_GATEWAY_SCOPES)),
        ]
        for secret, principal in candidates:
            expected = secret.get_secret_value().encode()
            if expected and hmac.compare_digest(expected, value.encode()):
                return principal
    raise Unauthenticated("invalid API key")


async def _resolve(request: Request, bearer: str | None, api_key: str | None) -> Principal:
    if bearer and api_key:
        raise Unauthenticated("send one credential: Authorization or X-API-Key, not both")
    value = bearer or api_key or ""
    if value.startswith(KEY_PREFIX):
        return await _from_service_key(request, value)
    if bearer:
        return await _from_access_token(request, value)
    return _from_bootstrap_key(get_settings(request), value)


async def authenticate(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Principal | None:
    """The caller, or ``None`` when no credential was sent. Bad credentials: 401; anonymous and
    failed requests are rate-limited per client IP (429)."""
    limits, ip = get_limits(request), client_ip(request)
    if bearer is None and not api_key:
        enforce(limits.anonymous, ip, "anonymous requests per IP")
        return None
    try:
        principal = await _resolve(request, bearer.credentials if bearer else None, api_key)
    except Unauthenticated as exc:
        wait = limits.anonymous.take(ip)
        if wait > 0:
            raise too_many(wait, "failed authentications per IP") from exc
        raise _unauthorized(str(exc)) from exc
    request.state.principal = principal
    return principal


def require(scope: Scope | None, *, users_only: bool = False) -> Any:
    """A dependency admitting principals that hold ``scope`` (``None``: anyone authenticated)."""

    async def check(
        request: Request, principal: Annotated[Principal | None, Depends(authenticate)]
    ) -> Principal:
        if principal is None:
            raise _unauthorized("authentication required: Authorization: Bearer <token> or X-API-Key")
        limits = get_limits(request)
        bucket = limits.ingest if scope == "ingest" else limits.principal
        enforce(bucket, principal.id, "requests per principal")
        if users_only and principal.kind != "user":
            raise HTTPException(status.HTTP_403_FORBIDDEN, "only a signed-in user can do this")
        if scope is not None and scope not in principal.scopes:
            roles = " or ".join(roles_with(scope))
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"needs scope {scope} (role {roles})")
        return principal

    check.__mailspine_scope__ = scope  # type: ignore[attr-defined]
    check.__mailspine_users_only__ = users_only  # type: ignore[attr-defined]
    return Depends(check)


async def public(principal: Annotated[Principal | None, Depends(authenticate)]) -> Principal | None:
    """Sign-in routes: anonymous callers welcome (rate-limited per IP), bad credentials still 401."""
    return principal


public.__mailspine_public__ = True  # type: ignore[attr-defined]

ReviewReader = Annotated[Principal, require("review:read")]
ReviewWriter = Annotated[Principal, require("review:write")]
EmailReader = Annotated[Principal, require("emails:read")]
StatsReader = Annotated[Principal, require("stats:read")]
Ingester = Annotated[Principal, require("ingest")]
Admin = Annotated[Principal, require("admin")]
Authenticated = Annotated[Principal, require(None)]
SignedInUser = Annotated[Principal, require(None, users_only=True)]
Public = Annotated[Principal | None, Depends(public)]
Reviewer = ReviewWriter  # the original alias: may decide reviews
