from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agent.context import Context
from agent.nodes import traced_node
from agent.state import EmailState, HistoryItem
from tools.history import sender_history


@traced_node("history")
async def history(state: EmailState, runtime: Runtime[Context]) -> dict[str, Any]:
    email = state["email"]
    items = await sender_history(runtime.context.db, before_id=email.email_id)
    return {"history": [HistoryItem.model_validate(i) for i in items]}
