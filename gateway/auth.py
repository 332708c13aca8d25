"""API-key authentication and role checks (users, JWT sessions and scoped keys come next).

Every route declares the role it needs through one of the ``Annotated`` aliases below; a test
walks the route table and fails on any unprotected route other than health.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader

from app.settings import Settings

Role = Literal["service", "reviewer"]
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False)


@dataclass(frozen=True)
class Principal:
    id: str
    role: Role


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def authenticate(request: Request, key: Annotated[str | None, Depends(_api_key)]) -> Principal:
    if not key:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing X-API-Key header")
    settings = _settings(request)
    candidates: list[tuple[str, Principal]] = [
        (settings.reviewer_api_key.get_secret_value(), Principal(id="reviewer", role="reviewer")),
        (settings.gateway_api_key.get_secret_value(), Principal(id="service", role="service")),
    ]
    for secret, principal in candidates:
        if hmac.compare_digest(secret.encode(), key.encode()):
            return principal
    raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid API key")


def require(*roles: Role) -> object:
    def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if principal.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"needs role {' or '.join(roles)}")
        return principal

    check.__mailspine_roles__ = roles  # type: ignore[attr-defined]
    return Depends(check)


Reviewer = Annotated[Principal, require("reviewer")]
ServiceOrReviewer = Annotated[Principal, require("reviewer", "service")]
