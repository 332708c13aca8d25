from __future__ import annotations

from decimal import Decimal
from typing import Any

from langgraph.config import get_config
from langgraph.runtime import Runtime

from agent.context import Context
from agent.nodes import traced_node
from agent.state import EmailState
from app.models import EmailStatus
from app.repo import emails, runs


def outcome_of(state: EmailState) -> tuple[EmailStatus, str]:
    decision, route = state.get("decision"), state["risk"].route
    if decision is not None and decision.decision == "reject":
        return (
            EmailStatus.REJECTED,
            f"rejected by {decision.reviewer}: {decision.reason or 'no reason given'}",
        )
    done = len(state.get("effects", []))
    if route == "ignore":
        return EmailStatus.DONE, "; ".join(state["risk"].reasons) or "ignored"
    who = f"approved by {decision.reviewer}" if decision else "automatic"
    return EmailStatus.DONE, f"{who}; {done} side effect(s)"


@traced_node("finalize")
async def finalize(state: EmailState, runtime: Runtime[Context]) -> dict[str, Any]:
    status, outcome = outcome_of(state)
    thread_id = str(get_config()["configurable"]["thread_id"])
    usage, extraction, plan = state.get("usage"), state.get("extraction"), state.get("plan")
    async with runtime.context.db.transaction() as session:
        await runs.update_run(
            session,
            thread_id=thread_id,
            status=status.value,
            route=state["risk"].route,
            outcome=outcome,
            extraction=extraction.model_dump(mode="json") if extraction else None,
            plan=plan.model_dump(mode="json") if plan else None,
            input_tokens=usage.input_tokens if usage else 0,
            output_tokens=usage.output_tokens if usage else 0,
            cost_usd=Decimal(usage.cost_micro_usd) / 1_000_000 if usage else Decimal(0),
            finished=True,
        )
        await emails.set_status(session, email_id=state["email"].email_id, status=status, detail=outcome)
    return {"outcome": outcome}
