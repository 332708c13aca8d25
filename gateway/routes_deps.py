"""Request-scoped dependencies shared by the routers: the database, settings, limits, client IP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.settings import Settings
from gateway.ratelimit import Limits
from gateway.schemas import ErrorOut

_DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing, invalid or expired credentials",
    403: "Authenticated, but lacking the scope (role) this route needs",
    404: "Not found",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    429: "Rate limited or locked out; see Retry-After",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error codes a route can answer (body: ``{"detail": "..."}``)."""
    return {code: {"model": ErrorOut, "description": _DESCRIPTIONS[code]} for code in codes}


AUTH_ERRORS = errors(401, 403, 429)


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_limits(request: Request) -> Limits:
    limits: Limits = request.app.state.limits
    return limits


def client_ip(request: Request) -> str:
    """The peer address. Behind a reverse proxy, run uvicorn with ``--proxy-headers`` and
    ``--forwarded-allow-ips`` so this is the real client, not the proxy."""
    return request.client.host if request.client else "unknown"


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the route returns, rolled back if it raises."""
    async with get_db(request).transaction() as session:
        yield session


Session = Annotated[AsyncSession, Depends(_session)]
Db = Annotated[Database, Depends(get_db)]
AppSettings = Annotated[Settings, Depends(get_settings)]
ClientIp = Annotated[str, Depends(client_ip)]
AppLimits = Annotated[Limits, Depends(get_limits)]
RowId = Annotated[int, Path(ge=1, le=2**63 - 1, description="A row id")]  # a BIGINT, never out of range
