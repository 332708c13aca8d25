"""The side-effect ledger's storage: intent before the call, result after."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import SideEffect


async def get_effect(session: AsyncSession, *, idempotency_key: str) -> SideEffect | None:
    stmt = select(SideEffect).where(SideEffect.idempotency_key == idempotency_key)
    return (await session.execute(stmt)).scalar_one_or_none()


async def record_intent(
    session: AsyncSession,
    *,
    idempotency_key: str,
    thread_id: str,
    node: str,
    action: str,
    payload: dict[str, Any],
    payload_hash: str,
) -> int | None:
    """Insert the intent, or count one more attempt of an unfinished one; return the attempt
    number (1 for the first). ``None`` when the effect already succeeded: nothing is changed and
    the caller replays the recorded result (``get_effect``).

    One statement returning a column, not the mapped row: a RETURNING of the entity handed back
    a stale identity-map copy on a retry (the previous attempt number).
    """
    stmt = (
        insert(SideEffect)
        .values(
            idempotency_key=idempotency_key,
            thread_id=thread_id,
            node=node,
            action=action,
            payload=payload,
            payload_hash=payload_hash,
            status="intent",
            attempts=1,
        )
        .on_conflict_do_update(
            index_elements=[SideEffect.idempotency_key],
            set_={"attempts": SideEffect.attempts + 1, "updated_at": func.now()},
            where=SideEffect.status != "succeeded",
        )
        .returning(SideEffect.attempts)
    )
    attempt: int | None = (await session.execute(stmt)).scalar_one_or_none()
    return attempt


async def record_result(
    session: AsyncSession,
    *,
    idempotency_key: str,
    status: str,
    result: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    await session.execute(
        update(SideEffect)
        .where(SideEffect.idempotency_key == idempotency_key)
        .values(status=status, result=result, error=error, updated_at=func.now())
    )
