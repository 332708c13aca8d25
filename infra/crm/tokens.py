"""Private-app style bearer tokens (``crm_pat_<random>``). Only a SHA-256 of a token is stored."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from infra.crm.models import Token
from infra.crm.scopes import validate_scopes

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "crm_pat_"


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of a request."""

    token_id: int
    name: str
    scopes: frozenset[str]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def generate_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@asynccontextmanager
async def _transaction(bind: AsyncEngine | AsyncSession) -> AsyncIterator[AsyncSession]:
    """A session in a transaction: a new one for an engine, or the caller's session as is."""
    if isinstance(bind, AsyncSession):
        yield bind
        return
    async with AsyncSession(bind, expire_on_commit=False) as session, session.begin():
        yield session


async def create_token(*, bind: AsyncEngine | AsyncSession, name: str, scopes: list[str]) -> str:
    """Create a token and return its plaintext; it is never retrievable again.

    With an engine, the token is committed before returning; with a session, the caller's
    transaction decides (nothing is committed here).
    """
    if not name.strip():
        raise ValueError("a token needs a name")
    plaintext = generate_token()
    row = Token(name=name.strip(), token_sha256=hash_token(plaintext), scopes=validate_scopes(scopes))
    async with _transaction(bind) as session:
        session.add(row)
        await session.flush()
        logger.info("created CRM token id=%s name=%s scopes=%s", row.id, row.name, row.scopes)
    return plaintext


async def revoke_token(
    *, bind: AsyncEngine | AsyncSession, token: str | None = None, token_id: int | None = None
) -> bool:
    """Revoke a token given by plaintext or by id. Returns False if no active token matched."""
    if (token is None) == (token_id is None):
        raise ValueError("pass exactly one of token= or token_id=")
    condition = Token.token_sha256 == hash_token(token) if token is not None else Token.id == token_id
    statement = (
        update(Token)
        .where(condition, Token.revoked_at.is_(None))
        .values(revoked_at=func.now())
        .returning(Token.id)
    )
    async with _transaction(bind) as session:
        revoked_id = (await session.execute(statement)).scalar_one_or_none()
    if revoked_id is not None:
        logger.info("revoked CRM token id=%s", revoked_id)
    return revoked_id is not None


async def authenticate(*, session: AsyncSession, token: str) -> Principal | None:
    """Return the principal for an active token, or None for unknown, malformed or revoked tokens."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    statement = select(Token).where(Token.token_sha256 == hash_token(token), Token.revoked_at.is_(None))
    row = (await session.execute(statement)).scalar_one_or_none()
    if row is None:
        return None
    return Principal(token_id=row.id, name=row.name, scopes=frozenset(row.scopes))
