"""The review queue's table: age against the review SLA, and filters by intent, sender and reason.

Pure functions over the rows of ``GET /v1/reviews``, so they are unit-tested without Streamlit.
``intent`` is used when the gateway's rows carry it; rows without it have no intent to filter by.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

JSON = dict[str, Any]


def _created(review: JSON) -> datetime:
    created = datetime.fromisoformat(str(review["created_at"]))
    return created if created.tzinfo is not None else created.replace(tzinfo=UTC)


def age_hours(review: JSON, now: datetime) -> float:
    return max(0.0, (now - _created(review)).total_seconds() / 3600)


def overdue(review: JSON, *, sla_hours: float, now: datetime) -> bool:
    """Waiting longer than the SLA (``MAILSPINE_REVIEW_SLA_HOURS``) allows."""
    return age_hours(review, now) > sla_hours


@dataclass(frozen=True)
class QueueFilter:
    intents: frozenset[str] = field(default_factory=frozenset)  # empty: any intent
    reasons: frozenset[str] = field(default_factory=frozenset)  # empty: any; else at least one of them
    sender: str = ""  # case-insensitive substring of the sender address; empty: any

    def matches(self, review: JSON) -> bool:
        if self.intents and review.get("intent") not in self.intents:
            return False
        if self.reasons and not self.reasons & set(review.get("reasons", [])):
            return False
        needle = self.sender.strip().lower()
        return not needle or needle in str(review.get("sender") or "").lower()


def apply(reviews: Iterable[JSON], where: QueueFilter) -> list[JSON]:
    return [r for r in reviews if where.matches(r)]


def choices(reviews: Iterable[JSON]) -> tuple[list[str], list[str]]:
    """The intents and the reasons present in the queue, sorted, for the filter widgets."""
    rows = list(reviews)
    intents = sorted({str(r["intent"]) for r in rows if r.get("intent")})
    reasons = sorted({str(reason) for r in rows for reason in r.get("reasons", [])})
    return intents, reasons
