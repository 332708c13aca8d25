"""Reviews: a pending human decision bound to the hash of the exact payload shown."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import ReviewConflict
from app.models import Review


async def create_review(
    session: AsyncSession,
    *,
    run_id: int,
    email_id: int,
    thread_id: str,
    reasons: list[str],
    payload: dict[str, Any],
    payload_hash: str,
) -> Review | None:
    """Idempotent: a second call for the same thread and payload returns ``None``."""
    stmt = (
        insert(Review)
        .values(
            run_id=run_id,
            email_id=email_id,
            thread_id=thread_id,
            reasons=reasons,
            payload=payload,
            payload_hash=payload_hash,
            status="pending",
        )
        .on_conflict_do_nothing(index_elements=[Review.thread_id, Review.payload_hash])
        .returning(Review)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_review(session: AsyncSession, *, review_id: int, for_update: bool = False) -> Review | None:
    stmt = select(Review).where(Review.id == review_id)
    if for_update:
        # populate_existing: a row read earlier in this session sits in its identity map, and a
        # locking read would otherwise hand back that stale copy. The decision route reads the
        # review first, so a decision another reviewer committed in between looked "pending" and
        # was overwritten (seen in CI: both decisions answered 200).
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_reviews(session: AsyncSession, *, status: str = "pending", limit: int = 200) -> list[Review]:
    stmt = select(Review).where(Review.status == status).order_by(Review.created_at, Review.id).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def decide_review(
    session: AsyncSession,
    *,
    review_id: int,
    decision: str,
    reviewer: str,
    expected_hash: str,
    decided_payload: dict[str, Any] | None,
    reason: str | None,
) -> Review:
    """Record a decision. Raises ``ReviewConflict`` if already decided or the payload shown is stale."""
    review = await get_review(session, review_id=review_id, for_update=True)
    if review is None:
        raise ReviewConflict(f"review {review_id} does not exist")
    if review.status != "pending":
        raise ReviewConflict(f"review {review_id} was already {review.status} by {review.reviewer}")
    if review.payload_hash != expected_hash:
        raise ReviewConflict(f"review {review_id}: the payload you saw is not the one pending (stale hash)")
    await session.execute(
        update(Review)
        .where(Review.id == review_id)
        .values(
            status="approved" if decision == "approve" else "rejected",
            reviewer=reviewer,
            decision_reason=reason,
            decided_payload=decided_payload,
            decided_at=func.now(),
        )
    )
    await session.refresh(review)
    return review
