from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agent.context import Context
from agent.llm import structured_call
from agent.nodes import call_scope, traced_node, unsure_reason
from agent.nodes.history import history_block
from agent.prompting import email_block
from agent.prompts import load_prompt
from agent.state import EmailState
from tools.actions import Plan
from tools.registry import plan_schema


@traced_node("plan")
async def plan(state: EmailState, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx, extraction = runtime.context, state.get("extraction")
    if extraction is None:
        return {"plan": None}
    prompt = load_prompt("plan")
    history = history_block(state.get("history", []))  # labelled by source, bounded, spotlighted
    # The planner names actions that only ``act`` executes; it is shown only the kinds act is bound
    # to (all of them unless MAILSPINE_TOOLS__BINDINGS narrows act).
    act_tools = ctx.tools.for_node("act")
    result = await structured_call(
        ctx.models,
        tier=prompt.model,
        schema=plan_schema(act_tools.allowed),
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
    proposed = (
        result.value if isinstance(result.value, Plan) else Plan.model_validate(result.value.model_dump())
    )
    # Defence in depth: an action of a tool act is not bound to goes to a person, and act itself
    # refuses to run it.
    refused = sorted({a.kind for a in proposed.actions if not act_tools.allows(a.kind)})
    if refused:
        reason = f"plan asks for tools the act node is not bound to: {', '.join(refused)}"
        return {"plan": proposed, "unsure": [*state.get("unsure", []), reason], "usage": result.usage}
    return {"plan": proposed, "usage": result.usage}
