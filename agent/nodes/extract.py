from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agent.context import Context
from agent.llm import structured_call
from agent.nodes import call_scope, traced_node, unsure_reason
from agent.prompting import email_block
from agent.prompts import load_prompt
from agent.schemas import Extraction
from agent.state import EmailState


@traced_node("extract")
async def extract(state: EmailState, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx, email = runtime.context, state["email"]
    prompt = load_prompt("extract")
    result = await structured_call(
        ctx.models,
        tier=prompt.model,
        schema=Extraction,
        prompt=prompt,
        scope=call_scope(state, runtime, "extract"),
        email_block=email_block(email),
    )
    if result.value is None:
        reason = unsure_reason("extraction", result.error, result.unsure)
        return {"extraction": None, "unsure": [reason], "usage": result.usage}
    # The sender's address comes from the message headers, never from what the text claims.
    extraction = result.value.model_copy(update={"sender_email": email.sender_address})
    return {"extraction": extraction, "unsure": [], "usage": result.usage}
