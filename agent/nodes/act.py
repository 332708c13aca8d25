from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from langgraph.config import get_config
from langgraph.runtime import Runtime

from agent.context import Context
from agent.nodes import traced_node
from agent.state import EffectRecord, EmailState
from tools.actions import Action, CrmAddNote, CrmUpsertContact, DraftReply
from tools.drafts import save_draft
from tools.ledger import EffectCall, run_effect


def _call_for(action: Action, state: EmailState, ctx: Context, thread_id: str) -> EffectCall:
    email = state["email"]
    if isinstance(action, CrmUpsertContact):
        return lambda key: ctx.crm.upsert_contact(action, idempotency_key=key)
    if isinstance(action, CrmAddNote):
        stamp = (email.sent_at or datetime.now(UTC)).isoformat()
        return lambda key: ctx.crm.add_note(action, idempotency_key=key, timestamp=stamp)
    if isinstance(action, DraftReply):
        return lambda key: save_draft(
            ctx.db,
            action,
            email_id=email.email_id,
            thread_id=thread_id,
            in_reply_to=email.message_id,
            idempotency_key=key,
        )
    raise TypeError(f"no tool for action {action!r}")  # unreachable: Action is a closed union


@traced_node("act")
async def act(state: EmailState, runtime: Runtime[Context]) -> dict[str, Any]:
    plan = state.get("plan")
    if plan is None:
        return {"effects": []}
    thread_id = str(get_config()["configurable"]["thread_id"])
    effects: list[EffectRecord] = []
    for action in plan.actions:
        key, status, result = await run_effect(
            runtime.context.db,
            thread_id=thread_id,
            node="act",
            action=action,
            call=_call_for(action, state, runtime.context, thread_id),
        )
        effects.append(EffectRecord(action=action.kind, idempotency_key=key, status=status, result=result))
    return {"effects": effects}
