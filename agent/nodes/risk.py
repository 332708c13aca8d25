from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agent.context import Context
from agent.nodes import traced_node
from agent.policy import assess
from agent.state import EmailState


@traced_node("risk")
async def risk(state: EmailState, runtime: Runtime[Context]) -> dict[str, Any]:
    settings = runtime.context.settings
    assessment = assess(
        email=state["email"],
        extraction=state.get("extraction"),
        plan=state.get("plan"),
        unsure=state.get("unsure", []),
        refund_threshold=settings.review_refund_threshold,
        min_confidence=settings.review_min_confidence,
    )
    return {"risk": assessment}
