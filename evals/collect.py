"""Read back what the graph did with one email: status, route, extraction, plan, effects, trajectory."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.runner import thread_id_for
from app.db import Database
from app.models import Email, EmailStatus, Review, Run, SideEffect, SpanRecord
from app.repo import pii_vault
from evals.observed import Observed
from tools.pii_boundary import restore_value

_NODE = "node "


def route_of(status: str, run_route: str | None) -> str:
    """The route an email ended in: the gateway's quarantine, a failure, or the agent's route."""
    if status == EmailStatus.QUARANTINED:
        return "quarantine"
    if status == EmailStatus.FAILED:
        return "failed"
    if status == EmailStatus.REVIEW:
        return "review"
    return run_route or status


async def trajectory(session: AsyncSession, *, trace_id: str | None, email_id: int) -> list[str]:
    """The node spans of the email's trace, in start order (``node extract`` -> ``extract``)."""
    if trace_id is None:
        return []
    stmt = (
        select(SpanRecord.name, SpanRecord.attributes)
        .where(SpanRecord.trace_id == trace_id, SpanRecord.name.startswith(_NODE))
        .order_by(SpanRecord.start_time)
    )
    rows = (await session.execute(stmt)).all()
    return [
        name.removeprefix(_NODE)
        for name, attributes in rows
        if attributes.get("mailspine.email_id") in (None, email_id)
    ]


async def observe(db: Database, *, email_id: int, vault_key: str, latency_ms: float) -> Observed:
    """Everything the metrics need about one processed email, with PII restored from its vault."""
    thread_id = thread_id_for(email_id)
    async with db.transaction() as session:
        email = await session.get(Email, email_id)
        if email is None:
            return Observed(status="error", route="error", email_id=email_id, detail="email not stored")
        run = (await session.execute(select(Run).where(Run.thread_id == thread_id))).scalar_one_or_none()
        effects = await session.scalar(
            select(func.count()).select_from(SideEffect).where(SideEffect.thread_id == thread_id)
        )
        approved = await session.scalar(
            select(func.count())
            .select_from(Review)
            .where(Review.thread_id == thread_id, Review.status == "approved")
        )
        entries = await pii_vault.load(session, email_id=email_id, key=vault_key)
        nodes = await trajectory(session, trace_id=run.trace_id if run else None, email_id=email_id)
    extraction: dict[str, Any] | None = restore_value(run.extraction, entries) if run else None
    plan: dict[str, Any] | None = restore_value(run.plan, entries) if run else None
    return Observed(
        status=email.status,
        route=route_of(email.status, run.route if run else None),
        extraction=extraction,
        actions=list((plan or {}).get("actions") or []),
        effects=int(effects or 0),
        approved=bool(approved),
        trajectory=nodes,
        cost_usd=float(run.cost_usd) if run and run.cost_usd is not None else 0.0,
        latency_ms=latency_ms,
        email_id=email_id,
        detail=email.status_detail,
    )
