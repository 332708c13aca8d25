"""Managing accounts and keys: shared by the ``mailspine users|keys`` commands and the admin routes.

Each change runs in the caller's transaction and is audited with the actor's identity; passwords
and key secrets never reach the audit log.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.models_auth import ApiKey, User
from app.repo import api_keys, audit, users
from app.settings_auth import AuthSettings
from gateway.auth_crypto import digest, format_key, hash_password, new_key_secret
from gateway.auth_scopes import ROLES, parse_scopes
from gateway.auth_throttle import ACCOUNT


class AccountError(ValueError):
    """A request the policy refuses (weak password, e-mail taken, unknown role or scope)."""


def check_password(settings: AuthSettings, password: str, *, email: str) -> None:
    if len(password) < settings.password_min_length:
        raise AccountError(f"the password needs at least {settings.password_min_length} characters")
    if password.strip().lower() == users.normalise_email(email):
        raise AccountError("the password must not be the e-mail address")


async def create_user(
    session: AsyncSession, settings: AuthSettings, *, email: str, role: str, password: str | None, actor: str
) -> User:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; known: {', '.join(ROLES)}")
    if password is not None:
        check_password(settings, password, email=email)
    user = await users.create_user(
        session, email=email, role=role, password_hash=hash_password(password) if password else None
    )
    if user is None:
        raise AccountError(f"a user with e-mail {users.normalise_email(email)} already exists")
    await audit.append_audit(
        session,
        actor=actor,
        action="user.create",
        subject_type="user",
        subject_id=str(user.id),
        details={"email": user.email, "role": role, "password": password is not None},
    )
    return user


async def update_user(
    session: AsyncSession,
    settings: AuthSettings,
    *,
    user_id: int,
    actor: str,
    role: str | None = None,
    active: bool | None = None,
    password: str | None = None,
) -> User | None:
    """Change role, status or password; disabling or a new password ends the user's sessions."""
    current = await users.get_user(session, user_id=user_id)
    if current is None:
        return None
    if role is not None and role not in ROLES:
        raise AccountError(f"unknown role {role!r}; known: {', '.join(ROLES)}")
    if password is not None:
        check_password(settings, password, email=current.email)
    loses_admin = (
        current.role == "admin" and current.active and (active is False or role not in (None, "admin"))
    )
    if loses_admin and len(await users.lock_active_admins(session)) <= 1:
        raise AccountError("this is the last active admin: make another admin first")
    user = await users.update_user(
        session,
        user_id=user_id,
        role=role,
        active=active,
        password_hash=hash_password(password) if password is not None else None,
    )
    if active is False or password is not None:
        await users.revoke_user_sessions(session, user_id=user_id, reason="admin", at=datetime.now(UTC))
    await audit.append_audit(
        session,
        actor=actor,
        action="user.update",
        subject_type="user",
        subject_id=str(user_id),
        details={"role": role, "active": active, "password_changed": password is not None},
    )
    return user


async def create_key(
    session: AsyncSession, *, name: str, scopes: list[str], actor: str
) -> tuple[ApiKey, str]:
    """A new key and its plaintext ``msk_<id>_<secret>`` (shown once, never stored)."""
    try:
        granted = parse_scopes(scopes)
    except ValueError as exc:
        raise AccountError(str(exc)) from exc
    if not granted:
        raise AccountError("a key needs at least one scope")
    secret = new_key_secret()
    row = await api_keys.create_key(
        session, name=name, scopes=list(granted), secret_hash=digest(secret), created_by=actor
    )
    await audit.append_audit(
        session,
        actor=actor,
        action="api_key.create",
        subject_type="api_key",
        subject_id=str(row.id),
        details={"name": name, "scopes": list(granted)},
    )
    return row, format_key(row.id, secret)


async def revoke_key(session: AsyncSession, *, key_id: int, actor: str) -> ApiKey | None:
    row = await api_keys.revoke_key(session, key_id=key_id, at=datetime.now(UTC))
    if row is not None:
        await audit.append_audit(
            session, actor=actor, action="api_key.revoke", subject_type="api_key", subject_id=str(key_id)
        )
    return row


async def unlock_account(session: AsyncSession, *, email: str, actor: str) -> bool:
    """Lift a sign-in lockout early (the account's failure count is cleared)."""
    key = users.normalise_email(email)[:320]
    cleared = await users.clear_throttle(session, scope=ACCOUNT, key=key)
    if cleared:
        await audit.append_audit(
            session, actor=actor, action="user.unlock", subject_type="account", subject_id=key[:100]
        )
    return cleared
