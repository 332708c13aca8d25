"""Online evaluation's storage: scores per run, rolling means, drift alarms, shadow-run comparisons.

``current_alarms`` is what a dashboard or a metrics exporter reads: the open alarms, newest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Email, Review, SideEffect
from app.models_online import DriftAlarm, OnlineScore, ShadowRun
from app.models_pii import PiiVaultEntry


@dataclass(frozen=True)
class WindowMean:
    name: str
    mean: float | None  # None: no scored (non-skipped) value yet
    count: int  # values in the window (at most the window size)


async def tables_exist(session: AsyncSession) -> bool:
    """Whether this database is migrated far enough for online evaluation (0015)."""
    found = await session.execute(text("SELECT to_regclass('online_scores') IS NOT NULL"))
    return found.scalar_one() is True


async def record_score(
    session: AsyncSession,
    *,
    trace_id: str | None,
    email_id: int,
    run_id: int,
    name: str,
    value: float | None,
    details: dict[str, Any],
) -> OnlineScore | None:
    """Idempotent per (run, name): a second score of the same name for a run returns ``None``."""
    if value is not None and not 0.0 <= value <= 1.0:
        raise ValueError(f"score {name} must be between 0 and 1, got {value}")
    stmt = (
        insert(OnlineScore)
        .values(trace_id=trace_id, email_id=email_id, run_id=run_id, name=name, value=value, details=details)
        .on_conflict_do_nothing(index_elements=[OnlineScore.run_id, OnlineScore.name])
        .returning(OnlineScore)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def score_names(session: AsyncSession, *, run_id: int) -> set[str]:
    stmt = select(OnlineScore.name).where(OnlineScore.run_id == run_id)
    return set((await session.execute(stmt)).scalars())


async def scores_for_email(session: AsyncSession, *, email_id: int) -> list[OnlineScore]:
    stmt = select(OnlineScore).where(OnlineScore.email_id == email_id).order_by(OnlineScore.id)
    return list((await session.execute(stmt)).scalars())


async def recent_scores(session: AsyncSession, *, limit: int = 20) -> list[OnlineScore]:
    stmt = select(OnlineScore).order_by(OnlineScore.id.desc()).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def window_mean(session: AsyncSession, *, name: str, window: int) -> WindowMean:
    """The mean of the last ``window`` values of ``name``; skipped scores (null) do not count."""
    last = (
        select(OnlineScore.value)
        .where(OnlineScore.name == name, OnlineScore.value.is_not(None))
        .order_by(OnlineScore.id.desc())
        .limit(window)
        .subquery()
    )
    mean, count = (await session.execute(select(func.avg(last.c.value), func.count()))).one()
    return WindowMean(name=name, mean=float(mean) if mean is not None else None, count=int(count))


async def all_window_means(session: AsyncSession, *, window: int) -> list[WindowMean]:
    names = (await session.execute(select(OnlineScore.name).distinct().order_by(OnlineScore.name))).scalars()
    return [await window_mean(session, name=n, window=window) for n in list(names)]


async def lock_name(session: AsyncSession, *, name: str) -> None:
    """Serialise alarm updates of one score name until the transaction ends."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('online:' || :n))"), {"n": name})


async def open_alarm(session: AsyncSession, *, name: str) -> DriftAlarm | None:
    stmt = select(DriftAlarm).where(DriftAlarm.name == name, DriftAlarm.cleared_at.is_(None))
    return (await session.execute(stmt)).scalar_one_or_none()


async def raise_alarm(
    session: AsyncSession, *, name: str, mean: float, window_size: int, threshold: float
) -> DriftAlarm | None:
    """Open an alarm for ``name``; ``None`` when one is already open."""
    stmt = (
        insert(DriftAlarm)
        .values(name=name, window_mean=mean, window_size=window_size, threshold=threshold)
        .on_conflict_do_nothing(index_elements=[DriftAlarm.name], index_where=DriftAlarm.cleared_at.is_(None))
        .returning(DriftAlarm)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def clear_alarm(session: AsyncSession, *, name: str, mean: float) -> bool:
    """Close the open alarm of ``name``; False when none was open."""
    result = await session.execute(
        update(DriftAlarm)
        .where(DriftAlarm.name == name, DriftAlarm.cleared_at.is_(None))
        .values(cleared_at=func.now(), cleared_mean=mean)
        .returning(DriftAlarm.id)
    )
    return result.scalar_one_or_none() is not None


async def current_alarms(session: AsyncSession) -> list[DriftAlarm]:
    """The open drift alarms, newest first: the flag a dashboard shows."""
    stmt = select(DriftAlarm).where(DriftAlarm.cleared_at.is_(None)).order_by(DriftAlarm.raised_at.desc())
    return list((await session.execute(stmt)).scalars())


async def recent_alarms(session: AsyncSession, *, limit: int = 20) -> list[DriftAlarm]:
    stmt = select(DriftAlarm).order_by(DriftAlarm.id.desc()).limit(limit)
    return list((await session.execute(stmt)).scalars())


# --- what the checks read ---------------------------------------------------------------------


async def vault_tokens(session: AsyncSession, *, email_id: int) -> set[str]:
    """The placeholders handed out for this email. Tokens only: nothing is decrypted."""
    stmt = select(PiiVaultEntry.token).where(PiiVaultEntry.email_id == email_id)
    return set((await session.execute(stmt)).scalars())


async def thread_emails(session: AsyncSession, *, email: Email) -> list[Email]:
    """This email and the other emails of its conversation (same ``conversation_id``)."""
    if not email.conversation_id:
        return [email]
    stmt = select(Email).where(Email.conversation_id == email.conversation_id).order_by(Email.id).limit(50)
    found = list((await session.execute(stmt)).scalars())
    return found if any(e.id == email.id for e in found) else [email, *found]


async def decided_review(session: AsyncSession, *, thread_id: str) -> Review | None:
    """The latest decided review of a thread."""
    stmt = (
        select(Review)
        .where(Review.thread_id == thread_id, Review.status != "pending")
        .order_by(Review.id.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def first_review(session: AsyncSession, *, thread_id: str) -> Review | None:
    """The thread's first review: its payload is the plan the agent proposed."""
    stmt = select(Review).where(Review.thread_id == thread_id).order_by(Review.id).limit(1)
    return (await session.execute(stmt)).scalar_one_or_none()


async def crm_effects(session: AsyncSession, *, thread_id: str) -> list[SideEffect]:
    stmt = (
        select(SideEffect)
        .where(SideEffect.thread_id == thread_id, SideEffect.action.like("crm_%"))
        .order_by(SideEffect.id)
    )
    return list((await session.execute(stmt)).scalars())


# --- shadow runs --------------------------------------------------------------------------------


async def get_shadow(session: AsyncSession, *, email_id: int, candidate: str) -> ShadowRun | None:
    stmt = select(ShadowRun).where(ShadowRun.email_id == email_id, ShadowRun.candidate == candidate)
    return (await session.execute(stmt)).scalar_one_or_none()


async def record_shadow(session: AsyncSession, **values: Any) -> ShadowRun | None:
    """Idempotent per (email, candidate): a second comparison returns ``None``."""
    stmt = (
        insert(ShadowRun)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[ShadowRun.email_id, ShadowRun.candidate])
        .returning(ShadowRun)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def shadow_summary(session: AsyncSession) -> list[dict[str, Any]]:
    """Per candidate: runs compared and the share where intent, route and actions agreed."""
    rows = await session.execute(
        text(
            "SELECT candidate, count(*) AS runs,"
            " avg(CASE WHEN intent_agrees THEN 1.0 ELSE 0.0 END) AS intent,"
            " avg(CASE WHEN route_agrees THEN 1.0 ELSE 0.0 END) AS route,"
            " avg(CASE WHEN actions_agree THEN 1.0 ELSE 0.0 END) AS actions,"
            " max(created_at) AS last_at"
            " FROM shadow_runs GROUP BY candidate ORDER BY max(created_at) DESC"
        )
    )
    return [
        {
            "candidate": r.candidate,
            "runs": int(r.runs),
            "intent_agreement": float(r.intent),
            "route_agreement": float(r.route),
            "actions_agreement": float(r.actions),
            "last_at": r.last_at.isoformat() if r.last_at else None,
        }
        for r in rows
    ]
