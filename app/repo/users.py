"""User accounts, their sign-in sessions and refresh tokens, and the failed-login throttle.

Secrets arrive here already hashed; the gateway (``gateway.auth_*``) does the cryptography.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models_auth import AuthSession, LoginThrottle, RefreshToken, User


def normalise_email(email: str) -> str:
    return email.strip().lower()


# --- users ---


async def create_user(
    session: AsyncSession, *, email: str, role: str, password_hash: str | None
) -> User | None:
    """A new active user; ``None`` when the e-mail is taken."""
    stmt = (
        insert(User)
        .values(email=normalise_email(email), role=role, password_hash=password_hash, active=True)
        .on_conflict_do_nothing()
        .returning(User)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_user(session: AsyncSession, *, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def get_user_by_email(session: AsyncSession, *, email: str) -> User | None:
    stmt = select(User).where(User.email == normalise_email(email))
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_users(session: AsyncSession) -> list[User]:
    return list((await session.execute(select(User).order_by(User.id))).scalars())


async def lock_active_admins(session: AsyncSession) -> list[int]:
    """Ids of the active admins, locked until the transaction ends (so two admins cannot demote
    each other at the same moment and leave none)."""
    stmt = select(User.id).where(User.role == "admin", User.active.is_(True)).with_for_update()
    return list((await session.execute(stmt)).scalars())


async def update_user(
    session: AsyncSession,
    *,
    user_id: int,
    role: str | None = None,
    active: bool | None = None,
    password_hash: str | None = None,
    last_login_at: datetime | None = None,
) -> User | None:
    values: dict[str, object] = {"updated_at": func.now()}
    for name, value in (
        ("role", role),
        ("active", active),
        ("password_hash", password_hash),
        ("last_login_at", last_login_at),
    ):
        if value is not None:
            values[name] = value
    stmt = update(User).where(User.id == user_id).values(**values).returning(User)
    return (await session.execute(stmt)).scalar_one_or_none()


# --- sessions and refresh tokens ---


async def create_session(
    session: AsyncSession, *, session_id: str, user_id: int, method: str, client_ip: str | None
) -> AuthSession:
    row = AuthSession(id=session_id, user_id=user_id, method=method, client_ip=client_ip)
    session.add(row)
    await session.flush()
    return row


async def get_session_user(
    session: AsyncSession, *, session_id: str, user_id: int
) -> tuple[AuthSession, User] | None:
    """The sign-in session and its user (one query per authenticated request)."""
    stmt = (
        select(AuthSession, User)
        .join(User, User.id == AuthSession.user_id)
        .where(AuthSession.id == session_id, AuthSession.user_id == user_id)
    )
    row = (await session.execute(stmt)).one_or_none()
    return (row[0], row[1]) if row else None


async def revoke_session(
    session: AsyncSession, *, session_id: str, reason: str, at: datetime
) -> AuthSession | None:
    stmt = (
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=at, revoked_reason=reason)
        .returning(AuthSession)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def revoke_user_sessions(session: AsyncSession, *, user_id: int, reason: str, at: datetime) -> int:
    stmt = (
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=at, revoked_reason=reason)
    )
    result = await session.execute(stmt)
    return int(result.rowcount)  # type: ignore[attr-defined]


async def add_refresh_token(
    session: AsyncSession, *, session_id: str, token_hash: str, expires_at: datetime
) -> RefreshToken:
    row = RefreshToken(session_id=session_id, token_hash=token_hash, expires_at=expires_at)
    session.add(row)
    await session.flush()
    return row


async def lock_refresh_token(
    session: AsyncSession, *, token_hash: str
) -> tuple[RefreshToken, AuthSession, User] | None:
    """The token with its session and user, the token row locked until the transaction ends
    (two concurrent uses of one token serialise here: the second sees it used)."""
    stmt = (
        select(RefreshToken, AuthSession, User)
        .join(AuthSession, AuthSession.id == RefreshToken.session_id)
        .join(User, User.id == AuthSession.user_id)
        .where(RefreshToken.token_hash == token_hash)
        .with_for_update(of=RefreshToken)
        .execution_options(populate_existing=True)  # a locking read is never a stale cached copy
    )
    row = (await session.execute(stmt)).one_or_none()
    return (row[0], row[1], row[2]) if row else None


# --- failed sign-ins ---


async def lock_throttle(session: AsyncSession, *, scope: str, key: str) -> LoginThrottle:
    """The throttle row (created empty if new), locked until the caller's transaction ends."""
    await session.execute(
        insert(LoginThrottle).values(scope=scope, key=key, failures=0).on_conflict_do_nothing()
    )
    stmt = (
        select(LoginThrottle)
        .where(LoginThrottle.scope == scope, LoginThrottle.key == key)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one()


async def locked_until(
    session: AsyncSession, *, keys: list[tuple[str, str]], now: datetime
) -> datetime | None:
    """The latest lockout still in force among ``(scope, key)`` pairs, or ``None``."""
    if not keys:
        return None
    stmt = select(func.max(LoginThrottle.locked_until)).where(
        LoginThrottle.locked_until > now,
        or_(*[(LoginThrottle.scope == s) & (LoginThrottle.key == k) for s, k in keys]),
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def clear_throttle(session: AsyncSession, *, scope: str, key: str) -> bool:
    stmt = delete(LoginThrottle).where(LoginThrottle.scope == scope, LoginThrottle.key == key)
    result = await session.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]
