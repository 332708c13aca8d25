"""Bearer-token authentication and scope checks as FastAPI dependencies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from infra.crm.errors import INVALID_AUTHENTICATION, MISSING_SCOPES, CrmError
from infra.crm.runtime import CrmRuntime, get_runtime
from infra.crm.tokens import Principal, authenticate

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="privateAppToken",
    description="Private app token: `Authorization: Bearer crm_pat_...`",
)


def _unauthenticated(message: str) -> CrmError:
    return CrmError(401, INVALID_AUTHENTICATION, message, headers={"WWW-Authenticate": "Bearer"})


async def current_principal(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    runtime: Annotated[CrmRuntime, Depends(get_runtime)],
) -> Principal:
    if credentials is None:
        raise _unauthenticated("Authentication credentials not found: send 'Authorization: Bearer <token>'.")
    async with runtime.session() as session:
        principal = await authenticate(session=session, token=credentials.credentials)
    if principal is None:
        raise _unauthenticated("The access token is invalid, expired or revoked.")
    return principal


def check_scopes(principal: Principal, *scopes: str) -> None:
    """Raise 403 MISSING_SCOPES unless the token carries every one of ``scopes``."""
    missing = sorted({scope for scope in scopes if scope not in principal.scopes})
    if missing:
        raise CrmError(
            403,
            MISSING_SCOPES,
            "This token hasn't been granted all required scopes to make this call.",
            errors=[
                {
                    "message": "One or more of the following scopes are required.",
                    "context": {"requiredScopes": missing},
                }
            ],
        )


def require_scope(scope: str) -> Callable[[Principal], Awaitable[Principal]]:
    """Dependency factory: the request's token must carry ``scope`` (else 403 MISSING_SCOPES)."""

    async def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        check_scopes(principal, scope)
        return principal

    return dependency
