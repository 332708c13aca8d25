from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from agent.context import Context
from agent.nodes import traced_node
from agent.state import EmailState, ReviewDecision
from app.errors import ReviewConflict
from app.hashing import payload_hash
from tools.actions import Plan


def review_payload(state: EmailState) -> dict[str, Any]:
    """What the reviewer is shown: the plan they approve, why it needs review, and the history the
    agent planned with (so they can judge the plan against the same context). Only the plan's hash
    binds the decision; reasons and history are context, stored verbatim in ``reviews.payload``."""
    plan = state.get("plan") or Plan(actions=[], rationale="The agent was unsure; no actions proposed.")
    return {
        "plan": plan.model_dump(mode="json"),
        "reasons": state["risk"].reasons,
        # Summaries hold PII placeholders; the reviewer API restores them like the rest of the payload.
        "history": [item.model_dump(mode="json") for item in state.get("history") or []],
    }


@traced_node("review")
async def review(state: EmailState, runtime: Runtime[Context]) -> dict[str, Any]:
    if state["risk"].route != "review":
        return {}
    payload = review_payload(state)
    # Everything before interrupt() re-runs on resume, so this node has no side effects; the
    # runner stores the pending review from the interrupt value.
    raw = interrupt({"payload": payload, "payload_hash": payload_hash(payload["plan"])})
    decision = ReviewDecision.model_validate(raw)
    if decision.decision == "reject":
        return {"decision": decision}
    if decision.approved_plan is None or decision.approved_hash != payload_hash(decision.approved_plan):
        raise ReviewConflict("approval is not bound to the plan it carries")
    return {"decision": decision, "plan": decision.approved_plan}
