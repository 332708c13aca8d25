from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agent.context import Context
from agent.llm import structured_call
from agent.nodes import call_scope, traced_node, unsure_reason
from agent.prompting import email_block
from agent.prompts import load_prompt
from agent.state import EmailState
from tools.actions import Plan


@traced_node("plan")
async def plan(state: EmailState, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx, extraction = runtime.context, state.get("extraction")
    if extraction is None:
        return {"plan": None}
    prompt = load_prompt("plan")
    history = "\n".join(f"- ({h.source} {h.ref}) {h.summary}" for h in state.get("history", [])) or "none"
    result = await structured_call(
        ctx.models,
        tier=prompt.model,
        schema=Plan,
        prompt=prompt,
        scope=call_scope(state, runtime, "plan"),
        email_block=email_block(state["email"]),
        extraction_json=extraction.model_dump_json(),
        history_block=history,
    )
    if result.value is None:
        return {
            "plan": None,
            "unsure": [*state.get("unsure", []), unsure_reason("plan", result.error, result.unsure)],
            "usage": result.usage,
        }
    return {"plan": result.value, "usage": result.usage}
