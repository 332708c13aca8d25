"""Run or resume one email's thread; store the pending review when the graph interrupts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command
from opentelemetry import trace

from agent.context import Context
from agent.inputs import GuardedEmail
from agent.prompts import pinned_prompts
from agent.prompts.registry import resolve_thread_prompts
from agent.state import ReviewDecision
from app.models import EmailStatus
from app.repo import emails, reviews, runs


def thread_id_for(email_id: int) -> str:
    return f"email-{email_id}"


@dataclass(frozen=True)
class RunOutcome:
    thread_id: str
    status: str  # review | done | rejected
    review_id: int | None = None


async def run_email(
    graph: CompiledStateGraph[Any, Any, Any, Any], ctx: Context, email: GuardedEmail
) -> RunOutcome:
    thread_id = thread_id_for(email.email_id)
    trace_id = format(trace.get_current_span().get_span_context().trace_id, "032x")
    async with ctx.db.transaction() as session:
        await runs.start_run(session, email_id=email.email_id, thread_id=thread_id, trace_id=trace_id)
        await emails.set_status(session, email_id=email.email_id, status=EmailStatus.PROCESSING)
        # Prompt versions (labels, canary) are resolved once per thread and kept: a resumed thread
        # runs the versions it started with.
        prompts = await resolve_thread_prompts(session, thread_id=thread_id)
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    # A re-delivered job continues the thread, never restarts it: any checkpoint means it started.
    # Not ``snapshot.next``: it leaves out tasks whose writes were saved before a crash cut off the
    # step's checkpoint, so a thread killed right after a node finished looked new, and started
    # over — paying for its model calls again and, with a plan worded differently, acting twice.
    snapshot = await graph.aget_state(config)
    start: Any = None if snapshot.created_at is not None else {"email": email}
    with pinned_prompts(prompts):
        result = await graph.ainvoke(start, config, context=ctx, durability="sync")
    return await _settle(ctx, email_id=email.email_id, thread_id=thread_id, result=result)


async def resume_email(
    graph: CompiledStateGraph[Any, Any, Any, Any], ctx: Context, *, email_id: int, decision: ReviewDecision
) -> RunOutcome:
    thread_id = thread_id_for(email_id)
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    snapshot = await graph.aget_state(config)
    if not snapshot.tasks:  # already resumed and completed (a duplicate job): nothing to do
        return RunOutcome(thread_id=thread_id, status=snapshot.values.get("outcome", "done"))
    async with ctx.db.transaction() as session:
        prompts = await resolve_thread_prompts(session, thread_id=thread_id)
    with pinned_prompts(prompts):
        result = await graph.ainvoke(
            Command(resume=decision.model_dump(mode="json")), config, context=ctx, durability="sync"
        )
    return await _settle(ctx, email_id=email_id, thread_id=thread_id, result=result)


async def _settle(ctx: Context, *, email_id: int, thread_id: str, result: dict[str, Any]) -> RunOutcome:
    interrupts = result.get("__interrupt__") or []
    if not interrupts:
        decision = result.get("decision")
        rejected = decision is not None and decision.decision == "reject"
        return RunOutcome(thread_id=thread_id, status="rejected" if rejected else "done")
    value = interrupts[0].value
    async with ctx.db.transaction() as session:
        run = await runs.get_run(session, thread_id=thread_id)
        assert run is not None
        review = await reviews.create_review(
            session,
            run_id=run.id,
            email_id=email_id,
            thread_id=thread_id,
            reasons=value["payload"]["reasons"],
            payload=value["payload"],
            payload_hash=value["payload_hash"],
        )
        extraction, plan = result.get("extraction"), result.get("plan")
        await runs.update_run(
            session,
            thread_id=thread_id,
            status="review",
            route="review",
            extraction=extraction.model_dump(mode="json") if extraction else None,
            plan=plan.model_dump(mode="json") if plan else None,
        )
        await emails.set_status(
            session,
            email_id=email_id,
            status=EmailStatus.REVIEW,
            detail="; ".join(value["payload"]["reasons"])[:1000],
        )
    return RunOutcome(thread_id=thread_id, status="review", review_id=review.id if review else None)
