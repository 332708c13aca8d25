"""Sign-in sessions: password login (throttled), refresh-token rotation with reuse detection, logout.

A session is one sign-in. Each refresh spends the presented refresh token and issues the next one
of the same family; presenting a spent token again means it was copied, so the whole session is
revoked (its access tokens stop working too: ``gateway.auth`` checks the session on every request).
Failures are committed (counts, revocations, audit) before the caller turns them into HTTP errors.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, exists, or_
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.models_auth import AuthSession, LoginThrottle, RefreshToken, User
from app.repo import audit, users
from app.settings_auth import AuthSettings
from gateway import auth_throttle
from gateway.auth_crypto import (
    REFRESH_PREFIX,
    digest,
    hash_password,
    needs_rehash,
    new_refresh_token,
    verify_password,
)
from gateway.auth_tokens import issue_access_token

BAD_CREDENTIALS = "invalid e-mail or password"


class SignInRefused(Exception):
    """Wrong credentials, or a refresh token that is unknown, spent, expired or revoked (401)."""


class SignInLocked(Exception):
    """Too many failed sign-ins for this account or client IP (429 with Retry-After)."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__("too many failed sign-in attempts; try again later")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_in: int
    email: str
    role: str


async def _issue(
    session: AsyncSession, settings: AuthSettings, *, user: User, session_id: str, now: datetime
) -> IssuedTokens:
    refresh = new_refresh_token()
    await users.add_refresh_token(
        session,
        session_id=session_id,
        token_hash=digest(refresh),
        expires_at=now + timedelta(seconds=settings.refresh_token_ttl_s),
    )
    access, _ = issue_access_token(settings, user_id=user.id, role=user.role, session_id=session_id, now=now)
    return IssuedTokens(
        access, refresh, settings.access_token_ttl_s, settings.refresh_token_ttl_s, user.email, user.role
    )


async def start_session(
    session: AsyncSession, settings: AuthSettings, *, user: User, method: str, ip: str, now: datetime
) -> IssuedTokens:
    """A new session for an authenticated user (password or OIDC), audited."""
    session_id = uuid.uuid4().hex
    await users.create_session(session, session_id=session_id, user_id=user.id, method=method, client_ip=ip)
    await users.update_user(session, user_id=user.id, last_login_at=now)
    await audit.append_audit(
        session,
        actor=user.email,
        action="auth.login",
        subject_type="user",
        subject_id=str(user.id),
        details={"ip": ip, "method": method, "session": session_id},
    )
    return await _issue(session, settings, user=user, session_id=session_id, now=now)


async def _refuse(session: AsyncSession, *, email: str, ip: str, reason: str, locked: bool) -> None:
    await audit.append_audit(
        session,
        actor=f"ip:{ip}",
        action="auth.login_failed",
        subject_type="account",
        subject_id=users.normalise_email(email)[:100],
        details={"reason": reason, "ip": ip, "locked": locked},
    )


async def password_login(
    db: Database, settings: AuthSettings, *, email: str, password: str, ip: str
) -> IssuedTokens:
    now = datetime.now(UTC)
    keys = auth_throttle.throttle_keys(email=email, ip=ip)
    refused: Exception | None = None
    async with db.transaction() as session:
        wait = await auth_throttle.locked_for(session, keys=keys, now=now)
        if wait is not None:
            await _refuse(session, email=email, ip=ip, reason="locked", locked=True)
            refused = SignInLocked(wait)
        else:
            user = await users.get_user_by_email(session, email=email)
            good = verify_password(password, user.password_hash if user else None)
            if user is None or not good or not user.active:
                reason = "unknown_account" if user is None else "bad_password" if not good else "inactive"
                locked = await auth_throttle.record_failure(
                    session, keys=keys, now=now, settings=settings, ip=ip
                )
                await _refuse(session, email=email, ip=ip, reason=reason, locked=locked)
                refused = SignInRefused(BAD_CREDENTIALS)
            else:
                await auth_throttle.record_success(session, keys=keys)
                if user.password_hash and needs_rehash(user.password_hash):
                    await users.update_user(session, user_id=user.id, password_hash=hash_password(password))
                return await start_session(session, settings, user=user, method="password", ip=ip, now=now)
    assert refused is not None
    raise refused  # after the commit: the failure, its count and its audit entry are kept


async def refresh(db: Database, settings: AuthSettings, *, refresh_token: str, ip: str) -> IssuedTokens:
    if not refresh_token.startswith(REFRESH_PREFIX):
        raise SignInRefused("invalid refresh token")
    now = datetime.now(UTC)
    reason: str | None = None
    async with db.transaction() as session:
        found = await users.lock_refresh_token(session, token_hash=digest(refresh_token))
        if found is None:
            reason = "invalid refresh token"
        else:
            token, auth_session, user = found
            if auth_session.revoked_at is not None:
                reason = "session ended; sign in again"
            elif token.used_at is not None:
                await users.revoke_session(
                    session, session_id=auth_session.id, reason="refresh_reuse", at=now
                )
                await audit.append_audit(
                    session,
                    actor=user.email,
                    action="auth.refresh_reuse",
                    subject_type="session",
                    subject_id=auth_session.id,
                    details={"ip": ip},
                )
                reason = "refresh token already used; the session is revoked, sign in again"
            elif token.expires_at <= now:
                reason = "refresh token expired; sign in again"
            elif not user.active:
                await users.revoke_session(session, session_id=auth_session.id, reason="inactive", at=now)
                reason = "account disabled"
            else:
                token.used_at = now
                return await _issue(session, settings, user=user, session_id=auth_session.id, now=now)
    raise SignInRefused(reason)


async def logout(db: Database, *, session_id: str, actor: str, ip: str) -> None:
    now = datetime.now(UTC)
    async with db.transaction() as session:
        if await users.revoke_session(session, session_id=session_id, reason="logout", at=now):
            await audit.append_audit(
                session,
                actor=actor,
                action="auth.logout",
                subject_type="session",
                subject_id=session_id,
                details={"ip": ip},
            )


@dataclass(frozen=True)
class Purged:
    refresh_tokens: int
    sessions: int
    throttle_rows: int


async def purge_expired(db: Database, settings: AuthSettings, *, now: datetime | None = None) -> Purged:
    """Delete sign-in state that can never be valid again (run hourly by the worker).

    - Refresh tokens that expired more than one access-token lifetime ago. (Reuse detection does
      not need them: an unknown token is refused like a spent one.)
    - Sessions left with no refresh token: their last token was issued more than
      ``refresh_ttl + access_ttl`` ago, so every access token of the session has expired too.
    - Throttle rows whose counting window and lockout are both over.
    The audit log keeps every sign-in, refresh and lockout; only live state is deleted.
    """
    now = now or datetime.now(UTC)
    token_cutoff = now - timedelta(seconds=settings.access_token_ttl_s)
    window_cutoff = now - timedelta(seconds=settings.lockout_window_s)
    async with db.transaction() as session:
        tokens = await session.execute(delete(RefreshToken).where(RefreshToken.expires_at < token_cutoff))
        has_token = exists().where(RefreshToken.session_id == AuthSession.id)
        sessions = await session.execute(
            delete(AuthSession).where(
                ~has_token,
                AuthSession.created_at < token_cutoff - timedelta(seconds=settings.refresh_token_ttl_s),
            )
        )
        throttle = await session.execute(
            delete(LoginThrottle).where(
                LoginThrottle.window_started_at < window_cutoff,
                or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until < now),
            )
        )
    return Purged(
        refresh_tokens=_rowcount(tokens), sessions=_rowcount(sessions), throttle_rows=_rowcount(throttle)
    )


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
