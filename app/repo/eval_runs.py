"""Offline evaluation runs (``eval_runs``): stored by ``mailspine eval run``, read by promotion."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.models_eval import EvalRun


async def table_exists(session: AsyncSession) -> bool:
    """Whether this database is migrated far enough to store eval runs (0009)."""
    return (await session.execute(text("SELECT to_regclass('eval_runs') IS NOT NULL"))).scalar_one() is True


async def record_eval_run(
    session: AsyncSession,
    *,
    started_at: datetime,
    finished_at: datetime,
    dataset_path: str,
    dataset_sha256: str,
    prompts: dict[str, str],
    provider: str,
    model: str,
    metrics: dict[str, Any],
    cases: list[dict[str, Any]],
) -> EvalRun:
    row = EvalRun(
        started_at=started_at,
        finished_at=finished_at,
        dataset_path=dataset_path,
        dataset_sha256=dataset_sha256,
        prompts=prompts,
        provider=provider,
        model=model[:200],
        metrics=metrics,
        cases=cases,
    )
    session.add(row)
    await session.flush()
    return row


async def get_eval_run(session: AsyncSession, *, eval_run_id: int) -> EvalRun | None:
    return await session.get(EvalRun, eval_run_id)


async def latest_eval_run(session: AsyncSession, *, dataset_sha256: str | None = None) -> EvalRun | None:
    stmt = select(EvalRun).order_by(EvalRun.started_at.desc(), EvalRun.id.desc()).limit(1)
    if dataset_sha256 is not None:
        stmt = stmt.where(EvalRun.dataset_sha256 == dataset_sha256)
    return (await session.execute(stmt)).scalar_one_or_none()


async def set_gate_verdict(
    session: AsyncSession, *, eval_run_id: int, passed: bool, report: dict[str, Any]
) -> EvalRun | None:
    """Record the gate's verdict on a stored run (``mailspine eval gate``); None if there is no such run."""
    row = await session.get(EvalRun, eval_run_id)
    if row is None:
        return None
    row.passed_gate = passed
    row.gate_report = report
    await session.flush()
    return row


async def runs_with_prompt(
    session: AsyncSession, *, name: str, version: str, limit: int = 20
) -> list[EvalRun]:
    """Runs that had ``name@version`` in effect, newest first (the prompt console's verdicts)."""
    stmt = (
        select(EvalRun)
        .where(EvalRun.prompts[name].astext == version)
        .order_by(EvalRun.started_at.desc(), EvalRun.id.desc())
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())
