"""A decision is recorded once: a reviewer deciding a review someone else decided gets a conflict.

The decision route reads the review, then ``decide_review`` locks it (``SELECT ... FOR UPDATE``).
A decision committed by another reviewer between the two reads must be seen by the locking read:
it once handed back the session's stale copy, so the second decision overwrote the first (CI saw
both answered 200). This reproduces the interleaving deterministically.
"""

from __future__ import annotations

import pytest

from app.db import Database
from app.errors import ReviewConflict
from app.hashing import payload_hash
from app.repo import reviews
from tests.integration.test_dashboard import PAYLOAD, review_id

pytestmark = pytest.mark.integration
__all__ = ["review_id"]  # a fixture: a pending review seeded into the database

HASH = payload_hash(PAYLOAD["plan"])


async def test_a_decision_committed_meanwhile_is_seen_by_the_locking_read(
    db: Database, review_id: int
) -> None:
    async with db.transaction() as late:
        first_read = await reviews.get_review(late, review_id=review_id)  # as the route does
        assert first_read is not None and first_read.status == "pending"
        async with db.transaction() as quick:  # another reviewer decides and commits meanwhile
            await reviews.decide_review(
                quick,
                review_id=review_id,
                decision="approve",
                reviewer="quick@example.test",
                expected_hash=HASH,
                decided_payload=None,
                reason=None,
            )
        with pytest.raises(ReviewConflict, match=r"already approved by quick@example\.test"):
            await reviews.decide_review(
                late,
                review_id=review_id,
                decision="reject",
                reviewer="late@example.test",
                expected_hash=HASH,
                decided_payload=None,
                reason="not a real customer",
            )
    async with db.transaction() as session:
        final = await reviews.get_review(session, review_id=review_id)
        assert final is not None and (final.status, final.reviewer) == ("approved", "quick@example.test")
