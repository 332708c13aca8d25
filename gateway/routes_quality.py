"""Quality and cost (scope ``stats:read``): online scores and drift alarms, reviewer feedback,
spend per day and model against the daily budget, and the queue, review backlog and workers.

Circuit breakers live in each worker's memory (``agent.resilience``, one per provider endpoint
and process), so this API process cannot know their state. ``/v1/quality/ops`` says so and shows
what the database does know: model calls that an open breaker refused in the last hour.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Annotated, Literal

from fastapi import FastAPI, Query

from app.queue import MAINTENANCE_QUEUE, queue_depth
from app.repo import dashboard_queries as q
from app.repo import model_calls, online_eval
from app.tasks import STALLED_AFTER_S
from gateway.auth import StatsReader
from gateway.routes_deps import AUTH_ERRORS, AppSettings, Session
from gateway.schemas_dashboard import (
    AlarmOut,
    Budget,
    CircuitOut,
    CostOut,
    FeedbackDay,
    OnlineQuality,
    OpsOut,
    ScoreBucket,
    SpendRow,
    WindowOut,
    WorkerOut,
)

TAGS: list[str | Enum] = ["quality"]
Days = Annotated[int, Query(ge=1, le=366, description="How many days back, today included")]
CIRCUIT_NOTE = (
    "Circuit breakers are kept in each worker process's memory, one per provider endpoint; the API "
    "process cannot read them. Shown instead: model calls refused by an open breaker (model_calls "
    "status circuit_open) in the last hour, from any worker."
)


def _since(days: int, now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days - 1)


def register(app: FastAPI) -> None:
    @app.get("/v1/quality/online", tags=TAGS, response_model=OnlineQuality, responses=AUTH_ERRORS)
    async def online_quality(
        _: StatsReader,
        session: Session,
        settings: AppSettings,
        days: Days = 14,
        bucket: Annotated[Literal["hour", "day"], Query()] = "day",
    ) -> OnlineQuality:
        """Mean online score per name and hour or day, the current rolling means against their
        thresholds, open drift alarms, and reviewer decisions per day."""
        since = _since(days, datetime.now(UTC))
        window = settings.online.window
        feedback: dict[datetime, dict[str, int]] = {}
        for day, state, n in await q.review_decisions_by_day(session, since=since):
            feedback.setdefault(day, {"approved": 0, "rejected": 0})[state] = n
        return OnlineQuality(
            bucket=bucket,
            window=window,
            buckets=[
                ScoreBucket(name=n, start=at, mean=mean, count=c)
                for n, at, mean, c in await q.score_buckets(session, since=since, bucket=bucket)
            ],
            current=[
                WindowOut(
                    name=m.name, mean=m.mean, count=m.count, threshold=settings.online.threshold(m.name)
                )
                for m in await online_eval.all_window_means(session, window=window)
            ],
            alarms=[
                AlarmOut(
                    id=a.id,
                    name=a.name,
                    window_mean=a.window_mean,
                    window_size=a.window_size,
                    threshold=a.threshold,
                    raised_at=a.raised_at,
                )
                for a in await online_eval.current_alarms(session)
            ],
            feedback=[
                FeedbackDay(day=d, approved=v.get("approved", 0), rejected=v.get("rejected", 0))
                for d, v in sorted(feedback.items())
            ],
        )

    @app.get("/v1/quality/cost", tags=TAGS, response_model=CostOut, responses=AUTH_ERRORS)
    async def cost(_: StatsReader, session: Session, settings: AppSettings, days: Days = 14) -> CostOut:
        """Calls, tokens and cost per UTC day, provider and model (every attempt, from model_calls),
        and today's spend against MAILSPINE_LLM__DAILY_MAX_COST_USD."""
        now = datetime.now(UTC)
        rows = await q.model_spend_by_day(session, since=_since(days, now))
        today = await model_calls.spent_today_micro_usd(session, now=now) / 1_000_000
        cap = settings.llm.daily_max_cost_usd
        limit = float(cap) if cap is not None else None
        return CostOut(
            days=[
                SpendRow(
                    day=d,
                    provider=p,
                    model=m,
                    calls=n,
                    input_tokens=i,
                    output_tokens=o,
                    cost_usd=c / 1_000_000,
                )
                for d, p, m, n, i, o, c in rows
            ],
            budget=Budget(
                today_usd=today,
                daily_max_usd=limit,
                remaining_usd=max(0.0, limit - today) if limit is not None else None,
                exceeded=limit is not None and today >= limit,
            ),
        )

    @app.get("/v1/quality/ops", tags=TAGS, response_model=OpsOut, responses=AUTH_ERRORS)
    async def ops(_: StatsReader, session: Session, settings: AppSettings) -> OpsOut:
        """Queue depth by status, the review backlog and its oldest item, worker heartbeats
        (procrastinate's own table) and what is known of circuit breakers (see ``note``)."""
        now = datetime.now(UTC)
        pending, oldest = await q.oldest_pending_review(session)
        found = await q.workers(session)
        refused, last_refused = await q.circuit_open_calls(session, since=now - timedelta(hours=1))
        return OpsOut(
            queue=await queue_depth(session, queue=settings.queue_name),
            maintenance_queue=await queue_depth(session, queue=MAINTENANCE_QUEUE),
            reviews_pending=pending,
            oldest_pending_review_at=oldest,
            oldest_pending_review_age_s=(now - oldest).total_seconds() if oldest else None,
            workers=None
            if found is None
            else [
                WorkerOut(
                    id=i,
                    last_heartbeat=hb,
                    heartbeat_age_s=max(0.0, (now - hb).total_seconds()),
                    running_jobs=n,
                    stalled=(now - hb).total_seconds() > STALLED_AFTER_S,
                )
                for i, hb, n in found
            ],
            stalled_after_s=STALLED_AFTER_S,
            circuit_breakers=CircuitOut(
                note=CIRCUIT_NOTE,
                circuit_open_calls_last_hour=refused,
                last_circuit_open_at=last_refused,
            ),
        )
