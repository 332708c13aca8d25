"""Failed sign-ins per account and per client IP, and the lockouts they trigger.

Counted in Postgres (``login_throttle``) so every API process sees the same counts. An account is
keyed by the e-mail as typed (lower-cased), whether or not it exists, so a lockout answer tells an
attacker nothing about which accounts exist.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.models_auth import LoginThrottle
from app.repo import audit, users
from app.settings_auth import AuthSettings

ACCOUNT, IP = "account", "ip"


def throttle_keys(*, email: str, ip: str) -> list[tuple[str, str]]:
    return [(ACCOUNT, users.normalise_email(email)[:320]), (IP, ip[:320])]


async def locked_for(session: AsyncSession, *, keys: list[tuple[str, str]], now: datetime) -> float | None:
    """Seconds left on the longest lockout among ``keys``, or ``None`` when none is in force."""
    until = await users.locked_until(session, keys=keys, now=now)
    return (until - now).total_seconds() if until else None


def _count(row: LoginThrottle, *, now: datetime, threshold: int, settings: AuthSettings) -> bool:
    """One more failure on a locked row; ``True`` when it starts a lockout (the count restarts)."""
    if row.failures == 0 or now - row.window_started_at > timedelta(seconds=settings.lockout_window_s):
        row.failures, row.window_started_at = 0, now
    row.failures += 1
    if row.failures < threshold:
        return False
    row.locked_until = now + timedelta(seconds=settings.lockout_duration_s)
    row.failures, row.window_started_at = 0, now
    return True


async def record_failure(
    session: AsyncSession, *, keys: list[tuple[str, str]], now: datetime, settings: AuthSettings, ip: str
) -> bool:
    """Count a failed sign-in against the account and the IP; audit any lockout it starts.
    ``True`` when the account or the IP is now locked."""
    locked = False
    for scope, key in keys:  # always account, then IP: one lock order, no deadlocks
        row = await users.lock_throttle(session, scope=scope, key=key)
        threshold = settings.lockout_threshold if scope == ACCOUNT else settings.ip_lockout_threshold
        if _count(row, now=now, threshold=threshold, settings=settings):
            locked = True
            await audit.append_audit(
                session,
                actor=f"ip:{ip}",
                action="auth.lockout",
                subject_type=scope,
                subject_id=key[:100],
                details={"until": row.locked_until.isoformat() if row.locked_until else None},
            )
    return locked


async def record_success(session: AsyncSession, *, keys: list[tuple[str, str]]) -> None:
    """A good sign-in clears the account's count (the IP's count runs out with its window)."""
    for scope, key in keys:
        if scope == ACCOUNT:
            await users.clear_throttle(session, scope=scope, key=key)
