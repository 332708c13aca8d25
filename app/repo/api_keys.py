"""Service API keys: name, scopes and the SHA-256 of the secret (the key itself is shown once)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models_auth import ApiKey


async def create_key(
    session: AsyncSession, *, name: str, scopes: list[str], secret_hash: str, created_by: str
) -> ApiKey:
    row = ApiKey(name=name, scopes=sorted(set(scopes)), secret_hash=secret_hash, created_by=created_by)
    session.add(row)
    await session.flush()
    return row


async def get_key(session: AsyncSession, *, key_id: int) -> ApiKey | None:
    return await session.get(ApiKey, key_id)


async def list_keys(session: AsyncSession, *, include_revoked: bool = True) -> list[ApiKey]:
    stmt = select(ApiKey).order_by(ApiKey.id)
    if not include_revoked:
        stmt = stmt.where(ApiKey.revoked_at.is_(None))
    return list((await session.execute(stmt)).scalars())


async def revoke_key(session: AsyncSession, *, key_id: int, at: datetime) -> ApiKey | None:
    """Revoke; ``None`` when there is no such key or it was already revoked."""
    stmt = (
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=at)
        .returning(ApiKey)
    )
    return (await session.execute(stmt)).scalar_one_or_none()
